// trainer.h — the training and evaluation loops behind `pfq train` and `pfq eval`:
// seeded data pipeline, SGD/Adam with LR schedule per iteration, progress bar, per-epoch
// metrics (JSONL + CSV), last/best checkpoints, resume (also mid-epoch after Ctrl-C).
// --device cpu | cuda | cuda:N: the model lives there and each batch is copied there.
#pragma once
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "core/optim/optimizer.h"
#include "data/loader.h"
#include "layers/module.h"

namespace pfq::app {

struct TrainOptions {
  std::string model = "resnet20";
  double width = 1.0;
  std::string dataset = "fashion-mnist";
  std::string data_dir;  // "" = the dataset's default location
  int64_t epochs = 10;
  int64_t batch_size = 128;
  std::string optimizer = "sgd";  // sgd | adam | adamw
  double lr = 0.1;
  double momentum = 0.9;
  bool nesterov = true;
  double weight_decay = 5e-4;
  bool no_decay_bn_bias = false;
  std::string schedule = "cosine";  // constant | step | multistep | cosine
  double warmup = 0;                // epochs of linear warmup
  double label_smoothing = 0;
  uint64_t seed = 0;
  int threads = 0;  // 0 = OpenMP default
  int workers = 2;  // loader threads
  std::string device = "cpu";
  std::string out = "runs/train";
  bool resume = false;
  int64_t limit_train = 0;  // use only the first N training images (0 = all)
  int64_t limit_test = 0;
  bool quiet = false;       // no progress bar
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

// Parses --device (cpu, cuda, cuda:N) and checks a CUDA device is usable: a build without CUDA
// or a machine without a GPU is a clear error, never a silent CPU fallback.
Device resolve_device(const std::string& text);
// The device of a module's parameters (CPU for a module without parameters). evaluate() and
// the training loops move each batch there.
Device model_device(const Module& model);

// Runs (or resumes, with opts.resume) training as configured; writes into opts.out.
TrainResult train(const TrainOptions& opts);

// Loader over `dataset` split with the default transforms; `limit` > 0 keeps the first N.
std::unique_ptr<data::DataLoader> make_loader(const std::string& dataset, const std::string& data_dir, bool train,
                                              int64_t batch_size, int workers, uint64_t seed, int64_t limit);

// The optimizer o.optimizer over every named parameter of `model` (lr, momentum, Nesterov,
// weight decay as configured; the LR is set per iteration by the caller's schedule).
std::unique_ptr<optim::Optimizer> make_optimizer(const TrainOptions& o, const Module& model);

// Name of the first tensor of `named` (in order) holding a NaN or Inf — in its values, or with
// `grads` in its gradient (tensors without a gradient are skipped); "" when all are finite.
std::string first_nonfinite(const NamedTensors& named, bool grads);

// Set by SIGINT/SIGTERM handlers that the trainer installs; checked between steps.
bool stop_requested();
void install_stop_handlers();

}  // namespace pfq::app
