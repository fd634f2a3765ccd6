// test_recipes_e2e.cpp — every recipe in configs/ runs as `pfq workflow --config <recipe>
// --data-dir <dir>` (through the real command-line parser) on generated data of its dataset's
// format (CIFAR-10 / CIFAR-100 binary files, an ImageNet-style train/ and val/ tree of PNG and
// JPEG files), cut to one training step per stage and a few test images, so recipes cannot rot:
// all stages finish (the fine-tune without PfQ too, redone alone when its done.json is gone) and
// the saved configuration keeps the recipe's values; `pfq reproduce` plans its grid from each.
// ImageNet recipes run at their real 224x224 input with batch 2; the ones that start from
// pretrained weights (configs/*-pretrained.json) import the committed fixture of their
// architecture instead of pretraining.
#include <doctest/doctest.h>
#include <stb/stb_image_write.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/backend_options.h"
#include "../data/data_test_util.h"
#include "apps/checkpoint.h"
#include "apps/commands.h"
#include "apps/reproduce.h"
#include "apps/workflow.h"
#include "onnx/export.h"
#include "core/random.h"
#include "tests/gradcheck.h"

using namespace pfq;
namespace fs = std::filesystem;

namespace {

std::vector<uint8_t> cifar_records(int n, int label_bytes, int classes, Generator& g) {
  std::vector<uint8_t> v;
  for (int i = 0; i < n; ++i) {
    if (label_bytes == 2) v.push_back(static_cast<uint8_t>(g.next_u64() % 20));  // CIFAR-100 coarse label
    v.push_back(static_cast<uint8_t>(g.next_u64() % classes));
    for (int k = 0; k < 3072; ++k) v.push_back(static_cast<uint8_t>(g.next_u64() & 0xff));
  }
  return v;
}

// Writes the dataset a recipe names into `dir` (once per kind) and returns the --data-dir.
std::string make_data(const std::string& dataset, const std::string& dir) {
  Generator g(11);
  const std::string root = dir + "/" + dataset;
  if (fs::exists(root)) return root;
  if (dataset == "cifar10") {
    for (int b = 1; b <= 5; ++b)
      data::testing::write_file(root + "/cifar-10-batches-bin/data_batch_" + std::to_string(b) + ".bin", cifar_records(4, 1, 10, g));
    data::testing::write_file(root + "/cifar-10-batches-bin/test_batch.bin", cifar_records(8, 1, 10, g));
  } else if (dataset == "cifar100") {
    data::testing::write_file(root + "/cifar-100-binary/train.bin", cifar_records(16, 2, 100, g));
    data::testing::write_file(root + "/cifar-100-binary/test.bin", cifar_records(8, 2, 100, g));
  } else if (dataset == "imagefolder") {
    // 10 classes: the pretrained recipes run with the 10-class fixtures of tests/fixtures
    int k = 0;
    for (const char* split : {"train", "val"})
      for (int c = 0; c < 10; ++c)
        for (int i = 0; i < 1; ++i, ++k) {
          const std::string cls = "n0144076" + std::to_string(c);
          const int w = 40 + 8 * (c % 2), h = 36;
          std::vector<uint8_t> pix(static_cast<size_t>(w * h * 3));
          for (auto& p : pix) p = static_cast<uint8_t>(g.next_u64() & 0xff);
          const std::string base = root + "/" + split + "/" + cls + "/img" + std::to_string(i);
          fs::create_directories(fs::path(base).parent_path());
          if (k % 2 == 0)
            REQUIRE(stbi_write_png((base + ".png").c_str(), w, h, 3, pix.data(), w * 3) != 0);
          else
            REQUIRE(stbi_write_jpg((base + ".JPEG").c_str(), w, h, 3, pix.data(), 90) != 0);
        }
  } else {
    FAIL("recipe dataset '", dataset, "' has no generator in this test: add one");
  }
  return root;
}

}  // namespace

