// test_layout.cpp — channels-last activations (core/layout.h): the helpers and copies, layout
// kept by the element-wise ops, gradient accumulation and batch norm, batch norm's [N*H*W, C]
// kernels against the NCHW ones (and bit for bit across thread counts), conv2d in both layouts
// and the NCHW fallback of an nhwc backward, max pooling in both layouts, and whole models
// trained a few SGD steps with PFQ_CPU_LAYOUT's nchw and nhwc giving the same losses.
#include <doctest/doctest.h>
#include <omp.h>

#include <array>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "core/cpu/conv.h"
#include "core/cpu/conv_backend.h"
#include "core/cpu/norm_pool.h"
#include "core/layout.h"
#include "core/ops.h"
#include "core/optim/sgd.h"
#include "layers/models/registry.h"
#include "tests/gradcheck.h"
#include "tests/skip.h"

using namespace pfq;

namespace {

Tensor rnd(const Shape& s, uint64_t seed) {
  Generator g(seed);
  return Tensor::randn(s, g);
}

// Selects a CPU activation layout for one scope.
struct LayoutScope {
  cpu::CpuLayout saved = cpu::cpu_layout();
  explicit LayoutScope(cpu::CpuLayout l) { cpu::set_cpu_layout(l); }
  ~LayoutScope() { cpu::set_cpu_layout(saved); }
};

}  // namespace

TEST_CASE("layout: channels-last copies, contiguous() back, flat views") {
  Tensor x = rnd({2, 3, 4, 5}, 1);
  CHECK(x.is_contiguous());
  CHECK_FALSE(is_channels_last(x));
  Tensor c = channels_last_copy(x);
  CHECK(is_strictly_channels_last(c));
  CHECK(c.strides() == Shape{60, 1, 15, 3});
  CHECK(test::max_abs_diff(c, x) == 0);  // same logical values
  const float* pc = c.data<float>();
  CHECK(pc[1] == x.to_vector<float>()[20]);  // (n0, c1, h0, w0): next in memory, 20 apart in NCHW
  Tensor back = c.contiguous();
  CHECK(back.is_contiguous());
  CHECK(back.to_vector<float>() == x.to_vector<float>());
  CHECK(channels_last_copy(c).is_same(c) == false);  // a view of the same storage, no copy
  CHECK(channels_last_copy(c).storage() == c.storage());
  // C == 1 or H*W == 1: both layouts at once, never "strictly" channels-last
  CHECK(is_channels_last(Tensor::zeros({2, 1, 3, 3})));
  CHECK(is_channels_last(Tensor::zeros({2, 4, 1, 1})));
  CHECK_FALSE(is_strictly_channels_last(Tensor::zeros({2, 4, 1, 1})));
  CHECK_THROWS_WITH_AS(flat_view(transpose(x, 2, 3)), doctest::Contains("neither contiguous nor channels-last"), Error);
  // copies that keep the layout, and add_ into a channels-last destination
  Tensor k = copy_keeping_layout(c);
  CHECK(is_strictly_channels_last(k));
  CHECK(k.storage() != c.storage());
  k.add_(x, 2.0);  // plain other: converted to the destination's layout first
  CHECK(test::max_abs_diff(k, mul(x, 3.0)) < 1e-6);
}

TEST_CASE("layout: element-wise ops keep channels-last; mixed layouts give the same values") {
  Tensor a = rnd({2, 4, 3, 3}, 2), b = rnd({2, 4, 3, 3}, 3);
  Tensor ac = channels_last_copy(a), bc = channels_last_copy(b);
  Tensor y = add(relu(ac), mul(bc, ac));
  CHECK(is_strictly_channels_last(y));
  CHECK(test::max_abs_diff(y, add(relu(a), mul(b, a))) < 1e-6);
  Tensor mixed = add(ac, b);  // one plain operand: the strided loops, plain output
  CHECK(mixed.is_contiguous());
  CHECK(test::max_abs_diff(mixed, add(a, b)) < 1e-6);
  // relu's gradient from a plain upstream gradient comes out in the saved output's layout
  Tensor leaf = a.clone().set_requires_grad(true);
  Tensor r = relu(to_channels_last(leaf));
  sum(mul(r, b)).backward();
  Tensor want = mul(b, sign(relu(a)));  // b where a > 0
  CHECK(test::max_abs_diff(leaf.grad(), want) < 1e-6);
}

