// trainer.cpp — training/evaluation loops, checkpointing and resume for `pfq train`.
#include "apps/trainer.h"

#include <omp.h>

#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>

#include "apps/checkpoint.h"
#include "apps/metrics.h"
#include "apps/progress.h"
#include "core/device.h"
#include "core/io/atomic_file.h"
#include "core/io/json_fields.h"
#include "core/ops.h"
#include "core/optim/adam.h"
#include "core/optim/lr_schedule.h"
#include "core/optim/sgd.h"
#include "data/device_batches.h"
#include "data/factory.h"
#include "data/subset.h"
#include "layers/models/registry.h"

namespace pfq::app {

namespace {
std::atomic<bool> g_stop{false};
extern "C" void on_stop_signal(int) { g_stop.store(true); }
}  // namespace

bool stop_requested() { return g_stop.load(); }
void install_stop_handlers() {
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
}

#define PFQ_TRAIN_FIELDS(X)                                                                                  \
  X(model) X(width) X(dataset) X(data_dir) X(epochs) X(batch_size) X(optimizer) X(lr) X(momentum) X(nesterov) \
  X(weight_decay) X(no_decay_bn_bias) X(schedule) X(warmup) X(label_smoothing) X(seed) X(threads) X(workers) \
  X(device) X(out) X(limit_train) X(limit_test) X(skip_nonfinite)

std::string first_nonfinite(const NamedTensors& named, bool grads) {
  // On a GPU, one reduction first (x * 0 is NaN exactly where x is not finite) so a healthy
  // step costs one device-to-host copy, not one per parameter.
  if (!named.empty() && named.front().second.device().is_cuda()) {
    NoGradGuard ng;
    Tensor acc;
    for (const auto& [name, p] : named) {
      Tensor t = grads ? p.grad() : p;
      if (!t.defined() || t.numel() == 0 || !is_floating(t.dtype())) continue;
      Tensor z = sum(mul(t.detach(), 0.0)).to(DType::Float64);
      acc = acc.defined() ? add(acc, z) : z;
    }
    if (!acc.defined() || std::isfinite(acc.item())) return "";
  }
  for (const auto& [name, p] : named) {
    Tensor t = grads ? p.grad() : p;
    if (!t.defined() || t.numel() == 0) continue;
    if (!t.device().is_cpu()) t = t.to(Device::cpu());
    t = t.contiguous();
    bool finite = true;
    if (t.dtype() == DType::Float32) {
      const float* d = t.data<float>();
      for (int64_t i = 0; i < t.numel() && finite; ++i) finite = std::isfinite(d[i]);
    } else if (t.dtype() == DType::Float64) {
      const double* d = t.data<double>();
      for (int64_t i = 0; i < t.numel() && finite; ++i) finite = std::isfinite(d[i]);
    }
    if (!finite) return name;
  }
  return "";
}

void to_json(nlohmann::json& j, const TrainOptions& o) { PFQ_JSON_WRITE_FIELDS(j, o, PFQ_TRAIN_FIELDS); }
void from_json(const nlohmann::json& j, TrainOptions& o) { PFQ_JSON_READ_FIELDS(j, o, PFQ_TRAIN_FIELDS, nullptr); }

std::unique_ptr<data::DataLoader> make_loader(const std::string& dataset, const std::string& data_dir, bool train,
                                              int64_t batch_size, int workers, uint64_t seed, int64_t limit) {
  const std::string dir = data_dir.empty() ? data::default_data_dir(dataset) : data_dir;
  std::shared_ptr<const data::Dataset> ds = data::make_dataset(dataset, dir, train ? "train" : "test");
  if (limit > 0 && limit < ds->size()) ds = std::make_shared<data::SubsetDataset>(ds, limit);
  data::LoaderOptions lo;
  lo.batch_size = batch_size;
  lo.shuffle = train;
  lo.drop_last = train;
  lo.workers = workers;
  lo.seed = seed;
  return std::make_unique<data::DataLoader>(ds, data::default_transform(dataset, train), lo);
}

void EpochStats::add(const Tensor& logits, const Tensor& labels, double loss) {
  const int64_t n = logits.size(0);
  Tensor pred = argmax(logits.detach(), 1).to(Device::cpu());
  Tensor lab = labels.to(Device::cpu());
  const int64_t* pp = pred.data<int64_t>();
  const int64_t* pt = lab.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) correct += pp[i] == pt[i];
  loss_sum += loss * n;
  seen += n;
}

