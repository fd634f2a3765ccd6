// test_intcheck_e2e.cpp — end to end: a tiny 4/4-bit QAT fine-tune of MobileNetV1 (width 0.25)
// on 64 Fashion-MNIST images, then `pfq export` and `pfq intcheck` through the CLI: the integer
// file loads, runs on 128 test images and agrees with the fake-quantized model. Skips with a
// message when Fashion-MNIST is not installed.
#include <doctest/doctest.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <filesystem>
#include <unistd.h>

#include "apps/checkpoint.h"
#include "apps/commands.h"
#include "apps/finetune.h"
#include "apps/intcheck.h"
#include "core/io/safetensors.h"
#include "onnx/export.h"
#include "data/factory.h"
#include "layers/models/registry.h"
#include "quant/integer/model.h"
#include "tests/skip.h"

using namespace pfq;

namespace {

void run_cli(const std::vector<std::string>& args) {
  CLI::App app{"pfq"};
  app.require_subcommand(1);
  app::add_export_command(app);
  app::add_intcheck_command(app);
  std::vector<const char*> argv{"pfq"};
  for (const auto& a : args) argv.push_back(a.c_str());
  app.parse(static_cast<int>(argv.size()), argv.data());
}

}  // namespace

TEST_CASE("e2e: pfq export + pfq intcheck on a tiny QAT run") {
  if (!std::filesystem::exists(data::default_data_dir("fashion-mnist") + "/t10k-images-idx3-ubyte.gz")) {
    PFQ_SKIP("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)");
  }
  const auto base = std::filesystem::temp_directory_path() / ("pfq-e2e-intcheck-" + std::to_string(::getpid()));
  std::filesystem::remove_all(base);
  std::filesystem::create_directories(base);
  models::ModelConfig cfg;
  cfg.arch = "mobilenetv1";
  cfg.in_channels = 1;
  cfg.input_size = 28;
  cfg.width = 0.25;
  cfg.seed = 3;
  const std::string float_ckpt = (base / "float.safetensors").string();
  app::save_checkpoint(float_ckpt, *models::build_model(cfg), cfg, app::TrainState{}, nullptr);

  app::FinetuneOptions f;
  f.checkpoint = float_ckpt;
  f.out = (base / "qat").string();
  f.qat.wbits = 4;
  f.qat.abits = 4;
  f.qat.per_channel = true;
  f.qat.calib_batches = 1;
  f.epochs = 1;
  f.batch_size = 32;
  f.limit_train = 64;
  f.limit_test = 64;
  f.workers = 1;
  f.quiet = true;
  app::FinetuneResult r = app::finetune(f);
  REQUIRE(!r.diverged);
  CHECK(r.size_kib > 0);
  CHECK(std::filesystem::exists(f.out + "/model_size.json"));

  const std::string int_path = (base / "model.pfqint").string();
  run_cli({"export", r.checkpoint, "--out", int_path});
  REQUIRE(std::filesystem::exists(int_path));
  quant::IntModel im = quant::load_integer_model(int_path);
  CHECK(im.model.arch == "mobilenetv1");
  run_cli({"intcheck", int_path, "--qat-checkpoint", r.checkpoint, "--limit-test", "64", "--workers", "1", "--quiet"});

  app::IntCheckOptions ic;
  ic.model = int_path;
  ic.qat_checkpoint = r.checkpoint;
  ic.limit_test = 128;
  ic.workers = 1;
  ic.quiet = true;
  app::IntCheckResult res = app::run_intcheck(ic);
  CHECK(res.images == 128);
  MESSAGE("integer top1 ", res.int_top1, "%, fake-quant top1 ", res.fq_top1, "%, agreement ", res.agreement, "%");
  CHECK(res.agreement >= 97.0);
  CHECK(std::fabs(res.int_top1 - res.fq_top1) <= 3.0);
  // a float checkpoint is not exportable, with a clear error
  CHECK_THROWS_WITH_AS(run_cli({"export", float_ckpt, "--out", (base / "x.pfqint").string()}),
                       doctest::Contains("is a float checkpoint"), Error);

  // ONNX: the QAT and the float checkpoint, with reference logits; an existing file is refused
  // without --force (tools/onnx-check.sh checks such files with ONNX Runtime)
  if (onnx_export::available()) {
    const std::string onnx_path = (base / "qat.onnx").string();
    run_cli({"export", r.checkpoint, "--format", "onnx", "--out", onnx_path, "--reference-images", "64"});
    CHECK(std::filesystem::file_size(onnx_path) > 0);
    const io::SafetensorsFile ref = io::load_safetensors((base / "qat.ref.safetensors").string());
    CHECK(ref.at("input").shape() == Shape{64, 1, 28, 28});
    CHECK(ref.at("logits").shape() == Shape{64, 10});
    CHECK(ref.at("int_logits").shape() == Shape{64, 10});
    const auto before = std::filesystem::last_write_time(onnx_path);
    CHECK_THROWS_WITH_AS(run_cli({"export", r.checkpoint, "--format", "onnx", "--out", onnx_path}),
                         doctest::Contains("exists; pass --force"), Error);
    CHECK(std::filesystem::last_write_time(onnx_path) == before);
    run_cli({"export", float_ckpt, "--format", "onnx", "--out", onnx_path, "--force"});
    CHECK(!std::filesystem::exists(base / "float.onnx"));
  } else {
    CHECK_THROWS_WITH_AS(run_cli({"export", r.checkpoint, "--format", "onnx", "--out", (base / "q.onnx").string()}),
                         doctest::Contains("without ONNX export"), Error);
  }
  std::filesystem::remove_all(base);
}
