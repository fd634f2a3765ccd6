// data_parallel.cpp — gradient buckets, buffer averaging and the ranks' agreement checks
// (apps/data_parallel.h).
#include "apps/data_parallel.h"

#include "apps/gradient_buckets.h"
#include "core/grad_ready.h"

#include <algorithm>
#include <filesystem>
#include <thread>

#include "core/autograd.h"
#include "core/device.h"
#include "core/dist/communicator.h"
#include "core/ops.h"
#include "layers/batchnorm.h"
#include "quant/qat.h"

namespace pfq::app {

namespace {

// Sums `tensors` (same dtype and device) over the ranks in place, through flat buffers of about
// `bucket_bytes`: one all-reduce call per bucket instead of one per tensor.
void all_reduce_in_buckets(const std::vector<Tensor>& tensors, int64_t bucket_bytes) {
  const auto nbytes = [](const Tensor& t) { return t.numel() * static_cast<int64_t>(dtype_size(t.dtype())); };
  size_t i = 0;
  while (i < tensors.size()) {
    std::vector<Tensor> bucket;
    int64_t bytes = 0;
    while (i < tensors.size() && (bucket.empty() || bytes + nbytes(tensors[i]) <= bucket_bytes)) {
      bytes += nbytes(tensors[i]);
      bucket.push_back(tensors[i++]);
    }
    Tensor buf = flatten_copy(bucket);
    dist::world().all_reduce(buf, dist::ReduceOp::Sum);
    copy_from_flat(buf, bucket);
  }
}

// Two numbers per tensor that differ when its values do: the sum and a position-weighted sum.
std::vector<double> checksums(const NamedTensors& named) {
  std::vector<double> out;
  for (const auto& [name, t] : named) {
    const std::vector<double> v = t.detach().to(Device::cpu()).contiguous().to(DType::Float64).to_vector<double>();
    double s = 0, w = 0;
    for (size_t k = 0; k < v.size(); ++k) s += v[k], w += v[k] * static_cast<double>(k % 61 + 1);
    out.push_back(s);
    out.push_back(w);
  }
  return out;
}

// The BN statistics a rank updates from its batch: BatchNorm2d's, or those of a BN folded into a
// QAT convolution; `sync` is the module's --sync-bn switch. Null for other modules.
struct BnStatistics {
  bool* sync;
  Tensor mean, var;
};
std::optional<BnStatistics> bn_statistics(Module* m) {
  if (auto* bn = dynamic_cast<BatchNorm2d*>(m)) {
    if (!bn->track_running_stats) return BnStatistics{&bn->sync_stats, Tensor(), Tensor()};
    return BnStatistics{&bn->sync_stats, bn->running_mean(), bn->running_var()};
  }
  if (auto* bn = dynamic_cast<quant::FoldedBatchNorm2d*>(m)) return BnStatistics{&bn->sync_stats, bn->buffer("running_mean"), bn->buffer("running_var")};
  return std::nullopt;
}

}  // namespace

DataParallel::DataParallel(Module& model, const DataParallelOptions& o) : model_(model), o_(o), ranks_(dist::world().size()) {
  PFQ_CHECK(o.bucket_bytes > 0 && o.first_bucket_bytes > 0, "DataParallel: bucket_bytes and first_bucket_bytes must be positive");
  if (o.sync_bn)
    for (auto& [name, m] : model.named_modules())
      if (auto s = bn_statistics(m)) *s->sync = true;
  if (ranks_ == 1) return;
  NoGradGuard ng;
  for (const NamedTensors& group : {model.named_parameters(), model.named_buffers()})
    for (const auto& [name, t] : group) {
      Tensor c = t.contiguous();
      dist::world().broadcast(c, 0);
      if (!c.is_same(t)) Tensor(t).copy_(c);
    }
  buckets();
}

DataParallel::~DataParallel() = default;

GradientBuckets& DataParallel::buckets() {
  const NamedTensors params = model_.named_parameters();
  if (!buckets_ || !buckets_->same_parameters(params))
    buckets_ = std::make_unique<GradientBuckets>(params, o_.bucket_bytes, o_.first_bucket_bytes);
  return *buckets_;
}

void DataParallel::backward(const Tensor& loss) {
  if (ranks_ == 1 || !o_.overlap) {
    loss.backward();
    all_reduce_gradients();
    return;
  }
  GradientBuckets& b = buckets();
  b.begin();
  {
    // Which parameter is reported when depends on the graph alone, the same on every rank, so
    // the ranks start the buckets (and sync BN's all-reduces inside backward) in the same order.
    GradReadyHookScope hook([&b](const Tensor& leaf) { b.ready(&leaf.impl()); });
    loss.backward();
  }
  b.finish();
}

void DataParallel::all_reduce_gradients() {
  if (ranks_ == 1) return;
  GradientBuckets& b = buckets();
  b.begin();
  b.finish();  // every bucket, in the order backward() starts them
}

void DataParallel::average_buffers() {
  if (ranks_ == 1) return;
  NoGradGuard ng;
  std::vector<Tensor> stats;
  for (auto& [name, m] : model_.named_modules()) {
    const auto s = bn_statistics(m);
    if (!s || !s->mean.defined() || *s->sync) continue;  // sync BN's are equal already
    stats.push_back(s->mean);
    stats.push_back(s->var);
  }
  if (stats.empty()) return;
  all_reduce_in_buckets(stats, o_.bucket_bytes);
  for (Tensor& t : stats) t.copy_(mul(t, 1.0 / ranks_));
}

void DataParallel::check_replicas_agree(const std::string& when) {
  if (ranks_ == 1) return;
  const NamedTensors named = model_.named_parameters();
  const std::vector<double> mine = checksums(named);
  Tensor lo = Tensor::from_vector(mine, {static_cast<int64_t>(mine.size())}), hi = lo.clone();
  dist::world().all_reduce(lo, dist::ReduceOp::Min);
  dist::world().all_reduce(hi, dist::ReduceOp::Max);
  const std::vector<double> a = lo.to_vector<double>(), b = hi.to_vector<double>();
  for (size_t k = 0; k < a.size(); ++k)
    PFQ_CHECK(a[k] == b[k], when, ": parameter '", named[k / 2].first, "' differs between ranks (checksums ", a[k], " and ", b[k],
              "): the ranks no longer train the same model");
}

void check_same_configuration(const nlohmann::json& config, const std::string& what) {
  if (dist::world().size() == 1) return;
  const std::vector<std::string> all = dist::world().all_gather(config.dump());
  const nlohmann::json root = nlohmann::json::parse(all[0]);
  for (size_t r = 1; r < all.size(); ++r) {
    if (all[r] == all[0]) continue;
    const nlohmann::json other = nlohmann::json::parse(all[r]);
    std::string key = "(the order of keys)";
    for (const auto& [k, v] : root.items())
      if (!other.contains(k) || other[k] != v) {
        key = "'" + k + "': rank 0 has " + v.dump() + ", rank " + std::to_string(r) + " has " + (other.contains(k) ? other[k].dump() : "nothing");
        break;
      }
    PFQ_FAIL(what, " differs between ranks: ", key, ". Every rank must run the same command on the same data");
  }
}

nlohmann::json with_data_sizes(nlohmann::json config, const data::DataLoader& train, const data::DataLoader& test) {
  config["train_images"] = train.dataset().size();
  config["test_images"] = test.dataset().size();
  return config;
}

void shard_loaders(data::DataLoader& train, data::DataLoader& test) {
  const int rank = dist::world().rank(), ranks = dist::world().size();
  if (ranks == 1) return;
  train.shard(rank, ranks);
  test.shard(rank, ranks);
}

Device rank_device(Device requested) {
  const dist::Communicator& w = dist::world();
  if (w.size() == 1 || requested.is_cpu()) return requested;
  const int index = requested.index + w.local_rank(), count = cuda_device_count();
  PFQ_CHECK(index < count, "rank ", w.rank(), " (local rank ", w.local_rank(), " of ", w.local_size(), ") needs GPU cuda:", index,
            " but this machine has ", count, ": start at most as many ranks per machine as it has GPUs");
  const Device d = Device::cuda(index);
  require_device(d);
  dist::enable_nccl(index);
  return d;
}

nlohmann::json on_main_rank(const std::function<nlohmann::json()>& step) {
  if (dist::world().size() == 1) return step();
  std::string result;
  if (dist::is_main_rank()) {
    dist::SoloScope alone;
    result = step().dump();
  }
  return nlohmann::json::parse(dist::world().all_gather(result).front());
}

void require_shared_file(const std::string& path, const std::string& what) {
  if (dist::world().size() == 1) return;
  PFQ_CHECK(std::filesystem::exists(path), "rank ", dist::world().rank(), " cannot see ", what, " ", path,
            " that rank 0 wrote: the ranks hand a workflow's stages to each other through --out, which must be a folder "
            "every rank shares (one machine, or a network filesystem across machines)");
}

int rank_threads(int threads) {
  const dist::Communicator& w = dist::world();
  if (threads > 0 || w.size() == 1) return threads;
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::max(1, cores / w.local_size());
}

}  // namespace pfq::app
