// reproduce.h — `pfq reproduce`: the reproduction protocol of docs/method.md section 5 from one
// pretrained model: W/A bits x quantizer (per-layer minmax, per-channel minmax, PACT, LSQ) x
// pruning (none, PfQ, and the L1 / BN-gamma baselines at PfQ's filter count) x seeds. Each run
// is a resumable stage (the workflow's done.json machinery) around apps/finetune; --jobs runs
// several as child processes. Results: report.md, results.csv, results.json, SVG curves.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/plain_weights.h"
#include "apps/workflow.h"
#include "quant/qat.h"

namespace pfq::app {

// `pfq reproduce`: the stage schedule shared with `pfq workflow` (apps/run_options.h) and the
// grid, jobs and devices of a reproduction.
// ParallelOptions: --sync-bn, --scale-lr and --no-overlap reach every pretraining and
// fine-tuning run of a data-parallel reproduction (mpirun), as pfq workflow's stages.
struct ReproduceOptions : StageOptions, ParallelOptions {
  std::string out = "runs/reproduce";
  std::string pretrained;          // float checkpoint to start from ("" = run the pretrain stage)
  WeightsOptions pretrained_weights;  // --pretrained as plain weights: their architecture (apps/plain_weights.h)
  std::vector<uint64_t> seeds{0};  // fine-tuning seeds (and pretraining seeds with pretrain_per_seed)
  bool pretrain_per_seed = false;
  std::vector<std::string> bits{"8/8", "4/4", "4/8"};                          // "W/A"
  std::vector<std::string> quantizers{"minmax", "per-channel", "pact", "lsq"};  // quantizer_presets()
  std::vector<std::string> pruning{"none", "pfq", "l1", "bn-gamma"};
  std::vector<std::string> baseline_quantizers{"minmax"};  // the only quantizers l1 / bn-gamma run with
  int jobs = 1;
  int threads = 0;  // in total, shared by the jobs (0 = OpenMP's default); workers are per job
  // Where pretraining and fine-tuning run (PfQ and the baselines prune on the CPU): cpu, cuda,
  // cuda:N, or a list (cuda:0,cuda:1) that the --jobs children share, each on the least busy
  // (parse_devices).
  std::string device = "cpu";
  std::string stages = "wa";
  int64_t calib_batches = 50;
  int first_last_bits = 8;
  // Also write each fine-tuned run's model as runs/<id>/model.onnx (QDQ, onnx/export.h); runs
  // already done are exported on the next call that asks. Free to change between calls.
  bool export_onnx = false;
};
void to_json(nlohmann::json& j, const ReproduceOptions& o);
void from_json(const nlohmann::json& j, ReproduceOptions& o);  // unknown keys are errors

// Copies what a `pfq workflow` recipe sets (dataset, model, schedule, PfQ options, seed) into `o`;
// wbits/abits are replaced by the bits grid, and out becomes <recipe out>-reproduce.
void apply_workflow_recipe(const WorkflowOptions& w, ReproduceOptions& o);

// "4/8" -> {4, 8}; throws unless 1 <= W <= 8 and 2 <= A <= 8.
std::pair<int, int> parse_bits(const std::string& wa);
// "4/8" -> "w4a8" (run ids, curve files).
std::string bits_tag(const std::string& wa);

// One fine-tuning run of the grid.
struct ReproduceRun {
  std::string id;  // "w4a4-minmax-pfq-s0": its folder is <out>/runs/<id>
  std::string bits, quantizer, pruning;
  int wbits = 0, abits = 0;
  uint64_t seed = 0;
};
// Every run of the grid, in report order (bits, quantizer, pruning, seed). Validates the lists.
std::vector<ReproduceRun> plan_runs(const ReproduceOptions& o);

// Runs every stage and run that is not done yet, writes the report, and returns results.json's
// content; "executed" counts the fine-tuning runs this call ran. `exe` is the pfq binary that --jobs > 1 starts for each run
// ("" forces in-process runs, one at a time).
// A folder's schedule is fixed by its first call (config.json); later calls may change the grid
// (bits, quantizers, pruning, baseline quantizers, seeds, keeping the pretraining seed first):
// finished runs are reused, new ones run, and config.json records the latest grid.
nlohmann::json run_reproduce(const ReproduceOptions& o, const std::string& exe);

// The report of the grid `o` from the runs already done in o.out, running nothing (o's schedule
// must match the folder's; runs not done are listed as missing).
nlohmann::json reproduce_report_only(const ReproduceOptions& o);

// One task of a reproduction whose <out>/config.json exists ("pretrain:<seed>" or "run:<id>"),
// as a child process started by run_reproduce runs it, on `device` (one entry of --device).
void run_reproduce_task(const std::string& out, const std::string& task, int threads, int workers, const std::string& device);

// report.md, results.csv and results.json (+ curves/*.svg) from the done stages under o.out;
// runs without done.json are listed as missing. Returns the JSON.
nlohmann::json write_reproduce_report(const ReproduceOptions& o);

}  // namespace pfq::app
