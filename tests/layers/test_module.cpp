// test_module.cpp — the Module base: registration and dotted names, traversal order,
// train/eval, dtype moves that keep tensor handles, zero_grad, load_state_dict round trip and
// its errors, child replacement by dotted name, and the printed tree.
#include <doctest/doctest.h>

#include "core/ops.h"
#include "layers/layers.h"
#include "tests/gradcheck.h"

using namespace pfq;

namespace {
// conv1 -> bn1 -> relu -> body (Sequential of two convs) -> flatten -> fc, all named.
class TinyNet : public Sequential {
 public:
  explicit TinyNet(uint64_t seed) {
    Generator g(seed);
    add("conv1", std::make_shared<Conv2d>(2, 4, 3, Conv2dArgs{.padding = 1, .bias = false}, g));
    add("bn1", std::make_shared<BatchNorm2d>(4));
    add("relu", std::make_shared<ReLU>());
    auto body = std::make_shared<Sequential>();
    body->push_back(std::make_shared<Conv2d>(4, 4, 3, Conv2dArgs{.stride = 2, .padding = 1}, g));
    body->push_back(std::make_shared<BatchNorm2d>(4));
    add("body", body);
    add("flatten", std::make_shared<Flatten>());
    add("fc", std::make_shared<Linear>(4 * 3 * 3, 3, true, g));
  }
  std::string type_name() const override { return "TinyNet"; }
};

std::vector<std::string> names(const NamedTensors& v) {
  std::vector<std::string> out;
  for (const auto& [n, t] : v) out.push_back(n);
  return out;
}
}  // namespace

TEST_CASE("module: dotted names in registration order, parameters first per module") {
  TinyNet net(1);
  CHECK(names(net.named_parameters()) == std::vector<std::string>{"conv1.weight", "bn1.weight", "bn1.bias", "body.0.weight",
                                                                  "body.0.bias", "body.1.weight", "body.1.bias", "fc.weight", "fc.bias"});
  CHECK(names(net.named_buffers()) ==
        std::vector<std::string>{"bn1.running_mean", "bn1.running_var", "bn1.num_batches_tracked", "body.1.running_mean",
                                 "body.1.running_var", "body.1.num_batches_tracked"});
  const auto sd = names(net.state_dict());
  REQUIRE(sd.size() == 15);
  CHECK(sd[1] == "bn1.weight");
  CHECK(sd[3] == "bn1.running_mean");
  CHECK(sd[6] == "body.0.weight");
  std::vector<std::string> mods;
  for (const auto& [n, m] : net.named_modules()) mods.push_back(n + ":" + m->type_name());
  CHECK(mods == std::vector<std::string>{":TinyNet", "conv1:Conv2d", "bn1:BatchNorm2d", "relu:ReLU", "body:Sequential",
                                         "body.0:Conv2d", "body.1:BatchNorm2d", "flatten:Flatten", "fc:Linear"});
  CHECK(net.num_parameters() == 2 * 4 * 9 + 8 + 4 * 4 * 9 + 4 + 8 + 36 * 3 + 3);
  CHECK(net.parameters().size() == 9);
}

TEST_CASE("module: parameters are grad-requiring leaves, buffers are not") {
  TinyNet net(1);
  for (const auto& [n, t] : net.named_parameters()) {
    const std::string name = n;  // clang 14: a structured binding cannot be captured (CAPTURE is a lambda)
    CAPTURE(name);
    CHECK(t.requires_grad());
    CHECK(t.is_leaf());
  }
  for (const auto& [n, t] : net.named_buffers()) CHECK_FALSE(t.requires_grad());
  const Tensor nbt = net.child("bn1")->buffer("num_batches_tracked");
  CHECK(nbt.dtype() == DType::Int64);
  CHECK(nbt.dim() == 0);
  // A parameter registered from a non-leaf becomes a leaf of its own.
  Identity holder;
  Tensor a = Tensor::ones({2}).set_requires_grad(true);
  Tensor& p = holder.register_parameter("w", mul(a, 2.0));
  CHECK(p.is_leaf());
  CHECK(p.requires_grad());
  CHECK_THROWS_WITH_AS(holder.register_buffer("w", Tensor::ones({1})), doctest::Contains("already registered"), Error);
  CHECK_THROWS_WITH_AS(holder.register_parameter("a.b", Tensor::ones({1})), doctest::Contains("invalid parameter name"), Error);
  CHECK_THROWS_WITH_AS(holder.parameter("v"), doctest::Contains("has: w"), Error);
}

TEST_CASE("module: train/eval recurses; zero_grad drops gradients") {
  TinyNet net(1);
  CHECK(net.child("body")->child("1")->is_training());
  net.eval();
  CHECK_FALSE(net.is_training());
  CHECK_FALSE(net.child("body")->child("1")->is_training());
  net.train();
  CHECK(net.child("body")->child("0")->is_training());
  Generator g(2);
  sum(net.forward(Tensor::randn({2, 2, 5, 5}, g))).backward();
  for (const auto& [n, t] : net.named_parameters()) CHECK(t.grad().defined());
  net.zero_grad();
  for (const auto& [n, t] : net.named_parameters()) CHECK_FALSE(t.grad().defined());
}

