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
#include <cstdlib>
#include <string>

#include "apps/checkpoint.h"
#include "core/ops.h"
#include "core/optim/lr_schedule.h"
#include "core/optim/sgd.h"
#include "data/factory.h"
#include "data/loader.h"
#include "data/subset.h"
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

double top1(Module& model, data::DataLoader& loader) {  // percent
  NoGradGuard no_grad;
  model.eval();
  int64_t correct = 0, seen = 0;
  loader.start_epoch(0);
  while (auto b = loader.next()) {
    std::vector<int64_t> pred = argmax(model(b->images), 1).to_vector<int64_t>(), label = b->labels.to_vector<int64_t>();
    for (size_t i = 0; i < pred.size(); ++i) correct += pred[i] == label[i];
    seen += int64_t(pred.size());
  }
  return 100.0 * double(correct) / double(seen);
}

int main(int argc, char** argv) {
  std::string data_dir = data::default_data_dir("fashion-mnist"), pretrained;
  int64_t bits = 4, n_train = 2048, n_test = 1000, pretrain_epochs = 2, finetune_epochs = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], v = argv[i + 1];
    if (flag == "--data-dir") data_dir = v;
    else if (flag == "--bits") bits = std::atoll(v.c_str());
    else if (flag == "--train") n_train = std::atoll(v.c_str());
    else if (flag == "--test") n_test = std::atoll(v.c_str());
    else if (flag == "--pretrain-epochs") pretrain_epochs = std::atoll(v.c_str());
    else if (flag == "--finetune-epochs") finetune_epochs = std::atoll(v.c_str());
    else if (flag == "--pretrained") pretrained = v;
    else return std::fprintf(stderr, "unknown flag %s (see the comment at the top of this file)\n", flag.c_str()), 2;
  }
  if (argc % 2 == 0) return std::fprintf(stderr, "flag %s needs a value\n", argv[argc - 1]), 2;
  std::shared_ptr<data::Dataset> train_set, test_set;
  try {
    train_set = data::make_dataset("fashion-mnist", data_dir, "train");
    test_set = data::make_dataset("fashion-mnist", data_dir, "test");
  } catch (const Error& e) {
    std::fprintf(stderr, "Fashion-MNIST data expected at %s (Debian: apt-get install dataset-fashion-mnist, or "
                 "pass --data-dir)\n  %s\n", data_dir.c_str(), e.what());
    return 2;
  }
  data::DataLoader train_loader(std::make_shared<data::SubsetDataset>(train_set, std::min(n_train, train_set->size())),
                                data::default_transform("fashion-mnist", true), {.batch_size = 128, .seed = 0});
  data::DataLoader test_loader(std::make_shared<data::SubsetDataset>(test_set, std::min(n_test, test_set->size())),
                               data::default_transform("fashion-mnist", false), {.batch_size = 256, .shuffle = false});

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
  const double float_top1 = top1(*float_model, test_loader);

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
    arm_top1[with_pfq] = finite ? top1(*m, test_loader) : NAN;  // NAN: diverged
    std::printf("%s PfQ: W%lld/A%lld top1 %.2f%%%s\n", with_pfq ? "with" : "without", (long long)bits, (long long)bits,
                arm_top1[with_pfq], finite ? "" : " (diverged)");
  }

  // 3. The row, in the columns of pfq reproduce's report.md.
  std::printf("\n| model | W/A | float top1 | without PfQ | with PfQ | filters removed |\n|---|---|---|---|---|---|\n");
  std::printf("| %s w%g | %lld/%lld | %.2f | %.2f | %.2f | %lld |\n", ckpt.model.arch.c_str(), ckpt.model.width,
              (long long)bits, (long long)bits, float_top1, arm_top1[0], arm_top1[1], (long long)removed);
  return 0;
}
