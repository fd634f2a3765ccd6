// test_safetensors.cpp — tests of core/io/safetensors: round trips of every pfq dtype (0-d and
// empty tensors, metadata, non-contiguous input), the exact bytes of a tiny file, the fixture
// written by Python's reference implementation (tools/make_safetensors_fixture.py), F16/BF16
// conversion, and one clear error per kind of corrupt file or bad save request.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/io/safetensors.h"

namespace fs = std::filesystem;
using pfq::DType;
using pfq::Shape;
using pfq::Tensor;
using pfq::io::load_safetensors;
using pfq::io::read_safetensors_header;
using pfq::io::save_safetensors;

namespace {

struct SafetensorsTestDir {
  fs::path dir;
  SafetensorsTestDir() {
    static int counter = 0;
    dir = fs::temp_directory_path() /
          ("pfq-safetensors-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~SafetensorsTestDir() { fs::remove_all(dir); }
  std::string file(const std::string& name) const { return (dir / name).string(); }
  size_t count() const { return static_cast<size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator())); }
};

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string le64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

// A safetensors file from a header text and a data buffer (header length = its size).
std::string st_file(const std::string& header, const std::string& data) {
  return le64(header.size()) + header + data;
}

}  // namespace

TEST_CASE("save_safetensors / load_safetensors round-trip every dtype, 0-d and empty tensors") {
  SafetensorsTestDir t;
  const std::string path = t.file("model.safetensors");
  const std::vector<float> wf = {1.5f, -2.25f, 0.f, 3e-8f, 1e30f, -7.f};
  const std::vector<double> bd = {0.1, -1e-300, 1e300, 42.0};
  const std::vector<int64_t> li = {std::numeric_limits<int64_t>::min(), -1, 0, std::numeric_limits<int64_t>::max()};
  const std::vector<uint8_t> pu = {0, 1, 127, 128, 255};
  // Not in alphabetical order: the file keeps the given order.
  const std::vector<std::pair<std::string, Tensor>> tensors = {
      {"layer1.0.conv1.weight", Tensor::from_vector(wf, {2, 3})},
      {"bn.running_var", Tensor::from_vector(bd, {4})},
      {"labels", Tensor::from_vector(li, {2, 2})},
      {"pixels", Tensor::from_vector(pu, {5})},
      {"scalar", Tensor::scalar(2.5)},
      {"scalar64", Tensor::scalar(-0.125, DType::Float64)},
      {"empty", Tensor::empty({0, 3})},
      {"empty_u8", Tensor::empty({4, 0}, DType::UInt8)},
  };
  const pfq::io::Metadata meta = {{"arch", "{\"name\": \"resnet20\", \"widths\": [16, 32]}"},
                                  {"epoch", "7"}, {"empty", ""}, {"unicode", "gr\xc3\xbc\xc3\x9f"}};
  save_safetensors(path, tensors, meta);
  CHECK(t.count() == 1);

  const pfq::io::SafetensorsFile f = load_safetensors(path);
  CHECK(f.metadata == meta);
  REQUIRE(f.tensors.size() == tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    CAPTURE(tensors[i].first);
    CHECK(f.tensors[i].first == tensors[i].first);
    CHECK(f.tensors[i].second.shape() == tensors[i].second.shape());
    CHECK(f.tensors[i].second.dtype() == tensors[i].second.dtype());
    CHECK(f.tensors[i].second.device().is_cpu());
  }
  CHECK(f.at("layer1.0.conv1.weight").to_vector<float>() == wf);
  CHECK(f.at("bn.running_var").to_vector<double>() == bd);
  CHECK(f.at("labels").to_vector<int64_t>() == li);
  CHECK(f.at("pixels").to_vector<uint8_t>() == pu);
  CHECK(f.at("scalar").item() == 2.5);
  CHECK(f.at("scalar").dim() == 0);
  CHECK(f.at("scalar64").item() == -0.125);
  CHECK(f.at("empty").numel() == 0);
  CHECK(f.contains("empty_u8"));
  CHECK_FALSE(f.contains("nope"));
  CHECK_THROWS_WITH_AS(f.at("nope"), doctest::Contains("no tensor named 'nope' (present: layer1.0.conv1.weight"),
                       pfq::Error);

  // The header alone: dtypes in the file's spelling, contiguous offsets in the given order.
  const pfq::io::SafetensorsHeader h = read_safetensors_header(path);
  REQUIRE(h.tensors.size() == tensors.size());
  const std::vector<std::string> codes = {"F32", "F64", "I64", "U8", "F32", "F64", "F32", "U8"};
  uint64_t offset = 0;
  for (size_t i = 0; i < h.tensors.size(); ++i) {
    CAPTURE(i);
    CHECK(h.tensors[i].name == tensors[i].first);
    CHECK(h.tensors[i].dtype == codes[i]);
    CHECK(h.tensors[i].shape == tensors[i].second.shape());
    CHECK(h.tensors[i].data_begin == offset);
    offset = h.tensors[i].data_end;
  }
  CHECK(h.data_size == offset);
  CHECK(h.data_size == 24 + 32 + 32 + 5 + 4 + 8);
  CHECK(h.header_size % 8 == 0);
  CHECK(h.metadata == meta);
  CHECK(fs::file_size(path) == 8 + h.header_size + h.data_size);
}

