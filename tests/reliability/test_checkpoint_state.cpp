// test_checkpoint_state.cpp — checkpoints carry every random state a model owns: Dropout's
// generator (MobileNetV2's classifier) saved by module path, restored on resume, checkpoints
// written before it was recorded still load, and a state for a module the model lacks is refused.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "apps/checkpoint.h"
#include "core/io/safetensors.h"
#include "core/random.h"
#include "layers/basic.h"
#include "layers/models/registry.h"
#include "tests/data/data_test_util.h"

using namespace pfq;
using pfq::data::testing::TempDir;

namespace {

models::ModelConfig mobilenetv2_cfg() {
  models::ModelConfig cfg{.in_channels = 1, .input_size = 28, .num_classes = 10, .width = 0.25, .seed = 5, .arch = "mobilenetv2"};
  return cfg;
}

// The masks the model's dropout draws next (training mode, a fixed input).
std::vector<float> next_masks(Module& m) {
  auto drop = m.child_as<Sequential>("classifier")->child("0");
  drop->train(true);
  return drop->forward(Tensor::ones({4, 16})).to_vector<float>();
}

}  // namespace

TEST_CASE("checkpoint: Dropout's generator is saved by module path and restored, continuing the same masks") {
  TempDir dir;
  const models::ModelConfig cfg = mobilenetv2_cfg();
  ModulePtr model = models::build_model(cfg);
  next_masks(*model);  // advance the generator past its seeded start, as training does
  app::TrainState st;
  app::save_checkpoint(dir / "c.safetensors", *model, cfg, st, nullptr);
  const std::vector<float> want = next_masks(*model);

  app::Checkpoint ck = app::load_checkpoint(dir / "c.safetensors");
  REQUIRE(ck.train.module_generators.size() == 1);
  CHECK(ck.train.module_generators.count("classifier.0") == 1);
  ModulePtr resumed = app::model_from_checkpoint(ck);
  CHECK(next_masks(*resumed) != want);  // a rebuilt model starts its dropout stream over
  resumed = app::model_from_checkpoint(ck);
  app::restore_module_generators(*resumed, ck);
  CHECK(next_masks(*resumed) == want);
}

TEST_CASE("checkpoint: one written before module generators were recorded still loads and resumes") {
  TempDir dir;
  const models::ModelConfig cfg = mobilenetv2_cfg();
  ModulePtr model = models::build_model(cfg);
  app::save_checkpoint(dir / "c.safetensors", *model, cfg, app::TrainState{}, nullptr);
  io::SafetensorsFile f = io::load_safetensors(dir / "c.safetensors");
  auto train = nlohmann::json::parse(f.metadata.at("train_state"));
  REQUIRE(train.contains("module_generators"));
  train.erase("module_generators");
  f.metadata["train_state"] = train.dump();
  io::save_safetensors(dir / "old.safetensors", f.tensors, f.metadata);

  app::Checkpoint ck = app::load_checkpoint(dir / "old.safetensors");
  CHECK(ck.train.module_generators.empty());
  ModulePtr m = app::model_from_checkpoint(ck);
  const auto before = m->generator_states();
  CHECK_NOTHROW(app::restore_module_generators(*m, ck));
  CHECK(m->generator_states() == before);
}

TEST_CASE("checkpoint: a generator state for a module that draws no random numbers is refused, naming it") {
  TempDir dir;
  const models::ModelConfig cfg = mobilenetv2_cfg();
  ModulePtr model = models::build_model(cfg);
  app::save_checkpoint(dir / "c.safetensors", *model, cfg, app::TrainState{}, nullptr);
  app::Checkpoint ck = app::load_checkpoint(dir / "c.safetensors");
  ModulePtr m = app::model_from_checkpoint(ck);
  ck.train.module_generators["features.0"] = ck.train.module_generators.at("classifier.0");
  CHECK_THROWS_WITH_AS(app::restore_module_generators(*m, ck),
                       doctest::Contains("random state saved for module 'features.0', which draws no random numbers"), Error);
  ck.train.module_generators.erase("features.0");
  ck.train.module_generators["head.9"] = "1 2 3";
  CHECK_THROWS_WITH_AS(app::restore_module_generators(*m, ck), doctest::Contains("'head.9', which the model does not have"), Error);
}
