// test_pretrained_e2e.cpp — weights from the model zoos people import from (tests/fixtures/
// pretrained_*, written by tools/export_pretrained_fixtures.py with torch, torchvision and timm):
// torchvision's ResNet-18, ResNet-50 and MobileNetV2 and timm's mobilenetv1_100 definition,
// float16, ImageNet definitions at a 64x64 input. `pfq import` recognises each from its tensors
// alone, and the imported checkpoint's eval-mode logits equal PyTorch's to 1e-4 relative; the
// bad-input cases (missing, extra, misshapen, integer tensors, truncated file) fail listing what
// is wrong and write nothing.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "apps/plain_weights.h"
#include "apps/reproduce.h"
#include "apps/workflow.h"
#include "apps/weight_names.h"
#include "core/io/safetensors.h"
#include "layers/models/registry.h"
#include "tests/e2e/torch_logits.h"

using namespace pfq;

namespace {
const std::string kFixtures = std::string(PFQ_SOURCE_ROOT) + "/tests/fixtures/";

std::string tmp_path(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / "pfq-test-pretrained";
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

// max |pfq - torch| / max |torch| over the stored input's logits.
double relative_error(ModulePtr m, const std::string& name) {
  io::SafetensorsFile io = io::load_safetensors(kFixtures + "pretrained_io.safetensors");
  const std::pair<double, double> r = test::logits_vs_torch(*m, io.at("input"), io.at("logits." + name));
  const double diff = r.first, scale = r.second;
  MESSAGE(name, ": max |pfq - torch| = ", diff, ", logits up to ", scale);
  CHECK(scale > 0.3);  // not a degenerate fixture
  return diff / scale;
}

struct Zoo {
  const char* name;
  const char* arch;
  double width;
  const char* names;  // the name map used
};
const Zoo kZoo[] = {{"resnet18", "resnet18", 0.0625, "pfq"},
                    {"resnet50", "resnet50", 0.0625, "pfq"},
                    {"mobilenet_v2", "mobilenetv2", 0.1, "pfq"},
                    {"timm_mobilenetv1_100", "mobilenetv1", 0.125, "timm"}};
}  // namespace

TEST_CASE("e2e pretrained: torchvision and timm weights import as recognised and give PyTorch's logits") {
  for (const Zoo& z : kZoo) {
    const std::string zoo = z.name;
    CAPTURE(zoo);
    const std::string out = tmp_path(std::string(z.name) + ".pfq.safetensors");
    std::filesystem::remove(out);
    const app::Checkpoint imported = app::import_weights(kFixtures + "pretrained_" + z.name + ".safetensors", {}, out);
    CHECK(imported.train.extra["imported"]["names"] == z.names);
    // The written checkpoint records everything: later commands load it with no flags.
    const app::Checkpoint ck = app::load_checkpoint(out);
    CHECK(ck.model.arch == z.arch);
    CHECK(ck.model.width == z.width);
    CHECK(ck.model.variant == "imagenet");
    CHECK(ck.model.in_channels == 3);
    CHECK(ck.model.num_classes == 10);
    CHECK(ck.model.channels == models::conv_channels(*models::build_model(ck.model)));
    CHECK(relative_error(app::model_from_checkpoint(ck), z.name) < 1e-4);
    // The same weights through the loader every command uses, without writing anything.
    const app::Checkpoint direct = app::load_checkpoint_or_weights(kFixtures + "pretrained_" + z.name + ".safetensors", {}, 64);
    CHECK(direct.model.input_size == 64);
    CHECK(relative_error(app::model_from_checkpoint(direct), z.name) < 1e-4);
    std::filesystem::remove(out);
  }
}

TEST_CASE("e2e pretrained: the ImageNet definition is kept at a small input unless --variant says otherwise") {
  const std::string f = kFixtures + "pretrained_resnet18.safetensors";
  app::WeightsOptions w;
  w.input_size = 32;  // small input: before, the variant followed the size and the 7x7 stem did not fit
  CHECK(app::load_checkpoint_or_weights(f, w).model.variant == "imagenet");
  w.variant = "cifar";
  CHECK_THROWS_WITH_AS(app::load_checkpoint_or_weights(f, w), doctest::Contains("conv1.weight: checkpoint [4, 3, 7, 7] vs model [4, 3, 3, 3]"),
                       Error);
  // a pfq checkpoint records its architecture: the flags are refused
  const std::string out = tmp_path("r18.pfq.safetensors");
  app::import_weights(f, {}, out);
  app::WeightsOptions arch;
  arch.arch = "resnet18";
  CHECK_THROWS_WITH_AS(app::load_checkpoint_or_weights(out, arch), doctest::Contains("is a pfq checkpoint"), Error);
  CHECK_THROWS_WITH_AS(app::import_weights(out, {}, tmp_path("again.safetensors")), doctest::Contains("already a pfq checkpoint"), Error);
  CHECK(app::load_checkpoint_or_weights(out, {}).model == app::load_checkpoint(out).model);
  std::filesystem::remove(out);
}

TEST_CASE("e2e pretrained: bad weights fail listing every tensor that does not fit, and nothing is written") {
  io::SafetensorsFile f = io::load_safetensors(kFixtures + "pretrained_resnet18.safetensors");
  std::vector<std::pair<std::string, Tensor>> bad;
  for (auto& [n, t] : f.tensors) {
    if (n == "layer2.0.bn1.running_var") continue;                                     // missing
    if (n == "layer3.1.conv2.weight") bad.emplace_back(n, Tensor::zeros({16, 16, 1, 1}));  // wrong shape
    else if (n == "layer1.0.bn2.weight") bad.emplace_back(n, Tensor::zeros({4}, DType::Int64));  // integer
    else bad.emplace_back(n, t);
  }
  bad.emplace_back("head.extra.weight", Tensor::zeros({3}));  // unexpected
  const std::string in = tmp_path("bad.safetensors"), out = tmp_path("bad.pfq.safetensors");
  io::save_safetensors(in, bad);
  std::filesystem::remove(out);
  try {
    app::import_weights(in, {}, out);
    FAIL("import of bad weights succeeded");
  } catch (const Error& e) {
    const std::string msg = e.what();
    MESSAGE(msg);
    for (const char* want : {"bad.safetensors", "resnet18", "layer2.0.bn1.running_var", "head.extra.weight",
                             "layer3.1.conv2.weight: checkpoint [16, 16, 1, 1] vs model [16, 16, 3, 3]",
                             "layer1.0.bn2.weight: checkpoint dtype int64 vs model float32"})
      CHECK_MESSAGE(msg.find(want) != std::string::npos, want);
  }
  CHECK_FALSE(std::filesystem::exists(out));
  // truncated file
  {
    std::ifstream src(kFixtures + "pretrained_resnet18.safetensors", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(src)), std::istreambuf_iterator<char>());
    std::ofstream(in, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  }
  CHECK_THROWS_WITH_AS(app::import_weights(in, {}, out), doctest::Contains("bad.safetensors"), Error);
  CHECK_FALSE(std::filesystem::exists(out));
  // names of no known architecture
  io::save_safetensors(in, {{"encoder.weight", Tensor::zeros({2, 2})}});
  CHECK_THROWS_WITH_AS(app::import_weights(in, {}, out), doctest::Contains("give --arch"), Error);
  CHECK_FALSE(std::filesystem::exists(out));
  std::filesystem::remove(in);
}

TEST_CASE("pretrained: timm's MobileNetV1 names map onto pfq's blocks in order") {
  CHECK(app::timm_mobilenetv1_to_pfq("conv_stem.weight") == "features.0.0.weight");
  CHECK(app::timm_mobilenetv1_to_pfq("bn1.running_var") == "features.0.1.running_var");
  CHECK(app::timm_mobilenetv1_to_pfq("blocks.0.0.conv_dw.weight") == "features.1.dw.0.weight");
  CHECK(app::timm_mobilenetv1_to_pfq("blocks.1.1.bn1.bias") == "features.3.dw.1.bias");
  CHECK(app::timm_mobilenetv1_to_pfq("blocks.3.5.bn2.num_batches_tracked") == "features.11.pw.1.num_batches_tracked");
  CHECK(app::timm_mobilenetv1_to_pfq("blocks.4.1.conv_pw.weight") == "features.13.pw.0.weight");
  CHECK(app::timm_mobilenetv1_to_pfq("classifier.weight") == "fc.weight");
  CHECK_FALSE(app::timm_mobilenetv1_to_pfq("blocks.4.2.conv_pw.weight"));  // stage 4 has two blocks
  CHECK_FALSE(app::timm_mobilenetv1_to_pfq("conv_head.weight"));
}

TEST_CASE("pretrained: workflow and reproduce configs carry --pretrained and its plain-weights flags, only when given") {
  const nlohmann::json plain_w = app::WorkflowOptions{}, plain_r = app::ReproduceOptions{};
  CHECK_FALSE(plain_w.contains("pretrained"));  // a run that pretrains keeps its config.json as before
  CHECK_FALSE(plain_w.contains("pretrained_weights"));
  CHECK_FALSE(plain_r.contains("pretrained_weights"));
  app::WorkflowOptions w;
  w.pretrained = "mobilenet_v2.safetensors";
  w.pretrained_weights.variant = "imagenet";
  w.pretrained_weights.num_classes = 10;
  app::WorkflowOptions wb;
  from_json(nlohmann::json(w), wb);
  CHECK(wb.pretrained == w.pretrained);
  CHECK(wb.pretrained_weights.variant == "imagenet");
  CHECK(wb.pretrained_weights.num_classes == 10);
  app::ReproduceOptions r;
  r.pretrained = "x.safetensors";
  r.pretrained_weights.arch = "resnet18";
  app::ReproduceOptions rb;
  from_json(nlohmann::json(r), rb);
  CHECK(rb.pretrained_weights.arch == "resnet18");
  CHECK_THROWS_WITH_AS(from_json(nlohmann::json{{"pretrained_weightz", 1}}, wb), doctest::Contains("unknown key 'pretrained_weightz'"),
                       Error);
}