TEST_CASE("e2e: every recipe in configs/ runs as pfq workflow --config on generated data") {
  test::OmpThreadsScope restore;  // --threads 1 below sets it for the process
  data::testing::TempDir tmp;
  std::vector<fs::path> recipes;
  for (const auto& e : fs::directory_iterator(std::string(PFQ_SOURCE_ROOT) + "/configs"))
    if (e.path().extension() == ".json") recipes.push_back(e.path());
  std::sort(recipes.begin(), recipes.end());
  REQUIRE(recipes.size() >= 7);
  for (const auto& recipe : recipes) {
    CAPTURE(recipe.string());
    const app::WorkflowOptions r = app::read_workflow_config(recipe.string());
    const std::string data_dir = make_data(r.dataset, tmp.path());
    const bool imagenet = r.dataset == "imagefolder";
    const std::string batch = imagenet ? "2" : "4";
    const std::string out = tmp / ("run-" + recipe.stem().string());
    // A recipe that starts from pretrained weights gets the committed fixture of its architecture.
    std::string pretrained;
    if (!r.pretrained.empty())
      pretrained = std::string(PFQ_SOURCE_ROOT) + "/tests/fixtures/" +
                   (recipe.stem().string().find("mobilenetv2") != std::string::npos ? "pretrained_mobilenet_v2.safetensors"
                                                                                   : "pretrained_timm_mobilenetv1_100.safetensors");
    // `pfq reproduce --config <recipe>` reads it too (its grid planned, the weights carried).
    app::ReproduceOptions ro;
    app::apply_workflow_recipe(r, ro);
    CHECK(ro.pretrained == r.pretrained);
    CHECK(app::plan_runs(ro).size() >= 3);
    const std::string args = "workflow --config " + recipe.string() + " --data-dir " + data_dir + " --out " + out +
                             (pretrained.empty() ? "" : " --pretrained " + pretrained) +
                             " --pretrain-epochs 1 --finetune-epochs 1 --batch-size " + batch + " --limit-train " + batch +
                             " --limit-test " + batch + " --workers 1 --threads 1";
    CLI::App cli{"pfq"};
    app::add_workflow_command(cli);
    cli.parse(args);

    nlohmann::json results = nlohmann::json::parse(std::ifstream(out + "/results.json"));
    CHECK(std::isfinite(results.at("finetune").at("top1").get<double>()));
    CHECK(results.at("pfq").at("params_before").get<int64_t>() > 0);
    CHECK(fs::exists(out + "/report.md"));
    // The fine-tuned model is also left as ONNX (QDQ) beside the integer model, in the report.
    const std::string report{std::istreambuf_iterator<char>(std::ifstream(out + "/report.md").rdbuf()), {}};
    CHECK(report.find("ONNX (QDQ)") != std::string::npos);
    // The same fine-tune without PfQ, from the pretrained model, beside the one after PfQ.
    CHECK(std::isfinite(results.at("finetune-nopfq").at("top1").get<double>()));
    CHECK(fs::exists(out + "/finetune-nopfq/done.json"));
    CHECK(report.find("fine-tuned without PfQ") != std::string::npos);
    CHECK(report.find("![fine-tuning curves without and with PfQ](compare_curves.svg)") != std::string::npos);
    CHECK(fs::exists(out + "/compare_curves.svg"));
    CHECK(fs::exists(out + "/compare_weight_range.svg"));
    // It fine-tunes the pretrained checkpoint (the other one PfQ's), with the same schedule and seed.
    const nlohmann::json ft_nopfq = nlohmann::json::parse(std::ifstream(out + "/finetune-nopfq/finetune_config.json"));
    const nlohmann::json ft_pfq = nlohmann::json::parse(std::ifstream(out + "/finetune/finetune_config.json"));
    CHECK(ft_nopfq.at("checkpoint") == results.at("pretrain").at("checkpoint"));
    CHECK(ft_pfq.at("checkpoint") == results.at("pfq").at("checkpoint"));
    for (const char* k : {"epochs", "lr", "seed", "batch_size", "limit_train", "qat"}) CHECK(ft_nopfq.at(k) == ft_pfq.at(k));
    if (recipe == recipes.front()) {
      // Resume: a finished folder is skipped stage by stage; with the no-PfQ stage's done.json gone
      // only that stage runs again, to the same result (same seed and schedule).
      const auto stamp = [&](const char* stage) { return fs::last_write_time(out + "/" + stage + "/done.json"); };
      const auto ft_time = stamp("finetune");
      fs::remove(out + "/finetune-nopfq/done.json");
      CLI::App again{"pfq"};
      app::add_workflow_command(again);
      again.parse(args);
      const nlohmann::json redo = nlohmann::json::parse(std::ifstream(out + "/results.json"));
      CHECK(stamp("finetune") == ft_time);
      CHECK(fs::exists(out + "/finetune-nopfq/done.json"));
      CHECK(redo.at("finetune-nopfq").at("top1") == results.at("finetune-nopfq").at("top1"));
      CHECK(redo.at("finetune") == results.at("finetune"));
    }
    if (onnx_export::available()) {
      const nlohmann::json& ox = results.at("intcheck").at("onnx");
      CHECK_MESSAGE(ox.contains("model"), ox.dump());
      CHECK(fs::exists(out + "/intcheck/model.onnx"));
      CHECK(ox.at("check").contains("ran"));
    }
    // The model was built for the dataset's real input: 224x224 ImageNet variant, 32x32 CIFAR.
    const app::Checkpoint ck = app::load_checkpoint(results.at("pretrain").at("checkpoint").get<std::string>());
    CHECK(ck.model.input_size == (imagenet ? 224 : 32));
    CHECK(ck.model.resolved_variant() == (imagenet ? "imagenet" : "cifar"));
    // The overrides took effect and everything else is the recipe's.
    const nlohmann::json saved = nlohmann::json::parse(std::ifstream(out + "/config.json"));
    nlohmann::json expected = r;
    expected["data_dir"] = data_dir;
    expected["out"] = out;
    expected["pretrain_epochs"] = 1;
    expected["finetune_epochs"] = 1;
    expected["batch_size"] = std::stoll(batch);
    expected["limit_train"] = std::stoll(batch);
    expected["limit_test"] = std::stoll(batch);
    expected["workers"] = 1;
    expected["threads"] = 1;
    if (!pretrained.empty()) expected["pretrained"] = pretrained;
    expected["backend"] = backend_options_json();  // the kernel choices the run used
    CHECK(saved.at("backend").at("cpu_layout") == "nhwc");
    CHECK(saved == expected);
    const nlohmann::json raw = nlohmann::json::parse(std::ifstream(recipe));
    if (pretrained.empty()) {
      CHECK(raw.at("pretrain_epochs").get<int64_t>() > 1);  // a real schedule, cut only here
    } else {
      // imported, not pretrained: no pretraining schedule in the recipe, the import recorded
      CHECK_FALSE(raw.contains("pretrain_epochs"));
      CHECK(results.at("pretrain").at("imported") == true);
      CHECK_FALSE(fs::exists(out + "/pretrain/metrics.jsonl"));
    }
    CHECK(raw.at("finetune_epochs").get<int64_t>() > 1);
  }
}
