// data_parallel.h — what a model needs to train on several ranks (apps/): the same starting
// weights everywhere (rank 0's, broadcast), gradients summed over ranks in buckets, each bucket's
// all-reduce started during the backward pass once its gradients are final (apps/gradient_buckets.h;
// every rank's loss scaled by its share of the global batch first, so the sum is the gradient of
// the global batch's mean loss), BatchNorm's running statistics averaged before
// every evaluation and checkpoint (or exact with --sync-bn), and checks that the ranks run the
// same configuration and still hold the same weights. One rank: every call returns at once.
// The launch, the communicator and the loader's shards: core/dist/communicator.h, data/loader.h.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "data/loader.h"
#include "layers/module.h"

namespace pfq::app {

class GradientBuckets;

struct DataParallelOptions {
  bool sync_bn = false;                // BatchNorm2d normalises with all ranks' batch statistics
  // backward() starts each bucket's all-reduce during the backward pass (false: after it, the
  // same buckets in the same order; the sums are the same, bit for bit with 2 ranks). Must be the
  // same on every rank (--no-overlap is part of the configuration the ranks compare).
  bool overlap = true;
  int64_t bucket_bytes = 16 << 20;     // gradients per all-reduce call
  int64_t first_bucket_bytes = 1 << 20;  // the first bucket's (the last layers'), as PyTorch's DDP
};

class DataParallel {
 public:
  // Broadcasts rank 0's parameters and buffers (identical seeds make them equal already; this
  // makes it so whatever the caller did) and, with sync_bn, switches every BatchNorm2d to it.
  DataParallel(Module& model, const DataParallelOptions& o = {});
  ~DataParallel();
  int ranks() const { return ranks_; }
  // loss.backward(), then every parameter's gradient summed over the ranks. With overlap, each
  // bucket's all-reduce starts as soon as backward has finished its gradients (and the buckets
  // before it have started); returns when all are summed. One rank: loss.backward().
  void backward(const Tensor& loss);
  // Sums every parameter's gradient over the ranks, after a backward pass run without backward()
  // (parameters without a gradient on every rank are skipped on all: which have one is the same
  // everywhere, the model being the same).
  void all_reduce_gradients();
  // Averages the floating-point buffers that each rank updates from its own batches (BN running
  // mean / variance): after it every rank evaluates and saves the same model.
  void average_buffers();
  // Throws, on every rank, naming the first parameter whose value differs between ranks (a
  // checksum per tensor, compared by min/max all-reduce).
  void check_replicas_agree(const std::string& when);

 private:
  GradientBuckets& buckets();  // made at construction, again if the parameters were replaced
  Module& model_;
  DataParallelOptions o_;
  int ranks_ = 1;
  std::unique_ptr<GradientBuckets> buckets_;
};

// Every rank's `config` (the command's options and the data it found) must equal rank 0's:
// throws on every rank, naming the first rank and key that differ, before anything is trained.
void check_same_configuration(const nlohmann::json& config, const std::string& what);

// `config` with the sizes of the training and test sets the loaders found ("train_images",
// "test_images"): a rank that sees other data is refused like one that got other flags.
nlohmann::json with_data_sizes(nlohmann::json config, const data::DataLoader& train, const data::DataLoader& test);

// Splits the loaders' batches over the ranks (DataLoader::shard) when there are several.
void shard_loaders(data::DataLoader& train, data::DataLoader& test);

// --device for this rank: cuda picks the local rank's GPU (cuda:N given: N + local rank), cpu is
// itself; sets up NCCL for a CUDA run of several ranks. Refuses more ranks on a machine than GPUs.
Device rank_device(Device requested);

// A step of a multi-stage command that trains nothing and writes files (the workflow's import,
// PfQ, integer and ONNX checks; reproduce's pruning): rank 0 runs `step` as a group of one
// (dist::SoloScope) while the others wait, and every rank returns rank 0's result. An error on
// rank 0 ends every rank (main's abort), so none waits forever. One rank: `step()`.
nlohmann::json on_main_rank(const std::function<nlohmann::json()>& step);

// Throws, naming the rank and `path`, when a file that rank 0 wrote (a stage's checkpoint) cannot
// be seen here: the ranks of a multi-stage command hand files to each other through --out, which
// must be on a filesystem they share (one machine, or NFS / Lustre across machines).
void require_shared_file(const std::string& path, const std::string& what);

// OpenMP threads for this rank: `threads` when given, else the machine's cores split evenly
// over the ranks on it (at least 1).
int rank_threads(int threads);

}  // namespace pfq::app