TEST_CASE("layout: a channels-last tensor used twice accumulates its gradient in its layout") {
  Tensor leaf = rnd({2, 3, 4, 4}, 4).set_requires_grad(true);
  Tensor x = to_channels_last(leaf);
  Tensor s = relu(x);
  Tensor y = add(mul(s, 2.0), mul(s, s));  // s feeds two ops: two gradients meet at s
  sum(y).backward();
  const Tensor ld = leaf.detach();
  Tensor want = mul(add(mul(relu(ld), 2.0), 2.0), sign(relu(ld)));  // (2 s + 2) where x > 0
  CHECK(test::max_abs_diff(leaf.grad(), want) < 1e-5);
}

TEST_CASE("layout: batch norm's channels-last kernels match the NCHW ones, bit for bit across thread counts") {
  const int64_t N = 6, C = 20, H = 5, W = 7, M = N * H * W;
  Tensor x = add(mul(rnd({N, C, H, W}, 5), 3.0), 1.5), dy = rnd({N, C, H, W}, 6);
  Tensor gamma = rnd({C}, 7), beta = rnd({C}, 8);
  Tensor xl = channels_last_copy(x), dyl = channels_last_copy(dy);
  for (float hi : {INFINITY, 6.0f}) {
    CAPTURE(hi);
    std::vector<double> m1(C), is1(C), v1(C), m2(C), is2(C), v2(C);
    Tensor y1 = Tensor::empty(x.shape()), y2 = empty_channels_last(x.shape());
    cpu::batch_norm_train_forward<float>(N, C, H * W, x.data<float>(), gamma.data<float>(), beta.data<float>(), 1e-5, 0.f, hi,
                                         y1.data<float>(), m1.data(), is1.data(), v1.data());
    cpu::batch_norm_train_forward_nhwc<float>(M, C, xl.data<float>(), gamma.data<float>(), beta.data<float>(), 1e-5, 0.f, hi,
                                              y2.data<float>(), m2.data(), is2.data(), v2.data());
    for (int64_t c = 0; c < C; ++c) {
      CHECK(m2[c] == doctest::Approx(m1[c]).epsilon(1e-12));
      CHECK(v2[c] == doctest::Approx(v1[c]).epsilon(1e-12));
    }
    CHECK(test::max_abs_diff(y2, y1) < 1e-5);
    Tensor dx1 = Tensor::empty(x.shape()), dg1 = Tensor::empty({C}), db1 = Tensor::empty({C});
    cpu::batch_norm_backward<float>(N, C, H * W, true, x.data<float>(), dy.data<float>(), y1.data<float>(), 0.f, hi, m1.data(),
                                    is1.data(), gamma.data<float>(), dx1.data<float>(), dg1.data<float>(), db1.data<float>());
    auto backward_nhwc = [&](Tensor& dx, Tensor& dg, Tensor& db) {
      cpu::batch_norm_backward_nhwc<float>(M, C, true, xl.data<float>(), dyl.data<float>(), y2.data<float>(), 0.f, hi, m2.data(),
                                           is2.data(), gamma.data<float>(), dx.data<float>(), dg.data<float>(), db.data<float>());
    };
    Tensor dx2 = empty_channels_last(x.shape()), dg2 = Tensor::empty({C}), db2 = Tensor::empty({C});
    backward_nhwc(dx2, dg2, db2);
    CHECK(test::max_abs_diff(dx2, dx1) < 1e-5);
    CHECK(test::max_abs_diff(dg2, dg1) < 1e-4);
    CHECK(test::max_abs_diff(db2, db1) < 1e-4);
    // the fixed row split: one thread gives the same bits as several
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    Tensor dx3 = empty_channels_last(x.shape()), dg3 = Tensor::empty({C}), db3 = Tensor::empty({C});
    backward_nhwc(dx3, dg3, db3);
    omp_set_num_threads(threads);
    CHECK(flat_view(dx3).to_vector<float>() == flat_view(dx2).to_vector<float>());
    CHECK(dg3.to_vector<float>() == dg2.to_vector<float>());
  }
}