TEST_CASE("save_safetensors writes the spec's bytes exactly for a tiny case") {
  SafetensorsTestDir t;
  const std::string path = t.file("tiny.safetensors");
  save_safetensors(path,
                   {{"b", Tensor::from_vector<uint8_t>({1, 2, 3}, {3})}, {"a", Tensor::from_vector<float>({1.f, -2.f}, {2})}},
                   {{"k", "v"}});
  const std::string header =
      "{\"__metadata__\":{\"k\":\"v\"},\"b\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]},"
      "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[3,11]}}    ";  // 132 + 4 spaces = 136
  const std::string expected = std::string("\x88\0\0\0\0\0\0\0", 8) + header +
                               std::string("\x01\x02\x03" "\x00\x00\x80\x3f" "\x00\x00\x00\xc0", 11);
  CHECK(read_bytes(path) == expected);
  CHECK(read_bytes(path).size() == 155);
}

TEST_CASE("non-contiguous tensors are saved in logical order") {
  SafetensorsTestDir t;
  const std::string path = t.file("view.safetensors");
  const Tensor base = Tensor::from_vector<float>({0, 1, 2, 3, 4, 5}, {2, 3});
  const Tensor transposed = pfq::make_view(base, {3, 2}, {1, 3}, 0);
  REQUIRE_FALSE(transposed.is_contiguous());
  save_safetensors(path, {{"t", transposed}});
  const auto f = load_safetensors(path);
  CHECK(f.at("t").shape() == Shape{3, 2});
  CHECK(f.at("t").to_vector<float>() == std::vector<float>{0, 3, 1, 4, 2, 5});
  CHECK(f.metadata.empty());
}

TEST_CASE("the fixture written by Python's safetensors loads with the script's values") {
  const std::string path = std::string(PFQ_SOURCE_ROOT) + "/tests/fixtures/reference.safetensors";
  const auto f = load_safetensors(path);
  // Python lays data out by dtype alignment, then name; the header follows that order.
  std::vector<std::string> names;
  for (const auto& [n, unused] : f.tensors) names.push_back(n);
  CHECK(names == std::vector<std::string>{"labels_i64", "bias_f64", "empty_f32", "scalar_f32", "weight_f32",
                                          "half_f16", "pixels_u8"});
  CHECK(f.metadata == pfq::io::Metadata{{"producer", "tools/make_safetensors_fixture.py"}});
  CHECK(f.at("weight_f32").shape() == Shape{3, 4});
  CHECK(f.at("weight_f32").to_vector<float>() ==
        std::vector<float>{-1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 2.5f, 3.0f, 3.5f, 4.0f, 4.5f});
  CHECK(f.at("bias_f64").to_vector<double>() == std::vector<double>{0.0, 0.125, 0.25});
  CHECK(f.at("labels_i64").to_vector<int64_t>() == std::vector<int64_t>{7, 4, 1, -2, -5});
  CHECK(f.at("pixels_u8").shape() == Shape{2, 3});
  CHECK(f.at("pixels_u8").to_vector<uint8_t>() == std::vector<uint8_t>{0, 50, 100, 150, 200, 250});
  CHECK(f.at("scalar_f32").dim() == 0);
  CHECK(f.at("scalar_f32").item() == 3.25);
  CHECK(f.at("empty_f32").shape() == Shape{0, 2});
  // F16 comes back as float32.
  const Tensor h = f.at("half_f16");
  REQUIRE(h.dtype() == DType::Float32);
  const std::vector<float> hv = h.to_vector<float>();
  REQUIRE(hv.size() == 9);
  const float inf = std::numeric_limits<float>::infinity();
  CHECK(std::vector<float>(hv.begin(), hv.end() - 1) ==
        std::vector<float>{0.f, 1.f, -2.f, 0.5f, 65504.f, std::ldexp(1.f, -24), inf, -inf});
  CHECK(std::isnan(hv[8]));
  const auto header = read_safetensors_header(path);
  CHECK(header.tensors[5].dtype == "F16");
  CHECK(header.header_size == 520);
  CHECK(header.data_size == 140);
}

