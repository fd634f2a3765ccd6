// epoch_loop.cpp — the training loop of train and finetune, evaluation, running statistics,
// non-finite checks and stop requests (apps/epoch_loop.h).
#include "apps/epoch_loop.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <memory>
#include <vector>

#include "apps/progress.h"
#include "core/dist/communicator.h"
#include "core/ops.h"
#include "data/device_batches.h"

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

namespace {
// Images of the batch whose arg-max class is the label.
int64_t count_correct(const Tensor& logits, const Tensor& labels) {
  const int64_t n = logits.size(0);
  Tensor pred = argmax(logits.detach(), 1).to(Device::cpu());
  Tensor lab = labels.to(Device::cpu());
  const int64_t* pp = pred.data<int64_t>();
  const int64_t* pt = lab.data<int64_t>();
  int64_t c = 0;
  for (int64_t i = 0; i < n; ++i) c += pp[i] == pt[i];
  return c;
}

// Sums `v` over the ranks (in float64: counts stay exact far beyond any dataset).
void sum_over_ranks(std::vector<double>& v) {
  Tensor t = Tensor::from_vector(v, {static_cast<int64_t>(v.size())});
  dist::world().all_reduce(t, dist::ReduceOp::Sum);
  v = t.to_vector<double>();
}
}  // namespace

void EpochStats::add(const Tensor& logits, const Tensor& labels, double loss) {
  add_totals(loss * logits.size(0), logits.size(0), count_correct(logits, labels));
}

void EpochStats::add_totals(double loss_sum_, int64_t images, int64_t correct_) {
  loss_sum += loss_sum_;
  seen += images;
  correct += correct_;
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
  if (show_progress && dist::is_main_rank()) bar = std::make_unique<ProgressBar>(label, loader.dataset().size());
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
    if (bar) bar->update(b->host.global_size);
  }
  if (bar) bar->finish();
  model.train(was_training);
  if (loader.options().ranks > 1) {  // every rank's share of the test set
    std::vector<double> totals = {loss_sum, static_cast<double>(correct1), static_cast<double>(correct5), static_cast<double>(r.images)};
    sum_over_ranks(totals);
    loss_sum = totals[0];
    correct1 = static_cast<int64_t>(totals[1]);
    correct5 = static_cast<int64_t>(totals[2]);
    r.images = static_cast<int64_t>(totals[3]);
  }
  PFQ_CHECK(r.images > 0, "evaluate: the evaluation set is empty");
  r.top1 = 100.0 * correct1 / r.images;
  r.top5 = 100.0 * correct5 / r.images;
  r.loss = loss_sum / r.images;
  return r;
}

Device model_device(const Module& model) {
  const NamedTensors params = model.named_parameters();
  return params.empty() ? Device::cpu() : params.front().second.device();
}

