/// \file
/// dtype.h — element types a Tensor can have (its devices: core/device.h) and the dtype dispatch macros.
/// float32 is the training type; float64 exists on CPU for gradient checks; int64 holds labels
/// and indices; uint8 holds raw images and quantized payloads.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/device.h"  // Device

namespace pfq {

/// Element types of tensors: float32 (the default), float64 (gradient checks), integer types for labels, images and
/// quantized export.
enum class DType : uint8_t { Float32, Float64, Int64, UInt8, Int8, Int32 };  // Int8/Int32: integer export (quant/)

/// Bytes per element.
size_t dtype_size(DType t);
/// Lower-case name ("float32", "int64", ...) for messages.
const char* dtype_name(DType t);
/// True for Float32 and Float64.
inline bool is_floating(DType t) { return t == DType::Float32 || t == DType::Float64; }

template <typename T> struct DTypeOf;
/// float is Float32.
template <> struct DTypeOf<float> { /** The DType. */ static constexpr DType value = DType::Float32; };
/// double is Float64.
template <> struct DTypeOf<double> { /** The DType. */ static constexpr DType value = DType::Float64; };
/// int64_t is Int64.
template <> struct DTypeOf<int64_t> { /** The DType. */ static constexpr DType value = DType::Int64; };
/// uint8_t is UInt8.
template <> struct DTypeOf<uint8_t> { /** The DType. */ static constexpr DType value = DType::UInt8; };
/// int8_t is Int8.
template <> struct DTypeOf<int8_t> { /** The DType. */ static constexpr DType value = DType::Int8; };
/// int32_t is Int32.
template <> struct DTypeOf<int32_t> { /** The DType. */ static constexpr DType value = DType::Int32; };

}  // namespace pfq

// Calls BODY with scalar_t bound to float or double according to DTYPE; errors on others.
/// Runs the statements with `scalar_t` bound to float or double per DTYPE; other dtypes throw naming OPNAME.
#define PFQ_DISPATCH_FLOAT(DTYPE, OPNAME, ...)                                              \
  [&] {                                                                                     \
    switch (DTYPE) {                                                                        \
      case ::pfq::DType::Float32: { using scalar_t = float; return __VA_ARGS__(); }          \
      case ::pfq::DType::Float64: { using scalar_t = double; return __VA_ARGS__(); }         \
      default: PFQ_FAIL(OPNAME, ": expected a float32 or float64 tensor, got ", ::pfq::dtype_name(DTYPE)); \
    }                                                                                       \
  }()

/// As PFQ_DISPATCH_FLOAT, over every dtype.
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