TEST_CASE("BF16 tensors load as float32") {
  SafetensorsTestDir t;
  const std::string path = t.file("bf16.safetensors");
  // 1.0, -3.0, 3.140625, -inf as bfloat16 (little-endian)
  write_bytes(path, st_file("{\"x\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[0,8]}}",
                            std::string("\x80\x3f\x40\xc0\x49\x40\x80\xff", 8)));
  const auto f = load_safetensors(path);
  CHECK(f.at("x").shape() == Shape{2, 2});
  CHECK(f.at("x").to_vector<float>() ==
        std::vector<float>{1.f, -3.f, 3.140625f, -std::numeric_limits<float>::infinity()});
}

TEST_CASE("corrupt safetensors files give clear errors naming the file") {
  SafetensorsTestDir t;
  const std::string path = t.file("bad.safetensors");
  const std::string a8 = "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";
  const std::string d8(8, '\x01');
  struct Case {
    std::string what;
    std::string bytes;
    std::string message;
    bool header_ok = false;  // read_safetensors_header accepts it; only loading fails
  };
  const std::vector<Case> cases = {
      {"shorter than 8 bytes", "abc", "is 3 bytes, shorter than the 8-byte header length"},
      {"header length past the end", le64(1000) + "{}", "header length 1000 is larger than the file (10 bytes"},
      {"header length past the cap", le64(uint64_t{1} << 40) + "{}", "exceeds the limit of 100000000"},
      {"invalid JSON", st_file("{\"a\":{\"dtype\":\"F32\",", ""), "header is not valid JSON"},
      {"invalid JSON position", st_file("{\"a\": nope}", ""), "error at byte 8 of the header"},
      {"header not an object", st_file("[1, 2]", ""), "header must be a JSON object, got array"},
      {"entry not an object", st_file("{\"a\":5}", ""), "entry 'a' must be an object"},
      {"missing dtype", st_file("{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", d8), "tensor 'a' is missing 'dtype'"},
      {"missing shape", st_file("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", d8), "tensor 'a' is missing 'shape'"},
      {"missing offsets", st_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", d8), "tensor 'a' is missing 'data_offsets'"},
      {"unknown field", st_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"foo\":1}}", d8),
       "unknown field 'foo'"},
      {"unknown dtype", st_file("{\"a\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,8]}}", d8),
       "tensor 'a' has unknown dtype 'Q7' (known: BOOL, U8"},
      {"dtype not a string", st_file("{\"a\":{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}}", d8),
       "dtype must be a string, got 4"},
      {"dtype pfq cannot hold", st_file("{\"a\":{\"dtype\":\"I16\",\"shape\":[4],\"data_offsets\":[0,8]}}", d8),
       "tensor 'a' has dtype I16, which pfq cannot hold", true},
      {"size mismatch", st_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", d8),
       "shape [3] of F32 needs 12 bytes but data_offsets [0, 8] span 8"},
      {"negative dim", st_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", d8),
       "tensor 'a' has a negative dimension in shape [-2]"},
      {"fractional dim", st_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", d8),
       "must be an integer, got 2.0"},
      {"huge shape", st_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", d8),
       "is too large"},
      {"offsets arity", st_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8]}}", d8),
       "data_offsets must be [begin, end], got [8]"},
      {"offsets reversed", st_file("{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[8,0]}}", d8),
       "data_offsets [8, 0] end before they begin"},
      {"offsets out of buffer", st_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", d8),
       "data_offsets [8, 16] of tensor 'a' are out of the data buffer (8 bytes)"},
      {"overlap", st_file("{" + a8 + ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", d8 + "1234"),
       "data of tensor 'b' [4, 12] overlaps tensor 'a' [0, 8]"},
      {"gap", st_file("{" + a8 + ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}", d8 + d8 + "1234"),
       "gap in the data buffer: bytes [8, 12) before tensor 'b'"},
      {"gap at start", st_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", d8),
       "bytes [0, 4) before tensor 'a'"},
      {"trailing garbage", st_file("{" + a8 + "}", d8 + "junk"),
       "the tensors end at byte 8 of the data buffer but it holds 12 bytes"},
      {"duplicate names", st_file("{" + a8 + "," + a8 + "}", d8), "duplicate tensor name 'a'"},
      {"duplicate field", st_file("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", d8),
       "duplicate key 'dtype' in 'a'"},
      {"metadata not an object", st_file("{\"__metadata__\":[1]," + a8 + "}", d8), "__metadata__ must be an object"},
      {"metadata value not a string", st_file("{\"__metadata__\":{\"epoch\":3}," + a8 + "}", d8),
       "metadata value of 'epoch' must be a string, got number 3"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    write_bytes(path, c.bytes);
    CHECK_THROWS_WITH_AS(load_safetensors(path), doctest::Contains(c.message.c_str()), pfq::Error);
    CHECK_THROWS_WITH_AS(load_safetensors(path), doctest::Contains(("safetensors file '" + path + "'").c_str()),
                         pfq::Error);
    if (c.header_ok) {
      CHECK_NOTHROW(read_safetensors_header(path));
    } else {
      CHECK_THROWS_WITH_AS(read_safetensors_header(path), doctest::Contains(c.message.c_str()), pfq::Error);
    }
  }
  // The base entry itself is valid, so each failure above comes from its one change.
  write_bytes(path, st_file("{\"__metadata__\":{\"epoch\":\"3\"}," + a8 + "}", d8));
  CHECK(load_safetensors(path).at("a").numel() == 2);
  CHECK_THROWS_WITH_AS(load_safetensors(t.file("missing.safetensors")),
                       doctest::Contains(std::strerror(ENOENT)), pfq::Error);
  CHECK_THROWS_WITH_AS(load_safetensors(t.dir.string()), doctest::Contains("not a regular file"), pfq::Error);
}

