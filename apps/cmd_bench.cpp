// cmd_bench.cpp — `pfq bench`: timed training steps (forward + loss + backward + SGD) and
// inference for the built-in models on synthetic data, with median/min/max over repeated
// steps after warm-up, images/s, achieved GFLOP/s against the machine's FMA peak measured
// in the same run, peak resident memory, and an optional per-op-family profile of a step.
// --modes loader: the data loader's images/s against the training step (bench_loader.h).
// JSON output for scripts (bench/compare.sh pairs it with PyTorch on the same machine).
#include <immintrin.h>
#include <omp.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "apps/bench_loader.h"
#include "apps/commands.h"
#include "core/cuda/cuda_runtime.h"
#include "core/ops.h"
#include "core/optim/sgd.h"
#include "data/factory.h"
#include "layers/models/registry.h"
#include "layers/summary.h"

namespace pfq::app {
namespace {

using Clock = std::chrono::steady_clock;

// Peak single-precision FMA throughput of `threads` threads, in GFLOP/s: many independent
// vector FMA chains so the measurement is bound by the FMA units, not by latency.
double measure_fma_peak(int threads) {
  constexpr int64_t kIters = 20'000'000;
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    auto t0 = Clock::now();
    double sink = 0;
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    {
#if defined(__AVX512F__)
      __m512 a[12];
      const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
      for (int i = 0; i < 12; ++i) a[i] = _mm512_set1_ps(1.0f + i);
      for (int64_t it = 0; it < kIters / 16; ++it)
        for (int i = 0; i < 12; ++i) a[i] = _mm512_fmadd_ps(a[i], m, c);
      for (int i = 0; i < 12; ++i) sink += _mm512_reduce_add_ps(a[i]);
      constexpr double kWidth = 16;
#else
      float a[12];
      for (int i = 0; i < 12; ++i) a[i] = 1.0f + i;
      for (int64_t it = 0; it < kIters / 16; ++it)
        for (int i = 0; i < 12; ++i) a[i] = a[i] * 0.999999f + 1e-7f;
      for (int i = 0; i < 12; ++i) sink += a[i];
      constexpr double kWidth = 1;
#endif
      (void)kWidth;
    }
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
#if defined(__AVX512F__)
    const double flops = 2.0 * 16 * 12 * (kIters / 16) * threads;
#else
    const double flops = 2.0 * 12 * (kIters / 16) * threads;
#endif
    if (sink == 42.0) std::fprintf(stderr, " ");  // keep the loop alive
    best = std::max(best, flops / secs / 1e9);
  }
  return best;
}

struct Stats {
  double median_ms, min_ms, max_ms;
};
Stats summarize_times(std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  return {ms[ms.size() / 2], ms.front(), ms.back()};
}

double peak_rss_mib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;
}

struct BenchOpts {
  std::vector<std::string> models{"resnet20", "mobilenetv1", "mobilenetv2"};
  std::vector<std::string> modes{"train", "infer"};
  int64_t batch = 128, size = 32, channels = 3, classes = 100;
  double width = 1.0;
  int threads = 0, warmup = 3, steps = 10;
  bool json = false;
  std::string device = "cpu";  // cpu | cuda | cuda:N (GPU steps end with a device synchronisation)
  // --modes loader (bench_loader.h)
  std::vector<std::string> loader_datasets{"cifar10", "fashion-mnist"};
  std::string data_dir;
  int workers = 2;
  int64_t loader_batches = 50;
};

