// test_train_e2e.cpp — end to end on real data: `pfq train`'s loop overfits a tiny
// Fashion-MNIST subset in seconds, checkpoints round-trip, and an interrupted-then-resumed
// run (ResNet-20, and MobileNetV2 with its dropout) ends with bit-identical weights to an
// uninterrupted one.
#include <doctest/doctest.h>

#include <filesystem>

#include "apps/checkpoint.h"
#include "apps/metrics.h"
#include "apps/trainer.h"
#include "data/factory.h"
#include "tests/skip.h"

using namespace pfq;

namespace {

bool have_fashion_mnist() { return std::filesystem::exists(data::default_data_dir("fashion-mnist") + "/t10k-images-idx3-ubyte.gz"); }

app::TrainOptions tiny(const std::string& out) {
  app::TrainOptions o;
  o.model = "resnet20";
  o.dataset = "fashion-mnist";
  o.epochs = 5;
  o.batch_size = 16;
  o.lr = 0.05;
  o.schedule = "constant";
  o.limit_train = 256;
  o.limit_test = 256;
  o.workers = 1;
  o.quiet = true;
  o.out = out;
  o.seed = 3;
  return o;
}

std::string temp_dir(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() / ("pfq-e2e-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  return d.string();
}

}  // namespace

TEST_CASE("e2e: training overfits a tiny Fashion-MNIST subset and writes metrics and checkpoints") {
  if (!have_fashion_mnist()) {
    PFQ_SKIP("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)");
  }
  auto o = tiny(temp_dir("overfit"));
  app::TrainResult r = app::train(o);
  app::MetricsLog log(o.out, "metrics");
  auto rows = log.rows();
  REQUIRE(rows.size() == 5);
  CHECK(rows.back()["train_loss"].get<double>() < rows.front()["train_loss"].get<double>() * 0.7);
  CHECK(rows.back()["train_acc"].get<double>() > 50.0);  // chance is 10%
  CHECK(std::filesystem::exists(o.out + "/metrics.csv"));
  // Every step's loss in steps.jsonl (16 batches of 16 per epoch); an epoch's steps average to its train_loss.
  auto steps = app::MetricsLog(o.out, "steps").rows();
  REQUIRE(steps.size() == 5 * 16);
  CHECK(std::filesystem::exists(o.out + "/steps.csv"));
  for (size_t i = 0; i < steps.size(); ++i) REQUIRE(steps[i]["step"].get<int64_t>() == static_cast<int64_t>(i) + 1);
  CHECK(steps.back()["epoch"].get<double>() == doctest::Approx(5.0));
  for (size_t e = 0; e < 5; ++e) {
    double sum = 0;
    for (size_t i = 0; i < 16; ++i) sum += steps[e * 16 + i]["loss"].get<double>();
    CHECK(sum / 16 == doctest::Approx(rows[e]["train_loss"].get<double>()).epsilon(1e-9));
  }
  // best checkpoint reloads and evaluates to the recorded accuracy
  app::Checkpoint ck = app::load_checkpoint(r.best_checkpoint);
  CHECK(ck.model.arch == "resnet20");
  CHECK(ck.model.in_channels == 1);
  ModulePtr m = app::model_from_checkpoint(ck);
  auto loader = app::make_loader("fashion-mnist", "", false, 64, 1, 0, 256);
  app::EvalResult ev = app::evaluate(*m, *loader);
  CHECK(ev.top1 == doctest::Approx(r.best_top1));
  std::filesystem::remove_all(o.out);
}

namespace {

// Trains `o` for 3 epochs uninterrupted, and again stopped after 2 epochs then resumed: both
// runs must end with bit-identical weights and the same generator states.
void check_resume_identical(app::TrainOptions o, const std::string& name) {
  auto full = o;
  full.out = temp_dir(name + "-full");
  full.epochs = 3;
  app::train(full);
  auto part = o;
  part.out = temp_dir(name + "-part");
  part.epochs = 3;
  // an "interrupted" run: stop after 2 epochs, then resume with the 3-epoch schedule
  auto first = part;
  first.epochs = 2;
  first.schedule = "constant";
  app::train(first);
  // A step row past the checkpoint (written before a crash that lost the state) must go at resume.
  app::MetricsLog(part.out, "steps").append({{"step", 9999}, {"epoch", 2.5}, {"lr", 0.0}, {"loss", 0.0}, {"acc", 0.0}});
  part.resume = true;
  app::train(part);
  auto a = app::load_checkpoint(full.out + "/last.safetensors");
  auto b = app::load_checkpoint(part.out + "/last.safetensors");
  REQUIRE(a.model_state.size() == b.model_state.size());
  for (size_t i = 0; i < a.model_state.size(); ++i) {
    INFO(a.model_state[i].first);
    const Tensor& x = a.model_state[i].second;
    const Tensor& y = b.model_state[i].second;
    REQUIRE(x.numel() == y.numel());
    CHECK(std::memcmp(x.raw_data(), y.raw_data(), x.numel() * dtype_size(x.dtype())) == 0);
  }
  CHECK(a.train.generator_state == b.train.generator_state);
  CHECK(a.train.module_generators == b.train.module_generators);
  CHECK(b.train.epoch == 3);
  // The per-step log continues across the resume: the same rows as the uninterrupted run's.
  const auto sa = app::MetricsLog(full.out, "steps").rows(), sb = app::MetricsLog(part.out, "steps").rows();
  CHECK(sa.size() == static_cast<size_t>(a.train.global_step));
  CHECK(sa == sb);
  std::filesystem::remove_all(full.out);
  std::filesystem::remove_all(part.out);
}

}  // namespace

TEST_CASE("e2e: resume from a checkpoint ends with the same weights as an uninterrupted run") {
  if (!have_fashion_mnist()) {
    PFQ_SKIP("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)");
  }
  check_resume_identical(tiny(""), "resume");
}

TEST_CASE("e2e: resuming MobileNetV2 (dropout in its classifier) ends with the same weights as an uninterrupted run") {
  if (!have_fashion_mnist()) {
    PFQ_SKIP("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)");
  }
  // Dropout draws its masks from its own generator: the checkpoint must carry that state too
  // (a fresh model's generator would give the resumed epoch other masks, and other weights).
  auto o = tiny("");
  o.model = "mobilenetv2";
  o.width = 0.25;
  o.limit_train = 128;
  o.limit_test = 32;
  check_resume_identical(o, "resume-mnv2");
}
