// test_collapse.cpp — the collapsed fine-tune diagnosis (apps/collapse.h): chance accuracy is
// recognised, and the layer named is the one whose weight step is widest relative to its weights
// (here a ResNet-20 layer given one near-constant BN channel, whose folded filter is ~316x wider).
#include <doctest/doctest.h>

#include "apps/collapse.h"
#include "layers/models/registry.h"
#include "layers/batchnorm.h"
#include "quant/qat.h"

using namespace pfq;

TEST_CASE("collapse: chance accuracy is at most a fifth above 100 / classes") {
  CHECK(app::at_chance(10.0, 10));
  CHECK(app::at_chance(11.9, 10));
  CHECK_FALSE(app::at_chance(12.5, 10));
  CHECK_FALSE(app::at_chance(69.7, 10));
  CHECK(app::at_chance(1.0, 100));
  CHECK_FALSE(app::at_chance(2.0, 100));
}

TEST_CASE("collapse: the layer with one near-constant BN channel has the widest step relative to its weights") {
  models::ModelConfig cfg{.in_channels = 1, .input_size = 16, .num_classes = 10};
  auto model = models::build_model("resnet20", cfg);
  // layer2.0's first BN: channel 0's running variance 0, so its folded filter is gamma / sqrt(eps)
  // (316x) wider than the others and sets the layer's per-tensor step
  auto bn = std::dynamic_pointer_cast<BatchNorm2d>(model->child("layer2")->child("0")->child("bn1"));
  REQUIRE(bn);
  for (const auto& [name, t] : bn->own_buffers())
    if (name == "running_var") {
      Tensor v = t;  // the same storage
      v.data<float>()[0] = 0;
    }
  quant::QatConfig qc;
  qc.wbits = 3;
  qc.abits = 4;
  quant::prepare_qat(*model, qc);
  const app::WidestStep w = app::widest_quant_step(*model);
  CHECK(w.layer == "layer2.0.conv1");
  CHECK(w.bits == 3);
  CHECK(w.step / w.mean_abs > 20);
  CHECK(w.zero_fraction > 0.9);  // the other filters round to 0 at 3 bits
  const std::string note = app::collapse_note(10.0, 10, w, "runs/pretrain/best.safetensors");
  CHECK(note.find("collapsed: top-1 10.00% is chance for 10 classes") == 0);
  CHECK(note.find("'layer2.0.conv1' (3 bits") != std::string::npos);
  CHECK(note.find("pfq inspect runs/pretrain/best.safetensors") != std::string::npos);
}
