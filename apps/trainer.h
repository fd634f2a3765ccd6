// trainer.h — the training and evaluation loops behind `pfq train` and `pfq eval`:
// seeded data pipeline, SGD/Adam with LR schedule per iteration, progress bar, per-epoch
// metrics (JSONL + CSV), last/best checkpoints, resume (also mid-epoch after Ctrl-C).
// --device cpu | cuda | cuda:N: the model lives there and each batch is copied there.
#pragma once
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "apps/run_options.h"
#include "core/optim/optimizer.h"
#include "data/loader.h"
#include "layers/module.h"

namespace pfq::app {

// `pfq train`: the shared groups (apps/run_options.h) and train's own schedule.
struct TrainOptions : ModelOptions, DataOptions, RunOptions, OptimizerOptions {
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

struct EvalResult {
  double top1 = 0, top5 = 0, loss = 0;
  int64_t images = 0;
};

struct TrainResult {
  EvalResult final_eval;
  double best_top1 = 0;
  int64_t epochs_run = 0;
  bool interrupted = false;
  int64_t skipped_nonfinite = 0;  // steps skipped for a NaN/Inf loss or gradient (--skip-nonfinite), whole run
  std::string last_checkpoint, best_checkpoint;
};

// Running loss/accuracy over the training steps of one epoch (for the progress bar and metrics).
struct EpochStats {
  double loss_sum = 0;
  int64_t seen = 0, correct = 0;
  // logits [N, K], labels int64 [N], loss = the batch mean.
  void add(const Tensor& logits, const Tensor& labels, double loss);
  double mean_loss() const { return seen ? loss_sum / seen : 0.0; }
  double accuracy() const { return seen ? 100.0 * correct / seen : 0.0; }
  std::string status(double lr) const;  // "loss 0.4123 acc 85.20% lr 0.05"
};

// Evaluates `model` (switched to eval mode) over every batch of `loader`'s next epoch.
EvalResult evaluate(Module& model, data::DataLoader& loader, bool show_progress = false, const std::string& label = "eval");

// The device of a module's parameters (CPU for a module without parameters). evaluate() and
// the training loops move each batch there.
Device model_device(const Module& model);

// Runs (or resumes, with opts.resume) training as configured; writes into opts.out.
TrainResult train(const TrainOptions& opts);

// The optimizer o.optimizer over every named parameter of `model` (lr, momentum, Nesterov,
// weight decay as configured; the LR is set per iteration by the caller's schedule).
std::unique_ptr<optim::Optimizer> make_optimizer(const OptimizerOptions& o, const Module& model);

// Name of the first tensor of `named` (in order) holding a NaN or Inf — in its values, or with
// `grads` in its gradient (tensors without a gradient are skipped); "" when all are finite.
std::string first_nonfinite(const NamedTensors& named, bool grads);

// Set by SIGINT/SIGTERM handlers that the trainer installs; checked between steps.
bool stop_requested();
void install_stop_handlers();

}  // namespace pfq::app
