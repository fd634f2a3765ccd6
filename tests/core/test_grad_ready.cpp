// test_grad_ready.cpp — the leaf-gradient-ready hook of backward (core/grad_ready.h): each leaf
// reported once, after its last contribution (so with its final gradient), in the walk's fixed
// order, leaves behind nodes that no gradient reached reported too, and a backward without a
// hook unchanged. What data-parallel training's overlapped all-reduce relies on
// (apps/data_parallel.h; its 2-rank equality test is in tests/e2e/test_distributed_e2e.cpp).
#include <doctest/doctest.h>

#include <map>

#include "core/autograd.h"
#include "core/grad_ready.h"
#include "core/ops.h"
#include "core/random.h"
#include "layers/models/registry.h"

using namespace pfq;

namespace {

// What the hook saw: the leaves in call order and a copy of each one's gradient at the call.
struct Seen {
  std::vector<const TensorImpl*> order;
  std::map<const TensorImpl*, std::vector<Tensor>> grads;
  GradReadyHook hook() {
    return [this](const Tensor& leaf) {
      order.push_back(&leaf.impl());
      grads[&leaf.impl()].push_back(leaf.grad().defined() ? leaf.grad().clone() : Tensor());
    };
  }
};

// Bit for bit (float32 and float64 values widen to double exactly).
bool same(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.contiguous().to(DType::Float64).to_vector<double>() == b.contiguous().to(DType::Float64).to_vector<double>();
}

Tensor leaf(std::vector<double> v) {
  const int64_t n = static_cast<int64_t>(v.size());
  return Tensor::from_vector<double>(v, {n}).set_requires_grad(true);
}

}  // namespace

TEST_CASE("grad ready: a leaf used by two ops is reported once, after both contributions, with its final gradient") {
  Tensor x = leaf({1, 2}), w = leaf({5, 7});
  Seen seen;
  {
    GradReadyHookScope scope(seen.hook());
    // x feeds two ops, one near the loss (mul by 3) and one further back (mul by w, then exp-free chain).
    Tensor y = add(sum(mul(mul(x, w), 2.0)), sum(mul(x, 3.0)));
    y.backward();
  }
  REQUIRE(seen.grads.count(&x.impl()) == 1);
  REQUIRE(seen.grads.count(&w.impl()) == 1);
  REQUIRE(seen.grads[&x.impl()].size() == 1);  // once
  REQUIRE(seen.grads[&w.impl()].size() == 1);
  CHECK(seen.order.size() == 2);
  // x's gradient when reported: both contributions (2w + 3), i.e. its final value.
  CHECK(seen.grads[&x.impl()][0].to_vector<double>() == std::vector<double>{13, 17});
  CHECK(seen.grads[&x.impl()][0].to_vector<double>() == x.grad().to_vector<double>());
  CHECK(seen.grads[&w.impl()][0].to_vector<double>() == std::vector<double>{2, 4});
}

TEST_CASE("grad ready: a leaf used twice by one op (x * x) is reported after both edges") {
  Tensor x = leaf({3});
  Seen seen;
  GradReadyHookScope scope(seen.hook());
  sum(mul(x, x)).backward();
  REQUIRE(seen.order.size() == 1);
  CHECK(seen.grads[&x.impl()][0].item() == 6.0);
}

TEST_CASE("grad ready: leaves near the loss are reported first, in the same order on every run") {
  // A chain x -> (* a) -> (* b) -> (* c) -> sum: c's node runs first in backward, a's last.
  std::vector<std::vector<const TensorImpl*>> orders;
  Tensor a = leaf({1, 2}), b = leaf({3, 4}), c = leaf({5, 6});
  for (int run = 0; run < 2; ++run) {
    Seen seen;
    GradReadyHookScope scope(seen.hook());
    sum(mul(mul(mul(Tensor::ones({2}, DType::Float64), a), b), c)).backward();
    orders.push_back(seen.order);
  }
  CHECK(orders[0] == std::vector<const TensorImpl*>{&c.impl(), &b.impl(), &a.impl()});
  CHECK(orders[1] == orders[0]);
}