std::string EpochStats::status(double lr) const {
  char s[96];
  std::snprintf(s, sizeof s, "loss %.4f acc %.2f%% lr %.4g", mean_loss(), accuracy(), lr);
  return s;
}

EvalResult evaluate(Module& model, data::DataLoader& loader, bool show_progress, const std::string& label) {
  NoGradGuard ng;
  const bool was_training = model.is_training();
  model.eval();
  EvalResult r;
  double loss_sum = 0;
  int64_t correct1 = 0, correct5 = 0;
  std::unique_ptr<ProgressBar> bar;
  if (show_progress) bar = std::make_unique<ProgressBar>(label, loader.dataset().size());
  data::DeviceBatches batches(loader, model_device(model), data::async_uploads_enabled());
  batches.start_epoch(0);
  while (auto b = batches.next()) {
    Tensor logits = model.forward(b->images);
    const int64_t n = logits.size(0), k = logits.size(1);
    loss_sum += cross_entropy(logits, b->labels, 0, b->host.labels).item() * n;
    const Tensor host_logits = logits.to(Device::cpu()).contiguous();  // ranks are counted on the host
    const float* pl = host_logits.data<float>();
    const int64_t* pt = b->host.labels.data<int64_t>();
    for (int64_t i = 0; i < n; ++i) {
      const float target = pl[i * k + pt[i]];
      // Classes scoring higher than the target (ties favour the target). Written as "not <=" so
      // NaN counts against the model: a NaN competitor outranks the target, a NaN target ranks last.
      int64_t rank = 0;
      for (int64_t j = 0; j < k; ++j) rank += !(pl[i * k + j] <= target);
      correct1 += rank < 1;
      correct5 += rank < 5;
    }
    r.images += n;
    if (bar) bar->update(n);
  }
  if (bar) bar->finish();
  model.train(was_training);
  PFQ_CHECK(r.images > 0, "evaluate: the evaluation set is empty");
  r.top1 = 100.0 * correct1 / r.images;
  r.top5 = 100.0 * correct5 / r.images;
  r.loss = loss_sum / r.images;
  return r;
}

std::unique_ptr<optim::Optimizer> make_optimizer(const TrainOptions& o, const Module& model) {
  std::vector<optim::ParamRef> params;
  for (auto& [name, t] : model.named_parameters()) params.push_back({name, t});
  if (o.optimizer == "sgd") {
    optim::SgdOptions s;
    s.lr = o.lr;
    s.momentum = o.momentum;
    s.nesterov = o.nesterov && o.momentum > 0;
    s.weight_decay = o.weight_decay;
    s.exclude_bn_bias = o.no_decay_bn_bias;
    return std::make_unique<optim::Sgd>(params, s);
  }
  optim::AdamOptions a;
  a.lr = o.lr;
  a.weight_decay = o.weight_decay;
  a.exclude_bn_bias = o.no_decay_bn_bias;
  if (o.optimizer == "adam") return std::make_unique<optim::Adam>(params, a);
  if (o.optimizer == "adamw") return std::make_unique<optim::AdamW>(params, a);
  PFQ_FAIL("--optimizer '", o.optimizer, "': expected sgd, adam or adamw");
}

namespace {

}  // namespace

Device resolve_device(const std::string& text) {
  const Device d = Device::parse(text);
  if (d.is_cuda()) require_device(d);  // "built without CUDA" / "no CUDA GPU present": never a CPU fallback
  return d;
}

Device model_device(const Module& model) {
  const NamedTensors params = model.named_parameters();
  return params.empty() ? Device::cpu() : params.front().second.device();
}

