// device.cpp — the device-neutral half of core/device.h: Device's syntax, the CPU branches and
// PinnedUploader's handle; the CUDA work goes to core/cuda (kernels.h: a build without CUDA gets
// the throwing stubs generated from core/cuda/kernel_list.h).
#include "core/device.h"

#include <chrono>

#include "core/cuda/kernels.h"
#include "core/error.h"

namespace pfq {

std::string Device::str() const {
  return type == DeviceType::CPU ? std::string("cpu") : "cuda:" + std::to_string(index);
}

std::optional<Device> Device::try_parse(const std::string& text) {
  if (text == "cpu") return cpu();
  if (text == "cuda") return cuda(0);
  if (text.rfind("cuda:", 0) != 0 || text.size() == 5 || text.find_first_not_of("0123456789", 5) != std::string::npos)
    return std::nullopt;
  return cuda(std::stoi(text.substr(5)));
}

Device Device::parse(const std::string& text) {
  if (const auto d = try_parse(text)) return *d;
  PFQ_CHECK(text.rfind("cuda:", 0) != 0, "device '", text, "': expected cpu, cuda or cuda:N with N a GPU index");
  PFQ_FAIL("device '", text, "': expected cpu, cuda or cuda:N");
}

bool cuda_compiled() {
#ifdef PFQ_WITH_CUDA
  return true;
#else
  return false;
#endif
}

int cuda_device_count() { return cuda::device_count(); }

void require_device(Device device) {
  if (device.is_cuda()) cuda::require_device(device.index);
}

Device parse_usable_device(const std::string& text) {
  const Device d = Device::parse(text);
  require_device(d);
  return d;
}

void synchronize(Device device) {
  if (device.is_cuda()) cuda::synchronize(device.index);
}

std::vector<GpuInfo> cuda_devices() { return cuda::list_devices(); }

double device_time_ms(Device device, const std::function<void()>& enqueue, double spin_ms, double* host_ms) {
  if (device.is_cuda()) return cuda::device_time_ms(device.index, enqueue, spin_ms, host_ms);
  const auto t0 = std::chrono::steady_clock::now();
  enqueue();
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (host_ms) *host_ms = ms;
  return ms;
}

PinnedUploader::PinnedUploader(Device device) : device_(device) {
  PFQ_CHECK(device.is_cuda(), "PinnedUploader: uploads go to a CUDA device, not ", device.str());
  state_ = cuda::pinned_uploader_new(device.index);
}

PinnedUploader::~PinnedUploader() {
  if (state_) cuda::pinned_uploader_delete(state_);
}

void PinnedUploader::upload(void* dst, const void* src, size_t nbytes) { cuda::pinned_upload(state_, dst, src, nbytes); }

size_t PinnedUploader::pinned_bytes() const { return cuda::pinned_bytes(state_); }

}  // namespace pfq