TEST_CASE("grad ready: a leaf whose only op received no gradient is still reported, with none") {
  Tensor x = leaf({1, 2}), w = leaf({4});
  // The op "cut" passes no gradient to its input: mul(x, 2)'s node is never reached.
  Tensor cut = record("cut", mul(x, 2.0).detach(), {mul(x, 2.0)}, [](const Tensor&) { return std::vector<Tensor>{Tensor()}; });
  Seen seen;
  {
    GradReadyHookScope scope(seen.hook());
    sum(add(mul(cut, 1.0), mul(w, 1.0))).backward();
  }
  REQUIRE(seen.grads.count(&x.impl()) == 1);
  CHECK_FALSE(seen.grads[&x.impl()][0].defined());
  CHECK_FALSE(x.grad().defined());
  REQUIRE(seen.grads.count(&w.impl()) == 1);
  CHECK(seen.grads[&w.impl()][0].item() == 2.0);  // broadcast over cut's two elements
}

TEST_CASE("grad ready: the backward of a leaf itself reports it after seeding") {
  Tensor x = leaf({2});
  Seen seen;
  GradReadyHookScope scope(seen.hook());
  x.backward(Tensor::from_vector<double>({0.5}, {1}));
  REQUIRE(seen.order.size() == 1);
  CHECK(seen.grads[&x.impl()][0].item() == 0.5);
}

TEST_CASE("grad ready: scopes nest and end; without a hook backward gives the same gradients") {
  CHECK(current_grad_ready_hook() == nullptr);
  Seen outer, inner;
  {
    GradReadyHookScope a(outer.hook());
    {
      GradReadyHookScope b(inner.hook());
      sum(mul(leaf({1}), 2.0)).backward();
    }
    sum(mul(leaf({1}), 2.0)).backward();
  }
  CHECK(inner.order.size() == 1);
  CHECK(outer.order.size() == 1);
  CHECK(current_grad_ready_hook() == nullptr);
}

TEST_CASE("grad ready: every parameter of a ResNet-20 reported once, with its final gradient; gradients as without the hook") {
  std::vector<NamedTensors> grads;
  for (int with_hook = 0; with_hook < 2; ++with_hook) {
    manual_seed(3);
    ModulePtr m = models::build_model(
        "resnet20", models::ModelConfig{.in_channels = 1, .input_size = 8, .num_classes = 10, .seed = 3, .arch = "resnet20"});
    m->train();
    Generator gen(5);
    Tensor x = Tensor::randn({4, 1, 8, 8}, gen);
    Tensor y = Tensor::from_vector<int64_t>({1, 3, 5, 7}, {4});
    Seen seen;
    {
      std::unique_ptr<GradReadyHookScope> scope;
      if (with_hook) scope = std::make_unique<GradReadyHookScope>(seen.hook());
      cross_entropy(m->forward(x), y, 0, y).backward();
    }
    NamedTensors g;
    for (auto& [n, p] : m->named_parameters()) {
      g.emplace_back(n, p.grad().clone());
      if (!with_hook) continue;
      const std::string name = n;
      const TensorImpl* impl = &p.impl();  // plain variables: clang 14 cannot capture structured bindings in the messages
      const size_t reports = seen.grads.count(impl) ? seen.grads[impl].size() : 0;
      REQUIRE_MESSAGE(reports >= 1, name, " never reported");
      REQUIRE_MESSAGE(reports == 1, name, " reported ", reports, " times");
      CHECK_MESSAGE(same(seen.grads[impl][0], p.grad()), name, ": its gradient changed after it was reported");
    }
    if (with_hook) {
      CHECK(seen.order.size() == g.size());
      // The classifier (registered last) is reported first, the first convolution (first) last.
      const NamedTensors params = m->named_parameters();
      std::string first, last;
      for (const auto& [n, p] : params) {
        if (&p.impl() == seen.order.front()) first = n;
        if (&p.impl() == seen.order.back()) last = n;
      }
      CHECK(first.rfind("fc.", 0) == 0);
      CHECK(last == params.front().first);
    }
    grads.push_back(g);
  }
  for (size_t i = 0; i < grads[0].size(); ++i) CHECK_MESSAGE(same(grads[0][i].second, grads[1][i].second), grads[0][i].first);
}