TEST_CASE("layout: conv2d under the nhwc layout returns channels-last outputs with the NCHW values") {
  if (!cpu::onednn_compiled()) {
    PFQ_SKIP("this build has no oneDNN (the nhwc layout needs it)");
  }
  Tensor x = rnd({3, 8, 9, 9}, 9), w = rnd({12, 8, 3, 3}, 10), wd = rnd({8, 1, 3, 3}, 11), wp = rnd({6, 8, 1, 1}, 12);
  Tensor b = rnd({12}, 13);
  const cpu::ConvBackend saved_backend = cpu::conv_backend();
  cpu::set_conv_backend(cpu::ConvBackend::OneDnn);
  struct Case {
    const char* name;
    Tensor w, b;
    Conv2dOptions o;
  };
  Conv2dOptions s2;
  s2.stride = {2, 2};
  s2.padding = {1, 1};
  Conv2dOptions dw;
  dw.padding = {1, 1};
  dw.groups = 8;
  for (const Case& c : {Case{"3x3 stride 2 bias", w, b, s2}, Case{"depthwise", wd, Tensor(), dw}, Case{"pointwise", wp, Tensor(), {}}}) {
    CAPTURE(std::string(c.name));
    std::vector<Tensor> out, gx, gw;
    for (cpu::CpuLayout l : {cpu::CpuLayout::Nchw, cpu::CpuLayout::Nhwc}) {
      LayoutScope scope(l);
      Tensor xv = x.clone().set_requires_grad(true), wv = c.w.clone().set_requires_grad(true);
      Tensor y = conv2d(xv, wv, c.b, c.o);
      CHECK(is_strictly_channels_last(y) == (l == cpu::CpuLayout::Nhwc));
      Tensor dy = rnd(y.shape(), 14);
      y.backward(dy);
      CHECK(is_strictly_channels_last(xv.grad()) == (l == cpu::CpuLayout::Nhwc));
      out.push_back(y);
      gx.push_back(xv.grad());
      gw.push_back(wv.grad());
    }
    CHECK(test::max_abs_diff(out[1], out[0]) < 1e-4);
    CHECK(test::max_abs_diff(gx[1], gx[0]) < 1e-4);
    CHECK(test::max_abs_diff(gw[1], gw[0]) < 2e-4);
  }
  cpu::set_conv_backend(saved_backend);
}

TEST_CASE("layout: an nhwc backward oneDNN cannot run goes through NCHW copies (float64 takes that path)") {
  // conv2d only marks float32 geometries nhwc; float64 reaching cpu::conv_backward with the mark
  // exercises the fallback for a backward primitive oneDNN refuses after its forward worked.
  ConvGeom g{2, 3, 6, 5, 4, 3, 3, 0, 0, 2, 1, 1, 1, 1, 1, 1};
  g.OH = conv_out_size(g.H, g.KH, g.sh, g.ph, g.dh);
  g.OW = conv_out_size(g.W, g.KW, g.sw, g.pw, g.dw);
  Generator gen(15);
  Tensor x = Tensor::randn({g.N, g.C, g.H, g.W}, gen, 0, 1, DType::Float64);
  Tensor w = Tensor::randn({g.OC, g.C, g.KH, g.KW}, gen, 0, 1, DType::Float64);
  Tensor dy = Tensor::randn({g.N, g.OC, g.OH, g.OW}, gen, 0, 1, DType::Float64);
  Tensor dx_ref = Tensor::empty(x.shape(), DType::Float64), dw_ref = Tensor::empty(w.shape(), DType::Float64);
  cpu::conv2d_backward_input_naive<double>(g, dy.data<double>(), w.data<double>(), dx_ref.data<double>());
  cpu::conv2d_backward_weight_naive<double>(g, dy.data<double>(), x.data<double>(), dw_ref.data<double>());
  ConvGeom gl = g;
  gl.nhwc = true;
  Tensor xl = channels_last_copy(x), dyl = channels_last_copy(dy);
  Tensor dx = empty_channels_last(x.shape(), DType::Float64), dw = Tensor::empty(w.shape(), DType::Float64);
  cpu::conv_backward<double>(gl, dyl.data<double>(), xl.data<double>(), w.data<double>(), dx.data<double>(), dw.data<double>());
  CHECK(test::max_abs_diff(dx, dx_ref) < 1e-12);
  CHECK(test::max_abs_diff(dw, dw_ref) < 1e-12);
  Tensor dx2 = empty_channels_last(x.shape(), DType::Float64);
  cpu::conv_backward_input<double>(gl, dyl.data<double>(), w.data<double>(), dx2.data<double>());
  CHECK(test::max_abs_diff(dx2, dx_ref) < 1e-12);
  CHECK_THROWS_WITH_AS(cpu::conv_forward<double>(gl, xl.data<double>(), w.data<double>(), nullptr, dyl.data<double>()),
                       doctest::Contains("nhwc convolution in float64"), Error);
}

