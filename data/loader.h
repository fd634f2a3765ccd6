/// \file
/// loader.h — DataLoader: batches a Dataset, shuffles per epoch from a seed, and decodes +
/// augments whole batches on worker threads ahead of the consumer (bounded prefetch window).
/// Augmentation draws from a Generator seeded by (seed, epoch, sample index) alone, so batches
/// are identical for any worker count. Device uploads (pinned, asynchronous): device_batches.h.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "core/tensor.h"
#include "data/dataset.h"
#include "data/transforms.h"

namespace pfq::data {

/// One batch as the loader returns it.
struct Batch {
  Tensor images;  ///< float32 [N, C, H, W]
  Tensor labels;  ///< int64 [N]
  /// Epoch it belongs to.
  int64_t epoch = 0;
  int64_t index = 0;  ///< batch index within the epoch
  int64_t global_size = 0;  ///< images in the whole batch over every rank (= images' N with one rank)
};

/// How a DataLoader batches, orders and prefetches.
struct LoaderOptions {
  /// Images per batch.
  int64_t batch_size = 128;
  /// A new seeded order every epoch (else dataset order).
  bool shuffle = true;
  /// Drop a last batch smaller than batch_size.
  bool drop_last = false;
  int workers = 2;        ///< 0: batches are built on the caller's thread inside next()
  int64_t prefetch = 0;   ///< batches ahead of the consumer (ready or in flight); 0: 2 * workers
  /// Seed of the order and of the augmentation.
  uint64_t seed = 0;
  /// Data parallelism: rank `rank` of `ranks` takes its share of every batch of the global order
  /// (DataLoader::shard_bounds), so the ranks' shards together are the one-process batch.
  ///@{
  int rank = 0, ranks = 1;
  ///@}
};

/// Seed of the Generator that augments sample `index` in `epoch` (splitmix64 mixing).
uint64_t sample_seed(uint64_t seed, int64_t epoch, int64_t index);
/// The sample order of an epoch: a seeded Fisher-Yates permutation, or 0..n-1 when !shuffle.
std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch, bool shuffle);
/// Loads, transforms and stacks the given samples. Every transformed image must have the same dims.
Batch make_batch(const Dataset& dataset, const Transform* transform, const std::vector<int64_t>& indices,
                 uint64_t seed, int64_t epoch);

/// Batches of a dataset: seeded order per epoch, augmentation on worker threads, prefetching; the same seed gives
/// the same batches whatever the worker count.
class DataLoader {
 public:
  /// transform may be null (images are stacked as the dataset returns them).
  DataLoader(std::shared_ptr<const Dataset> dataset, TransformPtr transform, LoaderOptions options);
  ~DataLoader();  ///< stops and joins the workers, whatever state the epoch is in
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  /// Batches per epoch. With several ranks a last batch smaller than the number of ranks is left
  /// out (every rank needs an image); otherwise the last uneven batch is split as evenly as it goes.
  int64_t num_batches() const;
  /// Shares of batch b (global positions [lo, hi) in the epoch's order) for every rank: rank r
  /// takes [lo + r * n / ranks, lo + (r + 1) * n / ranks) of the n = hi - lo images.
  std::pair<int64_t, int64_t> shard_bounds(int64_t b, int rank) const;
  /// Images in batch b over every rank.
  int64_t global_batch_size(int64_t b) const;
  /// Makes this loader rank `rank` of `ranks` (before the first start_epoch).
  void shard(int rank, int ranks);
  /// The options it was built with.
  const LoaderOptions& options() const { return options_; }
  /// The dataset it reads.
  const Dataset& dataset() const { return *dataset_; }
  /// The transform applied to each sample (may be null).
  const Transform* transform() const { return transform_.get(); }  // may be null
  /// Begins `epoch` at batch `first_batch` (resume mid-epoch; 0 <= first_batch <= num_batches()).
  /// Abandons any epoch in progress.
  void start_epoch(int64_t epoch, int64_t first_batch = 0);
  /// The next batch of the current epoch in order, or nullopt when the epoch is over. Rethrows
  /// an exception raised while building this batch (and on every later call until start_epoch).
  std::optional<Batch> next();

 private:
  void stop_workers();
  void worker_loop();
  std::vector<int64_t> batch_indices(int64_t b) const;

  std::shared_ptr<const Dataset> dataset_;
  TransformPtr transform_;
  LoaderOptions options_;

  std::mutex mu_;
  std::condition_variable ready_cv_;  ///< consumer waits for its batch
  std::condition_variable space_cv_;  ///< workers wait for room in the prefetch window
  std::vector<std::thread> threads_;
  bool started_ = false;
  bool stop_ = false;
  int64_t epoch_ = 0;
  std::vector<int64_t> order_;
  int64_t end_batch_ = 0;
  int64_t next_claim_ = 0;    ///< next batch a worker will build
  int64_t next_consume_ = 0;  ///< next batch next() returns
  struct Slot {
    std::optional<Batch> batch;
    std::exception_ptr error;
  };
  std::map<int64_t, Slot> ready_;
  std::exception_ptr failed_;
};

}  // namespace pfq::data
