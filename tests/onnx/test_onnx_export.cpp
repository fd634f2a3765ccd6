// test_onnx_export.cpp — ONNX export (onnx/export.h), checked here for structure (read back with
// protobuf: opsets, folded or kept BatchNormalization, INT4 weights packed two per byte, axis 0
// on per-channel weight DequantizeLinear, a file whose weights shrink with the bit width, clear
// errors before anything is written). Whether the files compute what pfq computes is checked by
// ONNX's own software: with PFQ_ONNX_DUMP=<dir> the last case writes a matrix of models and
// reference logits there for tools/onnx_check.py (onnx.checker + ONNX Runtime).
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include "core/autograd.h"
#include "core/io/safetensors.h"
#include "data/factory.h"
#include "layers/models/registry.h"
#include "onnx/export.h"
#include "prune/pfq.h"
#include "quant/integer/model.h"
#include "quant/qat.h"
#include "tests/prune/prune_test_util.h"
#ifdef PFQ_WITH_ONNX
#include "onnx.pb.h"
#include "onnx/proto_writer.h"
#endif

using namespace pfq;
namespace fs = std::filesystem;

namespace {

models::ModelConfig cfg_of(const std::string& arch, double width, int64_t in_c = 1, int64_t size = 28, const std::string& variant = "") {
  models::ModelConfig c{.in_channels = in_c, .input_size = size, .num_classes = 10, .width = width, .variant = variant};
  c.arch = arch;
  return c;
}

quant::QatConfig qat_cfg(int w, int a, bool per_channel) {
  quant::QatConfig q;
  q.wbits = w;
  q.abits = a;
  q.per_channel = per_channel;
  q.calib_batches = 1;
  return q;
}

// Test images: Fashion-MNIST's test split when installed (its own normalisation), else N(0, 1).
Tensor images(int64_t n, const models::ModelConfig& c, uint64_t seed) {
  const std::string dir = data::default_data_dir("fashion-mnist");
  if (c.in_channels == 1 && c.input_size == 28 && fs::exists(dir)) {
    auto ds = data::make_dataset("fashion-mnist", dir, "test");
    const data::NormStats norm = data::norm_stats("fashion-mnist");
    Tensor x = Tensor::empty({n, 1, 28, 28});
    for (int64_t i = 0; i < n; ++i) {
      const data::Sample s = ds->get((i * 37 + static_cast<int64_t>(seed)) % ds->size());
      for (int64_t k = 0; k < 28 * 28; ++k)
        x.data<float>()[i * 784 + k] = (s.image.data[static_cast<size_t>(k)] - norm.mean[0]) / norm.std[0];
    }
    return x;
  }
  Generator g(seed);
  return Tensor::randn({n, c.in_channels, c.input_size, c.input_size}, g);
}

ModulePtr qat_model(const models::ModelConfig& c, const quant::QatConfig& q, uint64_t seed, ModulePtr base = nullptr) {
  ModulePtr m = base ? base : models::build_model(c);
  quant::prepare_qat(*m, q);
  NoGradGuard ng;
  m->train();
  for (int i = 0; i < 3; ++i) m->forward(images(32, c, seed + static_cast<uint64_t>(i)));
  m->eval();
  return m;
}

#ifdef PFQ_WITH_ONNX
::onnx::ModelProto read_model(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  ::onnx::ModelProto m;
  REQUIRE(m.ParseFromIstream(&f));
  return m;
}

std::map<std::string, int> op_census(const ::onnx::ModelProto& m) {
  std::map<std::string, int> n;
  for (const auto& node : m.graph().node()) n[node.op_type()]++;
  return n;
}

const ::onnx::TensorProto* initializer(const ::onnx::ModelProto& m, const std::string& name) {
  for (const auto& t : m.graph().initializer())
    if (t.name() == name) return &t;
  return nullptr;
}
#endif

struct TempDir {
  fs::path path;
  TempDir() : path(fs::temp_directory_path() / ("pfq-onnx-" + std::to_string(::getpid()))) { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
};

}  // namespace

TEST_CASE("onnx export: a build without protobuf says what to install") {
  if (onnx_export::available()) {
    MESSAGE("built with ONNX export: nothing to check here");
    return;
  }
  auto m = models::build_model(cfg_of("resnet20", 0.25));
  CHECK_THROWS_WITH_AS(onnx_export::export_model(*m, {.input_shape = {1, 1, 28, 28}}, "x.onnx"), doctest::Contains("libonnx-dev"), Error);
}

#ifdef PFQ_WITH_ONNX
TEST_CASE("onnx export: INT4 values are packed two per byte, low nibble first, two's complement") {
  ::onnx::GraphProto g;
  onnx_export::ProtoWriter w(&g);
  const std::string n = w.init_int("w", onnx_export::Elem::Int4, {-8, 7, 1, -1, 3}, {5});
  REQUIRE(g.initializer_size() == 1);
  CHECK(n == "w");
  CHECK(g.initializer(0).data_type() == 22);
  CHECK(g.initializer(0).raw_data() == std::string("\x78\xF1\x03", 3));
  CHECK_THROWS_WITH_AS(w.init_int("u", onnx_export::Elem::Uint4, {16}, {1}), doctest::Contains("outside UINT4 [0, 15]"), Error);
  CHECK(w.fresh("w") == "w_1");
}

TEST_CASE("onnx export: float models, BN folded or kept, every builder's model") {
  TempDir tmp;
  struct Case { std::string arch; double width; int64_t size; std::string variant; };
  for (const Case& k : {Case{"resnet20", 0.25, 28, ""}, Case{"mobilenetv1", 0.25, 28, ""}, Case{"mobilenetv2", 0.25, 28, ""},
                        Case{"resnet18", 0.125, 64, "imagenet"}, Case{"resnet50", 0.0625, 64, "imagenet"}}) {
    CAPTURE(k.arch);
    const models::ModelConfig c = cfg_of(k.arch, k.width, 1, k.size, k.variant);
    auto m = models::build_model(c);
    int convs = 0, bns = 0;
    for (auto& [n, mod] : m->named_modules()) convs += mod->type_name() == "Conv2d", bns += mod->type_name() == "BatchNorm2d";
    const std::string path = (tmp.path / (k.arch + ".onnx")).string();
    const auto r = onnx_export::export_model(*m, {.input_shape = {1, 1, k.size, k.size}}, path);
    CHECK(r.opset == 17);
    CHECK(r.quantize_pairs == 0);
    const ::onnx::ModelProto mp = read_model(path);
    CHECK(mp.opset_import(0).version() == 17);
    CHECK(mp.graph().output(0).name() == "logits");
    CHECK(mp.graph().input(0).type().tensor_type().shape().dim(0).dim_param() == "N");
    auto ops = op_census(mp);
    CHECK(ops["Conv"] == convs);
    CHECK(ops["BatchNormalization"] == 0);
    CHECK(ops["Gemm"] == 1);
    CHECK(ops["MaxPool"] == (k.variant == "imagenet" ? 1 : 0));
    CHECK(static_cast<int64_t>(fs::file_size(path)) == r.bytes);
    const auto kept = onnx_export::export_model(*m, {.input_shape = {1, 1, k.size, k.size}, .fold_bn = false}, path);
    CHECK(op_census(read_model(path))["BatchNormalization"] == bns);
    CHECK(kept.nodes == r.nodes + bns);
  }
}

TEST_CASE("onnx export: QAT models as QDQ graphs; INT4 weights packed, axis 0 per channel, size follows the bits") {
  TempDir tmp;
  const models::ModelConfig c = cfg_of("mobilenetv2", 0.25);
  auto m4 = qat_model(c, qat_cfg(4, 4, true), 1);
  auto m8 = qat_model(c, qat_cfg(8, 8, false), 1);
  const std::string p4 = (tmp.path / "w4.onnx").string(), p8 = (tmp.path / "w8.onnx").string();
  const auto r4 = onnx_export::export_model(*m4, {.input_shape = {1, 1, 28, 28}}, p4);
  const auto r8 = onnx_export::export_model(*m8, {.input_shape = {1, 1, 28, 28}}, p8);
  MESSAGE("W4: ", r4.summary());
  MESSAGE("W8: ", r8.summary());
  CHECK(r4.opset == 21);
  CHECK(r4.quantize_pairs > 0);
  CHECK(r4.quantize_pairs == r8.quantize_pairs);
  // the 8-bit first conv and last linear keep W4's weights from being exactly half of W8's
  CHECK(r4.weight_bytes < 0.6 * r8.weight_bytes);
  CHECK(r4.bytes < r8.bytes);
  const ::onnx::ModelProto mp = read_model(p4);
  CHECK(mp.ir_version() == 10);
  const auto* w = initializer(mp, "features.2.conv.0.0.weight_q");
  REQUIRE(w != nullptr);
  CHECK(w->data_type() == 22);  // INT4
  int64_t numel = 1;
  for (int64_t d : w->dims()) numel *= d;
  CHECK(static_cast<int64_t>(w->raw_data().size()) == (numel + 1) / 2);
  CHECK(initializer(mp, "features.0.0.weight_q")->data_type() == 3);  // the first conv: INT8
  int per_channel_dq = 0, act_q = 0;
  for (const auto& n : mp.graph().node()) {
    if (n.op_type() == "QuantizeLinear") ++act_q;
    if (n.op_type() != "DequantizeLinear" || n.name().find("weight_dequantize") == std::string::npos) continue;
    REQUIRE(n.attribute_size() == 1);
    CHECK(n.attribute(0).name() == "axis");
    CHECK(n.attribute(0).i() == 0);
    ++per_channel_dq;
  }
  CHECK(per_channel_dq == op_census(mp)["Conv"] + 1);
  CHECK(act_q == r4.quantize_pairs);
}

TEST_CASE("onnx export: what ONNX cannot express is an error naming it, nothing written") {
  TempDir tmp;
  const models::ModelConfig c = cfg_of("mobilenetv1", 0.25);
  auto m3 = qat_model(c, qat_cfg(4, 3, false), 2);
  const std::string p = (tmp.path / "a3.onnx").string();
  CHECK_THROWS_WITH_AS(onnx_export::export_model(*m3, {.input_shape = {1, 1, 28, 28}}, p), doctest::Contains("no 3-bit integer type"), Error);
  CHECK_FALSE(fs::exists(p));
  auto mm = qat_model(c, [] { auto q = qat_cfg(4, 4, false); q.aquant = "minmax"; return q; }(), 3);
  CHECK_THROWS_WITH_AS(onnx_export::export_model(*mm, {.input_shape = {1, 1, 28, 28}}, p), doctest::Contains("no fixed range"), Error);
  CHECK_FALSE(fs::exists(p));
}

// Writes <dir>/<name>.onnx and <name>.ref.safetensors (input, pfq's logits, and for QAT models
// the integer model's logits) for tools/onnx_check.py.
TEST_CASE("onnx export: fixtures for ONNX Runtime (PFQ_ONNX_DUMP=<dir>)") {
  const char* dir = std::getenv("PFQ_ONNX_DUMP");
  if (!dir) {
    MESSAGE("PFQ_ONNX_DUMP not set: no fixtures written (tools/onnx-check.sh sets it)");
    return;
  }
  fs::create_directories(dir);
  int written = 0;
  auto dump = [&](const std::string& name, Module& m, const models::ModelConfig& c, bool qat) {
    const Tensor x = images(256, c, 99);
    NoGradGuard ng;
    m.eval();
    Tensor logits = m.forward(x).contiguous();
    std::vector<std::pair<std::string, Tensor>> t{{"input", x}, {"logits", logits}};
    if (qat) {
      try {  // where pfq's integer runtime takes the model (onnx_check.py checks it when present)
        t.emplace_back("int_logits", quant::convert_to_integer(m, c).forward(x));
      } catch (const Error& e) {
        MESSAGE(name, ": no integer-model reference: ", e.what());
      }
    }
    const std::string base = (fs::path(dir) / name).string();
    onnx_export::export_model(m, {.input_shape = {1, c.in_channels, c.input_size, c.input_size}}, base + ".onnx");
    io::save_safetensors(base + ".ref.safetensors", t, {{"kind", qat ? "qdq" : "float"}});
    ++written;
  };
  // PfQ on a model with channels made constant (as after training with weight decay)
  auto pruned = [](const models::ModelConfig& c) {
    ModulePtr m = models::build_model(c);
    test::randomize_bn(*m, 4);
    prune::ChannelGraph g = prune::build_graph(*m, {1, c.in_channels, c.input_size, c.input_size});
    for (size_t i = 0; i < g.producers.size(); i += 3)
      if (g.producers[i].prunable_output() && g.producers[i].conv->out_channels > 2)
        test::make_constant(*g.producers[i].conv, *g.producers[i].bn, 1, 0.3f);
    prune::PfqOptions o;
    o.input_shape = {2, c.in_channels, c.input_size, c.input_size};
    const prune::PruneReport r = prune::pfq_prune(*m, c, o);
    CHECK(r.removed_total > 0);
    return std::make_pair(m, r.config);
  };
  for (const std::string arch : {"resnet20", "mobilenetv1", "mobilenetv2"}) {
    const models::ModelConfig c = cfg_of(arch, 0.25);
    auto f = models::build_model(c);
    test::randomize_bn(*f, 3);
    dump(arch + "-float", *f, c, false);
    auto [p, pc] = pruned(c);
    dump(arch + "-pfq-float", *p, pc, false);
    dump(arch + "-w4a4-pc", *qat_model(c, qat_cfg(4, 4, true), 5), c, true);
    dump(arch + "-w8a8", *qat_model(c, qat_cfg(8, 8, false), 6), c, true);
    auto [p4, pc4] = pruned(c);
    dump(arch + "-pfq-w4a4", *qat_model(pc4, qat_cfg(4, 4, false), 7, p4), pc4, true);
  }
  // ImageNet-definition ResNets (max-pool stem; ResNet-50's bottlenecks) at a small input
  for (const std::string arch : {"resnet18", "resnet50"}) {
    const models::ModelConfig c = cfg_of(arch, 0.25, 1, 32, "imagenet");
    auto f = models::build_model(c);
    test::randomize_bn(*f, 3);
    dump(arch + "-float", *f, c, false);
    dump(arch + "-w4a4-pc", *qat_model(c, qat_cfg(4, 4, true), 5), c, true);
  }
  MESSAGE("wrote ", written, " models with references to ", dir);
  CHECK(written == 19);
}
#endif
