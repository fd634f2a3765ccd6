// loader.cpp — DataLoader (see loader.h). Workers claim batch indices in order within a window
// of `prefetch` batches past the consumer, build them without the lock, and park them in a map
// that next() drains in index order.
#include "data/loader.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace pfq::data {

static uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t sample_seed(uint64_t seed, int64_t epoch, int64_t index) {
  uint64_t h = splitmix64(seed);
  h = splitmix64(h ^ static_cast<uint64_t>(epoch));
  return splitmix64(h ^ static_cast<uint64_t>(index));
}

std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch, bool shuffle) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
  if (!shuffle) return order;
  // A stream distinct from every sample_seed: sample indices are >= 0, this uses index -1.
  Generator g(sample_seed(seed, epoch, -1));
  for (int64_t i = n - 1; i > 0; --i) std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(g.randint(i + 1))]);
  return order;
}

Batch make_batch(const Dataset& dataset, const Transform* transform, const std::vector<int64_t>& indices,
                 uint64_t seed, int64_t epoch) {
  PFQ_CHECK(!indices.empty(), "make_batch: no sample indices");
  const int64_t n = static_cast<int64_t>(indices.size());
  Batch b;
  b.epoch = epoch;
  b.labels = Tensor::empty({n}, DType::Int64);
  int64_t* labels = b.labels.data<int64_t>();
  float* dst = nullptr;
  Dims dims{0, 0, 0};
  for (int64_t i = 0; i < n; ++i) {
    const int64_t idx = indices[static_cast<size_t>(i)];
    Generator g(sample_seed(seed, epoch, idx));
    Sample s = dataset.get_transformed(idx, transform, g);
    PFQ_CHECK(s.label >= 0 && s.label < dataset.num_classes(), dataset.description(), ": sample ", idx, " has label ",
              s.label, " outside [0, ", dataset.num_classes(), ")");
    const Dims d{s.image.channels, s.image.height, s.image.width};
    if (i == 0) {
      dims = d;
      b.images = Tensor::empty({n, d[0], d[1], d[2]}, DType::Float32);
      dst = b.images.data<float>();
    }
    PFQ_CHECK(d == dims, dataset.description(), ": sample ", idx, " is ", s.image.dims_str(), " after transforms but sample ",
              indices[0], " is ", dims[0], "x", dims[1], "x", dims[2], "; batched images need one size (add a resize/crop transform)");
    std::memcpy(dst + i * d[0] * d[1] * d[2], s.image.data.data(), s.image.data.size() * sizeof(float));
    labels[i] = s.label;
  }
  return b;
}

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, TransformPtr transform, LoaderOptions options)
    : dataset_(std::move(dataset)), transform_(std::move(transform)), options_(options) {
  PFQ_CHECK(dataset_, "DataLoader: null dataset");
  PFQ_CHECK(options_.batch_size > 0, "DataLoader: batch_size must be positive, got ", options_.batch_size);
  PFQ_CHECK(options_.workers >= 0, "DataLoader: workers must be >= 0, got ", options_.workers);
  PFQ_CHECK(options_.prefetch >= 0, "DataLoader: prefetch must be >= 0, got ", options_.prefetch);
  if (options_.prefetch == 0) options_.prefetch = std::max(2, 2 * options_.workers);
}

DataLoader::~DataLoader() { stop_workers(); }

int64_t DataLoader::num_batches() const {
  const int64_t n = dataset_->size(), bs = options_.batch_size;
  if (options_.drop_last) return n / bs;
  const int64_t full = n / bs, tail = n % bs;
  return full + (tail > 0 && tail >= options_.ranks);
}

int64_t DataLoader::global_batch_size(int64_t b) const {
  return std::min<int64_t>(options_.batch_size, dataset_->size() - b * options_.batch_size);
}

std::pair<int64_t, int64_t> DataLoader::shard_bounds(int64_t b, int rank) const {
  const int64_t lo = b * options_.batch_size, n = global_batch_size(b);
  return {lo + rank * n / options_.ranks, lo + (rank + 1) * n / options_.ranks};
}

void DataLoader::shard(int rank, int ranks) {
  PFQ_CHECK(!started_, "DataLoader::shard: call it before the first start_epoch");
  PFQ_CHECK(ranks >= 1 && rank >= 0 && rank < ranks, "DataLoader::shard: rank ", rank, " of ", ranks);
  PFQ_CHECK(options_.batch_size >= ranks, "batch size ", options_.batch_size, " is smaller than the number of ranks (", ranks,
            "): every rank needs at least one image of each batch");
  options_.rank = rank;
  options_.ranks = ranks;
}

std::vector<int64_t> DataLoader::batch_indices(int64_t b) const {
  const auto [lo, hi] = shard_bounds(b, options_.rank);
  return std::vector<int64_t>(order_.begin() + lo, order_.begin() + hi);
}

void DataLoader::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  space_cv_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void DataLoader::start_epoch(int64_t epoch, int64_t first_batch) {
  stop_workers();
  const int64_t nb = num_batches();
  PFQ_CHECK(first_batch >= 0 && first_batch <= nb, "DataLoader::start_epoch: first_batch ", first_batch,
            " outside [0, ", nb, "] (", nb, " batches per epoch)");
  {
    std::lock_guard<std::mutex> lock(mu_);
    order_ = epoch_order(dataset_->size(), options_.seed, epoch, options_.shuffle);
    epoch_ = epoch;
    end_batch_ = nb;
    next_claim_ = next_consume_ = first_batch;
    ready_.clear();
    failed_ = nullptr;
    stop_ = false;
    started_ = true;
  }
  for (int i = 0; i < options_.workers; ++i) threads_.emplace_back([this] { worker_loop(); });
}

void DataLoader::worker_loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    space_cv_.wait(lock, [&] {
      return stop_ || next_claim_ >= end_batch_ || next_claim_ < next_consume_ + options_.prefetch;
    });
    if (stop_ || next_claim_ >= end_batch_) return;
    const int64_t b = next_claim_++;
    const std::vector<int64_t> indices = batch_indices(b);
    const int64_t epoch = epoch_;
    lock.unlock();
    Slot slot;
    try {
      slot.batch = make_batch(*dataset_, transform_.get(), indices, options_.seed, epoch);
      slot.batch->index = b;
      slot.batch->global_size = global_batch_size(b);
    } catch (...) {
      slot.error = std::current_exception();
    }
    lock.lock();
    ready_[b] = std::move(slot);
    ready_cv_.notify_all();
  }
}

std::optional<Batch> DataLoader::next() {
  std::unique_lock<std::mutex> lock(mu_);
  PFQ_CHECK(started_, "DataLoader::next: call start_epoch(epoch) first");
  if (failed_) std::rethrow_exception(failed_);
  if (next_consume_ >= end_batch_) return std::nullopt;
  const int64_t b = next_consume_;
  Slot slot;
  if (options_.workers == 0) {
    try {
      slot.batch = make_batch(*dataset_, transform_.get(), batch_indices(b), options_.seed, epoch_);
      slot.batch->index = b;
      slot.batch->global_size = global_batch_size(b);
    } catch (...) {
      slot.error = std::current_exception();
    }
  } else {
    ready_cv_.wait(lock, [&] { return ready_.count(b) > 0; });
    auto it = ready_.find(b);
    slot = std::move(it->second);
    ready_.erase(it);
  }
  ++next_consume_;
  space_cv_.notify_all();
  if (slot.error) {
    failed_ = slot.error;
    std::rethrow_exception(slot.error);
  }
  return std::move(slot.batch);
}

}  // namespace pfq::data
