// test_prune_e2e.cpp — PfQ through checkpoints and the command line: a pruned model with
// border-correction maps saves, reloads (architecture rebuilt from the metadata) and computes
// identical outputs; `pfq prune` writes the checkpoint and JSON report with unchanged accuracy
// (Fashion-MNIST when installed, else --no-eval), and a baseline matches PfQ's size.
#include <doctest/doctest.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "apps/checkpoint.h"
#include "apps/commands.h"
#include "data/factory.h"
#include "prune/pfq.h"
#include "tests/prune/prune_test_util.h"

using namespace pfq;

namespace {
std::string temp_dir(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() / ("pfq-prune-e2e-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d.string();
}

models::ModelConfig mnv1(int64_t in_channels, int64_t size) {
  models::ModelConfig c{.in_channels = in_channels, .input_size = size, .width = 0.25, .arch = "mobilenetv1"};
  return c;
}

// Constant stem channel (cascade + border map), a dead stem channel (rule 3.2), a constant pw.
void plant_constants(Module& m) {
  test::randomize_bn(m, 11);
  test::make_constant(test::conv_at(m, "features.0.0"), test::bn_at(m, "features.0.1"), 1, 0.5f);
  test::make_dead(test::bn_at(m, "features.0.1"), 4);
  test::set_at(test::bn_at(m, "features.1.dw.1").running_mean(), 4, 0.f);
  test::set_at(test::bn_at(m, "features.1.dw.1").running_var(), 4, 1e-39f);
  test::make_constant(test::conv_at(m, "features.5.pw.0"), test::bn_at(m, "features.5.pw.1"), 3, 0.2f);
}

void run_cli(const std::vector<std::string>& args) {
  CLI::App app{"pfq"};
  app.require_subcommand(1);
  app::add_prune_command(app);
  std::vector<const char*> argv{"pfq"};
  for (const auto& a : args) argv.push_back(a.c_str());
  app.parse(static_cast<int>(argv.size()), argv.data());
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream f(path);
  REQUIRE(f.good());
  return nlohmann::json::parse(f);
}
}  // namespace

TEST_CASE("e2e prune: a pruned model with correction maps round-trips through a checkpoint") {
  const std::string dir = temp_dir("roundtrip");
  const models::ModelConfig cfg = mnv1(3, 16);
  ModulePtr m = models::build_model(cfg);
  plant_constants(*m);
  ModulePtr orig = test::twin([&] { return models::build_model(cfg); }, *m);
  prune::PruneReport r = prune::pfq_prune(*m, cfg);
  CHECK(r.removed_total == 6);  // stem 1 + dw 1 (cascade), stem 4 + dw 4 (rule 3.2), features.5.pw 3 + features.6.dw 3
  CHECK(r.correction_maps >= 1);
  const Tensor x = test::test_input({2, 3, 16, 16}, 5);
  CHECK(prune::max_output_change(*orig, *m, x) < 1e-5);
  app::TrainState st;
  st.epoch = 7;
  app::save_checkpoint(dir + "/p.safetensors", *m, r.config, st, nullptr);
  app::Checkpoint ck = app::load_checkpoint(dir + "/p.safetensors");
  CHECK(ck.model.channels.at("features.0.0") == 6);
  CHECK(ck.model.output_corrections == r.config.output_corrections);
  CHECK(ck.train.epoch == 7);
  ModulePtr back = app::model_from_checkpoint(ck);
  CHECK(prune::max_output_change(*back, *m, x) == 0);
  CHECK(back->num_parameters() < orig->num_parameters());
  std::filesystem::remove_all(dir);
}

TEST_CASE("e2e prune: `pfq prune` writes the pruned checkpoint and report; accuracy unchanged; baselines match the size") {
  const std::string dir = temp_dir("cli");
  const bool have_data =
      std::filesystem::exists(data::default_data_dir("fashion-mnist") + "/t10k-images-idx3-ubyte.gz");
  if (!have_data) MESSAGE("Fashion-MNIST not installed: running with --no-eval");
  const models::ModelConfig cfg = mnv1(1, 28);
  ModulePtr m = models::build_model(cfg);
  plant_constants(*m);
  const std::string in = dir + "/trained.safetensors", out = dir + "/pruned.safetensors";
  app::save_checkpoint(in, *m, cfg, app::TrainState{}, nullptr);
  std::vector<std::string> eval = have_data ? std::vector<std::string>{"--limit-test", "64", "--workers", "1"}
                                            : std::vector<std::string>{"--no-eval"};
  std::vector<std::string> args{"prune", in, "--out", out, "--json"};
  args.insert(args.end(), eval.begin(), eval.end());
  run_cli(args);
  REQUIRE(std::filesystem::exists(out));
  const nlohmann::json j = read_json(dir + "/pruned.prune.json");
  CHECK(j["method"] == "pfq");
  CHECK(j["removed_total"] == 6);
  CHECK(j["params_after"].get<int64_t>() < j["params_before"].get<int64_t>());
  CHECK(j["macs_after"].get<int64_t>() < j["macs_before"].get<int64_t>());
  CHECK(j["max_output_change"].get<double>() < 1e-4);
  if (have_data) {
    CHECK(j["accuracy"]["images"] == 64);
    CHECK(j["accuracy"]["top1_after"].get<double>() == j["accuracy"]["top1_before"].get<double>());
  }
  app::Checkpoint ck = app::load_checkpoint(out);
  CHECK(ck.train.extra["prune"]["method"] == "pfq");
  CHECK(ck.optim_state.empty());
  CHECK(app::model_from_checkpoint(ck)->num_parameters() == j["params_after"].get<int64_t>());

  const std::string out_l1 = dir + "/l1.safetensors";
  std::vector<std::string> l1{"prune", in, "--out", out_l1, "--method", "l1", "--no-eval", "--json"};
  run_cli(l1);
  const nlohmann::json jl = read_json(dir + "/l1.prune.json");
  CHECK(jl["method"] == "l1");
  CHECK(jl["target"] == 6);
  CHECK(jl["removed_total"] == 6);
  CHECK(jl["max_output_change"].get<double>() > 0);  // baselines change the function
  CHECK_THROWS_WITH_AS(run_cli({"prune", in, "--out", out_l1, "--criterion", "var-below=abc", "--no-eval"}),
                       doctest::Contains("not a threshold"), Error);
  std::filesystem::remove_all(dir);
}
