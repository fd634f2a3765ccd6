// safetensors.cpp — writer and validating reader of safetensors files (see safetensors.h).
// The header is parsed with nlohmann::ordered_json (keeps the file's order); duplicate keys,
// which JSON parsers silently collapse, are caught with a parser callback.
#include "core/io/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "core/io/atomic_file.h"

namespace pfq::io {
namespace {

static_assert(std::endian::native == std::endian::little,
              "safetensors stores little-endian data; pfq reads it in place");

using Json = nlohmann::ordered_json;

// Every check on a file names it first; `src` is the path in scope.
#define PFQ_ST_CHECK(cond, ...) PFQ_CHECK(cond, "safetensors file '", src, "': ", __VA_ARGS__)

// The byte-sized dtypes of the safetensors spec (sub-byte F4/F6 types are not handled).
struct DTypeSpec {
  const char* code;
  size_t size;
};
constexpr DTypeSpec kFileDTypes[] = {
    {"BOOL", 1}, {"U8", 1},  {"I8", 1},   {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"F8_E8M0", 1},
    {"I16", 2},  {"U16", 2}, {"F16", 2},  {"BF16", 2},    {"I32", 4},     {"U32", 4},
    {"F32", 4},  {"F64", 8}, {"I64", 8},  {"U64", 8},     {"C64", 8}};

const DTypeSpec* find_file_dtype(const std::string& code) {
  for (const auto& d : kFileDTypes)
    if (code == d.code) return &d;
  return nullptr;
}

std::string known_dtype_list() {
  std::string s;
  for (const auto& d : kFileDTypes) s += (s.empty() ? "" : ", ") + std::string(d.code);
  return s;
}

const char* file_dtype_code(DType t) {
  switch (t) {
    case DType::Float32: return "F32";
    case DType::Float64: return "F64";
    case DType::Int64: return "I64";
    case DType::UInt8: return "U8";
    case DType::Int8: return "I8";
    case DType::Int32: return "I32";
  }
  PFQ_FAIL("save_safetensors: unknown dtype");
}

std::string offsets_str(const TensorInfo& t) {
  return detail::cat("[", t.data_begin, ", ", t.data_end, "]");
}

float half_to_float(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0) {  // zero or subnormal: mant * 2^-24
    const float f = std::ldexp(static_cast<float>(mant), -24);
    return sign ? -f : f;
  }
  if (exp == 31) return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));  // inf / nan
  return std::bit_cast<float>(sign | ((exp + 112) << 23) | (mant << 13));
}

float bfloat16_to_float(uint16_t b) { return std::bit_cast<float>(static_cast<uint32_t>(b) << 16); }

// A read-only file with its size; reads are exact or throw.
class InputFile {
 public:
  explicit InputFile(const std::string& path) : path_(path) {
    const std::string& src = path_;
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    PFQ_ST_CHECK(fd_ >= 0, "cannot open: ", std::strerror(errno));
    struct stat st {};
    PFQ_ST_CHECK(::fstat(fd_, &st) == 0, "cannot stat: ", std::strerror(errno));
    PFQ_ST_CHECK(S_ISREG(st.st_mode), "not a regular file");
    size_ = static_cast<uint64_t>(st.st_size);
  }
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  ~InputFile() { ::close(fd_); }
  uint64_t size() const { return size_; }

  void read_exact(uint64_t offset, void* dst, size_t n) const {
    const std::string& src = path_;
    char* p = static_cast<char*>(dst);
    while (n > 0) {
      const ssize_t got = ::pread(fd_, p, n, static_cast<off_t>(offset));
      if (got < 0 && errno == EINTR) continue;
      PFQ_ST_CHECK(got >= 0, "read at byte ", offset, " failed: ", std::strerror(errno));
      PFQ_ST_CHECK(got > 0, "unexpected end of file at byte ", offset, " (file shrank while reading?)");
      p += got;
      offset += static_cast<uint64_t>(got);
      n -= static_cast<size_t>(got);
    }
  }

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

// Reads a JSON value that must be an integer in [0, INT64_MAX]; `what` describes it.
uint64_t get_nonneg_int(const std::string& src, const Json& v, const std::string& what) {
  PFQ_ST_CHECK(v.is_number_integer(), what, " must be an integer, got ", v.dump());
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    PFQ_ST_CHECK(u <= static_cast<uint64_t>(INT64_MAX), what, " is too large: ", u);
    return u;
  }
  const int64_t i = v.get<int64_t>();
  PFQ_ST_CHECK(i >= 0, what, " is negative: ", i);
  return static_cast<uint64_t>(i);
}

