// cuda_runtime.cu — the device plumbing of core/cuda/kernel_list.h (behind core/device.h): device
// discovery, a caching device allocator, synchronous copies, the pinned uploads' state and the
// first element-wise float32 kernels.
// Kernels and these copies run on the legacy default stream (the compute stream); the one other
// stream is PinnedUploader's, for batch uploads from page-locked memory.
#include <cuda_runtime.h>

#include <array>
#include <memory>
#include <chrono>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/cuda/cuda_check.h"
#include "core/cuda/kernels.h"
#include "core/cuda/device_cache.h"
#include "core/cuda/handles.h"  // compiled here so the handle plumbing stays building
#include "core/error.h"

namespace pfq::cuda {

// ---- devices ---------------------------------------------------------------------------
namespace {

struct DeviceCount {
  int count = 0;
  std::string why_none;  // the runtime's reason when count == 0
};

// Counted once: a machine without a driver or GPU answers with an error, which means "0 GPUs".
const DeviceCount& counted_devices() {
  static const DeviceCount result = [] {
    DeviceCount r;
    const cudaError_t status = cudaGetDeviceCount(&r.count);
    if (status != cudaSuccess) {
      r.count = 0;
      r.why_none = std::string(cudaGetErrorString(status)) + " (" + cudaGetErrorName(status) + ")";
      (void)cudaGetLastError();  // clear it so later calls do not report it
    } else if (r.count == 0) {
      r.why_none = "the CUDA runtime reports 0 devices";
    }
    return r;
  }();
  return result;
}

// Makes `index` the current device after checking it names a GPU.
void use_device(int index) {
  require_device(index);
  int current = -1;
  PFQ_CUDA_CHECK(cudaGetDevice(&current));
  if (current != index) PFQ_CUDA_CHECK(cudaSetDevice(index));
}

}  // namespace

int device_count() { return counted_devices().count; }

std::vector<GpuInfo> list_devices() {
  std::vector<GpuInfo> out;
  for (int i = 0; i < device_count(); ++i) {
    cudaDeviceProp prop{};
    PFQ_CUDA_CHECK(cudaGetDeviceProperties(&prop, i));
    out.push_back(GpuInfo{i, prop.name, prop.totalGlobalMem, prop.major, prop.minor});
  }
  return out;
}

void require_device(int index) {
  const DeviceCount& dc = counted_devices();
  PFQ_CHECK(dc.count > 0, "no CUDA GPU present (", dc.why_none,
            "): use --device cpu, or run on a machine with an NVIDIA GPU and driver");
  PFQ_CHECK(index >= 0 && index < dc.count, "cuda:", index, " out of range, ", dc.count,
            " GPU", dc.count == 1 ? "" : "s", " present (valid: cuda:0..cuda:", dc.count - 1, ")");
}

// ---- caching allocator -----------------------------------------------------------------
// cudaMalloc/cudaFree synchronise the device and cost tens of microseconds, so freed blocks are
// kept per device in size classes and handed out again; a training step reuses last step's.
namespace {

constexpr size_t kMinBlock = 512;
constexpr size_t kSmallLimit = size_t{1} << 20;  // up to 1 MiB: powers of two
constexpr size_t kLargeStep = size_t{2} << 20;   // above: multiples of 2 MiB

struct DeviceCache {
  std::unordered_map<size_t, std::vector<void*>> free_blocks;  // size class -> blocks
  std::unordered_map<void*, size_t> live;                       // pointer -> size class
  DeviceCacheStats stats;
};

class CachingAllocator {
 public:
  void* allocate(size_t nbytes, int index) {
    const size_t cls = device_size_class(nbytes);
    std::lock_guard<std::mutex> lock(mu_);
    DeviceCache& dc = cache(index);
    auto it = dc.free_blocks.find(cls);
    if (it != dc.free_blocks.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      dc.live.emplace(p, cls);
      dc.stats.bytes_cached -= cls;
      dc.stats.bytes_in_use += cls;
      ++dc.stats.cache_hits;
      return p;
    }
    use_device(index);
    void* p = nullptr;
    cudaError_t status = cudaMalloc(&p, cls);
    if (status == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      release_cached(dc);  // give the driver back what we hold and try once more
      status = cudaMalloc(&p, cls);
    }
    if (status != cudaSuccess) {
      (void)cudaGetLastError();
      PFQ_FAIL("CUDA call cudaMalloc failed on cuda:", index, " for ", nbytes, " bytes (size class ",
               cls, "; ", dc.stats.bytes_in_use, " bytes in use by tensors): ", cudaGetErrorString(status),
               " (", cudaGetErrorName(status), "); reduce --batch-size or the model size");
    }
    dc.live.emplace(p, cls);
    dc.stats.bytes_in_use += cls;
    ++dc.stats.cuda_mallocs;
    return p;
  }

