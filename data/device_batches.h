// device_batches.h — DeviceBatches: a DataLoader's batches on the training device, one batch
// ahead. On CUDA the next batch is uploaded from page-locked memory on its own stream while the
// current step's kernels run (PinnedUploader, core/device.h); on the CPU the host batch is the batch.
#pragma once
#include <exception>
#include <memory>
#include <optional>

#include "core/device.h"
#include "core/tensor.h"
#include "data/loader.h"

namespace pfq::data {

struct DeviceBatch {
  Batch host;     // as the loader built it (labels stay readable on the host)
  Tensor images;  // host.images on the device
  Tensor labels;  // host.labels on the device
};

class DeviceBatches {
 public:
  // `loader` must outlive this object. async = false uploads each batch when it is asked for,
  // with a plain synchronous copy (the A/B baseline; also what the CPU device does).
  DeviceBatches(DataLoader& loader, Device device, bool async = true);
  DeviceBatches(const DeviceBatches&) = delete;
  DeviceBatches& operator=(const DeviceBatches&) = delete;

  // Starts the loader's epoch and queues the upload of its first batch.
  void start_epoch(int64_t epoch, int64_t first_batch = 0);
  // The next batch of the epoch on the device, or nullopt when it is over. Queues the upload of
  // the batch after it before returning. An error building that later batch is raised by the
  // call that would return it, as the loader itself would.
  std::optional<DeviceBatch> next();
  Device device() const { return device_; }

 private:
  std::optional<DeviceBatch> fetch();  // loader.next() and its upload (or pass-through)
  Tensor upload(const Tensor& host);

  DataLoader& loader_;
  Device device_;
  std::unique_ptr<PinnedUploader> uploader_;  // null: synchronous copies (or the CPU)
  std::optional<DeviceBatch> ahead_;
  std::exception_ptr ahead_error_;
  bool primed_ = false;
};

// backend_options().async_uploads (PFQ_SYNC_UPLOADS=1 turns the asynchronous uploads off, for A/B timing).
bool async_uploads_enabled();

}  // namespace pfq::data
