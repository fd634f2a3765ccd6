// dtype.cpp — names and sizes of dtypes, device parsing.
#include "core/dtype.h"

#include "core/error.h"

namespace pfq {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::Float32: return 4;
    case DType::Float64: return 8;
    case DType::Int64: return 8;
    case DType::UInt8: return 1;
    case DType::Int8: return 1;
    case DType::Int32: return 4;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::Float32: return "float32";
    case DType::Float64: return "float64";
    case DType::Int64: return "int64";
    case DType::UInt8: return "uint8";
    case DType::Int8: return "int8";
    case DType::Int32: return "int32";
  }
  return "?";
}

std::string Device::str() const {
  return type == DeviceType::CPU ? std::string("cpu") : "cuda:" + std::to_string(index);
}

std::optional<Device> Device::try_parse(const std::string& text) {
  if (text == "cpu") return cpu();
  if (text == "cuda") return cuda(0);
  if (text.rfind("cuda:", 0) != 0 || text.size() == 5 || text.find_first_not_of("0123456789", 5) != std::string::npos)
    return std::nullopt;
  return cuda(std::stoi(text.substr(5)));
}

Device Device::parse(const std::string& text) {
  if (const auto d = try_parse(text)) return *d;
  PFQ_CHECK(text.rfind("cuda:", 0) != 0, "device '", text, "': expected cpu, cuda or cuda:N with N a GPU index");
  PFQ_FAIL("device '", text, "': expected cpu, cuda or cuda:N");
}

}  // namespace pfq