  void release(void* p, int index) {
    std::lock_guard<std::mutex> lock(mu_);
    DeviceCache& dc = cache(index);
    auto it = dc.live.find(p);
    PFQ_CHECK(it != dc.live.end(), "device_free: pointer ", p, " was not allocated on cuda:", index,
              " by pfq::cuda::device_alloc (double free or wrong device)");
    const size_t cls = it->second;
    dc.live.erase(it);
    dc.free_blocks[cls].push_back(p);
    dc.stats.bytes_in_use -= cls;
    dc.stats.bytes_cached += cls;
  }

  DeviceCacheStats stats(int index) {
    std::lock_guard<std::mutex> lock(mu_);
    return cache(index).stats;
  }

  void empty(int index) {
    std::lock_guard<std::mutex> lock(mu_);
    DeviceCache& dc = cache(index);
    use_device(index);
    release_cached(dc);
  }

 private:
  DeviceCache& cache(int index) {
    require_device(index);
    if (caches_.size() < static_cast<size_t>(device_count())) caches_.resize(device_count());
    return caches_[index];
  }
  // Caller holds mu_ and has made the cache's device current.
  static void release_cached(DeviceCache& dc) {
    for (auto& [cls, blocks] : dc.free_blocks) {
      for (void* p : blocks) {
        PFQ_CUDA_CHECK(cudaFree(p));
        dc.stats.bytes_cached -= cls;
      }
      blocks.clear();
    }
  }