TensorInfo parse_entry(const std::string& src, const std::string& name, const Json& v) {
  PFQ_ST_CHECK(v.is_object(), "entry '", name, "' must be an object, got ", v.type_name());
  for (const auto& [field, unused] : v.items()) {
    (void)unused;
    PFQ_ST_CHECK(field == "dtype" || field == "shape" || field == "data_offsets", "tensor '", name,
                 "' has unknown field '", field, "' (expected dtype, shape, data_offsets)");
  }
  for (const char* field : {"dtype", "shape", "data_offsets"})
    PFQ_ST_CHECK(v.contains(field), "tensor '", name, "' is missing '", field, "'");
  TensorInfo info;
  info.name = name;
  const Json& dtype = v.at("dtype");
  PFQ_ST_CHECK(dtype.is_string(), "tensor '", name, "': dtype must be a string, got ", dtype.dump());
  info.dtype = dtype.get<std::string>();
  const DTypeSpec* spec = find_file_dtype(info.dtype);
  PFQ_ST_CHECK(spec, "tensor '", name, "' has unknown dtype '", info.dtype, "' (known: ",
               known_dtype_list(), ")");
  const Json& shape = v.at("shape");
  PFQ_ST_CHECK(shape.is_array(), "tensor '", name, "': shape must be an array, got ", shape.dump());
  for (const Json& d : shape) {
    PFQ_ST_CHECK(!(d.is_number_integer() && !d.is_number_unsigned() && d.get<int64_t>() < 0),
                 "tensor '", name, "' has a negative dimension in shape ", shape.dump());
    info.shape.push_back(static_cast<int64_t>(get_nonneg_int(src, d, "dimension of tensor '" + name + "'")));
  }
  uint64_t nbytes = spec->size;
  if (std::find(info.shape.begin(), info.shape.end(), 0) != info.shape.end()) nbytes = 0;
  for (int64_t dim : info.shape)
    PFQ_ST_CHECK(nbytes == 0 || !__builtin_mul_overflow(nbytes, static_cast<uint64_t>(dim), &nbytes),
                 "tensor '", name, "': shape ", shape.dump(), " is too large");
  // An empty tensor's other dims must still multiply to an int64 (shape arithmetic is int64).
  uint64_t elems = 1;
  for (int64_t dim : info.shape)
    PFQ_ST_CHECK(dim == 0 || (!__builtin_mul_overflow(elems, static_cast<uint64_t>(dim), &elems) &&
                              elems <= static_cast<uint64_t>(INT64_MAX)),
                 "tensor '", name, "': shape ", shape.dump(), " is too large");
  const Json& offs = v.at("data_offsets");
  PFQ_ST_CHECK(offs.is_array() && offs.size() == 2, "tensor '", name,
               "': data_offsets must be [begin, end], got ", offs.dump());
  info.data_begin = get_nonneg_int(src, offs[0], "data_offsets begin of tensor '" + name + "'");
  info.data_end = get_nonneg_int(src, offs[1], "data_offsets end of tensor '" + name + "'");
  PFQ_ST_CHECK(info.data_begin <= info.data_end, "tensor '", name, "': data_offsets ",
               offsets_str(info), " end before they begin");
  PFQ_ST_CHECK(nbytes == info.data_end - info.data_begin, "tensor '", name, "': shape ",
               shape_str(info.shape), " of ", info.dtype, " needs ", nbytes, " bytes but data_offsets ",
               offsets_str(info), " span ", info.data_end - info.data_begin);
  return info;
}

