/// \file
/// device.h — the one public device API of pfq: what a Device is (parse, print), which GPUs the
/// build and the machine have, requiring one before use, waiting for one, timing device work and
/// asynchronous uploads from pinned host memory. data/, apps/ and the tests include this, never
/// core/cuda/*. CPU calls are no-ops where there is nothing to do, and nothing falls back to the
/// CPU. Leaves out memory, copies and kernels (core/allocator.h, Tensor::to, core/cuda internals).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace pfq {

/// Kinds of device a tensor can live on.
enum class DeviceType : uint8_t { CPU, CUDA };

/// A device: the CPU, or CUDA GPU number `index`.
struct Device {
  /// CPU or CUDA.
  DeviceType type = DeviceType::CPU;
  /// GPU number (0 for the CPU).
  int index = 0;
  /// The CPU.
  static Device cpu() { return {DeviceType::CPU, 0}; }
  /// CUDA GPU `i`.
  static Device cuda(int i = 0) { return {DeviceType::CUDA, i}; }
  /// True for the CPU.
  bool is_cpu() const { return type == DeviceType::CPU; }
  /// True for a CUDA GPU.
  bool is_cuda() const { return type == DeviceType::CUDA; }
  /// Same device (the index counts for CUDA only).
  bool operator==(const Device& o) const { return type == o.type && (type == DeviceType::CPU || index == o.index); }
  /// Different devices.
  bool operator!=(const Device& o) const { return !(*this == o); }
  /// "cpu" or "cuda:N".
  std::string str() const;
  /// Parses "cpu", "cuda", "cuda:N"; throws pfq::Error naming the text otherwise.
  static Device parse(const std::string& text);
  /// The same syntax without the error: nullopt for anything else (callers word their own).
  static std::optional<Device> try_parse(const std::string& text);
};

// ---- what this build and this machine have ----
bool cuda_compiled();     ///< the build has the CUDA backend (meson option cuda)
int cuda_device_count();  ///< 0 when built without CUDA or no GPU/driver is present
/// One GPU as the CUDA runtime reports it.
struct GpuInfo {
  /// CUDA device index.
  int index;
  /// Product name.
  std::string name;
  /// Device memory in bytes.
  size_t total_memory;
  /// Compute capability (major, minor).
  ///@{
  int cc_major, cc_minor;
  ///@}
};
std::vector<GpuInfo> cuda_devices();  ///< one entry per usable GPU, in index order

/// Nothing for the CPU; for cuda:N throws pfq::Error ("built without CUDA", "no CUDA GPU
/// present", "cuda:N out of range") unless that GPU is usable.
void require_device(Device device);
/// Device::parse(text), then require_device: the device a command's --device flag names.
Device parse_usable_device(const std::string& text);
/// Waits until the work queued on `device` is done (nothing for the CPU, whose work is synchronous).
void synchronize(Device device);

/// The device's own time for the work `enqueue` queues (for `pfq bench`). CUDA: a single spinning
/// thread holds the compute stream for about `spin_ms` while the host queues the work behind it, so
/// the kernels then run back to back, and the time between events recorded after the spin and after
/// the work is the device time without the host's launch gaps; the result is valid only when
/// `host_ms` (the host's time inside `enqueue`) stayed below `spin_ms` (the caller checks) and
/// `enqueue` did not wait for the device itself. CPU: the host's time for `enqueue` (both results).
double device_time_ms(Device device, const std::function<void()>& enqueue, double spin_ms, double* host_ms);

/// Asynchronous uploads through page-locked ("pinned") host memory, for the data loader. upload()
/// copies `nbytes` of `src` (any host memory) into a pinned staging buffer and returns once a
/// device copy of it is queued on this uploader's own stream. That copy starts after every kernel
/// already queued on the compute stream (so `dst`, perhaps a block a tensor just freed, is no
/// longer read), and every kernel queued after upload() returns waits for it: the copy of the
/// next batch overlaps the current step. `dst` must stay allocated until the copy is done, which
/// holds for a tensor that kernels queued later use. Staging buffers (a small ring) are reused
/// once their last copy finished. Non-copyable; the destructor waits for copies in flight.
/// The work is core/cuda's (cuda_runtime.cu); a build without CUDA throws on construction.
class PinnedUploader {
 public:
  explicit PinnedUploader(Device device);  ///< a CUDA device; throws without CUDA or without that GPU
  ~PinnedUploader();
  PinnedUploader(const PinnedUploader&) = delete;
  PinnedUploader& operator=(const PinnedUploader&) = delete;

  /// Copies `nbytes` from host memory `src` to device memory `dst` asynchronously (see the class comment).
  void upload(void* dst, const void* src, size_t nbytes);
  /// The GPU this uploader copies to.
  Device device() const { return device_; }
  size_t pinned_bytes() const;  ///< page-locked host memory held by the staging ring

 private:
  Device device_;
  void* state_ = nullptr;  ///< core/cuda's uploader: its stream, events and staging ring
};

}  // namespace pfq
