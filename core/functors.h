/// \file
/// functors.h — element-wise math written once, usable from CPU loops and CUDA kernels.
/// Each functor is a stateless (or small-state) struct with a templated call operator marked
/// PFQ_HD (__host__ __device__ under nvcc): core/cpu loops and the CUDA strided engine
/// (core/cuda/elementwise.cuh) instantiate the same structs. std:: math resolves to libm on the
/// host and to CUDA's device overloads in kernels (results may differ in the last ulp).
#pragma once
#include <cmath>

#ifdef __CUDACC__
#define PFQ_HD __host__ __device__
#else
#define PFQ_HD
#endif

namespace pfq::fn {

/// a + b.
struct Add { /** Applies it to one element. */ template <class T> PFQ_HD T operator()(T a, T b) const { return a + b; } };
/// a - b.
struct Sub { /** Applies it to one element. */ template <class T> PFQ_HD T operator()(T a, T b) const { return a - b; } };
/// a * b.
struct Mul { /** Applies it to one element. */ template <class T> PFQ_HD T operator()(T a, T b) const { return a * b; } };
/// a / b.
struct Div { /** Applies it to one element. */ template <class T> PFQ_HD T operator()(T a, T b) const { return a / b; } };
/// max(a, b).
struct Max { /** Applies it to one element. */ template <class T> PFQ_HD T operator()(T a, T b) const { return a >= b ? a : b; } };
/// min(a, b).
struct Min { /** Applies it to one element. */ template <class T> PFQ_HD T operator()(T a, T b) const { return a <= b ? a : b; } };
/// 1 where a is selected by Max (ties go to a), else 0.
struct GeMask { /** Applies it to one element. */ template <class T> PFQ_HD T operator()(T a, T b) const { return a >= b ? T(1) : T(0); } };
/// 1 where a <= b, else 0.
struct LeMask { /** Applies it to one element. */ template <class T> PFQ_HD T operator()(T a, T b) const { return a <= b ? T(1) : T(0); } };

/// -x.
struct Neg { /** Applies it to one element. */ template <class T> PFQ_HD T operator()(T x) const { return -x; } };
/// e^x.
struct Exp { /** Applies it to one element. */ template <class T> PFQ_HD T operator()(T x) const { return std::exp(x); } };
/// ln x.
struct Log { /** Applies it to one element. */ template <class T> PFQ_HD T operator()(T x) const { return std::log(x); } };
/// sqrt(x).
struct Sqrt { /** Applies it to one element. */ template <class T> PFQ_HD T operator()(T x) const { return std::sqrt(x); } };
/// x * x.
struct Square { /** Applies it to one element. */ template <class T> PFQ_HD T operator()(T x) const { return x * x; } };
/// |x|.
struct Abs { /** Applies it to one element. */ template <class T> PFQ_HD T operator()(T x) const { return x < T(0) ? -x : x; } };
/// -1, 0 or +1.
struct Sign { /** Applies it to one element. */ template <class T> PFQ_HD T operator()(T x) const { return x > T(0) ? T(1) : (x < T(0) ? T(-1) : T(0)); } };
/// +1 for x >= 0, else -1.
struct SignBinary { /** Applies it to one element. */ template <class T> PFQ_HD T operator()(T x) const { return x >= T(0) ? T(1) : T(-1); } };
/// max(x, 0).
struct Relu { /** Applies it to one element. */ template <class T> PFQ_HD T operator()(T x) const { return x > T(0) ? x : T(0); } };
/// min(max(x, 0), 6).
struct Relu6 { /** Applies it to one element. */ template <class T> PFQ_HD T operator()(T x) const { return x > T(0) ? (x < T(6) ? x : T(6)) : T(0); } };
/// 1 / (1 + e^-x).
struct Sigmoid { /** Applies it to one element. */ template <class T> PFQ_HD T operator()(T x) const { return T(1) / (T(1) + std::exp(-x)); } };
/// tanh(x).
struct Tanh { /** Applies it to one element. */ template <class T> PFQ_HD T operator()(T x) const { return std::tanh(x); } };
/// Round half to even (banker's rounding), the IEEE default rounding mode used by nearbyint.
struct RoundHalfEven { /** Applies it to one element. */ template <class T> PFQ_HD T operator()(T x) const { return std::nearbyint(x); } };
/// x^e.
struct PowScalar {
  /// The exponent.
  double e;
  /// x^e.
  template <class T> PFQ_HD T operator()(T x) const { return static_cast<T>(std::pow(x, static_cast<T>(e))); }
};
/// x clamped to [lo, hi].
struct Clamp {
  /// The bounds.
  ///@{
  double lo, hi;
  ///@}
  /// x clamped to [lo, hi].
  template <class T> PFQ_HD T operator()(T x) const { return x < T(lo) ? T(lo) : (x > T(hi) ? T(hi) : x); }
};
/// 1 inside [lo, hi], 0 outside (gradient mask of clamp).
struct InRange {
  /// The bounds.
  ///@{
  double lo, hi;
  ///@}
  /// 1 where lo <= x <= hi, else 0.
  template <class T> PFQ_HD T operator()(T x) const { return (x >= T(lo) && x <= T(hi)) ? T(1) : T(0); }
};
/// x + s.
struct AddScalar { /** The scalar. */ double s; /** Applies it to one element. */ template <class T> PFQ_HD T operator()(T x) const { return x + T(s); } };
/// x * s.
struct MulScalar { /** The scalar. */ double s; /** Applies it to one element. */ template <class T> PFQ_HD T operator()(T x) const { return x * T(s); } };
/// s - x.
struct RSubScalar { /** The scalar. */ double s; /** Applies it to one element. */ template <class T> PFQ_HD T operator()(T x) const { return T(s) - x; } };
/// s / x.
struct RDivScalar { /** The scalar. */ double s; /** Applies it to one element. */ template <class T> PFQ_HD T operator()(T x) const { return T(s) / x; } };

/// a + alpha * b: Tensor::add_ (gradient accumulation, EMA updates), as the CPU axpy loop.
struct AddScaled { /** The scalar. */ double alpha; /** Applies it to one element. */ template <class T> PFQ_HD T operator()(T a, T b) const { return a + T(alpha) * b; } };

/// relu(a + b) in one pass (the residual blocks' add and activation): Relu of Add's value, bit for bit.
struct AddRelu { /** Applies it to one element. */ template <class T> PFQ_HD T operator()(T a, T b) const { return Relu{}(a + b); } };

/// Backward helpers: (grad, saved) -> grad_in
struct ReluGrad { /** Applies it to one element. */ template <class T> PFQ_HD T operator()(T g, T y) const { return y > T(0) ? g : T(0); } };
/// g where 0 < y < 6 (y = relu6(x)), else 0.
struct Relu6Grad { /** Applies it to one element. */ template <class T> PFQ_HD T operator()(T g, T y) const { return (y > T(0) && y < T(6)) ? g : T(0); } };
/// g * y * (1 - y) (y = sigmoid(x)).
struct SigmoidGrad { /** Applies it to one element. */ template <class T> PFQ_HD T operator()(T g, T y) const { return g * y * (T(1) - y); } };
/// g * (1 - y^2) (y = tanh(x)).
struct TanhGrad { /** Applies it to one element. */ template <class T> PFQ_HD T operator()(T g, T y) const { return g * (T(1) - y * y); } };

}  // namespace pfq::fn