TEST_CASE("layout: ResNet-20, MobileNetV1 and V2 train the same SGD steps with nchw and nhwc activations") {
  if (!cpu::onednn_compiled()) {
    PFQ_SKIP("this build has no oneDNN (the nhwc layout needs it)");
  }
  const cpu::ConvBackend saved_backend = cpu::conv_backend();
  cpu::set_conv_backend(cpu::ConvBackend::OneDnn);
  for (const char* arch : {"resnet20", "mobilenetv1", "mobilenetv2"}) {
    CAPTURE(std::string(arch));
    // The MobileNets' last maps are 1x1 here, where batch norm over 16 values amplifies float32
    // rounding step by step: against float64, MobileNetV1's first-step gradients from pfq's own
    // nchw kernels are 5e-3 off in relative L2 norm (single tensors up to 7e-2 of their largest
    // entry), oneDNN's nhwc ones on a 2-core AMD EPYC without AVX-512 7e-3, while ResNet-20's are
    // 2e-6. So for the MobileNets the first step's loss and the gradients' relative L2 distance
    // over all parameters are compared (a layout mistake moves it to order 1), for ResNet-20
    // three steps, every gradient tensor and the weights.
    const bool resnet = std::string(arch) == "resnet20";
    const int steps = resnet ? 3 : 1;
    std::vector<std::vector<double>> losses;
    std::vector<std::vector<Tensor>> grads;
    std::vector<NamedTensors> states;
    for (cpu::CpuLayout l : {cpu::CpuLayout::Nchw, cpu::CpuLayout::Nhwc}) {
      LayoutScope scope(l);
      models::ModelConfig cfg{.input_size = 16, .num_classes = 10, .width = 0.5, .seed = 3, .arch = arch};
      ModulePtr m = models::build_model(arch, cfg);
      std::vector<optim::ParamRef> refs;
      for (auto& [n, t] : m->named_parameters()) refs.push_back({n, t});
      optim::SgdOptions so;
      so.lr = 0.02;
      so.momentum = 0.9;
      optim::Sgd opt(refs, so);
      m->train();
      losses.emplace_back();
      grads.emplace_back();
      for (int step = 0; step < steps; ++step) {
        Generator g(50 + step);
        Tensor x = Tensor::randn({16, 3, 16, 16}, g);
        std::vector<int64_t> lab(16);
        for (int i = 0; i < 16; ++i) lab[i] = (i * 7 + step) % 10;
        Tensor loss = cross_entropy(m->forward(x), Tensor::from_vector(lab, {16}));
        losses.back().push_back(loss.item());
        opt.zero_grad();
        loss.backward();
        if (step == 0)
          for (auto& r : refs) grads.back().push_back(r.param.grad().clone());
        opt.step();
      }
      states.push_back(m->state_dict());
    }
    for (int step = 0; step < steps; ++step) CHECK(losses[1][step] == doctest::Approx(losses[0][step]).epsilon(1e-4));
    REQUIRE(grads[0].size() == grads[1].size());
    double diff2 = 0, norm2 = 0;
    for (size_t i = 0; i < grads[0].size(); ++i) {
      CAPTURE(i);
      CHECK(grads[1][i].is_contiguous());  // parameters' gradients stay plain
      const Tensor d = grads[1][i] - grads[0][i];
      diff2 += sum(d * d).item();
      norm2 += sum(grads[0][i] * grads[0][i]).item();
      if (resnet) CHECK(test::max_abs_diff(grads[1][i], grads[0][i]) <= 1e-3 * max(abs(grads[0][i])).item() + 1e-6);
    }
    CHECK(std::sqrt(diff2 / norm2) <= (resnet ? 1e-5 : 3e-2));
    REQUIRE(states[0].size() == states[1].size());
    for (size_t i = 0; i < states[0].size(); ++i) {
      CAPTURE(states[0][i].first);
      CHECK(states[1][i].second.is_contiguous());  // parameters and buffers stay plain
      if (resnet) CHECK(test::max_abs_diff(states[1][i].second, states[0][i].second) < 1e-3);
    }
  }
  cpu::set_conv_backend(saved_backend);
}