TEST_CASE("header-only reading reports dtypes pfq cannot load") {
  SafetensorsTestDir t;
  const std::string path = t.file("i32.safetensors");
  write_bytes(path, st_file("{\"__metadata__\":{\"m\":\"x\"},\"ids\":{\"dtype\":\"I32\",\"shape\":[2,1],\"data_offsets\":[0,8]}}  ",
                            std::string(8, '\0')));
  const auto h = read_safetensors_header(path);
  REQUIRE(h.tensors.size() == 1);
  CHECK(h.tensors[0].name == "ids");
  CHECK(h.tensors[0].dtype == "I32");
  CHECK(h.tensors[0].shape == Shape{2, 1});
  CHECK(h.metadata.at("m") == "x");
  CHECK(h.header_size == 85);
}

TEST_CASE("bad save requests are rejected before anything is written") {
  SafetensorsTestDir t;
  const std::string path = t.file("out.safetensors");
  const Tensor x = Tensor::zeros({2});
  CHECK_THROWS_WITH_AS(save_safetensors(path, {{"w", x}, {"w", x}}), doctest::Contains("duplicate tensor name 'w'"),
                       pfq::Error);
  CHECK_THROWS_WITH_AS(save_safetensors(path, {{"__metadata__", x}}), doctest::Contains("is reserved"), pfq::Error);
  CHECK_THROWS_WITH_AS(save_safetensors(path, {{"", x}}), doctest::Contains("empty tensor name"), pfq::Error);
  CHECK_THROWS_WITH_AS(save_safetensors(path, {{"u", Tensor()}}), doctest::Contains("tensor 'u' is undefined"),
                       pfq::Error);
  CHECK_THROWS_WITH_AS(save_safetensors(path, {{"bad\xff", x}}), doctest::Contains("valid UTF-8"), pfq::Error);
  CHECK(t.count() == 0);
  const std::string missing_dir = t.file("nope/out.safetensors");
  CHECK_THROWS_WITH_AS(save_safetensors(missing_dir, {{"w", x}}), doctest::Contains(missing_dir.c_str()), pfq::Error);
  CHECK(t.count() == 0);
  // Overwriting keeps one file holding the new contents.
  save_safetensors(path, {{"w", x}});
  save_safetensors(path, {{"v", Tensor::ones({3})}});
  CHECK(t.count() == 1);
  CHECK(load_safetensors(path).at("v").to_vector<float>() == std::vector<float>{1, 1, 1});
}
