// run_options.h — the option groups the `pfq` commands share (apps/): the model, the data, the
// run (output, seed, threads, device, quiet), the optimizer and the stage schedule of workflow
// and reproduce. A command's options struct derives from the groups it takes; each group has
// one flag adder and one to_json / from_json, so its flags and config.json keys are written
// once. Left out: the --config file reader (apps/config_file.h) and each command's own options.
#pragma once
#include <CLI/CLI.hpp>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "data/loader.h"

namespace pfq::app {

// --device: the text as given (echoed and saved as is: cpu | cuda | cuda:N) and the Device it
// names. resolve() parses the text and checks that a CUDA device is usable ("built without
// CUDA", "no CUDA GPU present": never a silent CPU fallback) the first time; copies keep the
// parsed Device, so a run parses its device once.
class DeviceOption {
 public:
  DeviceOption(std::string text = "cpu") : text_(std::move(text)) {}
  DeviceOption(const char* text) : text_(text) {}
  const std::string& str() const { return text_; }
  Device resolve() const;

 private:
  friend CLI::Option* add_device_flag(CLI::App* cmd, DeviceOption& d, const std::string& help);
  std::string text_;
  mutable std::optional<Device> device_;
};

// "cuda:0,cuda:1" -> {"cuda:0", "cuda:1"} (pfq reproduce's --device list); throws, naming
// --device, for an empty list or an entry that is not cpu, cuda or cuda:N.
std::vector<std::string> parse_devices(const std::string& list);

struct ModelOptions {
  std::string model = "resnet20";
  double width = 1.0;  // channel width multiplier (MobileNets)
};

struct DataOptions {
  std::string dataset = "fashion-mnist";
  std::string data_dir;      // "" = the dataset's default location
  int64_t limit_train = 0;   // use only the first N training images (0 = all)
  int64_t limit_test = 0;
  int64_t batch_size = 128;  // of the training batches
  int workers = 2;           // loader threads
  int64_t eval_batch_size = 0;  // of the test batches; 0 = eval_batch_size(d)'s default
  // image folders: skip (count, name) undecodable and non-image files instead of stopping; the
  // training crop and evaluation center-crop size, and the shorter side evaluation resizes to
  bool skip_bad = false;
  int64_t image_size = 224;
  int64_t resize_size = 256;
};
// The test batches' size: d.eval_batch_size, or by default 256 for the small-image datasets and
// the training batch size for image folders (ImageNet-size inputs), so that evaluating needs no
// more memory than a training step (no autograd graph is kept).
int64_t eval_batch_size(const DataOptions& d);

struct RunOptions {
  std::string out;  // output folder; each command sets its default
  uint64_t seed = 0;
  int threads = 0;  // OpenMP threads (0 = OpenMP's default)
  DeviceOption device;
  bool quiet = false;  // no progress bar (not saved: it changes no result)
};

// A data-parallel run (mpirun / srun; docs/distributed.md). --batch-size is the global batch:
// the ranks split each batch, so N ranks train what one process with the same flags trains.
struct ParallelOptions {
  bool sync_bn = false;   // BatchNorm statistics over every rank's share of the batch
  bool scale_lr = false;  // --lr (and the fine-tuning LR) times the number of ranks (the linear
                          // scaling rule, for runs whose --batch-size grows with the ranks)
  bool no_overlap = false;  // gradients all-reduced after the backward pass, not during it
};
// The learning rate a run uses: lr, times the ranks with scale_lr.
double scaled_lr(const ParallelOptions& p, double lr);
void add_parallel_flags(CLI::App* cmd, ParallelOptions& o);

// What make_optimizer builds (apps/trainer.h); the LR is set per iteration by the schedule.
struct OptimizerOptions {
  std::string optimizer = "sgd";  // sgd | adam | adamw
  double lr = 0.1;
  double momentum = 0.9;
  bool nesterov = true;
  double weight_decay = 5e-4;
  bool no_decay_bn_bias = false;
};

// What `pfq workflow` and `pfq reproduce` share: model, data and the schedule of the stages
// (pretrain, PfQ, quantized fine-tuning; docs/method.md sections 3, 4.1, 4.3).
struct StageOptions : ModelOptions, DataOptions {
  StageOptions() {
    model = "mobilenetv1";
    width = 0.5;
  }
  bool quick = false;  // reduced schedule and data for smoke tests (apply_quick)
  int64_t pretrain_epochs = 3;
  double pretrain_lr = 0.1;
  double weight_decay = 5e-4;
  std::string criterion = "var-below-eps";
  std::string border = "exact";
  int64_t finetune_epochs = 1;
  double finetune_lr = 0.01;
};
// --quick's reductions: at most 2 pretraining and 1 fine-tuning epochs, 4096 training and 1000
// test images unless limits are given.
void apply_quick(StageOptions& o);

// Each group's JSON: to_json writes its keys, from_json reads those present (absent keys keep
// their values; other keys are left to the command's struct).
void to_json(nlohmann::json& j, const DeviceOption& o);
void from_json(const nlohmann::json& j, DeviceOption& o);
void to_json(nlohmann::json& j, const ModelOptions& o);
void from_json(const nlohmann::json& j, ModelOptions& o);
void to_json(nlohmann::json& j, const DataOptions& o);
void from_json(const nlohmann::json& j, DataOptions& o);
void to_json(nlohmann::json& j, const RunOptions& o);
void from_json(const nlohmann::json& j, RunOptions& o);
void to_json(nlohmann::json& j, const OptimizerOptions& o);
void from_json(const nlohmann::json& j, OptimizerOptions& o);
void to_json(nlohmann::json& j, const StageOptions& o);
void to_json(nlohmann::json& j, const ParallelOptions& o);
void from_json(const nlohmann::json& j, ParallelOptions& o);
void from_json(const nlohmann::json& j, StageOptions& o);

// A command's struct O made of groups: json(o) merges the groups' objects into `j`; from_json
// reads every group's keys.
template <typename... Groups, typename O>
void groups_to_json(nlohmann::json& j, const O& o) {
  (j.update(nlohmann::json(static_cast<const Groups&>(o))), ...);
}
template <typename... Groups, typename O>
void groups_from_json(const nlohmann::json& j, O& o) {
  (from_json(j, static_cast<Groups&>(o)), ...);
}
// Throws "<what>: expected a JSON object, got ..." unless j is an object, and "<what>: unknown
// key 'k'" for a key that `known` (a command's options as JSON) lacks.
void check_option_keys(const nlohmann::json& j, const nlohmann::json& known, const char* what);

// Loader over `dataset` split with the default transforms; `limit` > 0 keeps the first N.
// `images`: --skip-bad, --image-size and --resize-size (image folders; the defaults otherwise).
std::unique_ptr<data::DataLoader> make_loader(const std::string& dataset, const std::string& data_dir, bool train,
                                              int64_t batch_size, int workers, uint64_t seed, int64_t limit,
                                              const DataOptions& images = {});
// d's training split (batch_size, limit_train) and test split (eval_batch_size(d), limit_test).
std::unique_ptr<data::DataLoader> make_train_loader(const DataOptions& d, uint64_t seed);
// `config` with "backend": the process's kernel choices (core/backend_options.h), as every
// command echoes its configuration and every run saves it.
nlohmann::json with_backend(nlohmann::json config);

std::unique_ptr<data::DataLoader> make_test_loader(const DataOptions& d, uint64_t seed);

// The flags of the groups. A flag's description is what the command's --help said before the
// groups were shared ("" = none); nullptr leaves the flag out.
struct ModelFlagsHelp {
  const char* model = "";
  const char* width = "";
};
void add_model_flags(CLI::App* cmd, ModelOptions& o, const ModelFlagsHelp& help = {});

struct DataFlagsHelp {
  const char* dataset = "";
  const char* data_dir = "dataset folder (default: the dataset's standard location)";
  const char* limit_train = "use only the first N training images";
  const char* limit_test = "use only the first N test images";
  const char* batch_size = "";
  const char* workers = "data loader threads";
  bool workers_default = true;  // --help shows the default
};
// Workflow's and reproduce's data flags: no descriptions.
inline constexpr DataFlagsHelp kTerseDataFlags{"", "", "", "", "", ""};
void add_data_flags(CLI::App* cmd, DataOptions& o, const DataFlagsHelp& help = {});

CLI::Option* add_device_flag(CLI::App* cmd, DeviceOption& d, const std::string& help = "cpu | cuda | cuda:N");

struct RunFlagsHelp {
  const char* out;  // what the output folder holds
  const char* threads = "OpenMP threads (0 = all cores)";
  bool threads_default = true;
  const char* device = "cpu | cuda | cuda:N";
  const char* quiet = "no progress bar";
};
void add_run_flags(CLI::App* cmd, RunOptions& o, const RunFlagsHelp& help);

// --model, --width, the data flags (kTerseDataFlags, `workers_help` for --workers) and the
// schedule: --pretrain-epochs, --pretrain-lr, --weight-decay, --criterion, --border and
// --finetune-lr (--finetune-epochs and --quick are the command's: their help differs).
void add_stage_flags(CLI::App* cmd, StageOptions& o, const char* workers_help);

}  // namespace pfq::app