  std::mutex mu_;
  std::vector<DeviceCache> caches_;
};

// Leaked on purpose: freeing device memory from a static destructor at exit races the driver's
// own shutdown; the process exit returns the memory anyway.
CachingAllocator& allocator() {
  static auto* a = new CachingAllocator();
  return *a;
}

}  // namespace

size_t device_size_class(size_t nbytes) {
  if (nbytes <= kMinBlock) return kMinBlock;
  if (nbytes <= kSmallLimit) {
    size_t c = kMinBlock;
    while (c < nbytes) c <<= 1;
    return c;
  }
  return (nbytes + kLargeStep - 1) / kLargeStep * kLargeStep;
}

DeviceCacheStats device_cache_stats(int index) { return allocator().stats(index); }
void empty_device_cache(int index) { allocator().empty(index); }

void* device_alloc(size_t nbytes, int index) {
  if (nbytes == 0) {
    require_device(index);
    return nullptr;
  }
  return allocator().allocate(nbytes, index);
}

void device_free(void* ptr, size_t /*nbytes: the cache knows the block's size class*/, int index) {
  if (ptr == nullptr) return;
  allocator().release(ptr, index);
}

// ---- copies and synchronisation ----------------------------------------------------------
// cudaMemcpy on the default stream: the host side sees the data when these return.
void copy_host_to_device(void* dst, const void* src, size_t nbytes, int index) {
  if (nbytes == 0) return;
  use_device(index);
  PFQ_CUDA_CHECK(cudaMemcpy(dst, src, nbytes, cudaMemcpyHostToDevice));
}

void copy_device_to_host(void* dst, const void* src, size_t nbytes, int index) {
  if (nbytes == 0) return;
  use_device(index);
  PFQ_CUDA_CHECK(cudaMemcpy(dst, src, nbytes, cudaMemcpyDeviceToHost));
}

void copy_device_to_device(void* dst, const void* src, size_t nbytes, int index) {
  if (nbytes == 0) return;
  use_device(index);
  PFQ_CUDA_CHECK(cudaMemcpy(dst, src, nbytes, cudaMemcpyDeviceToDevice));
}

void synchronize(int index) {
  use_device(index);
  PFQ_CUDA_CHECK(cudaDeviceSynchronize());
}

namespace {
__global__ void spin_kernel(long long cycles) {
  const long long start = clock64();
  while (clock64() - start < cycles) {
  }
}

// A CUDA event, destroyed with its scope.
struct Event {
  cudaEvent_t e = nullptr;
  Event() { PFQ_CUDA_CHECK(cudaEventCreate(&e)); }
  ~Event() {
    if (e) cudaEventDestroy(e);
  }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
};
}  // namespace

double device_time_ms(int index, const std::function<void()>& enqueue, double spin_ms, double* host_ms) {
  use_device(index);
  int khz = 0;
  PFQ_CUDA_CHECK(cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, index));
  Event begin, end;
  PFQ_CUDA_CHECK(cudaDeviceSynchronize());
  spin_kernel<<<1, 1, 0, cudaStreamLegacy>>>(static_cast<long long>(spin_ms * khz));
  PFQ_CUDA_CHECK(cudaGetLastError());
  PFQ_CUDA_CHECK(cudaEventRecord(begin.e, cudaStreamLegacy));
  const auto t0 = std::chrono::steady_clock::now();
  enqueue();
  if (host_ms) *host_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  PFQ_CUDA_CHECK(cudaEventRecord(end.e, cudaStreamLegacy));
  PFQ_CUDA_CHECK(cudaEventSynchronize(end.e));
  float ms = 0;
  PFQ_CUDA_CHECK(cudaEventElapsedTime(&ms, begin.e, end.e));
  return ms;
}

// ---- asynchronous uploads through pinned memory (core/device.h's PinnedUploader) ------------
namespace {
// A pinned staging buffer and the event of the last copy out of it.
struct StagingSlot {
  void* host = nullptr;
  size_t capacity = 0;
  cudaEvent_t copied = nullptr;
  bool in_flight = false;
};
constexpr size_t kStagingSlots = 4;  // a batch is two uploads (images, labels): two batches deep

struct Uploader {
  int index = 0;
  cudaStream_t stream = nullptr;
  cudaEvent_t compute_done = nullptr;  // recorded on the compute stream before each copy
  std::array<StagingSlot, kStagingSlots> slots{};
  size_t next = 0;

  ~Uploader() {
    // Destructors do not throw: statuses are ignored here, the memory goes back either way.
    cudaSetDevice(index);
    if (stream) cudaStreamSynchronize(stream);
    for (StagingSlot& s : slots) {
      if (s.host) cudaFreeHost(s.host);
      if (s.copied) cudaEventDestroy(s.copied);
    }
    if (compute_done) cudaEventDestroy(compute_done);
    if (stream) cudaStreamDestroy(stream);
  }
};
}  // namespace

void* pinned_uploader_new(int index) {
  use_device(index);
  auto u = std::make_unique<Uploader>();
  u->index = index;
  // Non-blocking: the stream does not serialise with the legacy default stream; the order it
  // needs is set with events in pinned_upload().
  PFQ_CUDA_CHECK(cudaStreamCreateWithFlags(&u->stream, cudaStreamNonBlocking));
  PFQ_CUDA_CHECK(cudaEventCreateWithFlags(&u->compute_done, cudaEventDisableTiming));
  for (StagingSlot& s : u->slots) PFQ_CUDA_CHECK(cudaEventCreateWithFlags(&s.copied, cudaEventDisableTiming));
  return u.release();
}

void pinned_uploader_delete(void* uploader) { delete static_cast<Uploader*>(uploader); }