TEST_CASE("layout: CPU layout and convolution backend names parse, bad ones name their source") {
  CHECK(cpu::parse_cpu_layout("nhwc") == cpu::CpuLayout::Nhwc);
  CHECK(cpu::parse_cpu_layout("nchw") == cpu::CpuLayout::Nchw);
  CHECK(cpu::parse_conv_backend("eigen") == cpu::ConvBackend::Eigen);
  CHECK_THROWS_WITH_AS(cpu::parse_cpu_layout("NHWC", "environment variable PFQ_CPU_LAYOUT: "),
                       doctest::Contains("environment variable PFQ_CPU_LAYOUT: unknown CPU activation layout 'NHWC': expected nchw or nhwc"),
                       Error);
  CHECK_THROWS_WITH_AS(cpu::parse_conv_backend("mkl", "environment variable PFQ_CPU_CONV: "),
                       doctest::Contains("environment variable PFQ_CPU_CONV: unknown CPU convolution backend 'mkl'"), Error);
}

TEST_CASE("layout: max_pool2d keeps channels-last inputs channels-last, with the NCHW values, ties and gradients bit for bit") {
  // Values on a coarse grid, so windows hold ties (the first maximum in window order wins in both
  // kernels), and one -inf.
  Tensor x = rnd({2, 5, 9, 8}, 21);
  std::vector<float> v = x.to_vector<float>();
  for (float& e : v) e = std::round(e * 2) / 2;
  v[7] = -std::numeric_limits<float>::infinity();
  x = Tensor::from_vector(v, x.shape());
  struct Case {
    std::array<int64_t, 2> k, s, p;
  };
  for (const Case& c : {Case{{3, 3}, {2, 2}, {1, 1}}, Case{{2, 2}, {2, 2}, {0, 0}}, Case{{3, 2}, {1, 2}, {1, 1}}}) {
    CAPTURE(c.k[0]);
    CAPTURE(c.s[1]);
    Tensor xn = x.clone().set_requires_grad(true);
    Tensor xl = channels_last_copy(x);
    xl.set_requires_grad(true);
    REQUIRE(is_strictly_channels_last(xl));
    Tensor yn = max_pool2d(xn, c.k, c.s, c.p), yl = max_pool2d(xl, c.k, c.s, c.p);
    CHECK(is_strictly_channels_last(yl));
    CHECK(yl.to_vector<float>() == yn.to_vector<float>());
    Tensor dy = rnd(yn.shape(), 22);
    yn.backward(dy);
    yl.backward(dy);
    CHECK(is_strictly_channels_last(xl.grad()));
    CHECK(xl.grad().to_vector<float>() == xn.grad().to_vector<float>());
    NoGradGuard ng;  // inference: no argmax kept, the same values
    Tensor yi = max_pool2d(xl, c.k, c.s, c.p);
    CHECK(is_strictly_channels_last(yi));
    CHECK(yi.to_vector<float>() == yn.to_vector<float>());
  }
}