// Tensors must tile the data buffer exactly: no overlap, no gap, nothing after the last one.
void check_layout(const std::string& src, const std::vector<TensorInfo>& tensors, uint64_t data_size) {
  for (const auto& t : tensors)
    PFQ_ST_CHECK(t.data_end <= data_size, "data_offsets ", offsets_str(t), " of tensor '", t.name,
                 "' are out of the data buffer (", data_size, " bytes)");
  std::vector<const TensorInfo*> order;
  for (const auto& t : tensors) order.push_back(&t);
  std::stable_sort(order.begin(), order.end(), [](const TensorInfo* a, const TensorInfo* b) {
    return a->data_begin != b->data_begin ? a->data_begin < b->data_begin : a->data_end < b->data_end;
  });
  uint64_t expected = 0;
  const TensorInfo* prev = nullptr;
  for (const TensorInfo* t : order) {
    PFQ_ST_CHECK(t->data_begin >= expected, "data of tensor '", t->name, "' ", offsets_str(*t),
                 " overlaps tensor '", prev ? prev->name : "", "' ", prev ? offsets_str(*prev) : "");
    PFQ_ST_CHECK(t->data_begin == expected, "gap in the data buffer: bytes [", expected, ", ",
                 t->data_begin, ") before tensor '", t->name, "' belong to no tensor");
    expected = t->data_end;
    prev = t;
  }
  PFQ_ST_CHECK(expected == data_size, "trailing bytes: the tensors end at byte ", expected,
               " of the data buffer but it holds ", data_size, " bytes (corrupt or appended data)");
}

SafetensorsHeader parse_header(const std::string& src, const std::string& text, uint64_t data_size) {
  // One key set per open object; the first duplicate found is reported after parsing.
  std::vector<std::set<std::string>> keys;
  std::string current_tensor, duplicate;
  auto callback = [&](int /*depth*/, Json::parse_event_t event, Json& parsed) {
    if (event == Json::parse_event_t::object_start) keys.emplace_back();
    if (event == Json::parse_event_t::object_end) keys.pop_back();
    if (event == Json::parse_event_t::key) {
      const std::string key = parsed.get<std::string>();
      if (keys.size() == 1) current_tensor = key;
      if (!keys.back().insert(key).second && duplicate.empty())
        duplicate = keys.size() == 1 ? "duplicate tensor name '" + key + "'"
                                     : "duplicate key '" + key + "' in '" + current_tensor + "'";
    }
    return true;
  };
  Json j;
  try {
    j = Json::parse(text, callback);
  } catch (const Json::parse_error& e) {
    PFQ_FAIL("safetensors file '", src, "': header is not valid JSON (error at byte ", e.byte,
             " of the header): ", e.what());
  } catch (const Json::exception& e) {
    PFQ_FAIL("safetensors file '", src, "': header is not valid JSON: ", e.what());
  }
  PFQ_ST_CHECK(duplicate.empty(), duplicate, " in the header");
  PFQ_ST_CHECK(j.is_object(), "header must be a JSON object, got ", j.type_name());
  SafetensorsHeader h;
  h.data_size = data_size;
  for (const auto& [key, value] : j.items()) {
    if (key == "__metadata__") {
      PFQ_ST_CHECK(value.is_object(), "__metadata__ must be an object, got ", value.dump());
      for (const auto& [mk, mv] : value.items()) {
        PFQ_ST_CHECK(mv.is_string(), "metadata value of '", mk, "' must be a string, got ",
                     mv.type_name(), " ", mv.dump());
        h.metadata[mk] = mv.get<std::string>();
      }
    } else {
      h.tensors.push_back(parse_entry(src, key, value));
    }
  }
  check_layout(src, h.tensors, data_size);
  return h;
}

SafetensorsHeader read_header(const std::string& src, const InputFile& file) {
  PFQ_ST_CHECK(file.size() >= 8, "file is ", file.size(),
               " bytes, shorter than the 8-byte header length (not a safetensors file?)");
  uint64_t n = 0;
  file.read_exact(0, &n, 8);
  PFQ_ST_CHECK(n <= kMaxHeaderSize, "header length ", n, " exceeds the limit of ", kMaxHeaderSize,
               " bytes (not a safetensors file?)");
  PFQ_ST_CHECK(n <= file.size() - 8, "header length ", n, " is larger than the file (", file.size(),
               " bytes; truncated file?)");
  std::string text(n, '\0');
  file.read_exact(8, text.data(), n);
  SafetensorsHeader h = parse_header(src, text, file.size() - 8 - n);
  h.header_size = n;
  return h;
}