TrainResult train(const TrainOptions& o) {
  const Device dev = resolve_device(o.device);
  PFQ_CHECK(o.epochs > 0, "--epochs must be positive, got ", o.epochs);
  PFQ_CHECK(o.batch_size > 0, "--batch-size must be positive, got ", o.batch_size);
  if (o.threads > 0) omp_set_num_threads(o.threads);
  std::filesystem::create_directories(o.out);
  const std::string last_path = o.out + "/last.safetensors", best_path = o.out + "/best.safetensors";
  install_stop_handlers();

  auto train_loader = make_loader(o.dataset, o.data_dir, true, o.batch_size, o.workers, o.seed, o.limit_train);
  auto test_loader = make_loader(o.dataset, o.data_dir, false, 256, o.workers, o.seed, o.limit_test);
  // Through the transform: image folders have no fixed size until cropped (ImageNet: 224).
  auto info = data::data_info(train_loader->dataset(), train_loader->transform());

  models::ModelConfig cfg;
  cfg.arch = o.model;
  cfg.in_channels = info.channels;
  cfg.input_size = info.height;
  cfg.num_classes = info.num_classes;
  cfg.width = o.width;
  cfg.seed = o.seed;
  TrainState st;
  ModulePtr model;
  std::unique_ptr<optim::Optimizer> opt;
  MetricsLog metrics(o.out, "metrics");
  if (o.resume && std::filesystem::exists(last_path)) {
    Checkpoint ck = load_checkpoint(last_path);
    cfg = ck.model;
    model = model_from_checkpoint(ck);
    model->to(dev);  // before the optimizer state, which is created on the parameters' device
    opt = make_optimizer(o, *model);
    opt->load_state_tensors(ck.optim_state);
    st = ck.train;
    st.finished = st.epoch >= o.epochs;  // a finished run resumed with more epochs continues
    if (!st.generator_state.empty()) default_generator().set_state(st.generator_state);
    metrics.truncate_from("epoch", static_cast<double>(st.epoch) + 1);
    std::fprintf(stderr, "resuming from %s at epoch %lld batch %lld\n", last_path.c_str(), (long long)st.epoch + 1, (long long)st.batch);
  } else {
    manual_seed(o.seed);
    model = models::build_model(cfg.arch, cfg);
    model->to(dev);
    opt = make_optimizer(o, *model);
    std::filesystem::remove(o.out + "/metrics.jsonl");
    std::filesystem::remove(o.out + "/metrics.csv");
  }
  io::write_file_atomic(o.out + "/train_config.json", nlohmann::json(o).dump(2) + "\n");

  optim::ScheduleOptions so;
  so.base_lr = o.lr;
  so.total = static_cast<double>(o.epochs);
  so.warmup = o.warmup;
  so.step_size = std::max<double>(1, o.epochs / 3.0);
  so.milestones = {0.5 * o.epochs, 0.75 * o.epochs};
  optim::LrSchedule sched = optim::make_schedule(o.schedule, so);

  TrainResult res;
  if (st.extra.is_object()) res.skipped_nonfinite = st.extra.value("skipped_nonfinite", int64_t{0});
  const int64_t iters = train_loader->num_batches();
  PFQ_CHECK(iters > 0, "training set has fewer images (", train_loader->dataset().size(), ") than one batch (", o.batch_size, ")");
  auto save_last = [&] {
    st.generator_state = default_generator().state();
    st.extra = nlohmann::json(o);
    st.extra["skipped_nonfinite"] = res.skipped_nonfinite;
    save_checkpoint(last_path, *model, cfg, st, opt.get());
  };
  model->train();
  data::DeviceBatches batches(*train_loader, dev, data::async_uploads_enabled());
  for (int64_t epoch = st.epoch; epoch < o.epochs && !st.finished; ++epoch) {
    st.epoch = epoch;
    batches.start_epoch(epoch, st.batch);
    std::unique_ptr<ProgressBar> bar;
    if (!o.quiet)
      bar = std::make_unique<ProgressBar>("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(o.epochs),
                                          (iters - st.batch) * o.batch_size);
    EpochStats stats;
    int64_t skipped_epoch = 0;
    auto t0 = std::chrono::steady_clock::now();
    while (auto b = batches.next()) {
      opt->set_lr(sched(optim::fractional_epoch(epoch, b->host.index, iters)));
      Tensor logits = model->forward(b->images);
      Tensor loss = cross_entropy(logits, b->labels, o.label_smoothing, b->host.labels);
      const double lv = loss.item();
      std::string bad;  // what is NaN/Inf in this step ("" = nothing)
      if (!std::isfinite(lv)) {
        const std::string p = first_nonfinite(model->named_parameters(), false);
        bad = detail::cat("the loss is ", lv, p.empty() ? " (every parameter is finite: the forward pass overflowed)"
                                                        : "; first non-finite parameter: '" + p + "'");
      } else {
        opt->zero_grad();
        loss.backward();
        const std::string g = first_nonfinite(model->named_parameters(), true);
        if (!g.empty()) bad = detail::cat("the gradient of parameter '", g, "' is not finite (loss ", lv, ")");
      }
      const int64_t step = epoch * iters + b->host.index + 1;
      if (!bad.empty()) {
        PFQ_CHECK(o.skip_nonfinite, "training stopped at step ", step, " (epoch ", epoch + 1, " batch ", b->host.index, "): ", bad,
                  "; the last good checkpoint is ",
                  std::filesystem::exists(last_path) ? last_path : "not written yet (no epoch finished)",
                  " (lower --lr, or pass --skip-nonfinite to skip such steps)");
        opt->zero_grad();
        if (res.skipped_nonfinite < 10)
          std::fprintf(stderr, "\nskipping step %lld (epoch %lld batch %lld): %s\n", (long long)step, (long long)epoch + 1,
                       (long long)b->host.index, bad.c_str());
        ++skipped_epoch;
        ++res.skipped_nonfinite;
      } else {
        opt->step();
        stats.add(logits, b->host.labels, lv);
        st.global_step++;
      }
      const int64_t n = logits.size(0);
      st.batch = b->host.index + 1;
      if (bar) bar->update(n, stats.status(opt->lr()));
      if (stop_requested()) {
        save_last();
        if (bar) bar->finish("interrupted");
        std::fprintf(stderr, "interrupted: state saved to %s; run the same command with --resume to continue\n", last_path.c_str());
        res.interrupted = true;
        res.last_checkpoint = last_path;
        return res;
      }
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EvalResult ev = evaluate(*model, *test_loader);
    if (bar) {
      char s[160];
      std::snprintf(s, sizeof s, "loss %.4f acc %.2f%% | test top1 %.2f%% top5 %.2f%% loss %.4f", stats.mean_loss(),
                    stats.accuracy(), ev.top1, ev.top5, ev.loss);
      bar->finish(s);
    }
    nlohmann::ordered_json row = {{"epoch", epoch + 1},
                                  {"lr", opt->lr()},
                                  {"train_loss", stats.mean_loss()},
                                  {"train_acc", stats.accuracy()},
                                  {"test_loss", ev.loss},
                                  {"test_top1", ev.top1},
                                  {"test_top5", ev.top5},
                                  {"skipped_nonfinite", skipped_epoch},
                                  {"epoch_seconds", secs},
                                  {"images_per_second", secs > 0 ? stats.seen / secs : 0.0}};
    metrics.append(row);
    st.epoch = epoch + 1;
    st.batch = 0;
    st.finished = st.epoch >= o.epochs;
    const bool best = ev.top1 > st.best_top1;
    if (best) st.best_top1 = ev.top1;
    save_last();
    if (best) save_checkpoint(best_path, *model, cfg, st, nullptr);
    res.final_eval = ev;
    res.epochs_run++;
  }
  if (res.epochs_run == 0) res.final_eval = evaluate(*model, *test_loader);
  res.best_top1 = st.best_top1;
  res.last_checkpoint = last_path;
  res.best_checkpoint = best_path;
  return res;
}

}  // namespace pfq::app
