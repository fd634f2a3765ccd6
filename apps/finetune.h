// finetune.h — quantization-aware fine-tuning behind `pfq finetune` (docs/method.md 4.3): loads
// a float (possibly PfQ-pruned) checkpoint, wraps it with quant::prepare_qat, trains with SGD
// (momentum 0.9, cosine LR), freezes BN statistics from a chosen epoch (default: the last),
// optionally re-estimates them after training (quant::reestimate_bn_stats), evaluates the
// fake-quantized model every epoch and writes metrics and a checkpoint recording the QatConfig.
// Left out: resume, freezing unfolded BNs (--no-fold-bn keeps batch statistics).
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "apps/plain_weights.h"
#include "apps/run_options.h"
#include "quant/qat.h"

namespace pfq::app {

// `pfq finetune`: the shared data and run groups (apps/run_options.h) and the QAT schedule.
struct FinetuneOptions : DataOptions, RunOptions, ParallelOptions {
  FinetuneOptions() { out = "runs/finetune"; }
  std::string checkpoint;            // float checkpoint (pfq train / pfq prune output)
  quant::QatConfig qat;
  std::string stages = "wa";         // "wa" | "w,wa" (first half weights only)
  int64_t epochs = 10;
  double lr = 0.01;
  double momentum = 0.9;
  double weight_decay = 5e-4;
  int64_t freeze_bn_epoch = 0;       // 1-based epoch from which BN statistics are frozen; 0 = the last
  int64_t bn_reestimate = 0;         // batches of the BN re-estimation pass after training; 0 = none
  WeightsOptions weights;            // plain weights' architecture (apps/plain_weights.h)
};
void to_json(nlohmann::json& j, const FinetuneOptions& o);

// The schedule and data `pfq workflow` and `pfq reproduce` hand to their fine-tuning.
void copy_finetune_schedule(const StageOptions& o, FinetuneOptions& f);

struct FinetuneResult {
  double top1 = 0, top5 = 0;
  bool diverged = false;  // a non-finite loss or gradient, or a learned range driven <= 0, stopped training;
                          // top1/top5 are still evaluated
  int64_t epochs = 0;     // epochs run (a diverged epoch counts)
  std::string checkpoint; // <out>/last.safetensors
  double size_kib = 0;    // quant::model_size of the QAT model (also written to <out>/model_size.json)
  // Ended at chance accuracy (apps/collapse.h), diverged or not; `collapse` then says so and
  // names the layer with the widest quantization step relative to its weights (the callers
  // print it: pfq finetune on stdout, pfq workflow on stderr).
  bool collapsed = false;
  std::string collapse;
};

FinetuneResult finetune(const FinetuneOptions& opts);

}  // namespace pfq::app