nlohmann::ordered_json bench_one(const BenchOpts& o, const std::string& name, const std::string& mode, double peak) {
  models::ModelConfig cfg;
  cfg.arch = name;
  cfg.in_channels = o.channels;
  cfg.input_size = o.size;
  cfg.num_classes = o.classes;
  cfg.width = o.width;
  ModulePtr model = models::build_model(name, cfg);
  const int64_t fwd_macs = summarize(*model, {1, o.channels, o.size, o.size}).total_macs;
  const Device dev = Device::parse(o.device);
  model->to(dev);
  Generator gen(1);
  Tensor x = Tensor::randn({o.batch, o.channels, o.size, o.size}, gen).to(dev);
  std::vector<int64_t> lab(o.batch);
  for (int64_t i = 0; i < o.batch; ++i) lab[i] = i % o.classes;
  Tensor y = Tensor::from_vector(lab, {o.batch}).to(dev);
  std::vector<optim::ParamRef> params;
  for (auto& [n, t] : model->named_parameters()) params.push_back({n, t});
  optim::SgdOptions so;
  so.lr = 0.01;
  so.momentum = 0.9;
  so.weight_decay = 5e-4;
  optim::Sgd opt(params, so);
  const bool train = mode == "train";
  model->train(train);
  std::vector<double> times;
  for (int s = 0; s < o.warmup + o.steps; ++s) {
    auto t0 = Clock::now();
    if (train) {
      Tensor loss = cross_entropy(model->forward(x), y);
      opt.zero_grad();
      loss.backward();
      opt.step();
    } else {
      NoGradGuard ng;
      model->forward(x);
    }
    if (dev.is_cuda()) cuda::synchronize(dev.index);  // GPU work is asynchronous: time it to completion
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (s >= o.warmup) times.push_back(ms);
  }
  Stats st = summarize_times(times);
  // Training does ~3x the forward multiply-adds (forward, input gradient, weight gradient).
  const double flops = 2.0 * fwd_macs * o.batch * (train ? 3 : 1);
  const double gflops = flops / (st.median_ms * 1e-3) / 1e9;
  nlohmann::ordered_json r = {{"model", name},
                              {"mode", mode},
                              {"batch", o.batch},
                              {"median_ms", st.median_ms},
                              {"min_ms", st.min_ms},
                              {"max_ms", st.max_ms},
                              {"images_per_s", o.batch / (st.median_ms * 1e-3)},
                              {"gflops", gflops},
                              {"percent_of_peak", dev.is_cpu() ? nlohmann::ordered_json(100 * gflops / peak) : nlohmann::ordered_json()},
                              {"device", dev.str()},
                              {"params", model->num_parameters()},
                              {"forward_macs_per_image", fwd_macs},
                              {"peak_rss_mib", peak_rss_mib()}};
  return r;
}

