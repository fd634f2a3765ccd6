// dtype.h — element types a Tensor can have (its devices: core/device.h) and the dtype dispatch macros.
// float32 is the training type; float64 exists on CPU for gradient checks; int64 holds labels
// and indices; uint8 holds raw images and quantized payloads.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/device.h"  // Device

namespace pfq {

enum class DType : uint8_t { Float32, Float64, Int64, UInt8, Int8, Int32 };  // Int8/Int32: integer export (quant/)

size_t dtype_size(DType t);
const char* dtype_name(DType t);
inline bool is_floating(DType t) { return t == DType::Float32 || t == DType::Float64; }

template <typename T> struct DTypeOf;
template <> struct DTypeOf<float> { static constexpr DType value = DType::Float32; };
template <> struct DTypeOf<double> { static constexpr DType value = DType::Float64; };
template <> struct DTypeOf<int64_t> { static constexpr DType value = DType::Int64; };
template <> struct DTypeOf<uint8_t> { static constexpr DType value = DType::UInt8; };
template <> struct DTypeOf<int8_t> { static constexpr DType value = DType::Int8; };
template <> struct DTypeOf<int32_t> { static constexpr DType value = DType::Int32; };

}  // namespace pfq

// Calls BODY with scalar_t bound to float or double according to DTYPE; errors on others.
#define PFQ_DISPATCH_FLOAT(DTYPE, OPNAME, ...)                                              \
  [&] {                                                                                     \
    switch (DTYPE) {                                                                        \
      case ::pfq::DType::Float32: { using scalar_t = float; return __VA_ARGS__(); }          \
      case ::pfq::DType::Float64: { using scalar_t = double; return __VA_ARGS__(); }         \
      default: PFQ_FAIL(OPNAME, ": expected a float32 or float64 tensor, got ", ::pfq::dtype_name(DTYPE)); \
    }                                                                                       \
  }()

#define PFQ_DISPATCH_ALL(DTYPE, OPNAME, ...)                                                \
  [&] {                                                                                     \
    switch (DTYPE) {                                                                        \
      case ::pfq::DType::Float32: { using scalar_t = float; return __VA_ARGS__(); }          \
      case ::pfq::DType::Float64: { using scalar_t = double; return __VA_ARGS__(); }         \
      case ::pfq::DType::Int64: { using scalar_t = int64_t; return __VA_ARGS__(); }          \
      case ::pfq::DType::UInt8: { using scalar_t = uint8_t; return __VA_ARGS__(); }          \
      default: break; /* int8 / int32 live only in the integer model's own code */          \
    }                                                                                       \
    PFQ_FAIL(OPNAME, ": no kernel for ", ::pfq::dtype_name(DTYPE), " tensors");             \
  }()
