// trainer.cpp — `pfq train`: model, optimizer, schedule, checkpoints and resume around the
// epoch loop (apps/trainer.h).
#include "apps/trainer.h"

#include <omp.h>

#include <cstdio>
#include <filesystem>

#include "apps/checkpoint.h"
#include "apps/metrics.h"
#include "apps/model_loading.h"
#include "core/device.h"
#include "core/dist/communicator.h"
#include "core/io/atomic_file.h"
#include "core/io/json_fields.h"
#include "core/optim/adam.h"
#include "core/optim/lr_schedule.h"
#include "core/optim/sgd.h"
#include "data/factory.h"
#include "layers/models/registry.h"

namespace pfq::app {

#define PFQ_TRAIN_FIELDS(X) X(epochs) X(schedule) X(warmup) X(label_smoothing) X(skip_nonfinite)

void to_json(nlohmann::json& j, const TrainOptions& o) {
  PFQ_JSON_WRITE_FIELDS(j, o, PFQ_TRAIN_FIELDS);
  groups_to_json<ModelOptions, DataOptions, RunOptions, OptimizerOptions, ParallelOptions>(j, o);
}
void from_json(const nlohmann::json& j, TrainOptions& o) {
  groups_from_json<ModelOptions, DataOptions, RunOptions, OptimizerOptions, ParallelOptions>(j, o);
  PFQ_JSON_READ_FIELDS(j, o, PFQ_TRAIN_FIELDS, nullptr);
}

std::unique_ptr<optim::Optimizer> make_optimizer(const OptimizerOptions& o, const Module& model) {
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

EvalResult evaluate_checkpoint(const std::string& checkpoint, const DataOptions& data, const DeviceOption& device,
                               bool show_progress, const WeightsOptions& weights) {
  const Device dev = device.resolve();
  auto loader = make_test_loader(data, 0);
  Checkpoint ck = load_checkpoint_or_weights(checkpoint, weights, loader_image_size(*loader));
  ModulePtr model = model_from_any_checkpoint(ck);  // float or QAT (fake-quantized) checkpoints
  model->to(dev);
  check_checkpoint_fits(ck, "checkpoint " + checkpoint, *loader, data.dataset);
  return evaluate(*model, *loader, show_progress);
}

TrainResult train(const TrainOptions& o) {
  const Device dev = rank_device(o.device.resolve());
  PFQ_CHECK(o.epochs > 0, "--epochs must be positive, got ", o.epochs);
  PFQ_CHECK(o.batch_size > 0, "--batch-size must be positive, got ", o.batch_size);
  if (const int threads = rank_threads(o.threads); threads > 0) omp_set_num_threads(threads);
  std::filesystem::create_directories(o.out);
  const std::string last_path = o.out + "/last.safetensors", best_path = o.out + "/best.safetensors";
  install_stop_handlers();

  auto train_loader = make_train_loader(o, o.seed);
  auto test_loader = make_test_loader(o, o.seed);
  shard_loaders(*train_loader, *test_loader);
  check_same_configuration(with_data_sizes(with_backend(o), *train_loader, *test_loader), "pfq train's configuration");
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
    restore_module_generators(*model, ck);  // Dropout's masks continue where they stopped
    model->to(dev);  // before the optimizer state, which is created on the parameters' device
    opt = make_optimizer(o, *model);
    opt->load_state_tensors(ck.optim_state);
    st = ck.train;
    st.finished = st.epoch >= o.epochs;  // a finished run resumed with more epochs continues
    if (!st.generator_state.empty()) default_generator().set_state(st.generator_state);
    metrics.truncate_from("epoch", static_cast<double>(st.epoch) + 1);
    if (dist::is_main_rank())
      std::fprintf(stderr, "resuming from %s at epoch %lld batch %lld\n", last_path.c_str(), (long long)st.epoch + 1, (long long)st.batch);
  } else {
    manual_seed(o.seed);
    model = models::build_model(cfg.arch, cfg);
    model->to(dev);
    opt = make_optimizer(o, *model);
    std::filesystem::remove(o.out + "/metrics.jsonl");
    std::filesystem::remove(o.out + "/metrics.csv");
  }
  io::write_file_atomic(o.out + "/train_config.json", with_backend(o).dump(2) + "\n");
  DataParallel parallel(*model, {.sync_bn = o.sync_bn, .overlap = !o.no_overlap});

  optim::ScheduleOptions so;
  so.base_lr = scaled_lr(o, o.lr);
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
  EpochHooks hooks;
  hooks.on_nonfinite = [&](const NonFiniteStep& s) {  // an error, or with --skip-nonfinite a skipped step
    const std::string bad =
        s.gradient.empty()
            ? detail::cat("the loss is ", s.loss, s.parameter.empty() ? " (every parameter is finite: the forward pass overflowed)"
                                                                      : "; first non-finite parameter: '" + s.parameter + "'")
            : detail::cat("the gradient of parameter '", s.gradient, "' is not finite (loss ", s.loss, ")");
    PFQ_CHECK(o.skip_nonfinite, "training stopped at step ", s.step, " (epoch ", s.epoch + 1, " batch ", s.batch, "): ", bad,
              "; the last good checkpoint is ", std::filesystem::exists(last_path) ? last_path : "not written yet (no epoch finished)",
              " (lower --lr, or pass --skip-nonfinite to skip such steps)");
    if (res.skipped_nonfinite < 10)
      std::fprintf(stderr, "\nskipping step %lld (epoch %lld batch %lld): %s\n", (long long)s.step, (long long)s.epoch + 1,
                   (long long)s.batch, bad.c_str());
    ++res.skipped_nonfinite;
    return true;
  };
  hooks.on_stop = [&] {  // state saved mid-epoch; --resume continues from the next batch
    save_last();
    return false;
  };
  hooks.summary = [](const EpochReport& r) {
    char s[160];
    std::snprintf(s, sizeof s, "loss %.4f acc %.2f%% | test top1 %.2f%% top5 %.2f%% loss %.4f", r.stats.mean_loss(),
                  r.stats.accuracy(), r.eval.top1, r.eval.top5, r.eval.loss);
    return std::string(s);
  };
  // --skip-bad: the files left out so far (training and test sets), counted in each metrics row
  // and named in <out>/skipped_files.txt
  auto skipped_files = [&] {
    std::vector<std::string> f = train_loader->dataset().skipped_files();
    for (auto& t : test_loader->dataset().skipped_files()) f.push_back(std::move(t));
    return f;
  };
  hooks.metrics_columns = [&](const EpochReport& r, nlohmann::ordered_json& row) {
    row["skipped_nonfinite"] = r.skipped;
    row["epoch_seconds"] = r.seconds;
    row["images_per_second"] = r.seconds > 0 ? r.stats.seen / r.seconds : 0.0;
    if (o.skip_bad) row["skipped_files"] = skipped_files().size();
  };
  hooks.end_epoch = [&](const EpochReport& r) {
    if (const auto files = skipped_files(); o.skip_bad && !files.empty()) {
      std::string text;
      for (const auto& f : files) text += f + "\n";
      io::write_file_atomic(o.out + "/skipped_files.txt", text);
      std::fprintf(stderr, "\n--skip-bad: %zu files skipped so far (first: %s), listed in %s/skipped_files.txt\n", files.size(),
                   files.front().c_str(), o.out.c_str());
    }
    save_last();
    if (r.improved) save_checkpoint(best_path, *model, cfg, st, nullptr);
  };
  EpochLoopOptions lo;
  lo.epochs = o.epochs;
  lo.batch_size = o.batch_size;
  lo.label_smoothing = o.label_smoothing;
  lo.quiet = o.quiet;
  lo.parallel = &parallel;
  const LoopResult loop = run_epochs(*model, *opt, sched, *train_loader, *test_loader, dev, st, metrics, lo, hooks);
  if (loop.interrupted) {
    std::fprintf(stderr, "interrupted: state saved to %s; run the same command with --resume to continue\n", last_path.c_str());
    res.interrupted = true;
    res.last_checkpoint = last_path;
    return res;
  }
  res.epochs_run = loop.epochs_run;
  res.final_eval = loop.last_eval;
  if (res.epochs_run == 0) res.final_eval = evaluate(*model, *test_loader);
  res.best_top1 = st.best_top1;
  res.last_checkpoint = last_path;
  res.best_checkpoint = best_path;
  return res;
}

}  // namespace pfq::app
