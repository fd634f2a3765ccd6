// workflow.h — `pfq workflow`: the paper's workflow as resumable stages in one output
// directory: pretrain -> PfQ -> quantized fine-tune -> evaluate, then the same fine-tune without
// PfQ (stage finetune-nopfq, the report's comparison) -> report. A finished stage
// writes <out>/<stage>/done.json and is never redone; an interrupted stage resumes from its
// own checkpoint. The resolved configuration is saved as <out>/config.json.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "apps/curves.h"  // plot_curves, which the stages draw
#include "apps/trainer.h"

namespace pfq::app {

// `pfq workflow`: the stage schedule (model, data, pretrain, PfQ, fine-tuning; shared with
// `pfq reproduce`), the run group (pretrain and fine-tune run on --device; PfQ on the CPU) and
// the workflow's own bits and integer check; under mpirun, how the ranks share BN and the LR.
struct WorkflowOptions : StageOptions, RunOptions, ParallelOptions {
  WorkflowOptions() { out = "runs/workflow"; }
  // quantized fine-tuning (section 4.3)
  int wbits = 4, abits = 4;
  // evaluate: the integer check runs on the first N test images (0: all)
  int64_t intcheck_images = 2000;
  // evaluate: the Python that runs ONNX Runtime's check of the exported model.onnx (needs onnx,
  // onnxruntime, numpy, safetensors; without them the report says how to run it later)
  std::string onnx_python = "python3";
  // a float checkpoint or plain PyTorch weights to start from instead of pretraining (saved in
  // config.json only when given), and the plain weights' architecture
  std::string pretrained;
  WeightsOptions pretrained_weights;
};
void to_json(nlohmann::json& j, const WorkflowOptions& o);
void from_json(const nlohmann::json& j, WorkflowOptions& o);

// Reads a `pfq workflow --config` JSON file over the defaults. Throws pfq::Error naming the
// file and, for a bad value, the key and the expected type.
WorkflowOptions read_workflow_config(const std::string& path);

// Stage machinery, shared with `pfq reproduce`. A stage lives in stage_dir(o, stage) =
// <o.out>/<stage> (stage may hold '/'); it is done when its done.json exists, and stage_done
// then reads that file's result into `result`. mark_done writes it (atomically) last.
std::string stage_dir(const WorkflowOptions& o, const std::string& stage);
// Progress notes on stderr, from rank 0 alone in a data-parallel run (printf's format).
void note(const char* format, ...) __attribute__((format(printf, 1, 2)));
bool stage_done(const WorkflowOptions& o, const std::string& stage, nlohmann::json& result);
void mark_done(const WorkflowOptions& o, const std::string& stage, const nlohmann::json& result);
// Stage 1 into <o.out>/pretrain and stage 2 (PfQ on pretrain["checkpoint"], with the float
// accuracy before/after and pfq/weight_range.svg) into <o.out>/pfq; both return their done.json.
nlohmann::json run_pretrain(const WorkflowOptions& o);
// Stage 1 from o.pretrained instead: a pfq checkpoint as is, plain weights imported into
// <o.out>/pretrain/imported.safetensors (o.pretrained_weights; input size from the data), then
// evaluated once on the test split (o.limit_test) so the report has the float accuracy.
nlohmann::json run_pretrained(const WorkflowOptions& o);
nlohmann::json run_pfq(const WorkflowOptions& o, const nlohmann::json& pretrain);

// Runs the stages that are not done yet; returns the final results table as JSON.
nlohmann::json run_workflow(const WorkflowOptions& o);

}  // namespace pfq::app
