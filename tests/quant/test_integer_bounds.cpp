// test_integer_bounds.cpp — the .pfqint loader bounds the integer arithmetic a file can ask for
// (quant/integer/io.cpp): int32 accumulators (from the weights' sizes), global-pool sums, Q31
// requant multipliers and int64 requant sums; each refusal names the tensor or node.
#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/io/safetensors.h"
#include "quant/integer/model.h"
#include "tests/data/data_test_util.h"

using namespace pfq;
using nlohmann::json;
using pfq::data::testing::TempDir;

namespace {

// A hand-made integer model: quantize [1, side, side] -> conv2d (1 -> 1 channel, a k x k kernel
// of weights `w`, k = side unless given) -> requant (the conv output `terms` times, multiplier m,
// shift r, term zero point z) -> global_avgpool (over the whole map) -> dequantize.
struct Graph {
  int64_t side = 300, k = 0;
  int8_t w = 1;
  int32_t m = 1 << 30, r = 40, z = 0;
  int terms = 1;
};
std::string write_graph(const TempDir& dir, const std::string& name, const Graph& g) {
  models::ModelConfig mc{.in_channels = 1, .input_size = g.side, .arch = "handmade"};
  const int64_t k = g.k ? g.k : g.side, out = g.side - k + 1;
  std::vector<std::pair<std::string, Tensor>> t;
  t.emplace_back("c.weight", Tensor::from_vector(std::vector<int8_t>(k * k, g.w), {1, 1, k, k}));
  t.emplace_back("c.weight_scale", Tensor::full({1}, 0.01f));
  json terms = json::array();
  std::vector<std::string> inputs;
  for (int i = 0; i < g.terms; ++i) {
    terms.push_back({{"input", "c"}, {"zero_point", g.z}, {"bias", false}, {"correction", false}});
    inputs.push_back("c");
    t.emplace_back("r.term" + std::to_string(i) + ".multiplier", Tensor::from_vector(std::vector<int32_t>{g.m}, {1}));
    t.emplace_back("r.term" + std::to_string(i) + ".shift", Tensor::from_vector(std::vector<int32_t>{g.r}, {1}));
  }
  t.emplace_back("d.scale", Tensor::full({1}, 0.1f));
  t.emplace_back("d.bias", Tensor::full({1}, 0.0f));
  const json act = {{"scale", 0.1}, {"zero_point", 0}, {"qmin", -128}, {"qmax", 127}};
  json q = {{"name", "q"}, {"op", "quantize"}, {"inputs", {"input"}}};
  q.update(act);
  json c = {{"name", "c"},          {"op", "conv2d"},  {"inputs", {"q"}},         {"in_channels", 1},
            {"out_channels", 1},    {"kernel", {k, k}}, {"stride", {1, 1}}, {"padding", {0, 0}},
            {"dilation", {1, 1}},   {"groups", 1},     {"weight_bits", 8}};
  json r = {{"name", "r"}, {"op", "requant"}, {"inputs", inputs}, {"frac_bits", 24}, {"terms", terms}};
  r.update(act);
  json p = {{"name", "p"}, {"op", "global_avgpool"}, {"inputs", {"r"}}, {"kernel", {out, out}}};
  json d = {{"name", "d"}, {"op", "dequantize"}, {"inputs", {"p"}}, {"input_zero_point", 0}};
  json graph = {{"format", quant::kIntFormat}, {"arch", mc.arch}, {"model", mc}, {"qat", json::object()},
                {"input_shape", {1, g.side, g.side}}, {"nodes", {q, c, r, p, d}}};
  const std::string path = dir / name;
  io::save_safetensors(path, t, {{"format", quant::kIntFormat}, {"pfq_int_graph", graph.dump()}});
  return path;
}

}  // namespace

TEST_CASE("integer model: a hand-made file within the arithmetic's bounds loads") {
  TempDir dir;
  Graph g;  // 90000 weights of 1: accumulators below 90000 * 255
  CHECK_NOTHROW(quant::load_integer_model(write_graph(dir, "ok.pfqint", g)));
  g.w = -128;
  g.side = 256;  // 65536 * 128 * 255 < 2^31, just
  CHECK_NOTHROW(quant::load_integer_model(write_graph(dir, "edge.pfqint", g)));
}

TEST_CASE("integer model: weights whose int32 accumulator could overflow are refused, naming the tensor") {
  TempDir dir;
  Graph g;
  g.w = -128;  // 90000 * 128 * 255 = 2.9e9 > 2^31
  CHECK_THROWS_WITH_AS(quant::load_integer_model(write_graph(dir, "acc.pfqint", g)),
                       doctest::Contains("tensor 'c.weight': output channel 0 sums 90000 products"), Error);
  CHECK_THROWS_WITH_AS(quant::load_integer_model(write_graph(dir, "acc.pfqint", g)), doctest::Contains("beyond int32"), Error);
}

TEST_CASE("integer model: a multiplier outside Q31 or an int64 requant sum that could overflow is refused") {
  TempDir dir;
  Graph g;
  g.m = 5;
  CHECK_THROWS_WITH_AS(quant::load_integer_model(write_graph(dir, "m.pfqint", g)),
                       doctest::Contains("tensor 'r.term0.multiplier' [0] = 5: a multiplier must be 0 or have |m| in [2^30, 2^31)"),
                       Error);
  g = Graph{};
  g.side = 245;  // accumulators up to 60025 * 128 * 255 = 1.96e9
  g.w = -128;
  g.m = INT32_MAX;
  g.r = 0;
  g.z = INT32_MAX;  // |v - z| up to 4.1e9: one term's product 8.8e18 fits int64, two do not
  CHECK_NOTHROW(quant::load_integer_model(write_graph(dir, "one.pfqint", g)));
  g.terms = 2;
  CHECK_THROWS_WITH_AS(quant::load_integer_model(write_graph(dir, "two.pfqint", g)),
                       doctest::Contains("tensor 'r.term1.multiplier' [0]: with shift 0 the requantization sum of channel 0 can reach"),
                       Error);
}

TEST_CASE("integer model: a global pool whose int32 sum could overflow is refused, naming the node") {
  TempDir dir;
  Graph g;
  g.side = 4096;  // a 1x1 conv keeps 4096 x 4096: 16.8M values * 255 > 2^31
  g.k = 1;
  CHECK_THROWS_WITH_AS(quant::load_integer_model(write_graph(dir, "pool.pfqint", g)),
                       doctest::Contains("node 'p': kernel [4096, 4096] sums 16777216 8-bit values per channel"), Error);
  g.side = 2048;  // 4.2M * 255 < 2^31
  CHECK_NOTHROW(quant::load_integer_model(write_graph(dir, "pool-ok.pfqint", g)));
}
