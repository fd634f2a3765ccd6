// epoch_loop.h — the one training loop of `pfq train` and `pfq finetune` (apps/): epochs of
// seeded batches on the model's device with the LR set per iteration, forward, cross-entropy,
// backward, non-finite checks, optimizer step, progress bar and Ctrl-C, then evaluation and a
// metrics row per epoch (each step's loss in steps.jsonl beside it); what differs between the commands comes in as hooks. Also evaluate()
// and the running statistics it shares with the loop. Left out: checkpoints and resume (the
// caller's hooks) and the data-parallel plumbing itself (apps/data_parallel.h), which the loop
// calls at fixed points when given one.
#pragma once
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "apps/checkpoint.h"
#include "apps/data_parallel.h"
#include "apps/metrics.h"
#include "core/optim/lr_schedule.h"
#include "core/optim/optimizer.h"
#include "data/loader.h"
#include "layers/module.h"

namespace pfq::app {

struct EvalResult {
  double top1 = 0, top5 = 0, loss = 0;
  int64_t images = 0;
};

// Evaluates `model` (switched to eval mode) over every batch of `loader`'s next epoch; with a
// sharded loader (several ranks) the counts are summed over ranks: every rank gets the whole
// test set's figures.
EvalResult evaluate(Module& model, data::DataLoader& loader, bool show_progress = false, const std::string& label = "eval");

// The device of a module's parameters (CPU for a module without parameters). evaluate() and
// the training loop move each batch there.
Device model_device(const Module& model);

// Running loss/accuracy over the training steps of one epoch (for the progress bar and metrics).
struct EpochStats {
  double loss_sum = 0;
  int64_t seen = 0, correct = 0;
  // logits [N, K], labels int64 [N], loss = the batch mean.
  void add(const Tensor& logits, const Tensor& labels, double loss);
  // A step's totals (over every rank's share in a data-parallel run): loss summed over images.
  void add_totals(double loss_sum_, int64_t images, int64_t correct_);
  double mean_loss() const { return seen ? loss_sum / seen : 0.0; }
  double accuracy() const { return seen ? 100.0 * correct / seen : 0.0; }
  std::string status(double lr) const;  // "loss 0.4123 acc 85.20% lr 0.05"
};

// Name of the first tensor of `named` (in order) holding a NaN or Inf — in its values, or with
// `grads` in its gradient (tensors without a gradient are skipped); "" when all are finite.
std::string first_nonfinite(const NamedTensors& named, bool grads);

// Set by SIGINT/SIGTERM handlers that train, finetune and reproduce install; checked between steps.
bool stop_requested();
void install_stop_handlers();

// A training step whose loss or gradient is not finite (the optimizer has not stepped).
struct NonFiniteStep {
  int64_t epoch = 0, batch = 0;  // 0-based
  int64_t step = 0;              // 1-based over the run: epoch * batches per epoch + batch + 1
  double loss = 0;
  std::string parameter;  // the loss is not finite: the first non-finite parameter ("" = all finite)
  std::string gradient;   // the loss is finite: the first parameter whose gradient is not
};

// One epoch, as the hooks after its training steps see it.
struct EpochReport {
  int64_t epoch = 0;  // 0-based
  EpochStats stats;
  int64_t skipped = 0;  // steps skipped as non-finite
  double seconds = 0;   // of the training steps
  EvalResult eval;      // on the test loader, after the epoch
  bool improved = false;  // eval.top1 beat the state's best_top1 (which now holds it)
  bool diverged = false, interrupted = false;
};

struct EpochLoopOptions {
  int64_t epochs = 1;          // the loop runs the state's epoch .. epochs - 1
  int64_t batch_size = 0;      // images per batch, for the progress bar
  double label_smoothing = 0;
  std::string label = "epoch";  // progress bar: "<label> <epoch>/<epochs>"
  bool quiet = false;           // no progress bar
  // Several ranks (null: one process): per step the loss is scaled by this rank's share of the
  // global batch, the gradients summed over ranks after backward, and the decisions that must
  // agree (a non-finite loss anywhere, a stop request anywhere) taken from all ranks' flags; BN
  // statistics averaged before each evaluation and stop, the replicas compared after each epoch.
  // Only rank 0 shows the progress bar (with the global loss and accuracy).
  DataParallel* parallel = nullptr;
};

// Every hook may be empty.
struct EpochHooks {
  // Before the epoch's first batch (finetune: activation quantization, BN freezing).
  std::function<void(int64_t epoch)> begin_epoch;
  // After backward, before the gradients are checked and the optimizer steps: the place for a
  // data-parallel all-reduce of the gradients.
  std::function<void()> after_backward;
  // A non-finite loss or gradient: true skips the step (gradients zeroed) and goes on; false
  // stops training (diverged) after the epoch is evaluated. May throw to stop the run. Empty:
  // stop (diverged).
  std::function<bool(const NonFiniteStep&)> on_nonfinite;
  // After an optimizer step (epoch, batch): false stops training as diverged.
  std::function<bool(int64_t epoch, int64_t batch)> after_step;
  // Ctrl-C / SIGTERM between steps, the state's batch counting the last step: true finishes the
  // epoch (evaluation, metrics, end_epoch) before stopping; false stops at once (the progress
  // bar ends "interrupted"). Empty: finish the epoch.
  std::function<bool()> on_stop;
  // After the training steps, before the evaluation (finetune: BN re-estimation).
  std::function<void(const EpochReport&)> before_eval;
  // The progress bar's closing status after the evaluation.
  std::function<std::string(const EpochReport&)> summary;
  // The metrics row's columns after epoch, lr, train_loss, train_acc, test_loss, test_top1, test_top5.
  std::function<void(const EpochReport&, nlohmann::ordered_json& row)> metrics_columns;
  // After the row is written and the state advanced to the next epoch (checkpoints).
  std::function<void(const EpochReport&)> end_epoch;
};

struct LoopResult {
  int64_t epochs_run = 0;  // epochs evaluated
  EvalResult last_eval;    // of the last epoch evaluated
  bool diverged = false, interrupted = false;
};

// Trains `model` on `dev` from st.epoch / st.batch to o.epochs: per epoch, st.epoch = epoch and
// the train loader's batches from st.batch; per step, st.batch and st.global_step advance; after
// an evaluated epoch st.epoch = epoch + 1, st.batch = 0, st.best_top1 and st.finished (the last
// epoch, or diverged) are updated. Stops after a diverged epoch or at a stop request. Each
// optimizer step's row (step, fractional epoch, lr, loss, batch top-1 %) goes to the log
// metrics.sibling("steps"), whose rows past st's position are dropped first.
LoopResult run_epochs(Module& model, optim::Optimizer& opt, const optim::LrSchedule& sched, data::DataLoader& train_loader,
                      data::DataLoader& test_loader, Device dev, TrainState& st, MetricsLog& metrics,
                      const EpochLoopOptions& o, const EpochHooks& hooks);

}  // namespace pfq::app
