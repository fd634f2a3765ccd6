// device_cache.h — introspection of the caching device allocator behind cuda::device_alloc
// (CUDA builds only: defined in cuda_runtime.cu; guard uses with PFQ_WITH_CUDA). Used by tests
// and benchmarks to see reuse and to hand cached blocks back to the driver.
#pragma once
#include <cstddef>

namespace pfq::cuda {

struct DeviceCacheStats {
  size_t bytes_in_use = 0;   // size-class bytes held by live allocations
  size_t bytes_cached = 0;   // freed blocks kept for reuse
  size_t cuda_mallocs = 0;   // cudaMalloc calls made so far
  size_t cache_hits = 0;     // requests served from the cache
};

DeviceCacheStats device_cache_stats(int index);
// cudaFree every cached (not live) block of device `index`.
void empty_device_cache(int index);
// The size class a request of nbytes is served from (what the cache rounds up to).
size_t device_size_class(size_t nbytes);

}  // namespace pfq::cuda
