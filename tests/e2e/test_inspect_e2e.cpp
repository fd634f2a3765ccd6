// test_inspect_e2e.cpp — the PfQ analysis behind `pfq inspect` on a small MobileNetV1 with
// channels forced constant at chosen running variances: quartiles and decade histogram,
// constant-channel counts under var-zero / var-below-eps / var-below=<t>, folded max |w'| and
// the b-bit step against a direct computation, the "after PfQ" columns against an analysis of
// the pruned model; then the command itself: JSON fields, the SVG charts, plain (PyTorch) weights
// with --arch, and the error for plain weights without it; and the doctor on torchvision's
// mobilenet_v2 weights with constant and dead channels put in.
#include <doctest/doctest.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "apps/checkpoint.h"
#include "apps/commands.h"
#include "core/io/safetensors.h"
#include "prune/analysis.h"
#include "prune/pfq.h"
#include "tests/prune/prune_test_util.h"

using namespace pfq;

namespace {
std::string temp_dir(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() / ("pfq-inspect-e2e-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d.string();
}

models::ModelConfig mnv1() {
  models::ModelConfig c{.in_channels = 1, .input_size = 16, .width = 0.25, .arch = "mobilenetv1"};
  return c;
}

// Stem (8 channels): running_var 0.1 .. 0.8 except channel 1 (exactly constant, var 0) and a dead
// channel 4 (rule 3.2: its depthwise channel has var 1e-39); features.3.pw: channel 0 at
// var 1e-6 (< eps only), channel 1 at 5e-4 (< t = 1e-3 only), channel 2 exactly constant at 1e-30.
void plant(Module& m) {
  test::randomize_bn(m, 11);
  BatchNorm2d& stem = test::bn_at(m, "features.0.1");
  for (int64_t c = 0; c < 8; ++c) test::set_at(stem.running_var(), c, 0.1f * static_cast<float>(c + 1));
  test::make_constant(test::conv_at(m, "features.0.0"), stem, 1, 0.5f, 0.f);
  test::set_at(stem.bias(), 4, -100.f);  // dead after ReLU (its own variance 0.5 stays large)
  test::set_at(test::bn_at(m, "features.1.dw.1").running_mean(), 4, 0.f);
  test::set_at(test::bn_at(m, "features.1.dw.1").running_var(), 4, 1e-39f);
  BatchNorm2d& pw = test::bn_at(m, "features.3.pw.1");
  test::set_at(pw.running_var(), 0, 1e-6f);
  test::set_at(pw.running_var(), 1, 5e-4f);
  test::make_constant(test::conv_at(m, "features.3.pw.0"), pw, 2, 0.2f, 1e-30f);
}

// max over the layer of |gamma_c w / sqrt(var_c + eps)|, computed directly.
double folded_max(Module& m, const std::string& conv, const std::string& bn) {
  Conv2d& c = test::conv_at(m, conv);
  BatchNorm2d& b = test::bn_at(m, bn);
  const int64_t per = c.weight().numel() / c.out_channels;
  double mx = 0;
  for (int64_t i = 0; i < c.weight().numel(); ++i) {
    const int64_t ch = i / per;
    const double s = test::get_at(b.weight(), ch) / std::sqrt(static_cast<double>(test::get_at(b.running_var(), ch)) + b.eps);
    mx = std::max(mx, std::abs(s * test::get_at(c.weight(), i)));
  }
  return mx;
}

// Runs `pfq inspect args...` and returns what it printed on std::cout.
std::string run_inspect(const std::vector<std::string>& args) {
  CLI::App app{"pfq"};
  app.require_subcommand(1);
  app::add_inspect_command(app);
  std::vector<const char*> argv{"pfq", "inspect"};
  for (const auto& a : args) argv.push_back(a.c_str());
  std::ostringstream out;
  std::streambuf* old = std::cout.rdbuf(out.rdbuf());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (...) {
    std::cout.rdbuf(old);
    throw;
  }
  std::cout.rdbuf(old);
  return out.str();
}

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  REQUIRE(f.good());
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}
}  // namespace

