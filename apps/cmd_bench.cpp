// cmd_bench.cpp — `pfq bench`: timed training steps (forward + loss + backward + SGD) and
// inference for the built-in models on synthetic data, with median/min/max over repeated
// steps after warm-up, images/s, achieved GFLOP/s against the machine's FMA peak measured
// in the same run, peak resident memory, and an optional per-op-family profile of a step.
// JSON output for scripts (bench/compare.sh pairs it with PyTorch on the same machine).
#include <immintrin.h>
#include <omp.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "apps/commands.h"
#include "core/ops.h"
#include "core/optim/sgd.h"
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
  Generator gen(1);
  Tensor x = Tensor::randn({o.batch, o.channels, o.size, o.size}, gen);
  std::vector<int64_t> lab(o.batch);
  for (int64_t i = 0; i < o.batch; ++i) lab[i] = i % o.classes;
  Tensor y = Tensor::from_vector(lab, {o.batch});
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
                              {"percent_of_peak", 100 * gflops / peak},
                              {"params", model->num_parameters()},
                              {"forward_macs_per_image", fwd_macs},
                              {"peak_rss_mib", peak_rss_mib()}};
  return r;
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("bench", "time training steps and inference of the built-in models (synthetic data)");
  auto o = std::make_shared<BenchOpts>();
  cmd->add_option("--models", o->models, "models to time")->check(CLI::IsMember(models::model_names()))->capture_default_str();
  cmd->add_option("--modes", o->modes, "train and/or infer")->check(CLI::IsMember({"train", "infer"}))->capture_default_str();
  cmd->add_option("--batch-size", o->batch)->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--size", o->size, "input height and width")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--channels", o->channels)->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--classes", o->classes)->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--width", o->width)->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--threads", o->threads, "OpenMP threads (0 = all cores)")->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->add_option("--warmup", o->warmup)->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->add_option("--steps", o->steps)->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_flag("--json", o->json, "print one JSON document");
  cmd->callback([o] {
    if (o->threads > 0) omp_set_num_threads(o->threads);
    const int threads = omp_get_max_threads();
    const double peak = measure_fma_peak(threads);
    nlohmann::ordered_json out = {{"threads", threads}, {"fma_peak_gflops", peak}, {"results", nlohmann::json::array()}};
    if (!o->json) std::printf("FMA peak on %d threads: %.0f GFLOP/s\n", threads, peak);
    for (const auto& m : o->models)
      for (const auto& mode : o->modes) {
        auto r = bench_one(*o, m, mode, peak);
        if (!o->json)
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
