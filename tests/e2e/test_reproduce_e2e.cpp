// test_reproduce_e2e.cpp — end to end: `pfq reproduce` on generated CIFAR-10 data from a
// pretrained MobileNetV1 (width 0.25) with two constant depthwise channels (so PfQ removes 4
// filters and the baselines as many): every run of the grid finishes over two seeds, report.md /
// results.csv / results.json hold one row per (bits, quantizer, pruning), a second call redoes
// nothing, a changed configuration is refused, and --jobs 2 through the pfq binary works.
// Also: the grid's validation errors.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "../data/data_test_util.h"
#include "../prune/prune_test_util.h"
#include "apps/checkpoint.h"
#include "apps/reproduce.h"
#include "onnx/export.h"
#include "layers/models/registry.h"
#include "tests/gradcheck.h"

using namespace pfq;
namespace fs = std::filesystem;

namespace {

// CIFAR-10 binary files: `n_train` records over the five training batches, `n_test` in the test batch.
void write_cifar10(const std::string& dir, int n_train, int n_test, uint64_t seed) {
  Generator g(seed);
  auto records = [&](int n) {
    std::vector<uint8_t> v;
    for (int i = 0; i < n; ++i) {
      v.push_back(static_cast<uint8_t>(g.next_u64() % 10));
      for (int k = 0; k < 3072; ++k) v.push_back(static_cast<uint8_t>(g.next_u64() & 0xff));
    }
    return v;
  };
  for (int b = 1; b <= 5; ++b) data::testing::write_file(dir + "/data_batch_" + std::to_string(b) + ".bin", records(n_train / 5));
  data::testing::write_file(dir + "/test_batch.bin", records(n_test));
}

// MobileNetV1 w0.25 for CIFAR with depthwise channels 0 and 1 of block 2 constant (zero filter,
// running variance ~ 0, beta <= 0: ReLU outputs 0), saved as a float checkpoint.
std::string write_pretrained(const std::string& path) {
  models::ModelConfig cfg{.in_channels = 3, .input_size = 32, .num_classes = 10, .width = 0.25, .seed = 3, .arch = "mobilenetv1"};
  ModulePtr m = models::build_model(cfg);
  test::randomize_bn(*m, 7);
  for (int64_t c : {0, 1}) test::make_constant(test::conv_at(*m, "features.2.dw.0"), test::bn_at(*m, "features.2.dw.1"), c, -0.1f);
  app::save_checkpoint(path, *m, cfg, app::TrainState{}, nullptr);
  return path;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

app::ReproduceOptions small_options(const std::string& out, const std::string& data, const std::string& ckpt) {
  app::ReproduceOptions o;
  o.out = out;
  o.dataset = "cifar10";
  o.data_dir = data;
  o.model = "mobilenetv1";
  o.width = 0.25;
  o.pretrained = ckpt;
  o.batch_size = 16;
  o.limit_train = 16;
  o.limit_test = 16;
  o.finetune_epochs = 1;
  o.calib_batches = 1;
  o.workers = 1;
  o.threads = 1;
  o.quick = true;  // as --quick: at most 1 fine-tuning epoch; the limits above stay
  app::apply_quick(o);
  return o;
}

}  // namespace

TEST_CASE("e2e: pfq reproduce runs the grid over seeds, reports it and resumes without redoing anything") {
  test::OmpThreadsScope restore;  // the options' --threads set the process's count
  data::testing::TempDir tmp;
  write_cifar10(tmp / "cifar", 40, 16, 1);
  const std::string ckpt = write_pretrained(tmp / "pretrained.safetensors");
  app::ReproduceOptions o = small_options(tmp / "repro", tmp / "cifar", ckpt);
  o.seeds = {0, 1};
  o.bits = {"4/4", "4/8"};
  o.quantizers = {"minmax", "per-channel", "lsq"};  // pact: in the --jobs test
  const std::vector<app::ReproduceRun> plan = app::plan_runs(o);
  // 2 bits x (3 quantizers x {none, pfq} + minmax x {l1, bn-gamma}) x 2 seeds
  REQUIRE(plan.size() == 2 * 8 * 2);

  nlohmann::json r = app::run_reproduce(o, "");
  CHECK(r.at("executed").get<int64_t>() == 32);
  const auto& rows = r.at("rows");
  REQUIRE(rows.size() == 16);
  std::map<std::string, nlohmann::json> by;
  for (const auto& row : rows) {
    CHECK(row.at("seeds").get<int>() == 2);
    CHECK(row.at("missing").empty());
    const double mean = row.at("top1_mean").get<double>();
    CHECK(mean >= row.at("top1_min").get<double>());
    CHECK(mean <= row.at("top1_max").get<double>());
    CHECK(row.at("top1_std").get<double>() >= 0);
    by[row.at("bits").get<std::string>() + " " + row.at("quantizer").get<std::string>() + " " + row.at("pruning").get<std::string>()] = row;
  }
  // PfQ removes the two constant depthwise channels and the pointwise filters feeding them;
  // the baselines remove as many; the pruned models are smaller at the same bits.
  CHECK(by.at("4/4 minmax none").at("filters_removed").get<double>() == 0);
  CHECK(by.at("4/4 minmax pfq").at("filters_removed").get<double>() == 4);
  CHECK(by.at("4/4 minmax l1").at("filters_removed").get<double>() == 4);
  CHECK(by.at("4/4 minmax bn-gamma").at("filters_removed").get<double>() == 4);
  CHECK(by.at("4/4 minmax pfq").at("params").get<double>() < by.at("4/4 minmax none").at("params").get<double>());
  CHECK(by.at("4/4 lsq pfq").at("size_kib").get<double>() < by.at("4/4 lsq none").at("size_kib").get<double>());
  CHECK(by.at("4/4 per-channel none").at("size_kib").get<double>() > by.at("4/4 minmax none").at("size_kib").get<double>());
  CHECK(!by.count("4/4 lsq l1"));  // baselines run with minmax only by default
  CHECK(r.at("pfq_vs_none").size() == 6);

  const std::string md = slurp(tmp / "repro/report.md");
  CHECK(md.find("| 4/4 | minmax | pfq |") != std::string::npos);
  CHECK(md.find("| 4/8 | minmax | bn-gamma |") != std::string::npos);
  CHECK(md.find("pfq/weight_range.svg") != std::string::npos);
  CHECK(md.find("curves/w4a4.svg") != std::string::npos);
  CHECK(fs::exists(tmp / "repro/pfq/weight_range.svg"));
  CHECK(fs::exists(tmp / "repro/curves/w4a8.svg"));
  CHECK(fs::exists(tmp / "repro/runs/w4a4-lsq-pfq-s1/curves.svg"));
  const std::string csv = slurp(tmp / "repro/results.csv");
  CHECK(std::count(csv.begin(), csv.end(), '\n') == 17);
  CHECK(csv.find("4/8,4,8,lsq,pfq,2,0,") != std::string::npos);
  nlohmann::json disk = nlohmann::json::parse(slurp(tmp / "repro/results.json"));
  CHECK(disk.at("rows") == rows);
  CHECK(disk.at("runs").size() == 32);

  // A second call finds every stage done: nothing runs, no done.json is rewritten.
  const auto stamp = fs::last_write_time(tmp / "repro/runs/w4a4-minmax-pfq-s0/done.json");
  nlohmann::json again = app::run_reproduce(o, "");
  CHECK(again.at("executed").get<int64_t>() == 0);
  CHECK(again.at("rows") == rows);
  CHECK(fs::last_write_time(tmp / "repro/runs/w4a4-minmax-pfq-s0/done.json") == stamp);

  // A different schedule in the same folder is refused; speed settings may change.
  app::ReproduceOptions other = o;
  other.finetune_lr = 0.5;
  CHECK_THROWS_WITH_AS(app::run_reproduce(other, ""), doctest::Contains("different schedule"), Error);
  CHECK_THROWS_WITH_AS(app::reproduce_report_only(other), doctest::Contains("different schedule"), Error);
  other = o;
  other.jobs = 3;
  other.threads = 1;
  CHECK(app::run_reproduce(other, "").at("executed").get<int64_t>() == 0);

  // The grid may change. The report of a grid with runs not done yet lists them as missing
  // and runs nothing.
  app::ReproduceOptions grid = o;
  grid.bits = {"4/4", "8/8"};
  grid.pruning = {"none", "pfq"};
  grid.seeds = {0};
  nlohmann::json partial = app::reproduce_report_only(grid);
  REQUIRE(partial.at("rows").size() == 2 * 3 * 2);
  for (const auto& row : partial.at("rows")) {
    const bool eight = row.at("bits") == "8/8";
    CHECK(row.at("seeds").get<int>() == (eight ? 0 : 1));
    CHECK(row.at("missing").size() == (eight ? 1u : 0u));
    CHECK(row.at("top1_mean").is_null() == eight);
  }
  CHECK(!fs::exists(tmp / "repro/runs/w8a8-minmax-none-s0"));
  // A new quantizer runs only its own runs; config.json records the latest grid.
  grid.bits = {"4/4"};
  grid.quantizers = {"pact"};
  grid.pruning = {"none"};
  CHECK(app::run_reproduce(grid, "").at("executed").get<int64_t>() == 1);
  CHECK(fs::exists(tmp / "repro/runs/w4a4-pact-none-s0/done.json"));
  CHECK(nlohmann::json::parse(slurp(tmp / "repro/config.json")).at("quantizers") == nlohmann::json{"pact"});
  // Back to the first grid: nothing runs, its table is unchanged.
  CHECK(app::run_reproduce(o, "").at("rows") == rows);
  CHECK(fs::last_write_time(tmp / "repro/runs/w4a4-minmax-pfq-s0/done.json") == stamp);
  app::ReproduceOptions nowhere = o;
  nowhere.out = tmp / "none";
  CHECK_THROWS_WITH_AS(app::reproduce_report_only(nowhere), doctest::Contains("holds no reproduction"), Error);
  // --export-onnx on runs already done: each is exported (nothing retrained) and recorded.
  if (onnx_export::available()) {
    app::ReproduceOptions ex = o;
    ex.bits = {"4/4"};
    ex.quantizers = {"minmax"};
    ex.pruning = {"none", "pfq"};
    ex.seeds = {0};
    ex.export_onnx = true;
    CHECK(app::run_reproduce(ex, "").at("executed").get<int64_t>() == 0);
    for (const char* id : {"w4a4-minmax-none-s0", "w4a4-minmax-pfq-s0"}) {
      CAPTURE(id);
      const fs::path run = fs::path(tmp / "repro/runs") / id;
      CHECK(fs::file_size(run / "model.onnx") > 0);
      const nlohmann::json done = nlohmann::json::parse(slurp(run / "done.json"));
      CHECK(done.at("onnx").at("model").get<std::string>() == (run / "model.onnx").string());
    }
    CHECK(!fs::exists(tmp / "repro/runs/w4a8-minmax-none-s0/model.onnx"));  // not in this call's grid
  }
}

TEST_CASE("e2e: pfq reproduce --jobs 2 runs child processes of the pfq binary") {
  // The e2e executable lives in <build>/tests; pfq in <build>/apps.
  const fs::path exe = fs::read_symlink("/proc/self/exe").parent_path().parent_path() / "apps" / "pfq";
  // tools/run-tests.sh builds pfq with the e2e suite: a missing binary is a failure, not a skip.
  REQUIRE_MESSAGE(fs::exists(exe), exe.string(), " not built (ninja -C <build> apps/pfq)");
  test::OmpThreadsScope restore;  // the options' --threads set the process's count
  data::testing::TempDir tmp;
  write_cifar10(tmp / "cifar", 40, 16, 2);
  const std::string ckpt = write_pretrained(tmp / "pretrained.safetensors");
  app::ReproduceOptions o = small_options(tmp / "repro", tmp / "cifar", ckpt);
  o.bits = {"4/4"};
  o.quantizers = {"minmax", "pact"};
  o.pruning = {"none", "pfq"};
  o.jobs = 2;
  o.threads = 2;
  o.device = "cpu,cpu";  // each child gets one entry through --device
  nlohmann::json r = app::run_reproduce(o, exe.string());
  CHECK(r.at("executed").get<int64_t>() == 4);
  REQUIRE(r.at("rows").size() == 4);
  for (const auto& row : r.at("rows")) CHECK(std::isfinite(row.at("top1_mean").get<double>()));
  CHECK(fs::exists(tmp / "repro/runs/w4a4-pact-pfq-s0/log.txt"));
  CHECK(app::run_reproduce(o, exe.string()).at("executed").get<int64_t>() == 0);
}

TEST_CASE("e2e: pfq reproduce checks every --device before it writes anything") {
  data::testing::TempDir tmp;
  app::ReproduceOptions o = small_options(tmp / "repro", tmp / "cifar", tmp / "pretrained.safetensors");
  o.pretrained.clear();
  o.device = "cpu,cuda:999";  // no machine has it: "built without CUDA", "no CUDA GPU present" or "out of range"
  CHECK_THROWS_AS(app::run_reproduce(o, ""), Error);
  CHECK_FALSE(fs::exists(tmp / "repro"));
}

TEST_CASE("reproduce: bits and grid validation") {
  CHECK(app::parse_bits("4/8") == std::pair<int, int>{4, 8});
  CHECK_THROWS_WITH_AS(app::parse_bits("4-8"), doctest::Contains("expected W/A"), Error);
  CHECK_THROWS_WITH_AS(app::parse_bits("9/4"), doctest::Contains("1 <= W <= 8"), Error);
  CHECK_THROWS_WITH_AS(app::parse_bits("4/8x"), doctest::Contains("expected W/A"), Error);
  CHECK(app::parse_devices("cuda:0,cuda:1") == std::vector<std::string>{"cuda:0", "cuda:1"});
  CHECK(app::parse_devices("cpu") == std::vector<std::string>{"cpu"});
  CHECK_THROWS_WITH_AS(app::parse_devices("cuda:0,"), doctest::Contains("entry '' is not cpu, cuda or cuda:N"), Error);
  CHECK_THROWS_WITH_AS(app::parse_devices("gpu"), doctest::Contains("--device 'gpu'"), Error);
  CHECK_THROWS_WITH_AS(app::parse_devices("cuda:x"), doctest::Contains("entry 'cuda:x'"), Error);
  app::ReproduceOptions o;
  o.quantizers = {"minmax", "dorefa"};
  CHECK_THROWS_WITH_AS(app::plan_runs(o), doctest::Contains("unknown quantizer preset 'dorefa'"), Error);
  o.quantizers = {"minmax"};
  o.pruning = {"pfq", "random"};
  CHECK_THROWS_WITH_AS(app::plan_runs(o), doctest::Contains("pruning 'random'"), Error);
  o.pruning = {"pfq"};
  o.seeds = {0, 0};
  CHECK_THROWS_WITH_AS(app::plan_runs(o), doctest::Contains("listed twice"), Error);
  o.seeds = {0, 1};
  o.bits = {"2/4"};
  const auto runs = app::plan_runs(o);
  REQUIRE(runs.size() == 2);
  CHECK(runs[1].id == "w2a4-minmax-pfq-s1");
}

TEST_CASE("e2e: the evaluation batch size changes memory, not results") {
  app::DataOptions d;
  d.dataset = "cifar10";
  CHECK(app::eval_batch_size(d) == 256);  // the small-image datasets: as before
  d.dataset = "imagefolder";
  d.batch_size = 32;
  CHECK(app::eval_batch_size(d) == 32);  // ImageNet-size inputs: no more than a training batch
  d.eval_batch_size = 7;
  CHECK(app::eval_batch_size(d) == 7);

  test::OmpThreadsScope restore;
  data::testing::TempDir tmp;
  write_cifar10(tmp / "cifar", 10, 23, 3);
  const std::string ckpt = write_pretrained(tmp / "model.safetensors");
  app::DataOptions data;
  data.dataset = "cifar10";
  data.data_dir = tmp / "cifar";
  data.workers = 0;
  const app::EvalResult one = app::evaluate_checkpoint(ckpt, data, app::DeviceOption("cpu"), false);
  data.eval_batch_size = 5;  // 4 full batches and an uneven last one
  const app::EvalResult five = app::evaluate_checkpoint(ckpt, data, app::DeviceOption("cpu"), false);
  CHECK(one.images == 23);
  CHECK(five.images == 23);
  CHECK(five.top1 == one.top1);
  CHECK(five.top5 == one.top5);
  CHECK(five.loss == doctest::Approx(one.loss).epsilon(1e-6));
}