TEST_CASE("inspect analysis: variance quartiles, criteria counts, folded range and step, after PfQ") {
  ModulePtr m = models::build_model(mnv1());
  plant(*m);
  prune::AnalysisOptions ao;
  ao.bits = 3;
  ao.var_threshold = 1e-3;
  prune::ModelAnalysis a = prune::analyze(*m, ao);
  REQUIRE(a.layers.size() == 27);  // stem + 13 x (dw, pw)
  const prune::LayerAnalysis& stem = a.layers[0];
  CHECK(stem.name == "features.0.0");
  CHECK(stem.channels == 8);
  // running_var {0.1, 0, 0.3, ..., 0.8}: sorted {0, .1, .3, .4, .5, .6, .7, .8}
  CHECK(stem.var_min == 0);
  CHECK(stem.var_q1 == doctest::Approx(0.1 + 0.75 * 0.2));  // position 1.75
  CHECK(stem.var_median == doctest::Approx(0.45));
  CHECK(stem.var_q3 == doctest::Approx(0.6 + 0.25 * 0.1));  // position 5.25
  CHECK(stem.var_max == doctest::Approx(0.8));
  CHECK(stem.var_nonpositive == 1);
  CHECK(stem.var_decades == std::vector<std::pair<int, int64_t>>{{-1, 7}});  // 0.1 <= v < 1 (0.1f rounds up)
  CHECK(stem.constant_zero == std::vector<int64_t>{1});
  CHECK(stem.constant_eps == std::vector<int64_t>{1});
  CHECK(stem.constant_t == std::vector<int64_t>{1});
  CHECK(stem.dead_via_depthwise == std::vector<int64_t>{4});
  const prune::LayerAnalysis* pw = a.layer("features.3.pw.0");
  REQUIRE(pw != nullptr);
  CHECK(pw->kind == "conv");
  CHECK(pw->below_flt_min == 0);  // 1e-30 is a normal float
  CHECK(pw->constant_eps == std::vector<int64_t>{0, 2});
  CHECK(pw->constant_t == std::vector<int64_t>{0, 1, 2});
  CHECK(a.layer("features.1.dw.0")->kind == "depthwise");
  CHECK(a.layer("features.1.dw.0")->below_flt_min == 1);  // 1e-39 is subnormal
  // folded range and the 3-bit step max|w'| / 3
  for (const char* l : {"features.0", "features.3.pw", "features.1.dw"}) {
    const std::string conv = std::string(l) + ".0", bn = std::string(l) + ".1";
    const double mx = folded_max(*m, conv, bn);
    CHECK(a.layer(conv)->max_w == doctest::Approx(mx).epsilon(1e-6));
    CHECK(a.layer(conv)->step == doctest::Approx(mx / 3).epsilon(1e-6));
    CHECK(a.layer(conv)->step4 == doctest::Approx(mx / 7).epsilon(1e-6));
  }
  // the depthwise channel at var 1e-39 dominates its layer's range: 1/sqrt(eps) blow-up
  CHECK(a.layer("features.1.dw.0")->max_w > 20 * a.layer("features.1.dw.0")->max_w_without_constant);

  // After PfQ (in memory, as `pfq inspect` does): the attached columns equal an analysis of the pruned model.
  ModulePtr pruned = test::twin([] { return models::build_model(mnv1()); }, *m);
  const prune::PruneReport rep = prune::pfq_prune(*pruned, mnv1());
  a.attach(rep);
  // stem 1 + features.1.dw 1 (cascade), stem 4 + dw 4 (rule 3.2), features.3.pw 0 and 2 + features.4.dw 0 and 2
  CHECK(a.removed_total == 8);
  CHECK(a.pruned_by == "pfq (var-below-eps, border exact)");
  const prune::ModelAnalysis b = prune::analyze(*pruned, ao);
  for (size_t i = 0; i < a.layers.size(); ++i) {
    CHECK(a.layers[i].channels_after == b.layers[i].channels);
    CHECK(a.layers[i].max_w_after == doctest::Approx(b.layers[i].max_w));
    CHECK(a.layers[i].step_after == doctest::Approx(b.layers[i].step));
  }
  CHECK(a.layer("features.0.0")->channels_after == 6);
  // removal takes the blown-up depthwise channel out of the range (the cascade channel may go too)
  CHECK(a.layer("features.1.dw.0")->max_w_after <= a.layer("features.1.dw.0")->max_w_without_constant * (1 + 1e-9));
  CHECK(a.layer("features.1.dw.0")->max_w_after * 20 < a.layer("features.1.dw.0")->max_w);
  const std::string table = a.str();
  CHECK(table.find("features.1.dw.0") != std::string::npos);
  CHECK(table.find("step@3b") != std::string::npos);
  CHECK(table.find("<0.001") != std::string::npos);
  CHECK(table.find("removes 8 channels") != std::string::npos);
  prune::PruneReport other = rep;
  other.layers.pop_back();
  CHECK_THROWS_WITH_AS(a.attach(other), doctest::Contains("not a pass over the analysed model"), Error);
  CHECK_THROWS_WITH_AS(prune::analyze(*m, {1, -1}), doctest::Contains("bits must be in 2..16"), Error);
}

