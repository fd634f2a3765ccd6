// test_pretrained_workflow_e2e.cpp — `pfq workflow --pretrained` and `pfq reproduce
// --pretrained` (through the real command-line parser) on plain PyTorch weights: the committed
// torchvision mobilenet_v2 fixture (tests/fixtures/pretrained_mobilenet_v2.safetensors) and a tiny
// generated ImageNet-style folder (10 classes of PNG / JPEG files). The workflow must import the
// weights instead of pretraining (no training in the pretrain stage), keep them (the imported
// tensors equal the file's, and the model after PfQ still gives PyTorch's logits), then run PfQ,
// the W4/A4 fine-tunes and the integer check; reproduce likewise imports once for its grid.
#include <doctest/doctest.h>
#include <stb/stb_image_write.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "../data/data_test_util.h"
#include "apps/checkpoint.h"
#include "apps/commands.h"
#include "apps/model_loading.h"
#include "core/autograd.h"
#include "core/io/safetensors.h"
#include "core/random.h"
#include "tests/gradcheck.h"

using namespace pfq;
namespace fs = std::filesystem;

namespace {

const std::string kFixtures = std::string(PFQ_SOURCE_ROOT) + "/tests/fixtures/";
const std::string kWeights = kFixtures + "pretrained_mobilenet_v2.safetensors";

// root/{train,val}/c0..c9/ with `per_class` images each, 40..54 x 44 pixels, PNG and JPEG.
void write_folder(const std::string& root, int per_class) {
  Generator g(5);
  int k = 0;
  for (const char* split : {"train", "val"})
    for (int c = 0; c < 10; ++c)
      for (int i = 0; i < per_class; ++i, ++k) {
        const int w = 40 + 7 * (k % 3), h = 44;
        std::vector<uint8_t> pix(static_cast<size_t>(w * h * 3));
        for (auto& p : pix) p = static_cast<uint8_t>((g.next_u64() & 0x7f) + 12 * c);
        const std::string base = root + "/" + split + "/c" + std::to_string(c) + "/img" + std::to_string(i);
        fs::create_directories(fs::path(base).parent_path());
        if (k % 2 == 0)
          REQUIRE(stbi_write_png((base + ".png").c_str(), w, h, 3, pix.data(), w * 3) != 0);
        else
          REQUIRE(stbi_write_jpg((base + ".JPEG").c_str(), w, h, 3, pix.data(), 90) != 0);
      }
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  REQUIRE_MESSAGE(in, "cannot read ", path);
  return nlohmann::json::parse(in);
}

// Every tensor of the PyTorch file equals the imported checkpoint's (float16 widened to float32).
void check_same_tensors(const std::string& imported) {
  const io::SafetensorsFile want = io::load_safetensors(kWeights), got = io::load_safetensors(imported);
  int64_t compared = 0;
  for (const auto& [key, t] : want.tensors) {
    const std::string name = key;  // a plain variable: clang 14 cannot capture bindings in CAPTURE
    if (name.find("num_batches_tracked") != std::string::npos) continue;
    CAPTURE(name);
    REQUIRE(got.contains(name));
    const std::vector<float> a = t.to(DType::Float32).contiguous().to_vector<float>();
    const std::vector<float> b = got.at(name).to(DType::Float32).contiguous().to_vector<float>();
    REQUIRE(a.size() == b.size());
    CHECK(a == b);
    ++compared;
  }
  CHECK(compared > 100);
}

// max |model - PyTorch| / max |PyTorch| on the fixture's stored 64x64 inputs.
double relative_error_to_torch(const std::string& checkpoint) {
  io::SafetensorsFile io = io::load_safetensors(kFixtures + "pretrained_io.safetensors");
  ModulePtr m = app::model_from_checkpoint(app::load_checkpoint(checkpoint));
  m->eval();
  Tensor got;
  {
    NoGradGuard ng;
    got = m->forward(io.at("input"));
  }
  const std::vector<float> g = got.contiguous().to_vector<float>(), w = io.at("logits.mobilenet_v2").contiguous().to_vector<float>();
  REQUIRE(g.size() == w.size());
  double diff = 0, scale = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    diff = std::max(diff, std::abs(static_cast<double>(g[i]) - w[i]));
    scale = std::max(scale, std::abs(static_cast<double>(w[i])));
  }
  return diff / scale;
}

