// run_options.cpp — the shared option groups: device parsing, JSON, loaders and flags
// (apps/run_options.h).
#include "apps/run_options.h"

#include "apps/cli_checks.h"
#include "core/backend_options.h"
#include "core/device.h"
#include "core/dist/communicator.h"
#include "core/io/json_fields.h"
#include "data/factory.h"
#include "data/subset.h"
#include "layers/models/registry.h"

namespace pfq::app {

Device DeviceOption::resolve() const {
  if (!device_) {
    const Device d = Device::parse(text_);
    if (d.is_cuda()) require_device(d);  // "built without CUDA" / "no CUDA GPU present": never a CPU fallback
    device_ = d;
  }
  return *device_;
}

std::vector<std::string> parse_devices(const std::string& list) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t comma = list.find(',', start);
    const std::string d = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    PFQ_CHECK(Device::try_parse(d).has_value(), "reproduce: --device '", list, "': entry '", d,
              "' is not cpu, cuda or cuda:N (a list separates devices by commas: cuda:0,cuda:1)");
    out.push_back(d);
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

void apply_quick(StageOptions& o) {
  o.pretrain_epochs = std::min<int64_t>(o.pretrain_epochs, 2);
  o.finetune_epochs = std::min<int64_t>(o.finetune_epochs, 1);
  if (o.limit_train == 0) o.limit_train = 4096;
  if (o.limit_test == 0) o.limit_test = 1000;
}

void to_json(nlohmann::json& j, const DeviceOption& o) { j = o.str(); }
void from_json(const nlohmann::json& j, DeviceOption& o) { o = DeviceOption(j.get<std::string>()); }

#define PFQ_MODEL_FIELDS(X) X(model) X(width)
#define PFQ_DATA_FIELDS(X) \
  X(dataset) X(data_dir) X(limit_train) X(limit_test) X(batch_size) X(workers) X(eval_batch_size) X(skip_bad) X(image_size) X(resize_size)
#define PFQ_RUN_FIELDS(X) X(out) X(seed) X(threads) X(device)
#define PFQ_OPTIMIZER_FIELDS(X) X(optimizer) X(lr) X(momentum) X(nesterov) X(weight_decay) X(no_decay_bn_bias)
#define PFQ_PARALLEL_FIELDS(X) X(sync_bn) X(scale_lr) X(no_overlap)
#define PFQ_STAGE_FIELDS(X) \
  X(quick) X(pretrain_epochs) X(pretrain_lr) X(weight_decay) X(criterion) X(border) X(finetune_epochs) X(finetune_lr)

void to_json(nlohmann::json& j, const ModelOptions& o) { PFQ_JSON_WRITE_FIELDS(j, o, PFQ_MODEL_FIELDS); }
void from_json(const nlohmann::json& j, ModelOptions& o) { PFQ_JSON_READ_FIELDS(j, o, PFQ_MODEL_FIELDS, nullptr); }
void to_json(nlohmann::json& j, const DataOptions& o) { PFQ_JSON_WRITE_FIELDS(j, o, PFQ_DATA_FIELDS); }
void from_json(const nlohmann::json& j, DataOptions& o) { PFQ_JSON_READ_FIELDS(j, o, PFQ_DATA_FIELDS, nullptr); }
void to_json(nlohmann::json& j, const RunOptions& o) { PFQ_JSON_WRITE_FIELDS(j, o, PFQ_RUN_FIELDS); }
void from_json(const nlohmann::json& j, RunOptions& o) { PFQ_JSON_READ_FIELDS(j, o, PFQ_RUN_FIELDS, nullptr); }
void to_json(nlohmann::json& j, const OptimizerOptions& o) { PFQ_JSON_WRITE_FIELDS(j, o, PFQ_OPTIMIZER_FIELDS); }
void from_json(const nlohmann::json& j, OptimizerOptions& o) { PFQ_JSON_READ_FIELDS(j, o, PFQ_OPTIMIZER_FIELDS, nullptr); }
void to_json(nlohmann::json& j, const ParallelOptions& o) { PFQ_JSON_WRITE_FIELDS(j, o, PFQ_PARALLEL_FIELDS); }
void from_json(const nlohmann::json& j, ParallelOptions& o) { PFQ_JSON_READ_FIELDS(j, o, PFQ_PARALLEL_FIELDS, nullptr); }
void to_json(nlohmann::json& j, const StageOptions& o) {
  PFQ_JSON_WRITE_FIELDS(j, o, PFQ_STAGE_FIELDS);
  groups_to_json<ModelOptions, DataOptions>(j, o);
}
void from_json(const nlohmann::json& j, StageOptions& o) {
  groups_from_json<ModelOptions, DataOptions>(j, o);
  PFQ_JSON_READ_FIELDS(j, o, PFQ_STAGE_FIELDS, nullptr);
}

void check_option_keys(const nlohmann::json& j, const nlohmann::json& known, const char* what) {
  PFQ_CHECK(j.is_object(), what, ": expected a JSON object, got ", j.type_name());
  for (const auto& [key, value] : j.items()) PFQ_CHECK(known.contains(key), what, ": unknown key '", key, "'");
}

std::unique_ptr<data::DataLoader> make_loader(const std::string& dataset, const std::string& data_dir, bool train,
                                              int64_t batch_size, int workers, uint64_t seed, int64_t limit,
                                              const DataOptions& images) {
  const std::string dir = data_dir.empty() ? data::default_data_dir(dataset) : data_dir;
  data::DatasetOptions dso;
  dso.skip_bad = images.skip_bad;
  std::shared_ptr<const data::Dataset> ds = data::make_dataset(dataset, dir, train ? "train" : "test", dso);
  if (limit > 0 && limit < ds->size()) ds = std::make_shared<data::SubsetDataset>(ds, limit);
  data::LoaderOptions lo;
  lo.batch_size = batch_size;
  lo.shuffle = train;
  lo.drop_last = train;
  lo.workers = workers;
  lo.seed = seed;
  data::TransformOptions to;
  to.image_size = images.image_size;
  to.resize_size = images.resize_size;
  return std::make_unique<data::DataLoader>(ds, data::default_transform(dataset, train, to), lo);
}

std::unique_ptr<data::DataLoader> make_train_loader(const DataOptions& d, uint64_t seed) {
  return make_loader(d.dataset, d.data_dir, true, d.batch_size, d.workers, seed, d.limit_train, d);
}

int64_t eval_batch_size(const DataOptions& d) {
  if (d.eval_batch_size > 0) return d.eval_batch_size;
  return d.dataset == "imagefolder" ? d.batch_size : 256;
}

std::unique_ptr<data::DataLoader> make_test_loader(const DataOptions& d, uint64_t seed) {
  return make_loader(d.dataset, d.data_dir, false, eval_batch_size(d), d.workers, seed, d.limit_test, d);
}

void add_model_flags(CLI::App* cmd, ModelOptions& o, const ModelFlagsHelp& help) {
  cmd->add_option("--model", o.model, help.model)->check(CLI::IsMember(models::model_names()))->capture_default_str();
  cmd->add_option("--width", o.width, help.width)->check(::pfq::app::Positive)->capture_default_str();
}

void add_data_flags(CLI::App* cmd, DataOptions& o, const DataFlagsHelp& help) {
  if (help.dataset)
    cmd->add_option("--dataset", o.dataset, help.dataset)->check(CLI::IsMember(data::dataset_names()))->capture_default_str();
  if (help.data_dir) cmd->add_option("--data-dir", o.data_dir, help.data_dir);
  if (help.limit_train) cmd->add_option("--limit-train", o.limit_train, help.limit_train)->check(::pfq::app::NonNegative);
  if (help.limit_test) cmd->add_option("--limit-test", o.limit_test, help.limit_test)->check(::pfq::app::NonNegative);
  if (help.batch_size) cmd->add_option("--batch-size", o.batch_size, help.batch_size)->check(::pfq::app::Positive)->capture_default_str();
  cmd->add_option("--eval-batch-size", o.eval_batch_size,
                  "test batches (0: 256 for the small-image datasets; for image folders the training batch size, "
                  "--batch-size, 128 unless set, which keeps evaluation within a training step's memory)")
      ->check(::pfq::app::NonNegative);
  if (help.workers) {
    auto* w = cmd->add_option("--workers", o.workers, help.workers)->check(::pfq::app::NonNegative);
    if (help.workers_default) w->capture_default_str();
  }
  cmd->add_flag("--skip-bad", o.skip_bad,
                "image folders: skip undecodable and non-image files (counted in metrics, named in skipped_files.txt) "
                "instead of stopping at the first with its name");
  cmd->add_option("--image-size", o.image_size, "image folders: crop size of training and evaluation")
      ->check(::pfq::app::Positive)->capture_default_str();
  cmd->add_option("--resize-size", o.resize_size, "image folders: shorter side evaluation resizes to before the center crop")
      ->check(::pfq::app::Positive)->capture_default_str();
}

CLI::Option* add_device_flag(CLI::App* cmd, DeviceOption& d, const std::string& help) {
  return cmd->add_option("--device", d.text_, help)->capture_default_str();
}

void add_run_flags(CLI::App* cmd, RunOptions& o, const RunFlagsHelp& help) {
  cmd->add_option("--out", o.out, help.out)->capture_default_str();
  cmd->add_option("--seed", o.seed)->capture_default_str();
  auto* t = cmd->add_option("--threads", o.threads, help.threads)->check(::pfq::app::NonNegative);
  if (help.threads_default) t->capture_default_str();
  add_device_flag(cmd, o.device, help.device);
  if (help.quiet) cmd->add_flag("--quiet", o.quiet, help.quiet);
}

void add_stage_flags(CLI::App* cmd, StageOptions& o, const char* workers_help) {
  add_model_flags(cmd, o);
  DataFlagsHelp data = kTerseDataFlags;
  data.workers = workers_help;
  add_data_flags(cmd, o, data);
  cmd->add_option("--pretrain-epochs", o.pretrain_epochs)->check(::pfq::app::Positive)->capture_default_str();
  cmd->add_option("--pretrain-lr", o.pretrain_lr)->check(::pfq::app::Positive)->capture_default_str();
  cmd->add_option("--weight-decay", o.weight_decay)->check(::pfq::app::NonNegative)->capture_default_str();
  cmd->add_option("--criterion", o.criterion, "PfQ criterion: var-below-eps | var-zero | var-below=<t>")->capture_default_str();
  cmd->add_option("--border", o.border, "PfQ border mode")->check(CLI::IsMember({"exact", "bias", "keep"}))->capture_default_str();
  cmd->add_option("--finetune-lr", o.finetune_lr)->check(::pfq::app::Positive)->capture_default_str();
}

nlohmann::json with_backend(nlohmann::json config) {
  config["backend"] = backend_options_json();
  if (dist::world().size() > 1) config["ranks"] = {{"size", dist::world().size()}, {"communicator", dist::world().backend()}};
  return config;
}

double scaled_lr(const ParallelOptions& p, double lr) { return p.scale_lr ? lr * dist::world().size() : lr; }

void add_parallel_flags(CLI::App* cmd, ParallelOptions& o) {
  cmd->add_flag("--sync-bn", o.sync_bn, "data-parallel runs: BatchNorm statistics over all ranks' images (default: per rank, averaged at evaluation)");
  cmd->add_flag("--scale-lr", o.scale_lr, "data-parallel runs: multiply the learning rate by the number of ranks (linear scaling rule)");
  cmd->add_flag("--no-overlap", o.no_overlap,
                "data-parallel runs: all-reduce the gradients after the backward pass instead of during it (same results; for comparison)");
}

}  // namespace pfq::app
