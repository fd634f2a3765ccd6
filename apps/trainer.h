// trainer.h — `pfq train` as a library function: model and optimizer from the options, the
// LR schedule, last/best checkpoints and resume (also mid-epoch after Ctrl-C) around the shared
// epoch loop (apps/epoch_loop.h, which also holds evaluate()). --device cpu | cuda | cuda:N:
// the model lives there and each batch is copied there.
#pragma once
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "apps/epoch_loop.h"
#include "apps/plain_weights.h"
#include "apps/run_options.h"
#include "core/optim/optimizer.h"
#include "data/loader.h"
#include "layers/module.h"

namespace pfq::app {

// `pfq train`: the shared groups (apps/run_options.h) and train's own schedule.
struct TrainOptions : ModelOptions, DataOptions, RunOptions, OptimizerOptions, ParallelOptions {
  TrainOptions() { out = "runs/train"; }
  int64_t epochs = 10;
  std::string schedule = "cosine";  // constant | step | multistep | cosine
  double warmup = 0;                // epochs of linear warmup
  double label_smoothing = 0;
  bool resume = false;
  bool skip_nonfinite = false;  // skip (and count) steps whose loss or gradients are NaN/Inf instead of stopping
};
void to_json(nlohmann::json& j, const TrainOptions& o);
void from_json(const nlohmann::json& j, TrainOptions& o);

struct TrainResult {
  EvalResult final_eval;
  double best_top1 = 0;
  int64_t epochs_run = 0;
  bool interrupted = false;
  int64_t skipped_nonfinite = 0;  // steps skipped for a NaN/Inf loss or gradient (--skip-nonfinite), whole run
  std::string last_checkpoint, best_checkpoint;
};

// Runs (or resumes, with opts.resume) training as configured; writes into opts.out.
TrainResult train(const TrainOptions& opts);

// `pfq eval`: the model of a float or QAT checkpoint (fake-quantized) on `device`, evaluated on
// the test split of `data` (batches of 256, limit_test, workers).
// `weights`: the architecture of plain weights (apps/plain_weights.h).
EvalResult evaluate_checkpoint(const std::string& checkpoint, const DataOptions& data, const DeviceOption& device,
                               bool show_progress, const WeightsOptions& weights = {});

// The optimizer o.optimizer over every named parameter of `model` (lr, momentum, Nesterov,
// weight decay as configured; the LR is set per iteration by the caller's schedule).
std::unique_ptr<optim::Optimizer> make_optimizer(const OptimizerOptions& o, const Module& model);

}  // namespace pfq::app
