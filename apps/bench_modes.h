// bench_modes.h — the timed modes behind `pfq bench` (apps/cmd_bench.cpp holds the command
// line and the printing): a float training step (forward + cross-entropy + backward + SGD),
// inference, and a QAT training step (the model wrapped by quant::prepare_qat as `pfq finetune`
// does it), each on synthetic data with median/min/max over timed steps after warm-up; plus the
// machine's FMA peak and the process's peak RSS. --modes loader lives in bench_loader.h.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/run_options.h"

namespace pfq::app {

struct BenchOptions {
  std::vector<std::string> models{"resnet20", "mobilenetv1", "mobilenetv2"};
  std::vector<std::string> modes{"train", "infer"};
  int64_t batch = 128, size = 32, channels = 3, classes = 100;
  double width = 1.0;
  int threads = 0, warmup = 3, steps = 10;
  bool json = false;
  bool no_overlap = false;  // under mpirun: gradients all-reduced after backward (DataParallelOptions::overlap)
  int profile_steps = 0;  // --profile N: N more steps with the op profiler on (bench_profile.h)
  bool profile_shapes = false;  // --profile-shapes: convolution rows split by pass and layer shape
  bool profile_host = false;    // --profile-host: on a GPU, scopes do not wait: rows are launch (host) time
  std::string cpu_conv;   // --cpu-conv onednn|eigen (empty: the build's default, conv_backend.h)
  std::string cpu_layout; // --cpu-layout nchw|nhwc (empty: the default, conv_backend.h)
  DeviceOption device;  // cpu | cuda | cuda:N (GPU steps end with a device synchronisation)
  // --modes qat: the quantizer preset of `pfq reproduce` (minmax = per-layer minmax weights and
  // EMA activations, as `pfq finetune` defaults to), BN folded, first conv / last linear at 8 bits.
  int wbits = 4, abits = 4;
  std::string quantizer = "minmax";
  std::string bn_stats;  // --modes qat: QatConfig::bn_stats ("" = the config's default)
  // --modes loader (bench_loader.h)
  std::vector<std::string> loader_datasets{"cifar10", "fashion-mnist"};
  std::string data_dir;
  int workers = 2;
  int64_t loader_batches = 50;
};

// Peak single-precision FMA throughput of `threads` threads, in GFLOP/s.
double measure_fma_peak(int threads);

// Peak resident set size of this process so far, in MiB. Monotonic over the process's life: a
// per-model peak needs one process per model (bench/compare.sh runs one per model and mode).
double peak_rss_mib();

// Resident set size of this process now, in MiB (/proc/self/statm; 0 where unavailable).
double current_rss_mib();

// Times `mode` (train | infer | qat) of model `name`; one result row: model, mode, batch,
// median/min/max ms, images/s, GFLOP/s (qat: the float step's FLOP count, so GFLOP/s compare
// with train), percent of `fma_peak` (CPU), params (of the float model), forward MACs per image,
// peak_rss_mib (of the process, read after this model's steps), rss_before_model_mib (resident
// before the model was built: code, libraries, earlier models) and, for qat, its settings; with
// profile_steps > 0 also "profile": the per-op breakdown of that many more steps.
nlohmann::ordered_json bench_model_mode(const BenchOptions& o, const std::string& name, const std::string& mode, double fma_peak);

// mode_a's step time over mode_b's for model `name`, both models in memory, their steps
// alternating (o.warmup of each first, then o.steps pairs, the order swapped every pair), so
// both see the same machine: {model, modes, pairs, median_ratio, min_ratio, max_ratio,
// median_ms: [a, b]}. Separate runs drift apart on a shared machine; a pair does not.
nlohmann::ordered_json bench_paired_ratio(const BenchOptions& o, const std::string& name, const std::string& mode_a,
                                          const std::string& mode_b);

}  // namespace pfq::app