LoopResult run_epochs(Module& model, optim::Optimizer& opt, const optim::LrSchedule& sched, data::DataLoader& train_loader,
                      data::DataLoader& test_loader, Device dev, TrainState& st, MetricsLog& metrics,
                      const EpochLoopOptions& o, const EpochHooks& hooks) {
  LoopResult res;
  const int64_t iters = train_loader.num_batches();
  model.train();
  data::DeviceBatches batches(train_loader, dev, data::async_uploads_enabled());
  DataParallel* dp = o.parallel && o.parallel->ranks() > 1 ? o.parallel : nullptr;
  PFQ_CHECK(!dp || train_loader.options().ranks == dp->ranks(), "run_epochs: ", dp ? dp->ranks() : 1,
            " ranks but the training loader is split in ", train_loader.options().ranks, " (shard_loaders)");
  // Each step's loss and batch accuracy in steps.jsonl/.csv beside the metrics, so a short run's
  // plot has more than one point; written once per epoch (and at a stop). Rows past the state's
  // position (resumed from an earlier checkpoint, or a fresh run in an old folder) go first.
  MetricsLog steps = metrics.sibling("steps");
  steps.truncate_from("step", static_cast<double>(st.epoch * iters + st.batch) + 1);
  std::vector<nlohmann::ordered_json> step_rows;
  for (int64_t epoch = st.epoch; epoch < o.epochs && !res.diverged && !res.interrupted; ++epoch) {
    st.epoch = epoch;
    if (hooks.begin_epoch) hooks.begin_epoch(epoch);
    batches.start_epoch(epoch, st.batch);
    std::unique_ptr<ProgressBar> bar;
    if (!o.quiet && dist::is_main_rank())
      bar = std::make_unique<ProgressBar>(o.label + " " + std::to_string(epoch + 1) + "/" + std::to_string(o.epochs),
                                          (iters - st.batch) * o.batch_size);
    EpochReport r;
    r.epoch = epoch;
    auto t0 = std::chrono::steady_clock::now();
    while (auto b = batches.next()) {
      const int64_t batch = b->host.index;
      opt.set_lr(sched(optim::fractional_epoch(epoch, batch, iters)));
      Tensor logits = model.forward(b->images);
      Tensor loss = cross_entropy(logits, b->labels, o.label_smoothing, b->host.labels);
      double lv = loss.item();
      const int64_t n = logits.size(0);
      int64_t correct = -1;  // counted below for a data-parallel step, else by stats.add
      bool stop = false;  // a data-parallel step's is every rank's flag at its start
      bool finite = std::isfinite(lv);
      if (dp) {  // one small all-reduce: the global loss and accuracy, and the decisions all ranks share
        correct = count_correct(logits, b->host.labels);
        std::vector<double> step = {finite ? lv * n : 0.0, static_cast<double>(n), static_cast<double>(correct), finite ? 0.0 : 1.0,
                                    stop_requested() ? 1.0 : 0.0};
        sum_over_ranks(step);
        finite = step[3] == 0;
        stop = step[4] > 0;
        lv = finite ? step[0] / step[1] : std::nan("");
        correct = static_cast<int64_t>(step[2]);
        // The gradient of the global batch's mean loss is the sum over ranks of each rank's mean
        // loss weighted by its share of the batch.
        if (finite) loss = mul(loss, static_cast<double>(n) / static_cast<double>(b->host.global_size));
      }
      NonFiniteStep bad;
      if (!finite) {
        bad.parameter = first_nonfinite(model.named_parameters(), false);
      } else {
        opt.zero_grad();
        if (dp) dp->backward(loss);  // gradients summed over the ranks, during backward
        else loss.backward();
        if (hooks.after_backward) hooks.after_backward();
        bad.gradient = first_nonfinite(model.named_parameters(), true);
        finite = bad.gradient.empty();
      }
      if (!finite) {
        bad.epoch = epoch;
        bad.batch = batch;
        bad.step = epoch * iters + batch + 1;
        bad.loss = lv;
        if (!hooks.on_nonfinite || !hooks.on_nonfinite(bad)) {
          r.diverged = true;
          break;
        }
        opt.zero_grad();
        ++r.skipped;
      } else {
        opt.step();
        const int64_t seen_before = r.stats.seen, correct_before = r.stats.correct;
        if (dp) r.stats.add_totals(lv * b->host.global_size, b->host.global_size, correct);
        else r.stats.add(logits, b->host.labels, lv);
        st.global_step++;
        step_rows.push_back({{"step", epoch * iters + batch + 1},
                             {"epoch", epoch + static_cast<double>(batch + 1) / iters},  // fractional, as the metrics' x
                             {"lr", opt.lr()},
                             {"loss", lv},
                             {"acc", 100.0 * static_cast<double>(r.stats.correct - correct_before) / static_cast<double>(r.stats.seen - seen_before)}});
      }
      st.batch = batch + 1;
      if (bar) bar->update(b->host.global_size, r.stats.status(opt.lr()));
      if (finite && hooks.after_step && !hooks.after_step(epoch, batch)) {
        r.diverged = true;
        break;
      }
      if (dp ? stop : stop_requested()) {
        r.interrupted = true;
        if (dp) dp->average_buffers();  // the state a stop saves is the same on every rank
        if (hooks.on_stop && !hooks.on_stop()) {
          steps.append_rows(step_rows);
          if (bar) bar->finish("interrupted");
          res.interrupted = true;
          return res;
        }
        break;
      }
    }
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    steps.append_rows(step_rows);
    step_rows.clear();
    if (hooks.before_eval) hooks.before_eval(r);
    if (dp) dp->average_buffers();
    r.eval = evaluate(model, test_loader);
    if (dp) dp->check_replicas_agree("after epoch " + std::to_string(epoch + 1));
    if (bar) bar->finish(hooks.summary ? hooks.summary(r) : "");
    nlohmann::ordered_json row = {{"epoch", epoch + 1},
                                  {"lr", opt.lr()},
                                  {"train_loss", r.stats.mean_loss()},
                                  {"train_acc", r.stats.accuracy()},
                                  {"test_loss", r.eval.loss},
                                  {"test_top1", r.eval.top1},
                                  {"test_top5", r.eval.top5}};
    if (hooks.metrics_columns) hooks.metrics_columns(r, row);
    metrics.append(row);
    st.epoch = epoch + 1;
    st.batch = 0;
    st.finished = st.epoch >= o.epochs || r.diverged;
    r.improved = r.eval.top1 > st.best_top1;
    if (r.improved) st.best_top1 = r.eval.top1;
    res.epochs_run++;
    res.last_eval = r.eval;
    res.diverged = r.diverged;
    res.interrupted = r.interrupted;
    if (hooks.end_epoch) hooks.end_epoch(r);
  }
  return res;
}

}  // namespace pfq::app