Tensor read_tensor(const std::string& src, const InputFile& file, uint64_t data_start, const TensorInfo& t) {
  const uint64_t offset = data_start + t.data_begin;
  const size_t nbytes = t.data_end - t.data_begin;
  auto read_as = [&](DType dtype) {
    Tensor out = Tensor::empty(t.shape, dtype);
    if (nbytes > 0) file.read_exact(offset, out.raw_data(), nbytes);
    return out;
  };
  if (t.dtype == "F32") return read_as(DType::Float32);
  if (t.dtype == "F64") return read_as(DType::Float64);
  if (t.dtype == "I64") return read_as(DType::Int64);
  if (t.dtype == "U8") return read_as(DType::UInt8);
  if (t.dtype == "I8") return read_as(DType::Int8);
  if (t.dtype == "I32") return read_as(DType::Int32);
  if (t.dtype == "F16" || t.dtype == "BF16") {
    std::vector<uint16_t> half(nbytes / 2);
    if (nbytes > 0) file.read_exact(offset, half.data(), nbytes);
    Tensor out = Tensor::empty(t.shape, DType::Float32);
    float* dst = half.empty() ? nullptr : out.data<float>();
    const bool bf16 = t.dtype == "BF16";
    for (size_t i = 0; i < half.size(); ++i) dst[i] = bf16 ? bfloat16_to_float(half[i]) : half_to_float(half[i]);
    return out;
  }
  PFQ_FAIL("safetensors file '", src, "': tensor '", t.name, "' has dtype ", t.dtype,
           ", which pfq cannot hold (supported: F32, F64, I64, I32, I8, U8; F16 and BF16 load as float32)");
}

}  // namespace

bool SafetensorsFile::contains(const std::string& name) const {
  return std::any_of(tensors.begin(), tensors.end(), [&](const auto& p) { return p.first == name; });
}

const Tensor& SafetensorsFile::at(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return t;
  std::string present;
  for (size_t i = 0; i < tensors.size() && i < 20; ++i) present += (i ? ", " : "") + tensors[i].first;
  if (tensors.size() > 20) present += ", ... (" + std::to_string(tensors.size()) + " in all)";
  PFQ_FAIL("safetensors file '", path, "': no tensor named '", name, "' (present: ", present.empty() ? "none" : present, ")");
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const Metadata& metadata) {
  Json header = Json::object();
  if (!metadata.empty()) {
    Json& m = header["__metadata__"] = Json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
  }
  std::vector<Tensor> data;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    PFQ_CHECK(!name.empty(), "save_safetensors '", path, "': empty tensor name");
    PFQ_CHECK(name != "__metadata__", "save_safetensors '", path, "': '__metadata__' is reserved, not a tensor name");
    PFQ_CHECK(!header.contains(name), "save_safetensors '", path, "': duplicate tensor name '", name, "'");
    PFQ_CHECK(tensor.defined(), "save_safetensors '", path, "': tensor '", name, "' is undefined");
    Tensor t = tensor.detach();
    if (!t.device().is_cpu()) t = t.to(Device::cpu());
    t = t.contiguous();
    const uint64_t nbytes = static_cast<uint64_t>(t.numel()) * dtype_size(t.dtype());
    header[name] = Json::object({{"dtype", file_dtype_code(t.dtype())},
                                 {"shape", t.shape()},
                                 {"data_offsets", Json::array({offset, offset + nbytes})}});
    offset += nbytes;
    data.push_back(t);
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const Json::exception& e) {
    PFQ_FAIL("save_safetensors '", path, "': tensor names and metadata must be valid UTF-8: ", e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');  // the reference pads the header to 8 bytes
  write_file_atomic_streamed(path, [&](const WriteBytes& write) {
    const uint64_t n = text.size();
    write(&n, 8);
    write(text.data(), text.size());
    for (const Tensor& t : data)
      if (t.numel() > 0) write(t.raw_data(), static_cast<size_t>(t.numel()) * dtype_size(t.dtype()));
  });
}

SafetensorsHeader read_safetensors_header(const std::string& path) {
  InputFile file(path);
  return read_header(path, file);
}

SafetensorsFile load_safetensors(const std::string& path) {
  InputFile file(path);
  const SafetensorsHeader h = read_header(path, file);
  SafetensorsFile out;
  out.path = path;
  out.metadata = h.metadata;
  for (const TensorInfo& t : h.tensors) out.tensors.emplace_back(t.name, read_tensor(path, file, 8 + h.header_size, t));
  return out;
}

}  // namespace pfq::io
