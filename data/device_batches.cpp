// device_batches.cpp — see device_batches.h.
#include "data/device_batches.h"

#include "core/backend_options.h"
#include "core/dtype.h"

namespace pfq::data {

bool async_uploads_enabled() { return backend_options().async_uploads; }

DeviceBatches::DeviceBatches(DataLoader& loader, Device device, bool async) : loader_(loader), device_(device) {
  if (device.is_cuda() && async) uploader_ = std::make_unique<PinnedUploader>(device);
}

void DeviceBatches::start_epoch(int64_t epoch, int64_t first_batch) {
  ahead_.reset();
  ahead_error_ = nullptr;
  loader_.start_epoch(epoch, first_batch);
  primed_ = false;
}

Tensor DeviceBatches::upload(const Tensor& host) {
  if (!uploader_) return host.to(device_);
  const Tensor src = host.contiguous();
  Tensor out = Tensor::empty(src.shape(), src.dtype(), device_);
  uploader_->upload(out.raw_data(), src.raw_data(), src.numel() * dtype_size(src.dtype()));
  return out;
}

std::optional<DeviceBatch> DeviceBatches::fetch() {
  std::optional<Batch> b = loader_.next();
  if (!b) return std::nullopt;
  DeviceBatch d;
  d.images = upload(b->images);
  d.labels = upload(b->labels);
  d.host = std::move(*b);
  return d;
}

std::optional<DeviceBatch> DeviceBatches::next() {
  if (!uploader_) return fetch();  // synchronous: nothing is fetched ahead
  if (!primed_) {
    primed_ = true;
    ahead_ = fetch();  // the first batch's error is this call's
  }
  if (ahead_error_) std::rethrow_exception(ahead_error_);
  std::optional<DeviceBatch> current = std::move(ahead_);
  ahead_.reset();
  if (current) {
    try {
      ahead_ = fetch();
    } catch (...) {
      ahead_error_ = std::current_exception();  // raised by the call that would have returned it
    }
  }
  return current;
}

}  // namespace pfq::data