TEST_CASE("e2e inspect: `pfq inspect --json` holds the analysis; --plot / --plot-dir write the SVGs") {
  const std::string dir = temp_dir("cli");
  ModulePtr m = models::build_model(mnv1());
  plant(*m);
  const std::string ck = dir + "/model.safetensors";
  app::save_checkpoint(ck, *m, mnv1(), app::TrainState{}, nullptr);
  const std::string out = run_inspect({ck, "--json", "--var-threshold", "1e-3", "--plot", dir + "/w.svg", "--plot-dir", dir + "/plots"});
  const nlohmann::json j = nlohmann::json::parse(out);
  CHECK(j["model"]["arch"] == "mobilenetv1");
  CHECK(j["summary"]["total_params"].get<int64_t>() == m->num_parameters());
  const nlohmann::json& an = j["analysis"];
  CHECK(an["bits"] == 4);
  CHECK(an["var_threshold"] == 1e-3);
  REQUIRE(an["layers"].size() == 27);
  const nlohmann::json& stem = an["layers"][0];
  for (const char* k : {"name", "kind", "channels", "eps", "var_min", "var_q1", "var_median", "var_q3", "var_max", "var_histogram",
                        "below_eps", "below_flt_min", "below_t", "constant_var_zero", "constant_var_below_eps",
                        "constant_var_below_t", "dead_via_depthwise", "max_w", "step", "channels_after", "max_w_after",
                        "step_after"})
    CHECK_MESSAGE(stem.contains(k), k);
  CHECK(stem["below_flt_min"] == 1);
  CHECK(stem["channels_after"] == 6);
  CHECK(stem["step"].get<double>() == doctest::Approx(stem["max_w"].get<double>() / 7));
  CHECK(an["layers"][6]["name"] == "features.3.pw.0");
  CHECK(an["layers"][6]["below_t"] == 3);
  CHECK(j["pfq"]["removed_total"] == 8);
  CHECK(j["pfq"]["params_after"].get<int64_t>() < j["pfq"]["params_before"].get<int64_t>());
  CHECK(j["plots"].size() == 3);
  for (const std::string& p : std::vector<std::string>{dir + "/w.svg", dir + "/plots/weight_range.svg", dir + "/plots/bn_variance.svg"}) {
    const std::string svg = read_file(p);
    CHECK(svg.find("<svg") != std::string::npos);
    CHECK(svg.find("features.1.dw.0 [dw]") != std::string::npos);
    CHECK(svg.find("depthwise layer") != std::string::npos);
  }
  CHECK(read_file(dir + "/w.svg").find("after PfQ") != std::string::npos);
  // --criterion var-zero finds only the exactly-zero and subnormal variances
  const nlohmann::json z = nlohmann::json::parse(run_inspect({ck, "--json", "--criterion", "var-zero"}));
  CHECK(z["pfq"]["criterion"] == "var-zero");
  CHECK(z["pfq"]["removed_total"].get<int64_t>() < 8);
  CHECK(z["plots"].empty());
  std::filesystem::remove_all(dir);
}

