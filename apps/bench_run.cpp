// bench_run.cpp — `pfq bench`'s run and its printed rows (apps/bench_run.h); the timed modes
// are apps/bench_modes.h's and apps/bench_loader.h's.
#include "apps/bench_run.h"

#include <omp.h>

#include <cstdio>

#include "apps/bench_loader.h"
#include "apps/bench_profile.h"
#include "apps/data_parallel.h"
#include "core/cpu/conv_backend.h"
#include "core/device.h"
#include "core/dist/communicator.h"

namespace pfq::app {
namespace {


// --modes loader: the data loader's images/s against the training step of `model`, per dataset.
void run_loader_mode(const BenchOptions& o, const std::string& model, const Device& dev, nlohmann::ordered_json& out) {
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
                  "  ratio loader/train %.1fx%s; %.0f img/s per worker, %.2f ms CPU per image (JPEGs: %s)\n",
                  model.c_str(), ds.c_str(), r["input"].dump().c_str(), static_cast<long long>(o.batch), o.workers,
                  r["loader_images_per_s"].get<double>(), r["train_images_per_s"].get<double>(), r["train_fed_images_per_s"].get<double>(),
                  r["loader_to_train_ratio"].get<double>(), r["loader_to_train_ratio"].get<double>() < 1 ? "  LOADER IS THE BOTTLENECK" : "",
                  r["loader_images_per_s_per_worker"].get<double>(), r["loader_cpu_ms_per_image"].get<double>(),
                  r["jpeg_decoder"].get<std::string>().c_str());
    out["results"].push_back(r);
  }
}

void print_row(const BenchOptions& o, const Device& dev, const nlohmann::ordered_json& r) {
  const auto num = [&](const char* k) { return r[k].get<double>(); };
  const std::string& model = r["model"].get_ref<const std::string&>();
  const std::string& mode = r["mode"].get_ref<const std::string&>();
  const auto batch = static_cast<long long>(o.batch);
  if (dev.is_cuda()) {
    std::printf("%-12s %-5s batch %lld on %s: median %.2f ms (min %.2f, max %.2f)  %.0f img/s  %.0f GFLOP/s", model.c_str(),
                mode.c_str(), batch, dev.str().c_str(), num("median_ms"), num("min_ms"), num("max_ms"), num("images_per_s"), num("gflops"));
    // The split of a step into the device's busy time and the host's launch time (bench_modes).
    if (r.contains("device_busy_ms") && r["device_busy_ms"].is_number())
      std::printf("  device busy %.2f ms, host launches %.2f ms", num("device_busy_ms"), num("host_launch_ms"));
    else if (r.contains("host_launch_ms"))
      std::printf("  host launches %.2f ms (device time not measurable: the host waited for the device)", num("host_launch_ms"));
    std::printf("\n");
  } else
    std::printf("%-12s %-5s batch %lld: median %.1f ms (min %.1f, max %.1f)  %.0f img/s  %.1f GFLOP/s (%.1f%% of peak)  peak RSS %.0f MiB"
                " (allocator peaks: %.0f MiB held, %.0f in use)\n",
                model.c_str(), mode.c_str(), batch, num("median_ms"), num("min_ms"), num("max_ms"), num("images_per_s"), num("gflops"),
                num("percent_of_peak"), num("peak_rss_mib"), num("allocator_peak_held_mib"), num("allocator_peak_in_use_mib"));
}