TEST_CASE("module: to(dtype) converts in place, keeping handles and int64 buffers") {
  TinyNet net(1);
  const std::vector<Tensor> before = net.parameters();
  const std::vector<float> w32 = before[0].to_vector<float>();
  net.to(DType::Float64);
  for (size_t i = 0; i < before.size(); ++i) {
    CHECK(before[i].dtype() == DType::Float64);  // the same handle sees the new dtype
    CHECK(before[i].requires_grad());
  }
  CHECK(before[0].to_vector<double>()[3] == doctest::Approx(w32[3]));
  CHECK(net.child("bn1")->buffer("running_var").dtype() == DType::Float64);
  CHECK(net.child("bn1")->buffer("num_batches_tracked").dtype() == DType::Int64);
  Generator g(3);
  const Tensor y = net.forward(Tensor::randn({2, 2, 5, 5}, g, 0, 1, DType::Float64));
  CHECK(y.dtype() == DType::Float64);
  CHECK_THROWS_AS(net.to(DType::Int64), Error);
  net.to(Device::cpu());  // no-op on the same device
  CHECK(before[0].device() == Device::cpu());
}

TEST_CASE("module: load_state_dict round trip copies everything") {
  TinyNet a(1), b(2);
  Generator g(4);
  const Tensor x = Tensor::randn({2, 2, 5, 5}, g);
  a.forward(x);  // moves a's running statistics and counters
  a.eval();
  b.eval();
  NoGradGuard ng;
  CHECK(test::max_abs_diff(a.forward(x), b.forward(x)) > 1e-3);
  const LoadResult r = b.load_state_dict(a.state_dict());
  CHECK(r.missing_keys.empty());
  CHECK(r.unexpected_keys.empty());
  CHECK(test::max_abs_diff(a.forward(x), b.forward(x)) == 0.0);
  CHECK(b.child("bn1")->buffer("num_batches_tracked").item() == 1);
  // A std::map and float64 sources work too (converted to the module's dtype).
  std::map<std::string, Tensor> m;
  for (const auto& [n, t] : a.state_dict()) m[n] = is_floating(t.dtype()) ? t.to(DType::Float64) : t;
  TinyNet c(3);
  c.eval();
  c.load_state_dict(m);
  CHECK(test::max_abs_diff(a.forward(x), c.forward(x)) < 1e-6);
}

TEST_CASE("module: load_state_dict names missing, unexpected and mismatched keys") {
  TinyNet a(1), b(2);
  NamedTensors sd = a.state_dict();
  const std::vector<float> w_before = b.child("fc")->parameter("weight").to_vector<float>();
  NamedTensors missing(sd.begin() + 1, sd.end());  // drops conv1.weight
  CHECK_THROWS_WITH_AS(b.load_state_dict(missing), doctest::Contains("missing keys: conv1.weight"), Error);
  NamedTensors extra = sd;
  extra.emplace_back("head.weight", Tensor::ones({2}));
  CHECK_THROWS_WITH_AS(b.load_state_dict(extra), doctest::Contains("unexpected keys: head.weight"), Error);
  NamedTensors wrong = sd;
  for (auto& [n, t] : wrong)
    if (n == "body.0.weight") t = Tensor::zeros({3, 4, 3, 3});
  CHECK_THROWS_WITH_AS(b.load_state_dict(wrong), doctest::Contains("body.0.weight: checkpoint [3, 4, 3, 3] vs model [4, 4, 3, 3]"), Error);
  CHECK_THROWS_WITH_AS(b.load_state_dict(wrong, false), doctest::Contains("size/dtype mismatch"), Error);
  // Nothing was modified by the failed loads.
  CHECK(b.child("fc")->parameter("weight").to_vector<float>() == w_before);
  // Non-strict loading reports instead of throwing, and loads what matches.
  const LoadResult r = b.load_state_dict(NamedTensors(missing.begin(), missing.end() - 1), false);
  CHECK(r.missing_keys == std::vector<std::string>{"conv1.weight", "fc.bias"});
  CHECK(b.child("fc")->parameter("weight").to_vector<float>() == a.child("fc")->parameter("weight").to_vector<float>());
  CHECK_THROWS_WITH_AS(b.load_state_dict(NamedTensors{sd[0], sd[0]}, false), doctest::Contains("appears twice"), Error);
}

TEST_CASE("module: replace_module by dotted name; submodule lookup errors") {
  TinyNet net(1);
  Generator g(5);
  const Tensor x = Tensor::randn({2, 2, 5, 5}, g);
  net.eval();
  NoGradGuard ng;
  const Tensor y0 = net.forward(x);
  auto old = net.replace_module("body.1", std::make_shared<Identity>());
  CHECK(old->type_name() == "BatchNorm2d");
  CHECK(net.submodule("body.1").type_name() == "Identity");
  CHECK(net.named_buffers().size() == 3);  // the replaced BN's buffers are gone
  CHECK(test::max_abs_diff(y0, net.forward(x)) > 0);
  CHECK_THROWS_WITH_AS(net.replace_module("body.7", std::make_shared<Identity>()), doctest::Contains("no child named '7'"), Error);
  CHECK_THROWS_WITH_AS(net.submodule("body.0.x"), doctest::Contains("has no child 'x'"), Error);
  CHECK_THROWS_WITH_AS(net.child_as<Linear>("conv1"), doctest::Contains("is a Conv2d"), Error);
}

TEST_CASE("module: repr prints a PyTorch-like tree") {
  TinyNet net(1);
  const std::string s = net.repr();
  CHECK(s.find("TinyNet(\n  (conv1): Conv2d(2, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)") == 0);
  CHECK(s.find("(body): Sequential(\n    (0): Conv2d(4, 4, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1))") != std::string::npos);
  CHECK(s.find("(fc): Linear(in_features=36, out_features=3, bias=True)") != std::string::npos);
}
