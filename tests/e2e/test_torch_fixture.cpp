// test_torch_fixture.cpp — state dicts exported from PyTorch (tests/fixtures/torch_*, written by
// tools/export_torch_fixture.py with torch 1.13) load into pfq's builders of the same
// architecture, and pfq's eval-mode logits match PyTorch's on the stored input; plain weight
// files are refused as checkpoints, and a wrong architecture fails naming the file and keys.
#include <doctest/doctest.h>

#include <utility>

#include "apps/checkpoint.h"
#include "core/io/safetensors.h"
#include "layers/models/registry.h"
#include "tests/e2e/torch_logits.h"

using namespace pfq;

namespace {
const std::string kFixtures = std::string(PFQ_SOURCE_ROOT) + "/tests/fixtures/";

models::ModelConfig fmnist_cfg(const std::string& arch, double width) {
  return {.in_channels = 1, .input_size = 28, .num_classes = 10, .width = width, .arch = arch};
}

// max |pfq - torch| over the stored input's logits, and the largest |torch logit|.
std::pair<double, double> compare(const std::string& name, const models::ModelConfig& cfg) {
  app::Checkpoint ck = app::load_weights_as_checkpoint(kFixtures + "torch_" + name + ".safetensors", cfg);
  ModulePtr m = app::model_from_checkpoint(ck);
  io::SafetensorsFile io = io::load_safetensors(kFixtures + "torch_" + name + ".io.safetensors");
  return test::logits_vs_torch(*m, io.at("input"), io.at("logits"));
}
}  // namespace

TEST_CASE("torch fixture: a PyTorch-exported ResNet-20 state dict gives PyTorch's logits in pfq") {
  auto [diff, scale] = compare("resnet20_w0.25", fmnist_cfg("resnet20", 0.25));
  MESSAGE("resnet20 w0.25: max |pfq - torch| = ", diff, " (logits up to ", scale, ")");
  CHECK(scale > 0.5);  // the fixture is not degenerate
  CHECK(diff < 1e-4);
}

TEST_CASE("torch fixture: a PyTorch-exported MobileNetV1 (depthwise) state dict gives PyTorch's logits in pfq") {
  auto [diff, scale] = compare("mobilenetv1_w0.0625", fmnist_cfg("mobilenetv1", 0.0625));
  MESSAGE("mobilenetv1 w0.0625: max |pfq - torch| = ", diff, " (logits up to ", scale, ")");
  CHECK(scale > 0.5);
  CHECK(diff < 1e-4);
}

TEST_CASE("torch fixture: plain weights are not a pfq checkpoint; a wrong architecture is a clear error") {
  const std::string resnet = kFixtures + "torch_resnet20_w0.25.safetensors";
  CHECK_THROWS_WITH_AS(app::load_checkpoint(resnet), doctest::Contains("expected pfq-checkpoint-1"), Error);
  // same names, other widths: shape mismatches, naming the file and a tensor
  app::Checkpoint wide = app::load_weights_as_checkpoint(resnet, fmnist_cfg("resnet20", 0.5));
  CHECK_THROWS_WITH_AS(app::model_from_checkpoint(wide), doctest::Contains("torch_resnet20_w0.25.safetensors"), Error);
  CHECK_THROWS_WITH_AS(app::model_from_checkpoint(wide), doctest::Contains("conv1.weight: checkpoint [4, 1, 3, 3] vs model [8, 1, 3, 3]"),
                       Error);
  // other architecture: names do not match
  app::Checkpoint other = app::load_weights_as_checkpoint(resnet, fmnist_cfg("mobilenetv1", 0.0625));
  CHECK_THROWS_WITH_AS(app::model_from_checkpoint(other), doctest::Contains("missing keys"), Error);
  CHECK_THROWS_WITH_AS(app::model_from_checkpoint(other), doctest::Contains("unexpected keys"), Error);
  CHECK_THROWS_WITH_AS(app::load_weights_as_checkpoint(resnet, models::ModelConfig{}), doctest::Contains("name the architecture"),
                       Error);
}
