// bench_modes.cpp — timed train / infer / qat steps of `pfq bench` (apps/bench_modes.h), the
// FMA peak they are measured against and the process's peak RSS. The qat step is the loop body
// of apps/finetune.cpp without its per-step loss read-back and finiteness checks.
#include "apps/bench_modes.h"

#include "apps/bench_profile.h"

#include <immintrin.h>
#include <omp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>

#include "apps/data_parallel.h"
#include "apps/quantizer_presets.h"
#include "apps/trainer.h"
#include "core/allocator.h"
#include "core/device.h"
#include "core/dist/communicator.h"
#include "core/ops.h"
#include "core/profiler.h"
#include "layers/models/registry.h"
#include "layers/summary.h"
#include "quant/qat.h"

namespace pfq::app {
namespace {

using Clock = std::chrono::steady_clock;

struct Stats {
  double median_ms, min_ms, max_ms;
};
Stats summarize_times(std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  return {ms[ms.size() / 2], ms.front(), ms.back()};
}

// The QatConfig of --modes qat: `pfq reproduce`'s preset (finetune's defaults for minmax) with
// one calibration batch, so that one untimed forward pass switches the EMA observers to quantizing.
quant::QatConfig bench_qat_config(const BenchOptions& o) {
  quant::QatConfig q = quantizer_preset(o.quantizer, o.wbits, o.abits);
  q.calib_batches = 1;
  if (!o.bn_stats.empty()) q.bn_stats = o.bn_stats;
  return q;
}

// Initialises the quantizer ranges once before timing, as finetune's first training batches do
// (EMA observers record a range, LSQ sets its step): one training-mode forward pass without
// gradients. Afterwards every EMA observer must quantize, or the timed steps would be float.
void calibrate_quantizers(Module& model, const Tensor& x) {
  {
    NoGradGuard ng;
    model.forward(x);
  }
  for (auto& [name, m] : model.named_modules())
    if (auto* fq = dynamic_cast<quant::FakeQuantize*>(m))
      if (auto* ema = dynamic_cast<quant::EmaQuantizer*>(fq->quantizer()))
        PFQ_CHECK(ema->calibrated(), "pfq bench --modes qat: activation quantizer '", name, "' is still observing after calibration (",
                  ema->num_batches(), " batches seen)");
}

}  // namespace

// Many independent vector FMA chains (AVX-512, else AVX2 + FMA, else scalar code), so the
// measurement is bound by the FMA units, not by latency.
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
      // lanes through memory, not _mm512_reduce_add_ps: GCC 12's version of that intrinsic reads
      // an uninitialised register (-Wuninitialized in its own header, GCC bug 105593)
      alignas(64) float lanes[16];
      for (int i = 0; i < 12; ++i) {
        _mm512_store_ps(lanes, a[i]);
        for (float v : lanes) sink += v;
      }
#elif defined(__AVX2__) && defined(__FMA__)
      __m256 a[12];
      const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
      for (int i = 0; i < 12; ++i) a[i] = _mm256_set1_ps(1.0f + i);
      for (int64_t it = 0; it < kIters / 8; ++it)
        for (int i = 0; i < 12; ++i) a[i] = _mm256_fmadd_ps(a[i], m, c);
      alignas(32) float lanes[8];
      for (int i = 0; i < 12; ++i) {
        _mm256_store_ps(lanes, a[i]);
        for (float v : lanes) sink += v;
      }
#else
      float a[12];
      for (int i = 0; i < 12; ++i) a[i] = 1.0f + i;
      for (int64_t it = 0; it < kIters / 16; ++it)
        for (int i = 0; i < 12; ++i) a[i] = a[i] * 0.999999f + 1e-7f;
      for (int i = 0; i < 12; ++i) sink += a[i];
#endif
    }
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
#if defined(__AVX512F__)
    const double flops = 2.0 * 16 * 12 * (kIters / 16) * threads;
#elif defined(__AVX2__) && defined(__FMA__)
    const double flops = 2.0 * 8 * 12 * (kIters / 8) * threads;
#else
    const double flops = 2.0 * 12 * (kIters / 16) * threads;
#endif
    if (sink == 42.0) std::fprintf(stderr, " ");  // keep the loop alive
    best = std::max(best, flops / secs / 1e9);
  }
  return best;
}

double current_rss_mib() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  long long size = 0, resident = 0;
  const int n = std::fscanf(f, "%lld %lld", &size, &resident);
  std::fclose(f);
  return n == 2 ? resident * (sysconf(_SC_PAGESIZE) / 1024.0) / 1024.0 : 0;
}

// The kernel's high-water mark can lag the current RSS by its batched per-thread counters (a
// fraction of a MiB), so the peak is at least the current RSS.
double peak_rss_mib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return std::max(ru.ru_maxrss / 1024.0, current_rss_mib());
}