void run_cli(void (*add)(CLI::App&), const std::string& args) {
  CLI::App cli{"pfq"};
  add(cli);
  cli.parse(args);
}

}  // namespace

TEST_CASE("e2e pretrained: workflow and reproduce --pretrained import PyTorch weights, skip pretraining, prune, quantize, check") {
  test::OmpThreadsScope restore;  // --threads 1 below sets it for the process
  data::testing::TempDir tmp;
  const std::string data = tmp / "folder";
  write_folder(data, 1);
  const std::string common = " --pretrained " + kWeights + " --dataset imagefolder --data-dir " + data +
                             " --image-size 64 --resize-size 73 --batch-size 5 --limit-train 10 --limit-test 10 --workers 1 --threads 1";

  const std::string out = tmp / "workflow";
  run_cli(app::add_workflow_command, "workflow" + common + " --pretrain-epochs 5 --finetune-epochs 1 --intcheck-images 10 --out " + out);
  const nlohmann::json r = read_json(out + "/results.json");
  // Imported, not trained: no training artefacts in the pretrain stage, the source recorded.
  CHECK(r.at("pretrain").at("imported") == true);
  CHECK(r.at("pretrain").at("source") == fs::absolute(kWeights).string());
  CHECK(r.at("pretrain").at("arch") == "mobilenetv2");
  const std::string imported = r.at("pretrain").at("checkpoint").get<std::string>();
  CHECK(imported == fs::absolute(out + "/pretrain/imported.safetensors").string());
  CHECK_FALSE(fs::exists(out + "/pretrain/metrics.jsonl"));
  CHECK_FALSE(fs::exists(out + "/pretrain/last.safetensors"));
  // The weights are PyTorch's, and PfQ (exact border) keeps PyTorch's function.
  check_same_tensors(imported);
  CHECK(relative_error_to_torch(imported) < 1e-4);
  CHECK(relative_error_to_torch(r.at("pfq").at("checkpoint").get<std::string>()) < 1e-4);
  CHECK(r.at("pfq").at("top1_after").get<double>() == r.at("pretrain").at("top1").get<double>());
  // Both fine-tunes start from the imported model (one after PfQ); the integer model is checked.
  CHECK(read_json(out + "/finetune-nopfq/finetune_config.json").at("checkpoint") == imported);
  CHECK(read_json(out + "/finetune/finetune_config.json").at("checkpoint") == r.at("pfq").at("checkpoint"));
  CHECK(r.at("finetune").at("wbits") == 4);
  CHECK(r.at("intcheck").at("images").get<int64_t>() == 10);
  CHECK(r.at("intcheck").at("agreement").get<double>() >= 90.0);
  const std::string report{std::istreambuf_iterator<char>(std::ifstream(out + "/report.md").rdbuf()), {}};
  CHECK(report.find("mobilenetv2 imported from") != std::string::npos);

  const std::string rep = tmp / "reproduce";
  run_cli(app::add_reproduce_command, "reproduce" + common +
                                          " --finetune-epochs 1 --only-bits 4/4 --quantizers minmax --pruning none,pfq --seeds 0 --out " + rep);
  const nlohmann::json pre = read_json(rep + "/pretrain/done.json");
  CHECK(pre.at("imported") == true);
  CHECK_FALSE(fs::exists(rep + "/pretrain/metrics.jsonl"));
  check_same_tensors(pre.at("checkpoint").get<std::string>());
  CHECK(relative_error_to_torch(read_json(rep + "/pfq/done.json").at("checkpoint").get<std::string>()) < 1e-4);
  CHECK(fs::exists(rep + "/report.md"));
}

TEST_CASE("e2e pretrained: a recipe's missing pretrained weights are one clear error before anything runs") {
  data::testing::TempDir tmp;
  const std::string missing = tmp / "mobilenet_v2.safetensors";
  CHECK_THROWS_WITH_AS(run_cli(app::add_workflow_command, "workflow --out " + (tmp / "w") +
                                                              " --config " + std::string(PFQ_SOURCE_ROOT) +
                                                              "/configs/imagenet-mobilenetv2-pretrained.json --data-dir " + tmp.path()),
                       doctest::Contains("mobilenet_v2.safetensors (--pretrained, or \"pretrained\" in the --config file) do not exist"),
                       Error);
  CHECK_FALSE(fs::exists(tmp / "w"));
}
