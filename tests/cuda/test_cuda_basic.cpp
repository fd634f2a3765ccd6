// test_cuda_basic.cpp — the cuda suite's first tests: device plumbing of core/device.h and core/cuda/kernel_list.h.
// Without a CUDA build: every device request is a "built without CUDA" error. With CUDA but no
// GPU: require_device explains it and device tests skip (a SKIP line, skip.h). With a GPU: copies,
// fill/add/mul against CPU values (exact), allocator reuse, cuBLAS/cuDNN handle creation.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "core/cuda/kernels.h"
#include "core/device.h"
#include "core/error.h"
#ifdef PFQ_WITH_CUDA
#include "core/cuda/device_cache.h"
#include "core/cuda/handles.h"
#endif
#include "tests/skip.h"

namespace cu = pfq::cuda;

namespace {

// True (after printing the SKIP line, skip.h) when this test cannot run for lack of a GPU.
bool skip_without_gpu() {
  if (cu::device_count() > 0) return false;
  pfq::test::report_skip(pfq::cuda_compiled() ? "no CUDA GPU present" : "pfq built without CUDA");
  return true;
}

// Device buffer owned for one test; freed back to the cache on scope exit.
struct DeviceBuffer {
  size_t nbytes;
  void* ptr;
  explicit DeviceBuffer(size_t n) : nbytes(n), ptr(cu::device_alloc(n, 0)) {}
  ~DeviceBuffer() { cu::device_free(ptr, nbytes, 0); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  float* f() const { return static_cast<float*>(ptr); }
};

std::vector<float> pattern(size_t n, float scale, float offset) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<float>(static_cast<int>(i % 1013) - 500) * scale + offset;
  return v;
}

std::vector<float> download(const DeviceBuffer& b, size_t n) {
  std::vector<float> host(n);
  cu::copy_device_to_host(host.data(), b.ptr, n * sizeof(float), 0);
  return host;
}

// Bitwise equality: the kernels must give exactly what the CPU computes.
bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Sizes around the block size (256) and beyond one grid (4096 blocks x 256) for grid-stride.
const size_t kSizes[] = {1, 255, 256, 257, 100003, 4096 * 256 * 2 + 17};

}  // namespace

TEST_CASE("cuda: cuda_compiled matches the build configuration") {
#ifdef PFQ_WITH_CUDA
  CHECK(pfq::cuda_compiled());
#else
  CHECK_FALSE(pfq::cuda_compiled());
#endif
  CHECK(cu::device_count() >= 0);
  CHECK(pfq::cuda_devices().size() == static_cast<size_t>(cu::device_count()));
  CHECK(pfq::cuda_device_count() == cu::device_count());
}

TEST_CASE("cuda: a build without CUDA refuses device work with a clear error") {
  if (pfq::cuda_compiled()) {
    PFQ_SKIP("this build has CUDA");
  }
  CHECK(cu::device_count() == 0);
  CHECK(pfq::cuda_devices().empty());
  CHECK_THROWS_WITH_AS(cu::device_alloc(16, 0), doctest::Contains("built without CUDA"), pfq::Error);
  CHECK_THROWS_WITH_AS(cu::require_device(0), doctest::Contains("built without CUDA"), pfq::Error);
  CHECK_THROWS_WITH_AS(pfq::require_device(pfq::Device::cuda(0)), doctest::Contains("built without CUDA"), pfq::Error);
  CHECK_THROWS_WITH_AS(pfq::PinnedUploader(pfq::Device::cuda(0)), doctest::Contains("built without CUDA"), pfq::Error);
  float x = 0;
  CHECK_THROWS_WITH_AS(cu::copy_host_to_device(&x, &x, 4, 0), doctest::Contains("built without CUDA"), pfq::Error);
  CHECK_THROWS_WITH_AS(cu::fill_f32(&x, 1.f, 1, 0), doctest::Contains("built without CUDA"), pfq::Error);
}

TEST_CASE("cuda: require_device explains a missing GPU or an index out of range") {
  if (!pfq::cuda_compiled()) {
    PFQ_SKIP("built without CUDA");
  }
  const int n = cu::device_count();
  if (n == 0) {
    CHECK_THROWS_WITH_AS(cu::require_device(0), doctest::Contains("no CUDA GPU present"), pfq::Error);
    CHECK_THROWS_WITH_AS(cu::device_alloc(16, 0), doctest::Contains("no CUDA GPU present"), pfq::Error);
    CHECK_THROWS_WITH_AS(cu::synchronize(0), doctest::Contains("no CUDA GPU present"), pfq::Error);
    return;
  }
  CHECK_NOTHROW(cu::require_device(0));
  CHECK_NOTHROW(pfq::require_device(pfq::Device::cuda(0)));
  CHECK_THROWS_WITH_AS(pfq::parse_usable_device("cuda:" + std::to_string(n)), doctest::Contains("out of range"), pfq::Error);
  CHECK_THROWS_WITH_AS(cu::require_device(n), doctest::Contains("out of range"), pfq::Error);
  CHECK_THROWS_WITH_AS(cu::require_device(-1), doctest::Contains("out of range"), pfq::Error);
  const auto devices = pfq::cuda_devices();
  REQUIRE(devices.size() == static_cast<size_t>(n));
  CHECK(devices[0].index == 0);
  CHECK_FALSE(devices[0].name.empty());
  CHECK(devices[0].total_memory > 0);
  CHECK(devices[0].cc_major >= 3);
}