// --modes loader: the data loader's images/s against the training step of `model`, per dataset.
void run_loader_mode(const BenchOpts& o, const std::string& model, const Device& dev, nlohmann::ordered_json& out) {
  PFQ_CHECK(dev.is_cpu(), "pfq bench --modes loader: compares the CPU data pipeline with the CPU training step; use --device cpu");
  for (const auto& ds : o.loader_datasets) {
    LoaderBenchOptions lo;
    lo.model = model;
    lo.width = o.width;
    lo.dataset = ds;
    lo.data_dir = o.data_dir;
    lo.batch = o.batch;
    lo.workers = o.workers;
    lo.warmup = o.warmup;
    lo.steps = o.steps;
    lo.loader_batches = o.loader_batches;
    auto r = bench_loader(lo);
    if (!o.json)
      std::printf("%-12s loader %s %s batch %lld, %d workers: loader %.0f img/s, train step %.0f img/s (fed by the loader %.0f img/s)"
                  "  ratio loader/train %.1fx%s\n",
                  model.c_str(), ds.c_str(), r["input"].dump().c_str(), static_cast<long long>(o.batch), o.workers,
                  r["loader_images_per_s"].get<double>(), r["train_images_per_s"].get<double>(), r["train_fed_images_per_s"].get<double>(),
                  r["loader_to_train_ratio"].get<double>(), r["loader_to_train_ratio"].get<double>() < 1 ? "  LOADER IS THE BOTTLENECK" : "");
    out["results"].push_back(r);
  }
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("bench", "time training steps and inference of the built-in models (synthetic data)");
  auto o = std::make_shared<BenchOpts>();
  cmd->add_option("--models", o->models, "models to time")->check(CLI::IsMember(models::model_names()))->capture_default_str();
  cmd->add_option("--modes", o->modes, "train, infer and/or loader (data loader images/s against the training step)")
      ->check(CLI::IsMember({"train", "infer", "loader"}))
      ->capture_default_str();
  cmd->add_option("--loader-datasets", o->loader_datasets, "loader mode: datasets (cifar10 without --data-dir: synthetic files)")
      ->check(CLI::IsMember(data::dataset_names()))
      ->capture_default_str();
  cmd->add_option("--data-dir", o->data_dir, "loader mode: dataset folder (default: the dataset's standard location)");
  cmd->add_option("--workers", o->workers, "loader mode: data loader threads")->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->add_option("--loader-batches", o->loader_batches, "loader mode: batches timed for the loader alone")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--batch-size", o->batch)->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--size", o->size, "input height and width")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--channels", o->channels)->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--classes", o->classes)->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--width", o->width)->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--threads", o->threads, "OpenMP threads (0 = all cores)")->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->add_option("--warmup", o->warmup)->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->add_option("--steps", o->steps)->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_flag("--json", o->json, "print one JSON document");
  cmd->add_option("--device", o->device, "cpu | cuda | cuda:N")->capture_default_str();
  cmd->callback([o] {
    if (o->threads > 0) omp_set_num_threads(o->threads);
    const int threads = omp_get_max_threads();
    const Device dev = Device::parse(o->device);
    if (dev.is_cuda()) cuda::require_device(dev.index);  // clear error without CUDA or GPU, never a CPU fallback
    // The CPU FMA peak is the yardstick of CPU runs only.
    const double peak = dev.is_cpu() ? measure_fma_peak(threads) : 0.0;
    nlohmann::ordered_json out = {{"threads", threads}, {"device", dev.str()}, {"fma_peak_gflops", peak}, {"results", nlohmann::json::array()}};
    if (dev.is_cuda()) {
      const auto devs = cuda::list_devices();
      out["gpu"] = devs.at(dev.index).name;
    }
    if (!o->json && dev.is_cpu()) std::printf("FMA peak on %d threads: %.0f GFLOP/s\n", threads, peak);
    for (const auto& m : o->models)
      for (const auto& mode : o->modes) {
        if (mode == "loader") {
          run_loader_mode(*o, m, dev, out);
          continue;
        }
        auto r = bench_one(*o, m, mode, peak);
        if (!o->json && dev.is_cuda())
          std::printf("%-12s %-5s batch %lld on %s: median %.2f ms (min %.2f, max %.2f)  %.0f img/s  %.0f GFLOP/s\n", m.c_str(),
                      mode.c_str(), static_cast<long long>(o->batch), dev.str().c_str(), r["median_ms"].get<double>(),
                      r["min_ms"].get<double>(), r["max_ms"].get<double>(), r["images_per_s"].get<double>(), r["gflops"].get<double>());
        else if (!o->json)
          std::printf("%-12s %-5s batch %lld: median %.1f ms (min %.1f, max %.1f)  %.0f img/s  %.1f GFLOP/s (%.1f%% of peak)  peak RSS %.0f MiB\n",
                      m.c_str(), mode.c_str(), static_cast<long long>(o->batch), r["median_ms"].get<double>(), r["min_ms"].get<double>(),
                      r["max_ms"].get<double>(), r["images_per_s"].get<double>(), r["gflops"].get<double>(),
                      r["percent_of_peak"].get<double>(), r["peak_rss_mib"].get<double>());
        out["results"].push_back(r);
      }
    if (o->json) std::cout << out.dump(2) << "\n";
  });
}

}  // namespace pfq::app