namespace {

// One model built and prepared for one mode on synthetic data, with its step as a callable.
struct ModeRun {
  std::string name, mode;
  bool qat = false, train = false;
  Device dev = Device::cpu();
  ModulePtr model;
  int64_t fwd_macs = 0, float_params = 0;
  quant::QatConfig qcfg;
  quant::QatReport qrep;
  Tensor x, y, y_host;
  std::unique_ptr<optim::Optimizer> opt;
  std::unique_ptr<DataParallel> parallel;  // under mpirun: this rank's share of the batch, gradients summed
  double share = 1;                        // this rank's images / the global batch
  std::function<void()> enqueue;  // queues one step
  std::function<void()> step;     // one step, to completion (GPU: synchronised)
  double rss_before_model = 0;
};

std::unique_ptr<ModeRun> prepare_mode(const BenchOptions& o, const std::string& name, const std::string& mode) {
  PFQ_CHECK(mode == "train" || mode == "infer" || mode == "qat", "pfq bench: mode '", mode, "': expected train, infer or qat");
  auto r = std::make_unique<ModeRun>();
  ModeRun& m = *r;
  m.name = name;
  m.mode = mode;
  m.rss_before_model = current_rss_mib();
  models::ModelConfig cfg;
  cfg.arch = name;
  cfg.in_channels = o.channels;
  cfg.input_size = o.size;
  cfg.num_classes = o.classes;
  cfg.width = o.width;
  m.model = models::build_model(name, cfg);
  m.fwd_macs = summarize(*m.model, {1, o.channels, o.size, o.size}).total_macs;
  m.float_params = m.model->num_parameters();
  m.qat = mode == "qat";
  m.train = mode != "infer";
  if (m.qat) {
    m.qcfg = bench_qat_config(o);
    m.qrep = quant::prepare_qat(*m.model, m.qcfg);  // on the CPU model, then moved (as finetune does)
  }
  m.dev = rank_device(o.device.resolve());  // under mpirun: this rank's GPU, as run_bench's
  m.model->to(m.dev);
  // Under mpirun each rank takes its rows of the global batch (as the loader's shards do).
  const int rank = dist::world().rank(), ranks = dist::world().size();
  const int64_t lo = o.batch * rank / ranks, hi = o.batch * (rank + 1) / ranks;
  PFQ_CHECK(hi > lo, "pfq bench: --batch-size ", o.batch, " gives rank ", rank, " of ", ranks, " no image");
  m.share = static_cast<double>(hi - lo) / static_cast<double>(o.batch);
  Generator gen(1);
  m.x = slice(Tensor::randn({o.batch, o.channels, o.size, o.size}, gen), 0, lo, hi).contiguous().to(m.dev);
  std::vector<int64_t> lab;
  for (int64_t i = lo; i < hi; ++i) lab.push_back(i % o.classes);
  m.y_host = Tensor::from_vector(lab, {hi - lo});
  m.y = m.y_host.to(m.dev);
  OptimizerOptions oo;  // finetune's optimizer; the float step uses the same (bench/torch_reference.py too)
  oo.optimizer = "sgd";
  oo.lr = 0.01;
  oo.momentum = 0.9;
  oo.nesterov = false;
  oo.weight_decay = 5e-4;
  m.opt = make_optimizer(oo, *m.model);
  m.model->train(m.train);
  if (ranks > 1 && m.train) m.parallel = std::make_unique<DataParallel>(*m.model, DataParallelOptions{.overlap = !o.no_overlap});
  if (m.qat) calibrate_quantizers(*m.model, m.x);
  ModeRun* p = &m;  // stable: the run lives on the heap
  m.enqueue = [p] {
    if (p->train) {
      Tensor loss = cross_entropy(p->model->forward(p->x), p->y, 0, p->y_host);  // host labels: no mid-step wait
      if (p->parallel) loss = mul(loss, p->share);  // the global batch's mean loss, summed over the ranks
      p->opt->zero_grad();
      if (p->parallel) p->parallel->backward(loss);
      else loss.backward();
      p->opt->step();
    } else {
      NoGradGuard ng;
      p->model->forward(p->x);
    }
  };
  m.step = [p] {
    p->enqueue();
    if (p->dev.is_cuda()) synchronize(p->dev);  // GPU work is asynchronous: time it to completion
  };
  return r;
}

double time_ms(const std::function<void()>& f) {
  const auto t0 = Clock::now();
  f();
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

}  // namespace

nlohmann::ordered_json bench_model_mode(const BenchOptions& o, const std::string& name, const std::string& mode, double fma_peak) {
  const std::unique_ptr<ModeRun> run = prepare_mode(o, name, mode);
  const ModeRun& m = *run;
  const Device dev = m.dev;
  const bool qat = m.qat, train = m.train;
  const std::function<void()>& enqueue = m.enqueue;
  const std::function<void()>& step = m.step;
  std::vector<double> times;
  for (int s = 0; s < o.warmup + o.steps; ++s) {
    const double ms = time_ms(step);
    if (s >= o.warmup) times.push_back(ms);
  }
  Stats st = summarize_times(times);
  // On a GPU: the device's time for a step, its launches queued behind a spinning kernel (so no
  // host gaps), and the host's time to queue them. A step is host-bound when the host time is
  // near the step time and the device time well below it.
  std::vector<double> dev_ms, host_ms;
  if (dev.is_cuda()) {
    const double spin_ms = std::max(50.0, 3 * st.median_ms);
    for (int s = 0; s < 5; ++s) {
      double h = 0;
      const double d = device_time_ms(dev, enqueue, spin_ms, &h);
      if (h < 0.9 * spin_ms) dev_ms.push_back(d);  // otherwise the spin ended before the queue was full
      host_ms.push_back(h);
    }
  }
  nlohmann::ordered_json profile;
  if (o.profile_steps > 0) {
    // On a GPU each op scope waits for the device, so rows hold kernel time, not launch time.
    static int sync_index = 0;
    sync_index = dev.index;
    const bool synced = dev.is_cuda() && !o.profile_host;
    if (synced) profiler::set_device_sync([] { synchronize(Device::cuda(sync_index)); });
    profiler::set_shapes(o.profile_shapes);
    profile = profile_steps(step, o.profile_steps);
    profiler::set_shapes(false);
    profiler::set_device_sync(nullptr);
    profile["device_synchronised_scopes"] = synced;
  }
  // Training does ~3x the forward multiply-adds (forward, input gradient, weight gradient).
  const double flops = 2.0 * m.fwd_macs * o.batch * (train ? 3 : 1);
  const double gflops = flops / (st.median_ms * 1e-3) / 1e9;
  nlohmann::ordered_json r = {{"model", name},
                              {"mode", mode},
                              {"batch", o.batch},
                              {"median_ms", st.median_ms},
                              {"min_ms", st.min_ms},
                              {"max_ms", st.max_ms},
                              {"images_per_s", o.batch / (st.median_ms * 1e-3)},
                              {"gflops", gflops},
                              {"percent_of_peak", dev.is_cpu() ? nlohmann::ordered_json(100 * gflops / fma_peak) : nlohmann::ordered_json()},
                              {"device", dev.str()},
                              {"params", m.float_params},
                              {"forward_macs_per_image", m.fwd_macs},
                              {"peak_rss_mib", peak_rss_mib()},
                              {"rss_before_model_mib", m.rss_before_model}};
  if (dev.is_cpu()) {
    // What the CPU caching allocator held (in use + cached) and had in use at its peaks so far: the
    // part of the RSS that tensors account for, and how far caching lifts it above the live bytes.
    const AllocatorStats a = cpu_allocator_stats();
    r["allocator_peak_held_mib"] = static_cast<double>(a.peak_bytes_held) / (1 << 20);
    r["allocator_peak_in_use_mib"] = static_cast<double>(a.peak_bytes_in_use) / (1 << 20);
  }
  if (!host_ms.empty()) {
    r["host_launch_ms"] = summarize_times(host_ms).median_ms;
    r["device_busy_ms"] = dev_ms.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(summarize_times(dev_ms).median_ms);
  }
  if (!profile.is_null()) r["profile"] = profile;
  if (qat)
    r["qat"] = {{"quantizer", o.quantizer},
                {"config", nlohmann::ordered_json(nlohmann::json(m.qcfg))},
                {"folded_convs", m.qrep.folded_convs},
                {"plain_convs", m.qrep.plain_convs},
                {"act_quantizers", m.qrep.act_quantizers},
                {"bn_mode", "batch statistics (not frozen), as in finetune's epochs before the last"}};
  return r;
}

nlohmann::ordered_json bench_paired_ratio(const BenchOptions& o, const std::string& name, const std::string& mode_a,
                                          const std::string& mode_b) {
  const std::unique_ptr<ModeRun> a = prepare_mode(o, name, mode_a), b = prepare_mode(o, name, mode_b);
  for (int s = 0; s < o.warmup; ++s) {
    a->step();
    b->step();
  }
  std::vector<double> ratios, ta, tb;
  for (int s = 0; s < o.steps; ++s) {
    const bool a_first = s % 2 == 0;  // alternate the order so neither always runs on a warmer cache
    const double t1 = time_ms(a_first ? a->step : b->step), t2 = time_ms(a_first ? b->step : a->step);
    ta.push_back(a_first ? t1 : t2);
    tb.push_back(a_first ? t2 : t1);
    ratios.push_back(ta.back() / tb.back());
  }
  const Stats r = summarize_times(ratios);
  return {{"model", name},
          {"modes", {mode_a, mode_b}},
          {"pairs", o.steps},
          {"median_ratio", r.median_ms},
          {"min_ratio", r.min_ms},
          {"max_ratio", r.max_ms},
          {"median_ms", {summarize_times(ta).median_ms, summarize_times(tb).median_ms}}};
}

}  // namespace pfq::app