TEST_CASE("cuda: host -> device -> device -> host round trip keeps every byte") {
  if (skip_without_gpu()) return;
  for (size_t n : kSizes) {
    CAPTURE(n);
    const std::vector<float> src = pattern(n, 0.37f, 1e-3f);
    DeviceBuffer a(n * sizeof(float)), b(n * sizeof(float));
    cu::copy_host_to_device(a.ptr, src.data(), n * sizeof(float), 0);
    cu::copy_device_to_device(b.ptr, a.ptr, n * sizeof(float), 0);
    CHECK(same_bits(download(b, n), src));
  }
  // Zero-byte requests are valid no-ops.
  void* p = cu::device_alloc(0, 0);
  CHECK(p == nullptr);
  cu::device_free(p, 0, 0);
  CHECK_NOTHROW(cu::copy_host_to_device(nullptr, nullptr, 0, 0));
  CHECK_NOTHROW(cu::synchronize(0));
}

TEST_CASE("cuda: fill, add and mul give exactly the CPU values") {
  if (skip_without_gpu()) return;
  for (size_t n : kSizes) {
    CAPTURE(n);
    const std::vector<float> ha = pattern(n, 0.113f, -0.5f), hb = pattern(n, -1.7f, 3.25f);
    std::vector<float> want_fill(n, -2.5f), want_add(n), want_mul(n);
    for (size_t i = 0; i < n; ++i) {
      want_add[i] = ha[i] + hb[i];
      want_mul[i] = ha[i] * hb[i];
    }
    DeviceBuffer a(n * sizeof(float)), b(n * sizeof(float)), out(n * sizeof(float));
    cu::copy_host_to_device(a.ptr, ha.data(), n * sizeof(float), 0);
    cu::copy_host_to_device(b.ptr, hb.data(), n * sizeof(float), 0);

    cu::fill_f32(out.f(), -2.5f, n, 0);
    CHECK(same_bits(download(out, n), want_fill));
    cu::add_f32(a.f(), b.f(), out.f(), n, 0);
    CHECK(same_bits(download(out, n), want_add));
    cu::mul_f32(a.f(), b.f(), out.f(), n, 0);
    CHECK(same_bits(download(out, n), want_mul));
    cu::add_f32(a.f(), b.f(), a.f(), n, 0);  // in place: out aliases a
    CHECK(same_bits(download(a, n), want_add));
  }
}

TEST_CASE("cuda: the device allocator hands freed blocks out again") {
  if (skip_without_gpu()) return;
#ifdef PFQ_WITH_CUDA
  const cu::DeviceCacheStats before = cu::device_cache_stats(0);
#endif
  void* p = cu::device_alloc(1000, 0);
  void* q = cu::device_alloc(1000, 0);
  CHECK(p != q);  // both live: distinct blocks
  cu::device_free(p, 1000, 0);
  void* r = cu::device_alloc(1000, 0);
  CHECK(r == p);  // same size class: the freed block comes back
  cu::device_free(r, 1000, 0);
  void* s = cu::device_alloc(900, 0);  // rounds up to the same size class
  CHECK(s == p);
  cu::device_free(s, 900, 0);
  cu::device_free(q, 1000, 0);
#ifdef PFQ_WITH_CUDA
  const cu::DeviceCacheStats after = cu::device_cache_stats(0);
  CHECK(cu::device_size_class(900) == cu::device_size_class(1000));
  CHECK(after.cache_hits >= before.cache_hits + 2);
  CHECK(after.bytes_in_use == before.bytes_in_use);
  CHECK(after.cuda_mallocs <= before.cuda_mallocs + 2);
  int not_ours = 0;
  CHECK_THROWS_WITH_AS(cu::device_free(&not_ours, 4, 0), doctest::Contains("double free"), pfq::Error);
  cu::empty_device_cache(0);
  CHECK(cu::device_cache_stats(0).bytes_cached == 0);
#endif
}

#ifdef PFQ_WITH_CUDA
TEST_CASE("cuda: cuBLAS and cuDNN handles are created once per device") {
  if (skip_without_gpu()) {
    CHECK_THROWS_WITH_AS(cu::cublas_handle(0), doctest::Contains("no CUDA GPU present"), pfq::Error);
    return;
  }
  cublasHandle_t h1 = cu::cublas_handle(0);
  CHECK(h1 != nullptr);
  CHECK(cu::cublas_handle(0) == h1);
  cudnnHandle_t d1 = cu::cudnn_handle(0);
  CHECK(d1 != nullptr);
  CHECK(cu::cudnn_handle(0) == d1);
  CHECK_THROWS_WITH_AS(cu::cudnn_handle(cu::device_count()), doctest::Contains("out of range"), pfq::Error);
}
#endif