TEST_CASE("e2e inspect: plain PyTorch weights load with --arch or as recognised; a wrong architecture lists what does not fit") {
  const std::string f = std::string(PFQ_SOURCE_ROOT) + "/tests/fixtures/torch_mobilenetv1_w0.0625.safetensors";
  const nlohmann::json j = nlohmann::json::parse(run_inspect({f, "--json", "--arch", "mobilenetv1", "--width", "0.0625"}));
  CHECK(j["model"]["arch"] == "mobilenetv1");
  CHECK(j["analysis"]["layers"].size() == 27);
  CHECK(j["analysis"]["layers"][0]["channels"] == 8);
  // without flags: recognised from the names and shapes (1-channel input, width 64 / 1024, 10 classes)
  const nlohmann::json r = nlohmann::json::parse(run_inspect({f, "--json", "--variant", "cifar", "--input-size", "28"}));
  CHECK(r["model"]["arch"] == "mobilenetv1");
  CHECK(r["model"]["width"] == 0.0625);
  CHECK(r["model"]["in_channels"] == 1);
  CHECK(r["model"]["num_classes"] == 10);
  CHECK(r["analysis"] == j["analysis"]);
  CHECK_THROWS_WITH_AS(run_inspect({f, "--arch", "resnet20"}), doctest::Contains("missing keys"), Error);
  CHECK_THROWS_WITH_AS(run_inspect({f, "--arch", "resnet20"}), doctest::Contains("unexpected keys"), Error);
  CHECK_THROWS_WITH_AS(run_inspect({f, "--width", "0.125"}), doctest::Contains("size/dtype mismatch"), Error);  // flags override
}

TEST_CASE("e2e inspect: on plain PyTorch weights it shows constant and dead channels, the folded range and 4-bit step before/after PfQ") {
  // torchvision's mobilenet_v2 fixture (plain state dict, no pfq metadata) with one constant
  // channel (BN variance 0) after the first expansion conv and one constant depthwise channel,
  // whose input channel is then dead (rule 3.2): the paper's case of a range blown up by BN.
  const std::string src = std::string(PFQ_SOURCE_ROOT) + "/tests/fixtures/pretrained_mobilenet_v2.safetensors";
  io::SafetensorsFile f = io::load_safetensors(src);
  for (auto& [name, t] : f.tensors) {
    if (name == "features.2.conv.0.1.running_var") test::set_at(t, 5, 0.0f);
    if (name == "features.2.conv.0.1.weight") test::set_at(t, 5, 1.0f);
    if (name == "features.2.conv.1.1.running_var") test::set_at(t, 7, 0.0f);
  }
  const std::string dir = (std::filesystem::temp_directory_path() / ("pfq-inspect-plain-" + std::to_string(getpid()))).string();
  std::filesystem::create_directories(dir);
  const std::string plain = dir + "/mobilenet_v2.safetensors";
  io::save_safetensors(plain, f.tensors, {{"format", "pt"}});
  const nlohmann::json j = nlohmann::json::parse(run_inspect({plain, "--json"}));
  CHECK(j["model"]["arch"] == "mobilenetv2");
  const auto layer = [&](const std::string& name) {
    for (const auto& l : j["analysis"]["layers"])
      if (l["name"] == name) return l;
    FAIL("no layer ", name, " in inspect's analysis");
    return nlohmann::json{};
  };
  const nlohmann::json expand = layer("features.2.conv.0.0"), dw = layer("features.2.conv.1.0");
  CHECK(expand["constant_var_zero"] == nlohmann::json::array({5}));
  CHECK(expand["dead_via_depthwise"] == nlohmann::json::array({7}));
  CHECK(dw["constant_var_zero"] == nlohmann::json::array({7}));
  CHECK(expand["channels_after"] == 46);
  // The constant channel's gamma / sqrt(eps) sets the range; PfQ brings it back to the others'.
  CHECK(expand["max_w"].get<double>() > 30 * expand["max_w_after"].get<double>());
  CHECK(expand["step4"].get<double>() == doctest::Approx(expand["max_w"].get<double>() / 7));
  CHECK(expand["step_after"].get<double>() == doctest::Approx(expand["max_w_after"].get<double>() / 7));
  CHECK(expand["max_w_after"].get<double>() == doctest::Approx(expand["max_w_without_constant"].get<double>()));
  CHECK(j["pfq"]["removed_total"] == 4);
  std::filesystem::remove_all(dir);
}
