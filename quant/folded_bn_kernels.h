// folded_bn_kernels.h — the CPU kernels of folded_bn_train (quant/folded_bn.cpp) and the
// per-call types they share with the op: the forward statistics (two passes over a channel, in
// double) and output (with the optional activation + fake-quantization tail), and the backward
// (three per-channel sums, one elementwise pass), for NCHW and channels-last operands. Internal
// to quant/; instantiated for float and double in folded_bn_kernels.cpp. To read what these
// kernels compute, start from folded_bn_train_reference (quant/folded_bn.cpp): the same formula
// (quant/folded_bn.h) composed of generic ops, which the tests hold these kernels to.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "quant/fake_quant_kernel.h"

namespace pfq::quant::fbn {

struct Geometry {
  int64_t N = 0, C = 0, S = 0;  // S = H * W
  bool per_position = false;    // bmap is [C, H, W] (a correction map), else [C, 1, 1]
};

// Contiguous, detached operands of the kernels (zs null: zscale 1; same: z0 is y).
template <typename T>
struct Ptrs {
  const T *y, *z0, *zs, *bm, *gamma, *beta, *sr;
  bool same = false;
};

// Per-channel results of the forward pass the backward needs.
struct Saved {
  std::vector<double> mu, sb;    // batch mean of z and sqrt(var + eps)
  std::vector<double> m0;        // batch mean of z0 (per-channel bias only)
  std::vector<double> k, shift;  // values of T: out = y k + shift (per-channel bias only)
};

// The folded BN's output before the tail, one expression everywhere (output, extremes, backward
// gate) so the three see the same values.
template <typename T>
inline T affine(T y, T k, T shift) { return y * k + shift; }

// The tail of one call with its range resolved (FoldedBnTail): values of T held in double.
// act is ReLU (cap infinity) or ReLU6 (cap 6); without quantization clo, chi are -inf, inf.
struct TailSpec {
  bool on = false, quant = false;
  double cap = 0;
  double s = 1, z = 0, qmin = 0, qmax = 0;  // quant: scale, zero point, integer grid
  double clo = 0, chi = 0;                  // straight-through range (fake_quant_backward_x's)
};

// Branch-free forms, so the loops using them vectorise.
template <typename T>
struct Tail {
  bool on, quant;
  T cap, s, z, qmin, qmax, clo, chi;
  explicit Tail(const TailSpec& t)
      : on(t.on), quant(t.quant), cap(static_cast<T>(t.cap)), s(static_cast<T>(t.s)), z(static_cast<T>(t.z)),
        qmin(static_cast<T>(t.qmin)), qmax(static_cast<T>(t.qmax)), clo(static_cast<T>(t.clo)), chi(static_cast<T>(t.chi)) {}
  T activate(T v) const { return v > T(0) ? (v < cap ? v : cap) : T(0); }  // fn::Relu / fn::Relu6
  T quantize(T r) const { return cpu::fake_quant_one(r, s, z, qmin, qmax); }
  // The gradient passes where 0 < pre < cap (fn::ReluGrad / Relu6Grad) and clo <= activate(pre)
  // <= chi (the quantizer's straight-through range; activate(pre) is pre where the first
  // holds): pass_lo <= pre <= pass_hi, the strict bounds moved one representable value inward.
  T pass_lo() const {
    const T above0 = std::nextafter(T(0), T(1));
    return clo > above0 ? clo : above0;
  }
  T pass_hi() const {
    const T below_cap = std::nextafter(cap, T(0));
    return chi < below_cap ? chi : below_cap;
  }
};

// Gradient outputs; null when not wanted. dy is also the scratch of the gated gradient when a
// tail is on (then always given). dz0 ([N, C, H, W], d loss / d z0) is written whenever it,
// dzscale or a correction map's gradient is wanted (they come out of the same pass); when z0 is
// y it is not given and d z0 is added into dy instead (zpass says whether that pass runs).
template <typename T>
struct Grads {
  T *dy, *dz0, *dzs, *dbm, *dgamma, *dbeta;
  bool zpass = false;
};

// Forward statistics: per channel the batch mean and sqrt(var + eps) of z = z0 zs + bmap into sv
// (and var), the output map, and with ymin/ymax the extremes of y. NCHW: PerPos says whether
// bmap is a correction map [C, H, W] (else per channel); channels-last: per-channel bias only.
template <typename T, bool PerPos>
void stats_nchw(const Geometry& g, const Ptrs<T>& in, double eps, Saved& sv, std::vector<double>& var, T* ymin, T* ymax);
template <typename T>
void stats_nhwc(const Geometry& g, const Ptrs<T>& in, double eps, Saved& sv, std::vector<double>& var, T* ymin, T* ymax);

// Forward output: out = tail(y k + shift) (PerPos: the correction map per position).
template <typename T, bool PerPos>
void output_nchw(const Geometry& g, const Ptrs<T>& in, const Saved& sv, const Tail<T>& t, T* __restrict out);
template <typename T>
void output_nhwc(const Geometry& g, const Ptrs<T>& in, const Saved& sv, const Tail<T>& t, T* __restrict out);

// Backward: the gradients of Grads from gout, the forward's operands and its Saved results.
template <typename T, bool PerPos>
void backward_nchw(const Geometry& g, const T* __restrict gout, const Ptrs<T>& in, const Saved& sv, const Tail<T>& t,
                   const Grads<T>& d);
template <typename T>
void backward_nhwc(const Geometry& g, const T* __restrict gout, const Ptrs<T>& in, const Saved& sv, const Tail<T>& t,
                   const Grads<T>& d);

}  // namespace pfq::quant::fbn
