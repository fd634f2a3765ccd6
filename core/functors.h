// functors.h — element-wise math written once, usable from CPU loops and CUDA kernels.
// Each functor is a stateless (or small-state) struct with a templated call operator marked
// PFQ_HD (__host__ __device__ under nvcc): core/cpu loops and the CUDA strided engine
// (core/cuda/elementwise.cuh) instantiate the same structs. std:: math resolves to libm on the
// host and to CUDA's device overloads in kernels (results may differ in the last ulp).
#pragma once
#include <cmath>

#ifdef __CUDACC__
#define PFQ_HD __host__ __device__
#else
#define PFQ_HD
#endif

namespace pfq::fn {

struct Add { template <class T> PFQ_HD T operator()(T a, T b) const { return a + b; } };
struct Sub { template <class T> PFQ_HD T operator()(T a, T b) const { return a - b; } };
struct Mul { template <class T> PFQ_HD T operator()(T a, T b) const { return a * b; } };
struct Div { template <class T> PFQ_HD T operator()(T a, T b) const { return a / b; } };
struct Max { template <class T> PFQ_HD T operator()(T a, T b) const { return a >= b ? a : b; } };
struct Min { template <class T> PFQ_HD T operator()(T a, T b) const { return a <= b ? a : b; } };
// 1 where a is selected by Max (ties go to a), else 0.
struct GeMask { template <class T> PFQ_HD T operator()(T a, T b) const { return a >= b ? T(1) : T(0); } };
struct LeMask { template <class T> PFQ_HD T operator()(T a, T b) const { return a <= b ? T(1) : T(0); } };

struct Neg { template <class T> PFQ_HD T operator()(T x) const { return -x; } };
struct Exp { template <class T> PFQ_HD T operator()(T x) const { return std::exp(x); } };
struct Log { template <class T> PFQ_HD T operator()(T x) const { return std::log(x); } };
struct Sqrt { template <class T> PFQ_HD T operator()(T x) const { return std::sqrt(x); } };
struct Square { template <class T> PFQ_HD T operator()(T x) const { return x * x; } };
struct Abs { template <class T> PFQ_HD T operator()(T x) const { return x < T(0) ? -x : x; } };
struct Sign { template <class T> PFQ_HD T operator()(T x) const { return x > T(0) ? T(1) : (x < T(0) ? T(-1) : T(0)); } };
struct SignBinary { template <class T> PFQ_HD T operator()(T x) const { return x >= T(0) ? T(1) : T(-1); } };
struct Relu { template <class T> PFQ_HD T operator()(T x) const { return x > T(0) ? x : T(0); } };
struct Relu6 { template <class T> PFQ_HD T operator()(T x) const { return x > T(0) ? (x < T(6) ? x : T(6)) : T(0); } };
struct Sigmoid { template <class T> PFQ_HD T operator()(T x) const { return T(1) / (T(1) + std::exp(-x)); } };
struct Tanh { template <class T> PFQ_HD T operator()(T x) const { return std::tanh(x); } };
// Round half to even (banker's rounding), the IEEE default rounding mode used by nearbyint.
struct RoundHalfEven { template <class T> PFQ_HD T operator()(T x) const { return std::nearbyint(x); } };
struct PowScalar {
  double e;
  template <class T> PFQ_HD T operator()(T x) const { return static_cast<T>(std::pow(x, static_cast<T>(e))); }
};
struct Clamp {
  double lo, hi;
  template <class T> PFQ_HD T operator()(T x) const { return x < T(lo) ? T(lo) : (x > T(hi) ? T(hi) : x); }
};
// 1 inside [lo, hi], 0 outside (gradient mask of clamp).
struct InRange {
  double lo, hi;
  template <class T> PFQ_HD T operator()(T x) const { return (x >= T(lo) && x <= T(hi)) ? T(1) : T(0); }
};
struct AddScalar { double s; template <class T> PFQ_HD T operator()(T x) const { return x + T(s); } };
struct MulScalar { double s; template <class T> PFQ_HD T operator()(T x) const { return x * T(s); } };
struct RSubScalar { double s; template <class T> PFQ_HD T operator()(T x) const { return T(s) - x; } };
struct RDivScalar { double s; template <class T> PFQ_HD T operator()(T x) const { return T(s) / x; } };

// a + alpha * b: Tensor::add_ (gradient accumulation, EMA updates), as the CPU axpy loop.
struct AddScaled { double alpha; template <class T> PFQ_HD T operator()(T a, T b) const { return a + T(alpha) * b; } };

// Backward helpers: (grad, saved) -> grad_in
struct ReluGrad { template <class T> PFQ_HD T operator()(T g, T y) const { return y > T(0) ? g : T(0); } };
struct Relu6Grad { template <class T> PFQ_HD T operator()(T g, T y) const { return (y > T(0) && y < T(6)) ? g : T(0); } };
struct SigmoidGrad { template <class T> PFQ_HD T operator()(T g, T y) const { return g * y * (T(1) - y); } };
struct TanhGrad { template <class T> PFQ_HD T operator()(T g, T y) const { return g * (T(1) - y * y); } };

}  // namespace pfq::fn
