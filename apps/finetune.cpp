// finetune.cpp — QAT fine-tuning (apps/finetune.h) on the shared epoch loop (apps/epoch_loop.h):
// its hooks switch activation quantization and BN freezing per epoch, clamp learned ranges,
// re-estimate BN statistics and treat a non-finite loss as a result ("diverged"), not an error.
#include "apps/finetune.h"

#include <omp.h>

#include <cstdio>
#include <filesystem>

#include "apps/collapse.h"
#include "apps/metrics.h"
#include "apps/model_loading.h"
#include "apps/trainer.h"
#include "core/dist/communicator.h"
#include "core/io/atomic_file.h"
#include "core/optim/lr_schedule.h"
#include "data/factory.h"
#include "quant/model_size.h"

namespace pfq::app {

void to_json(nlohmann::json& j, const FinetuneOptions& o) {
  j = {{"checkpoint", o.checkpoint}, {"qat", o.qat},           {"stages", o.stages},
       {"epochs", o.epochs},         {"lr", o.lr},             {"momentum", o.momentum},
       {"weight_decay", o.weight_decay}, {"freeze_bn_epoch", o.freeze_bn_epoch}, {"bn_reestimate", o.bn_reestimate}};
  groups_to_json<DataOptions, RunOptions, ParallelOptions>(j, o);
  if (o.weights.any()) j["weights"] = o.weights;
}

void copy_finetune_schedule(const StageOptions& o, FinetuneOptions& f) {
  static_cast<DataOptions&>(f) = o;  // the data, batch size and workers
  f.epochs = o.finetune_epochs;
  f.lr = o.finetune_lr;
  f.weight_decay = o.weight_decay;
}

FinetuneResult finetune(const FinetuneOptions& o) {
  PFQ_CHECK(o.epochs > 0, "--epochs must be positive, got ", o.epochs);
  PFQ_CHECK(o.stages == "wa" || o.stages == "w,wa", "--stages '", o.stages, "': expected wa or w,wa");
  if (const int threads = rank_threads(o.threads); threads > 0) omp_set_num_threads(threads);
  const bool say = !o.quiet && dist::is_main_rank();  // a data-parallel run's notes come from rank 0
  std::filesystem::create_directories(o.out);
  const std::string last_path = o.out + "/last.safetensors";
  io::write_file_atomic(o.out + "/finetune_config.json", with_backend(o).dump(2) + "\n");

  Checkpoint ck = load_checkpoint_for_data(o.checkpoint, o.weights, o);
  PFQ_CHECK(!is_qat_checkpoint(ck), "checkpoint ", o.checkpoint,
            " is already quantization-aware; pass the float checkpoint");
  ModulePtr model = model_from_checkpoint(ck);
  manual_seed(o.seed);
  auto train_loader = make_train_loader(o, o.seed);
  auto test_loader = make_test_loader(o, o.seed);
  check_checkpoint_fits(ck, "checkpoint " + o.checkpoint, *train_loader, o.dataset);
  shard_loaders(*train_loader, *test_loader);
  check_same_configuration(with_data_sizes(with_backend(o), *train_loader, *test_loader), "pfq finetune's configuration");
  // EMA observers that never finish calibrating never quantize: with few steps (--quick, small
  // --limit-train) calibrate over at most a quarter of the activation-quantized steps.
  quant::QatConfig qcfg = o.qat;
  const int64_t w_only_epochs = o.stages == "w,wa" ? o.epochs / 2 : 0;  // weights-only stage first
  const int64_t act_steps = train_loader->num_batches() * (o.epochs - w_only_epochs);
  if (qcfg.calib_batches > std::max<int64_t>(act_steps / 4, 1)) {
    qcfg.calib_batches = std::max<int64_t>(act_steps / 4, 1);
    if (say)
      std::fprintf(stderr, "finetune: --calib-batches %lld is more than a quarter of the %lld activation-quantized steps; using %lld\n",
                   (long long)o.qat.calib_batches, (long long)act_steps, (long long)qcfg.calib_batches);
  }
  quant::QatReport rep = quant::prepare_qat(*model, qcfg);
  const Device dev = rank_device(o.device.resolve());
  model->to(dev);  // after prepare_qat: the quantizers' parameters and buffers move too
  DataParallel parallel(*model, {.sync_bn = o.sync_bn, .overlap = !o.no_overlap});
  if (say)
    std::fprintf(stderr, "prepare_qat: %lld folded conv+BN, %lld plain convs, %lld linears, %lld activation quantizers\n",
                 (long long)rep.folded_convs, (long long)rep.plain_convs, (long long)rep.linears, (long long)rep.act_quantizers);

  OptimizerOptions oo;
  oo.optimizer = "sgd";
  oo.lr = scaled_lr(o, o.lr);
  oo.momentum = o.momentum;
  oo.nesterov = false;
  oo.weight_decay = o.weight_decay;
  auto opt = make_optimizer(oo, *model);
  optim::ScheduleOptions so;
  so.base_lr = scaled_lr(o, o.lr);
  so.total = static_cast<double>(o.epochs);
  optim::LrSchedule sched = optim::make_schedule("cosine", so);
  std::filesystem::remove(o.out + "/metrics.jsonl");
  std::filesystem::remove(o.out + "/metrics.csv");
  MetricsLog metrics(o.out, "metrics");

  const int64_t iters = train_loader->num_batches();
  PFQ_CHECK(iters > 0, "training set has fewer images (", train_loader->dataset().size(), ") than one batch (", o.batch_size, ")");
  PFQ_CHECK(o.freeze_bn_epoch <= o.epochs, "--freeze-bn-epoch ", o.freeze_bn_epoch, " is after the last epoch (--epochs ",
            o.epochs, ")");
  install_stop_handlers();
  FinetuneResult res;
  TrainState st;
  bool act_on = false, frozen = false;  // this epoch's
  EpochHooks hooks;
  hooks.begin_epoch = [&](int64_t epoch) {
    act_on = epoch >= w_only_epochs;
    // Default: BN statistics frozen in the last epoch, but never for a whole one-epoch run:
    // frozen from step 0, nothing normalises a barely trained model and SGD can blow up.
    frozen = o.freeze_bn_epoch > 0 ? epoch + 1 >= o.freeze_bn_epoch : (o.epochs > 1 && epoch == o.epochs - 1);
    quant::set_activation_quant(*model, act_on);
    quant::freeze_bn_stats(*model, frozen);
  };
  hooks.on_nonfinite = [](const NonFiniteStep& s) {  // a result ("diverged"), not an error
    if (s.gradient.empty())
      std::fprintf(stderr, "finetune: loss is %g at epoch %lld batch %lld%s%s: diverged, stopping\n", s.loss, (long long)s.epoch + 1,
                   (long long)s.batch, s.parameter.empty() ? "" : "; first non-finite parameter: ", s.parameter.c_str());
    else
      std::fprintf(stderr, "finetune: the gradient of parameter '%s' is not finite at epoch %lld batch %lld: diverged, stopping\n",
                   s.gradient.c_str(), (long long)s.epoch + 1, (long long)s.batch);
    return false;
  };
  hooks.after_step = [&](int64_t epoch, int64_t batch) {
    const std::string r = quant::clamp_learned_ranges(*model);
    if (!r.empty())
      std::fprintf(stderr, "finetune: the learned quantization range %s is not positive after the step of epoch %lld batch %lld: "
                   "diverged, stopping (ranges clamped to 1e-6 for the evaluation)\n", r.c_str(), (long long)epoch + 1, (long long)batch);
    return r.empty();
  };
  hooks.before_eval = [&](const EpochReport& r) {
    if (o.bn_reestimate > 0 && r.epoch == o.epochs - 1 && !r.diverged && !r.interrupted) {
      // BN re-estimation: running statistics recomputed under the final (quantized) weights.
      train_loader->start_epoch(o.epochs);  // a fresh seeded order, not the epoch just seen
      const int64_t used = quant::reestimate_bn_stats(
          *model, [&] { auto b = train_loader->next(); return b ? b->images.to(dev) : Tensor(); }, o.bn_reestimate);
      if (say) std::fprintf(stderr, "finetune: BN statistics re-estimated from %lld batches\n", static_cast<long long>(used));
    }
  };
  hooks.summary = [](const EpochReport& r) {
    char s[128];
    std::snprintf(s, sizeof s, "test top1 %.2f%% top5 %.2f%%%s", r.eval.top1, r.eval.top5, r.diverged ? " (diverged)" : "");
    return std::string(s);
  };
  hooks.metrics_columns = [&](const EpochReport& r, nlohmann::ordered_json& row) {
    row["act_quant"] = act_on ? 1 : 0;
    row["bn_frozen"] = frozen ? 1 : 0;
    row["diverged"] = r.diverged ? 1 : 0;
    row["epoch_seconds"] = r.seconds;
  };
  hooks.end_epoch = [&](const EpochReport& r) {
    res.epochs = r.epoch + 1;
    st.extra = {{"qat", qcfg}, {"finetune", o}, {"diverged", r.diverged}};
    save_checkpoint(last_path, *model, ck.model, st, nullptr);
  };
  EpochLoopOptions lo;
  lo.epochs = o.epochs;
  lo.batch_size = o.batch_size;
  lo.label = "qat";
  lo.quiet = o.quiet;
  lo.parallel = &parallel;
  const LoopResult loop = run_epochs(*model, *opt, sched, *train_loader, *test_loader, dev, st, metrics, lo, hooks);
  res.diverged = loop.diverged;
  const EvalResult& ev = loop.last_eval;
  res.top1 = ev.top1;
  res.top5 = ev.top5;
  res.checkpoint = last_path;
  const quant::ModelSize size = quant::model_size(*model);
  res.size_kib = size.kib();
  io::write_file_atomic(o.out + "/model_size.json", size.to_json().dump(2) + "\n");
  if (say) std::fprintf(stderr, "%s", size.str().c_str());
  if (at_chance(res.top1, ck.model.num_classes)) {  // after everything above: reads the model only
    model->to(Device::cpu());
    res.collapsed = true;
    res.collapse = collapse_note(res.top1, ck.model.num_classes, widest_quant_step(*model), o.checkpoint);
  }
  return res;
}

}  // namespace pfq::app