// When train and qat of `model` both ran: the qat row gets qat_over_float_train (median over
// median of the separate runs) and qat_over_float_train_paired (bench_paired_ratio: the two
// steps alternating, the median of the pairs' ratios; issue #7's target is <= 1.15).
void add_qat_over_float_train(const BenchOptions& o, nlohmann::ordered_json& results, const std::string& model) {
  nlohmann::ordered_json *train = nullptr, *qat = nullptr;
  for (auto& r : results) {
    if (r["model"] != model) continue;
    if (r["mode"] == "train") train = &r;
    if (r["mode"] == "qat") qat = &r;
  }
  if (!train || !qat) return;
  const double ratio = (*qat)["median_ms"].get<double>() / (*train)["median_ms"].get<double>();
  (*qat)["qat_over_float_train"] = ratio;
  const auto paired = bench_paired_ratio(o, model, "qat", "train");
  (*qat)["qat_over_float_train_paired"] = paired;
  if (!o.json)
    std::printf("%-12s qat step / float train step: %.3fx (separate runs); %.3fx interleaved (median of %d pairs, min %.3f, max %.3f;"
                " %.1f / %.1f ms)\n",
                model.c_str(), ratio, paired["median_ratio"].get<double>(), paired["pairs"].get<int>(),
                paired["min_ratio"].get<double>(), paired["max_ratio"].get<double>(), paired["median_ms"][0].get<double>(),
                paired["median_ms"][1].get<double>());
}

}  // namespace

nlohmann::ordered_json run_bench(const BenchOptions& o) {
  if (const int t = rank_threads(o.threads); t > 0) omp_set_num_threads(t);  // under mpirun: the cores split over the ranks
  if (!o.cpu_conv.empty()) cpu::set_conv_backend(cpu::parse_conv_backend(o.cpu_conv));
  if (!o.cpu_layout.empty()) cpu::set_cpu_layout(cpu::parse_cpu_layout(o.cpu_layout));
  const int threads = omp_get_max_threads();
  const Device dev = rank_device(o.device.resolve());  // clear error without CUDA or GPU, never a CPU fallback
  // The CPU FMA peak is the yardstick of CPU runs only.
  const double peak = dev.is_cpu() ? measure_fma_peak(threads) : 0.0;
  nlohmann::ordered_json out = {{"threads", threads},
                                {"ranks", dist::world().size()},
                                {"cpu_conv", cpu::conv_backend_name(cpu::conv_backend())},
                                {"cpu_layout", cpu::cpu_layout_name(cpu::cpu_layout())},
                                {"device", dev.str()},
                                {"fma_peak_gflops", peak},
                                {"peak_rss", "peak_rss_mib of a row: the process's peak resident memory after that row's steps"
                                             " (monotonic: one model and mode per process gives per-model peaks)"},
                                {"results", nlohmann::json::array()}};
  if (dist::world().size() > 1) out["gradient_overlap"] = !o.no_overlap;  // all-reduce during backward (--no-overlap: after)
  if (dev.is_cuda()) {
    const auto devs = cuda_devices();
    out["gpu"] = devs.at(dev.index).name;
  }
  if (!o.json && dev.is_cpu())
    std::printf("FMA peak on %d threads: %.0f GFLOP/s; CPU convolutions: %s, activations %s\n", threads, peak,
                cpu::conv_backend_name(cpu::conv_backend()), cpu::cpu_layout_name(cpu::cpu_layout()));
  if (!o.json && o.models.size() * o.modes.size() > 1)
    std::printf("peak RSS is the process's peak so far (later rows include earlier ones); one model and mode per process gives "
                "per-model peaks (bench/compare.sh)\n");
  for (const auto& m : o.models) {
    for (const auto& mode : o.modes) {
      if (mode == "loader") {
        run_loader_mode(o, m, dev, out);
        continue;
      }
      if (mode == "index") {
        auto r = bench_index(o.data_dir);
        if (!o.json)
          std::printf("index %s: %lld files in %lld classes listed in %.2f s, resident memory +%.1f MiB (%.0f bytes per file)\n",
                      r["source"].get<std::string>().c_str(), static_cast<long long>(r["files"].get<int64_t>()),
                      static_cast<long long>(r["classes"].get<int64_t>()), r["seconds"].get<double>(), r["rss_growth_mib"].get<double>(),
                      r["bytes_per_file"].get<double>());
        out["results"].push_back(r);
        continue;
      }
      auto r = bench_model_mode(o, m, mode, peak);
      if (!o.json) print_row(o, dev, r);
      if (!o.json && r.contains("profile")) print_profile(m + " " + mode, r["profile"]);
      out["results"].push_back(r);
    }
    add_qat_over_float_train(o, out["results"], m);
  }
  return out;
}

}  // namespace pfq::app
