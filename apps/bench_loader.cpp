// bench_loader.cpp — loader throughput against the training step (bench_loader.h).
#include "apps/bench_loader.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "apps/bench_modes.h"
#include "apps/trainer.h"
#include "data/factory.h"
#include "core/ops.h"
#include "core/optim/sgd.h"
#include "data/cifar.h"
#include "data/image_decode.h"
#include "layers/models/registry.h"

namespace pfq::app {

namespace {
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// A folder removed (with its contents) when this goes out of scope.
struct TempDir {
  std::string path;
  TempDir() {
    path = (std::filesystem::temp_directory_path() / ("pfq-bench-loader-" + std::to_string(::getpid()))).string();
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

// The next batch, starting the next epoch when one ends.
data::Batch next_batch(data::DataLoader& loader, int64_t& epoch) {
  auto b = loader.next();
  if (!b) {
    loader.start_epoch(++epoch);
    b = loader.next();
  }
  PFQ_CHECK(b.has_value(), "bench loader: the loader produced no batch (fewer images than one batch?)");
  return std::move(*b);
}
}  // namespace

nlohmann::ordered_json bench_index(const std::string& data_dir) {
  PFQ_CHECK(!data_dir.empty(), "pfq bench --modes index: pass --data-dir (an image folder with train/<class>/<image>)");
  const double rss0 = current_rss_mib();
  const auto t0 = Clock::now();
  auto ds = data::make_dataset("imagefolder", data_dir, "train");
  const double secs = seconds_since(t0);
  const double grew = current_rss_mib() - rss0;
  return {{"mode", "index"},
          {"source", data_dir + "/train"},
          {"files", ds->size()},
          {"classes", ds->num_classes()},
          {"seconds", secs},
          {"rss_growth_mib", grew},
          {"bytes_per_file", grew * 1048576.0 / static_cast<double>(std::max<int64_t>(1, ds->size()))}};
}

void write_synthetic_cifar10(const std::string& dir, int64_t images, uint64_t seed) {
  PFQ_CHECK(images >= 5, "write_synthetic_cifar10: need at least 5 images, got ", images);
  Generator g(seed);
  std::vector<char> rec(static_cast<size_t>(data::cifar_record_bytes(data::CifarKind::Cifar10)));
  auto write = [&](const std::string& name, int64_t n, int64_t first) {
    const std::string path = dir + "/" + name;
    std::ofstream f(path, std::ios::binary);
    PFQ_CHECK(f.good(), "write_synthetic_cifar10: cannot write ", path);
    for (int64_t i = 0; i < n; ++i) {
      rec[0] = static_cast<char>((first + i) % 10);
      for (size_t k = 1; k < rec.size(); k += 8) {
        const uint64_t r = g.next_u64();
        for (size_t j = 0; j < 8 && k + j < rec.size(); ++j) rec[k + j] = static_cast<char>((r >> (8 * j)) & 0xff);
      }
      f.write(rec.data(), static_cast<std::streamsize>(rec.size()));
    }
    PFQ_CHECK(f.good(), "write_synthetic_cifar10: write to ", path, " failed (disk full?)");
  };
  for (int b = 0; b < 5; ++b) {
    const int64_t lo = images * b / 5, hi = images * (b + 1) / 5;
    write("data_batch_" + std::to_string(b + 1) + ".bin", hi - lo, lo);
  }
  write("test_batch.bin", std::max<int64_t>(1, images / 5), 0);
}

nlohmann::ordered_json bench_loader(const LoaderBenchOptions& o) {
  PFQ_CHECK(o.steps > 0 && o.warmup >= 0 && o.loader_batches > 0, "bench loader: need steps > 0, warmup >= 0 and loader batches > 0");
  std::unique_ptr<TempDir> tmp;
  std::string dir = o.data_dir, source;
  if (o.dataset == "cifar10" && dir.empty()) {
    tmp = std::make_unique<TempDir>();
    write_synthetic_cifar10(tmp->path, o.synthetic_images, 1);
    dir = tmp->path;
    source = "synthetic CIFAR-10 binary files (" + std::to_string(o.synthetic_images) + " random images)";
  } else {
    if (dir.empty()) dir = data::default_data_dir(o.dataset);
    PFQ_CHECK(!dir.empty() && std::filesystem::is_directory(dir), "bench loader: no data for ", o.dataset, " (folder '", dir,
              "' not found); pass --data-dir or leave ", o.dataset, " out of --loader-datasets");
    source = dir;
  }
  auto loader = make_loader(o.dataset, dir, true, o.batch, o.workers, 0, 0);

  // 1. The loader alone: batches as fast as the workers make them (the first `warmup` untimed).
  int64_t epoch = 0;
  loader->start_epoch(epoch);
  data::Batch first = next_batch(*loader, epoch);
  for (int i = 1; i < o.warmup; ++i) next_batch(*loader, epoch);
  int64_t images = 0;
  auto t0 = Clock::now();
  // the process's CPU time too (all threads; the waiting main thread uses none): per image it is
  // the loader's work, which a machine shared with other jobs stretches in wall time, not in CPU time
  const std::clock_t cpu0 = std::clock();
  for (int64_t i = 0; i < o.loader_batches; ++i) images += next_batch(*loader, epoch).images.size(0);
  const double loader_ips = static_cast<double>(images) / seconds_since(t0);
  const double loader_cpu_ms = 1e3 * static_cast<double>(std::clock() - cpu0) / CLOCKS_PER_SEC / static_cast<double>(std::max<int64_t>(1, images));

  // 2. The training step of the model at this geometry: a fixed batch, then batches from the loader.
  const Shape& s = first.images.shape();
  models::ModelConfig cfg;
  cfg.arch = o.model;
  cfg.in_channels = s[1];
  cfg.input_size = s[2];
  cfg.num_classes = loader->dataset().num_classes();
  cfg.width = o.width;
  ModulePtr model = models::build_model(o.model, cfg);
  model->train();
  std::vector<optim::ParamRef> params;
  for (auto& [n, t] : model->named_parameters()) params.push_back({n, t});
  optim::SgdOptions so;
  so.lr = 0.01;
  so.momentum = 0.9;
  so.weight_decay = 5e-4;
  optim::Sgd opt(params, so);
  auto step = [&](const data::Batch& b) {
    Tensor loss = cross_entropy(model->forward(b.images), b.labels);
    opt.zero_grad();
    loss.backward();
    opt.step();
  };
  std::vector<double> fixed, fed;
  for (int i = 0; i < o.warmup + o.steps; ++i) {
    t0 = Clock::now();
    step(first);
    if (i >= o.warmup) fixed.push_back(seconds_since(t0));
  }
  loader->start_epoch(++epoch);
  for (int i = 0; i < o.warmup + o.steps; ++i) {
    t0 = Clock::now();
    step(next_batch(*loader, epoch));  // includes any wait for the loader
    if (i >= o.warmup) fed.push_back(seconds_since(t0));
  }
  const double train_ips = static_cast<double>(o.batch) / median(fixed);
  const double fed_ips = static_cast<double>(o.batch) / median(fed);
  return {{"model", o.model},
          {"mode", "loader"},
          {"dataset", o.dataset},
          {"source", source},
          {"input", {s[1], s[2], s[3]}},
          {"batch", o.batch},
          {"workers", o.workers},
          {"loader_batches", o.loader_batches},
          {"loader_images_per_s", loader_ips},
          {"loader_images_per_s_per_worker", loader_ips / std::max(1, o.workers)},
          {"loader_cpu_ms_per_image", loader_cpu_ms},
          {"jpeg_decoder", !data::turbojpeg_compiled()    ? "stb_image"
                           : data::jpeg_window_compiled() ? "libjpeg-turbo (TurboJPEG; crop windows: libjpeg)"
                                                          : "libjpeg-turbo (TurboJPEG)"},
          {"train_images_per_s", train_ips},
          {"train_fed_images_per_s", fed_ips},
          {"loader_to_train_ratio", loader_ips / train_ips},
          {"fed_to_fixed_ratio", fed_ips / train_ips}};
}

}  // namespace pfq::app
