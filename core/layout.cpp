// layout.cpp — channels-last helpers and the CPU NCHW <-> NHWC transposes (see layout.h).
#include "core/layout.h"

#include <algorithm>

#include "core/autograd.h"
#include "core/profiler.h"

namespace pfq {

Shape channels_last_strides(const Shape& s) {
  PFQ_CHECK(s.size() == 4, "channels-last layout needs a 4-D [N, C, H, W] shape, got ", shape_str(s));
  return {s[1] * s[2] * s[3], 1, s[3] * s[1], s[1]};
}

bool is_channels_last(const Tensor& t) {
  if (t.dim() != 4) return false;
  const Shape& s = t.shape();
  const Shape& st = t.strides();
  int64_t expected = 1;
  for (int d : {1, 3, 2, 0}) {
    if (s[d] != 1 && st[d] != expected) return false;
    expected *= s[d];
  }
  return true;
}

bool is_strictly_channels_last(const Tensor& t) { return is_channels_last(t) && !t.is_contiguous(); }

Tensor empty_channels_last(const Shape& s, DType dt, Device dev) {
  Tensor base = Tensor::empty({shape_numel(s)}, dt, dev);
  return make_view(base, s, channels_last_strides(s), 0);
}

Tensor flat_view(const Tensor& t) {
  PFQ_CHECK(t.is_contiguous() || is_channels_last(t), "flat_view: ", t.describe(), " is neither contiguous nor channels-last");
  return make_view(t, {t.numel()}, {1}, t.offset());
}

Tensor channels_last_copy(const Tensor& x) {
  if (is_channels_last(x)) return x.detach();
  Tensor y = empty_channels_last(x.shape(), x.dtype(), x.device());
  if (x.device().is_cpu() && x.is_contiguous() && is_floating(x.dtype())) {
    PFQ_PROFILE("layout copy");
    const Shape& s = x.shape();
    PFQ_DISPATCH_FLOAT(x.dtype(), "channels_last_copy",
                       [&] { cpu::nchw_to_nhwc<scalar_t>(s[0], s[1], s[2] * s[3], x.data<scalar_t>(), y.data<scalar_t>()); });
    return y;
  }
  y.copy_(x.detach());
  return y;
}

Tensor to_channels_last(const Tensor& x) {
  return record("to_channels_last", channels_last_copy(x), {x}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
}

Tensor empty_like_layout(const Tensor& x) {
  return is_strictly_channels_last(x) ? empty_channels_last(x.shape(), x.dtype(), x.device())
                                      : Tensor::empty(x.shape(), x.dtype(), x.device());
}

Tensor copy_keeping_layout(const Tensor& x) {
  if (!is_strictly_channels_last(x)) return x.detach().clone();
  PFQ_PROFILE("copy");
  Tensor out = empty_channels_last(x.shape(), x.dtype(), x.device());
  flat_view(out).copy_(flat_view(x));
  return out;
}

Tensor same_layout_as(const Tensor& x, const Tensor& like) {
  if (is_strictly_channels_last(like)) return channels_last_copy(x);
  return x.detach().contiguous();
}

namespace cpu {
namespace {
constexpr int64_t kTile = 32;
// dst[j * rows + i] = src[i * cols + j] for one [rows, cols] matrix, in tiles.
template <typename T>
void transpose_tiles(int64_t rows, int64_t cols, const T* src, T* dst) {
  for (int64_t i0 = 0; i0 < rows; i0 += kTile)
    for (int64_t j0 = 0; j0 < cols; j0 += kTile) {
      const int64_t i1 = std::min(rows, i0 + kTile), j1 = std::min(cols, j0 + kTile);
      for (int64_t j = j0; j < j1; ++j)
        for (int64_t i = i0; i < i1; ++i) dst[j * rows + i] = src[i * cols + j];
    }
}
}  // namespace

template <typename T>
void nchw_to_nhwc(int64_t N, int64_t C, int64_t S, const T* src, T* dst) {
#pragma omp parallel for schedule(static) if (N * C * S > 32768)
  for (int64_t n = 0; n < N; ++n) transpose_tiles(C, S, src + n * C * S, dst + n * C * S);
}

template <typename T>
void nhwc_to_nchw(int64_t N, int64_t C, int64_t S, const T* src, T* dst) {
#pragma omp parallel for schedule(static) if (N * C * S > 32768)
  for (int64_t n = 0; n < N; ++n) transpose_tiles(S, C, src + n * C * S, dst + n * C * S);
}

template void nchw_to_nhwc<float>(int64_t, int64_t, int64_t, const float*, float*);
template void nchw_to_nhwc<double>(int64_t, int64_t, int64_t, const double*, double*);
template void nhwc_to_nchw<float>(int64_t, int64_t, int64_t, const float*, float*);
template void nhwc_to_nchw<double>(int64_t, int64_t, int64_t, const double*, double*);
}  // namespace cpu

}  // namespace pfq
