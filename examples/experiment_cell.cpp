// experiment_cell.cpp — teaches the shape of an experiment binary: one cell of the reproduction
// table (docs/method.md, docs/reproduction-fashion-mnist.md) run end to end with the
// library: one float model pretrained (or loaded), then the same low-bit fine-tune without and
// with PfQ from identical weights, same schedule and seed, printed as one table row. Copy it
// and change one step (another pruner, quantizer or schedule) to test a new idea.
//
//   experiment_cell [--data-dir DIR] [--bits B] [--train N] [--test N] [--pretrain-epochs E]
//                   [--finetune-epochs F] [--pretrained FILE]
//
// Defaults: MobileNetV1 width 0.25 on 2048 Fashion-MNIST images, W4/A4 (the paper's per-layer
// minmax weights, ema activations), 2 + 1 epochs: about 2 CPU-minutes, a smoke run whose row
// means little. A cell worth reading: --train 60000 with more epochs, or --pretrained FILE, a pfq
// checkpoint of a trained float model (pfq train writes them) instead of the pretraining here.
#include <cmath>
#include <cstdio>
#include <string>

#include "apps/checkpoint.h"
#include "core/ops.h"
#include "core/optim/lr_schedule.h"
#include "core/optim/sgd.h"
#include "fashion_mnist.h"  // flags, loaders, top-1 (shared by the Fashion-MNIST examples)
#include "layers/models/registry.h"
#include "prune/pfq.h"
#include "quant/qat.h"

using namespace pfq;

// Trains `epochs` epochs (cosine from lr) and returns false if the loss stopped being finite.
bool train(Module& model, data::DataLoader& loader, int64_t epochs, double lr) {
  std::vector<optim::ParamRef> params;
  for (auto& [name, p] : model.named_parameters()) params.push_back({name, p});
  optim::Sgd sgd(params, {.lr = lr, .momentum = 0.9, .weight_decay = 5e-4, .exclude_bn_bias = true});
  optim::LrSchedule cosine(optim::ScheduleKind::Cosine, {.base_lr = lr, .total = double(epochs)});
  model.train();
  for (int64_t epoch = 0; epoch < epochs; ++epoch) {
    loader.start_epoch(epoch);
    while (auto b = loader.next()) {
      sgd.set_lr(cosine(double(epoch) + double(b->index) / double(loader.num_batches())));
      Tensor loss = cross_entropy(model(b->images), b->labels);
      if (!std::isfinite(loss.item())) return false;
      sgd.zero_grad();
      loss.backward();
      sgd.step();
    }
  }
  return true;
}

int main(int argc, char** argv) {
  std::string data_dir = data::default_data_dir("fashion-mnist"), pretrained;
  int64_t bits = 4, n_train = 2048, n_test = 1000, pretrain_epochs = 2, finetune_epochs = 1;
  if (!example::parse_flags(argc, argv, {{"--data-dir", &data_dir}, {"--bits", &bits}, {"--train", &n_train}, {"--test", &n_test},
                                          {"--pretrain-epochs", &pretrain_epochs}, {"--finetune-epochs", &finetune_epochs},
                                          {"--pretrained", &pretrained}}))
    return 2;
  example::Loaders data = example::fashion_mnist(data_dir, n_train, n_test);
  if (!data.train) return 2;
  data::DataLoader &train_loader = *data.train, &test_loader = *data.test;

  // 1. The float model: loaded, or pretrained here; both arms start from this checkpoint.
  app::Checkpoint ckpt;
  if (!pretrained.empty()) {
    try {
      ckpt = app::load_checkpoint(pretrained);
    } catch (const Error& e) {
      return std::fprintf(stderr, "pfq checkpoint expected at %s\n  %s\n", pretrained.c_str(), e.what()), 2;
    }
  } else {
    models::ModelConfig cfg{.in_channels = 1, .input_size = 28, .num_classes = 10, .width = 0.25, .arch = "mobilenetv1"};
    ModulePtr m = models::build_model(cfg);
    if (!train(*m, train_loader, pretrain_epochs, 0.1)) return std::fprintf(stderr, "pretraining diverged\n"), 1;
    ckpt.model = models::describe(cfg.arch, cfg, *m);
    ckpt.model_state = m->state_dict();
  }
  ModulePtr float_model = app::model_from_checkpoint(ckpt);
  const double float_top1 = example::top1(*float_model, test_loader);

  // 2. The two arms: identical weights, fine-tune schedule and loader seed; only PfQ differs.
  double arm_top1[2];
  int64_t removed = 0;
  for (int with_pfq = 0; with_pfq < 2; ++with_pfq) {
    ModulePtr m = app::model_from_checkpoint(ckpt);
    if (with_pfq) removed = prune::pfq_prune(*m, ckpt.model).removed_total;
    quant::QatConfig q{.wbits = int(bits), .abits = int(bits), .wquant = "minmax", .aquant = "ema",
                       .calib_batches = std::max<int64_t>(1, train_loader.num_batches() / 4)};
    quant::prepare_qat(*m, q);
    const bool finite = train(*m, train_loader, finetune_epochs, 0.01);
    arm_top1[with_pfq] = finite ? example::top1(*m, test_loader) : NAN;  // NAN: diverged
    std::printf("%s PfQ: W%lld/A%lld top1 %.2f%%%s\n", with_pfq ? "with" : "without", (long long)bits, (long long)bits,
                arm_top1[with_pfq], finite ? "" : " (diverged)");
  }

  // 3. The row, in the columns of pfq reproduce's report.md.
  std::printf("\n| model | W/A | float top1 | without PfQ | with PfQ | filters removed |\n|---|---|---|---|---|---|\n");
  std::printf("| %s w%g | %lld/%lld | %.2f | %.2f | %.2f | %lld |\n", ckpt.model.arch.c_str(), ckpt.model.width,
              (long long)bits, (long long)bits, float_top1, arm_top1[0], arm_top1[1], (long long)removed);
  return 0;
}