size_t pinned_bytes(const void* uploader) {
  size_t n = 0;
  for (const StagingSlot& s : static_cast<const Uploader*>(uploader)->slots) n += s.capacity;
  return n;
}

void pinned_upload(void* uploader, void* dst, const void* src, size_t nbytes) {
  if (nbytes == 0) return;
  Uploader& u = *static_cast<Uploader*>(uploader);
  use_device(u.index);
  StagingSlot& slot = u.slots[u.next];
  u.next = (u.next + 1) % u.slots.size();
  if (slot.in_flight) {  // its copy was queued kStagingSlots uploads ago: long done in a training loop
    PFQ_CUDA_CHECK(cudaEventSynchronize(slot.copied));
    slot.in_flight = false;
  }
  if (slot.capacity < nbytes) {
    if (slot.host) PFQ_CUDA_CHECK(cudaFreeHost(slot.host));
    slot.host = nullptr;
    slot.capacity = 0;
    const cudaError_t status = cudaHostAlloc(&slot.host, nbytes, cudaHostAllocDefault);
    if (status != cudaSuccess) {
      (void)cudaGetLastError();
      slot.host = nullptr;
      PFQ_FAIL("CUDA call cudaHostAlloc failed for a ", nbytes, "-byte pinned staging buffer of cuda:", u.index, ": ",
               cudaGetErrorString(status), " (", cudaGetErrorName(status), ")");
    }
    slot.capacity = nbytes;
  }
  std::memcpy(slot.host, src, nbytes);
  PFQ_CUDA_CHECK(cudaEventRecord(u.compute_done, cudaStreamLegacy));
  PFQ_CUDA_CHECK(cudaStreamWaitEvent(u.stream, u.compute_done, 0));
  PFQ_CUDA_CHECK(cudaMemcpyAsync(dst, slot.host, nbytes, cudaMemcpyHostToDevice, u.stream));
  PFQ_CUDA_CHECK(cudaEventRecord(slot.copied, u.stream));
  slot.in_flight = true;
  PFQ_CUDA_CHECK(cudaStreamWaitEvent(cudaStreamLegacy, slot.copied, 0));
}

// ---- first kernels: contiguous float32, grid-stride loops --------------------------------
namespace {

constexpr int kThreads = 256;
constexpr size_t kMaxBlocks = 4096;  // grid-stride loops cover the rest

unsigned blocks_for(size_t n) {
  const size_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < kMaxBlocks ? b : kMaxBlocks);
}

__global__ void fill_f32_kernel(float* dst, float value, size_t n) {
  const size_t stride = static_cast<size_t>(blockDim.x) * gridDim.x;
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) dst[i] = value;
}

__global__ void add_f32_kernel(const float* a, const float* b, float* out, size_t n) {
  const size_t stride = static_cast<size_t>(blockDim.x) * gridDim.x;
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    out[i] = a[i] + b[i];
}

__global__ void mul_f32_kernel(const float* a, const float* b, float* out, size_t n) {
  const size_t stride = static_cast<size_t>(blockDim.x) * gridDim.x;
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    out[i] = a[i] * b[i];
}

}  // namespace

void fill_f32(float* dst, float value, size_t n, int index) {
  if (n == 0) return;
  use_device(index);
  fill_f32_kernel<<<blocks_for(n), kThreads>>>(dst, value, n);
  PFQ_CUDA_CHECK_LAUNCH("fill_f32_kernel");
}

void add_f32(const float* a, const float* b, float* out, size_t n, int index) {
  if (n == 0) return;
  use_device(index);
  add_f32_kernel<<<blocks_for(n), kThreads>>>(a, b, out, n);
  PFQ_CUDA_CHECK_LAUNCH("add_f32_kernel");
}

void mul_f32(const float* a, const float* b, float* out, size_t n, int index) {
  if (n == 0) return;
  use_device(index);
  mul_f32_kernel<<<blocks_for(n), kThreads>>>(a, b, out, n);
  PFQ_CUDA_CHECK_LAUNCH("mul_f32_kernel");
}

}  // namespace pfq::cuda
