// test_cuda_dnn.cpp — the cuBLAS/cuDNN paths and pooling kernels at realistic sizes against
// the CPU kernels (float32, tolerances scaled by magnitude): convolutions (dense, stride 2,
// dilation, grouped, depthwise incl. stride 2 (cuDNN's, or pfq's own with PFQ_CUDA_DEPTHWISE=own),
// 1x1, bias), batch norm in training (running
// statistics updated exactly as on the CPU) and eval, pooling (max bit-exact), matmul/linear
// in every layout the CUDA matmul special-cases, and the errors for mixed devices.
#include <doctest/doctest.h>

#include <limits>
#include <string>
#include <vector>

#include "core/backend_options.h"
#include "core/cuda/kernels.h"
#ifdef PFQ_WITH_CUDA
#include "core/cuda/depthwise.h"
#endif
#include "tests/cuda/cuda_test_util.h"
#include "tests/gradcheck.h"
#include "tests/op_cases.h"

using namespace pfq;
using namespace pfq::test;

namespace {

// f on CPU and on CUDA from the same float32 inputs; compares outputs and input gradients
// (backpropagating a fixed random weighting).
void check_same(const char* name, const std::vector<Tensor>& inputs, const OpFn& f, double atol = 2e-5, double rtol = 2e-4) {
  INFO("case: ", std::string(name));
  std::vector<Tensor> xc, xg;
  for (const Tensor& t : inputs) {
    xc.push_back(leaf_on(t, DType::Float32, Device::cpu()));
    xg.push_back(leaf_on(t, DType::Float32, gpu()));
  }
  Tensor yc = f(xc), yg = f(xg);
  REQUIRE(yg.device().is_cuda());
  Closeness fw = compare(yg, yc, atol * magnitude(yc), rtol);
  INFO("forward:\n", fw.report);
  CHECK(fw.ok);
  Tensor w = rnd(yc.shape(), 99);
  yc.backward(w);
  yg.backward(w.to(gpu()));
  for (size_t i = 0; i < xc.size(); ++i) {
    CAPTURE(i);
    REQUIRE(xg[i].grad().defined());
    Closeness g = compare(xg[i].grad(), xc[i].grad(), atol * magnitude(xc[i].grad()), rtol);
    INFO("gradient:\n", g.report);
    CHECK(g.ok);
  }
}

}  // namespace

TEST_CASE("cuda: cuDNN convolutions match the CPU kernels (dense, strided, dilated, grouped, depthwise)") {
  if (skip_without_gpu()) return;
  struct C {
    const char* name;
    Shape x, w;
    Conv2dOptions o;
    bool bias;
  };
  const std::vector<C> cases = {
      {"3x3 pad 1", {8, 16, 16, 16}, {32, 16, 3, 3}, copt(1, 1, 1, 1), false},
      {"3x3 stride 2 bias", {4, 16, 15, 17}, {24, 16, 3, 3}, copt(2, 1, 1, 1), true},
      {"3x3 dilation 2", {2, 8, 13, 13}, {8, 8, 3, 3}, copt(1, 2, 2, 1), false},
      {"grouped 4", {2, 16, 9, 9}, {32, 4, 3, 3}, copt(1, 1, 1, 4), true},
      {"depthwise", {8, 32, 16, 16}, {32, 1, 3, 3}, copt(1, 1, 1, 32), false},
      {"depthwise stride 2", {4, 24, 15, 15}, {24, 1, 3, 3}, copt(2, 1, 1, 24), true},
      {"depthwise dilation 2", {2, 8, 11, 11}, {8, 1, 3, 3}, copt(1, 2, 2, 8), false},
      // For pfq's own depthwise kernels (depthwise.cu, PFQ_CUDA_DEPTHWISE=own): the generic
      // window, batch slicing of the weight gradient (many slices; one slice), stride 2, no pad.
      {"depthwise 5x5 stride 2 pad 2 bias", {4, 12, 17, 17}, {12, 1, 5, 5}, copt(2, 2, 1, 12), true},
      {"depthwise, 64 images", {64, 8, 12, 12}, {8, 1, 3, 3}, copt(1, 1, 1, 8), false},
      {"depthwise 640 channels of 2x2", {16, 640, 2, 2}, {640, 1, 3, 3}, copt(1, 1, 1, 640), false},
      {"depthwise stride 2 no pad", {4, 16, 8, 8}, {16, 1, 3, 3}, copt(2, 0, 1, 16), false},
      {"1x1", {8, 64, 8, 8}, {128, 64, 1, 1}, copt(1, 0, 1, 1), false},
      {"1x1 stride 2 (shortcut)", {8, 16, 16, 16}, {32, 16, 1, 1}, copt(2, 0, 1, 1), false},
      {"stem 3 channels", {8, 3, 32, 32}, {16, 3, 3, 3}, copt(1, 1, 1, 1), false},
  };
  uint64_t seed = 1;
  for (const C& c : cases) {
    std::vector<Tensor> in = {rnd(c.x, seed++), rnd(c.w, seed++, -0.3, 0.3)};
    if (c.bias) in.push_back(rnd({c.w[0]}, seed++));
    const Conv2dOptions o = c.o;
    const bool bias = c.bias;
    check_same(c.name, in, [o, bias](const std::vector<Tensor>& v) { return conv2d(v[0], v[1], bias ? v[2] : Tensor(), o); });
  }
#ifdef PFQ_WITH_CUDA
  // pfq's own depthwise gradients are deterministic: the same bits from run to run (no atomics).
  const bool own_depthwise = backend_options().cuda_depthwise == CudaDepthwise::Own;
  MESSAGE("depthwise convolutions by the '" << (own_depthwise ? "own" : "cudnn") << "' kernels (PFQ_CUDA_DEPTHWISE)");
  if (!own_depthwise) {
    MESSAGE("own depthwise kernels off (PFQ_CUDA_DEPTHWISE=own turns them on): determinism not checked");
  } else {
    Tensor x = rnd({32, 64, 16, 16}, 11).to(gpu()), w = rnd({64, 1, 3, 3}, 12).to(gpu()), g = rnd({32, 64, 8, 8}, 13).to(gpu());
    std::vector<std::vector<float>> grads;
    for (int rep = 0; rep < 2; ++rep) {
      Tensor xl = x.detach(), wl = w.detach();
      xl.set_requires_grad(true);
      wl.set_requires_grad(true);
      conv2d(xl, wl, Tensor(), copt(2, 1, 1, 64)).backward(g);
      grads.push_back(wl.grad().to(Device::cpu()).to_vector<float>());
      grads.push_back(xl.grad().to(Device::cpu()).to_vector<float>());
    }
    CHECK(grads[0] == grads[2]);
    CHECK(grads[1] == grads[3]);
  }

  // Algorithms are chosen once per shape: running a case again adds no cache entry.
  const int64_t cached = cuda::conv_algo_cache_size();
  CHECK(cached > 0);
  Tensor x = rnd(cases[0].x, 1).to(gpu()), w = rnd(cases[0].w, 2).to(gpu());
  conv2d(x, w, Tensor(), cases[0].o);
  CHECK(cuda::conv_algo_cache_size() == cached);
#endif
}

TEST_CASE("cuda: batch norm matches the CPU, running statistics included") {
  if (skip_without_gpu()) return;
  for (DType dt : {DType::Float32, DType::Float64}) {
    for (const Shape& s : {Shape{8, 16, 6, 6}, Shape{32, 10}}) {
      CAPTURE(std::string(dtype_name(dt)));
      CAPTURE(shape_str(s));
      const int64_t C = s[1];
      Tensor x = rnd(s, 3, -2, 3).to(dt), gamma = rnd({C}, 4, 0.5, 1.5).to(dt), beta = rnd({C}, 5).to(dt);
      Tensor rm_c = rnd({C}, 6).to(dt), rv_c = rnd({C}, 7, 0.5, 2).to(dt);
      Tensor rm_g = rm_c.to(gpu()), rv_g = rv_c.to(gpu());
      const double tol = dt == DType::Float64 ? 1e-10 : 2e-5;
      // Training, twice (the second update starts from the first's running statistics).
      for (int rep = 0; rep < 2; ++rep) {
        Tensor xc = leaf_on(x, dt, Device::cpu()), xg = leaf_on(x, dt, gpu());
        Tensor gc = leaf_on(gamma, dt, Device::cpu()), gg = leaf_on(gamma, dt, gpu());
        Tensor bc = leaf_on(beta, dt, Device::cpu()), bg = leaf_on(beta, dt, gpu());
        Tensor yc = batch_norm(xc, gc, bc, rm_c, rv_c, true, 0.1, 1e-5);
        Tensor yg = batch_norm(xg, gg, bg, rm_g, rv_g, true, 0.1, 1e-5);
        CHECK(compare(yg, yc, tol * 4, tol * 4).ok);
        CHECK(compare(rm_g, rm_c, tol, tol).ok);
        Closeness rv = compare(rv_g, rv_c, tol, tol);
        INFO("running_var:\n", rv.report);
        CHECK(rv.ok);
        Tensor w = rnd(s, 8).to(dt);
        yc.backward(w);
        yg.backward(w.to(gpu()));
        CHECK(compare(xg.grad(), xc.grad(), tol * 10 * magnitude(xc.grad()), tol * 10).ok);
        CHECK(compare(gg.grad(), gc.grad(), tol * 10 * magnitude(gc.grad()), tol * 10).ok);
        CHECK(compare(bg.grad(), bc.grad(), tol * 10 * magnitude(bc.grad()), tol * 10).ok);
      }
      // Eval with the updated statistics, gradients through fixed statistics.
      Tensor xc = leaf_on(x, dt, Device::cpu()), xg = leaf_on(x, dt, gpu());
      Tensor gc = leaf_on(gamma, dt, Device::cpu()), gg = leaf_on(gamma, dt, gpu());
      Tensor yc = batch_norm(xc, gc, Tensor(), rm_c, rv_c, false, 0.1, 1e-5);
      Tensor yg = batch_norm(xg, gg, Tensor(), rm_g, rv_g, false, 0.1, 1e-5);
      CHECK(compare(yg, yc, tol * 4 * magnitude(yc), tol * 4).ok);
      Tensor w = rnd(s, 9).to(dt);
      yc.backward(w);
      yg.backward(w.to(gpu()));
      CHECK(compare(xg.grad(), xc.grad(), tol * 10 * magnitude(xc.grad()), tol * 10).ok);
      CHECK(compare(gg.grad(), gc.grad(), tol * 10 * magnitude(gc.grad()), tol * 10).ok);
    }
  }
}

TEST_CASE("cuda: own batch-norm kernels (activation fused) match the CPU and cuDNN's, and repeat bit for bit") {
  if (skip_without_gpu()) return;
  MESSAGE("batch norm in training by " << (backend_options().cuda_bn == CudaBatchNorm::Own ? "pfq's own kernels" : "cuDNN (PFQ_CUDA_BN=cudnn)"));
  struct Case {
    Shape s;
    double lo, hi;  // input range: the last case's mean is far from 0 (the shifted sums' stability)
  };
  const std::vector<Case> cases = {{{128, 32, 32, 32}, -2, 3}, {{4, 640, 2, 2}, -1, 1}, {{3, 5, 31, 31}, -1, 2},
                                   {{2, 7}, -1, 1},            {{1, 3, 1, 2}, -1, 1}, {{16, 4, 8, 8}, 999, 1001}};
  const double inf = std::numeric_limits<double>::infinity();
  for (DType dt : {DType::Float32, DType::Float64}) {
    const double tol = dt == DType::Float64 ? 1e-10 : 2e-5;
    for (const Case& k : cases) {
      for (BnAct act : {BnAct::None, BnAct::ReLU, BnAct::ReLU6}) {
        // A rounding difference can put one of millions of outputs on the other side of a clamp
        // (and its gradient to 0): the large case runs without activation. So does the badly
        // conditioned one (mean 1000, spread 1: float32 keeps 4 digits of x - mean), where cuDNN's
        // kernels (PFQ_CUDA_BN=cudnn) move many outputs near 0 across the ReLU's threshold.
        if (act != BnAct::None && (shape_numel(k.s) > 100000 || k.lo > 100)) continue;
        CAPTURE(std::string(dtype_name(dt)));
        CAPTURE(shape_str(k.s));
        CAPTURE(static_cast<int>(act));
        const int64_t C = k.s[1];
        Tensor x = rnd(k.s, 21, k.lo, k.hi).to(dt), gamma = rnd({C}, 22, 0.5, 1.5).to(dt), beta = rnd({C}, 23).to(dt);
        Tensor w = rnd(k.s, 24).to(dt);
        Tensor rm_c = rnd({C}, 25).to(dt), rv_c = rnd({C}, 26, 0.5, 2).to(dt);
        Tensor xc = leaf_on(x, dt, Device::cpu()), gc = leaf_on(gamma, dt, Device::cpu()), bc = leaf_on(beta, dt, Device::cpu());
        Tensor yc = batch_norm(xc, gc, bc, rm_c, rv_c, true, 0.1, 1e-5, act);
        yc.backward(w);
        std::vector<std::vector<double>> runs;
        for (int rep = 0; rep < 2; ++rep) {
          Tensor rm_g = rnd({C}, 25).to(dt).to(gpu()), rv_g = rnd({C}, 26, 0.5, 2).to(dt).to(gpu());
          Tensor xg = leaf_on(x, dt, gpu()), gg = leaf_on(gamma, dt, gpu()), bg = leaf_on(beta, dt, gpu());
          Tensor yg = batch_norm(xg, gg, bg, rm_g, rv_g, true, 0.1, 1e-5, act);
          yg.backward(w.to(gpu()));
          const double m = magnitude(yc);
          CHECK(compare(yg, yc, tol * 4 * m, tol * 4).ok);
          CHECK(compare(rm_g, rm_c, tol * magnitude(rm_c), tol).ok);
          CHECK(compare(rv_g, rv_c, tol * magnitude(rv_c), tol).ok);
          CHECK(compare(xg.grad(), xc.grad(), tol * 10 * magnitude(xc.grad()), tol * 10).ok);
          CHECK(compare(gg.grad(), gc.grad(), tol * 10 * magnitude(gc.grad()), tol * 10).ok);
          CHECK(compare(bg.grad(), bc.grad(), tol * 10 * magnitude(bc.grad()), tol * 10).ok);
          std::vector<double> all = cpu64(xg.grad()).to_vector<double>();
          for (const Tensor& t : {yg, gg.grad(), bg.grad(), rv_g}) {
            const std::vector<double> v = cpu64(t).to_vector<double>();
            all.insert(all.end(), v.begin(), v.end());
          }
          runs.push_back(std::move(all));
        }
        if (backend_options().cuda_bn == CudaBatchNorm::Own) CHECK(runs[0] == runs[1]);  // no atomics: the same bits every run
      }
    }
    // The own forward against cuDNN's on the same device memory (whichever PFQ_CUDA_BN chose above).
    Tensor x = rnd({64, 24, 16, 16}, 31, -1, 2).to(dt).to(gpu()), gamma = rnd({24}, 32, 0.5, 1.5).to(dt).to(gpu());
    Tensor beta = rnd({24}, 33).to(dt).to(gpu());
    Tensor y1 = Tensor::empty(x.shape(), dt, gpu()), y2 = Tensor::empty(x.shape(), dt, gpu());
    Tensor m1 = Tensor::empty({24}, dt, gpu()), m2 = Tensor::empty({24}, dt, gpu());
    Tensor i1 = Tensor::empty({24}, dt, gpu()), i2 = Tensor::empty({24}, dt, gpu());
    cuda::batch_norm_train_forward(x, gamma, beta, 0.1, 1e-5, Tensor(), Tensor(), y1, m1, i1);
    cuda::batch_norm_act_train_forward(x, gamma, beta, 0.1, 1e-5, Tensor(), Tensor(), -inf, inf, y2, m2, i2);
    CHECK(compare(y2, y1, tol * 4 * magnitude(y1), tol * 4).ok);
    CHECK(compare(m2, m1, tol, tol).ok);
    CHECK(compare(i2, i1, tol * magnitude(i1), tol).ok);
  }
}

TEST_CASE("cuda: pooling matches the CPU (max pooling bit-exact, argmax gradients included)") {
  if (skip_without_gpu()) return;
  Tensor x = rnd({4, 8, 17, 15}, 11);
  check_same("max 3x3 s2 p1", {x}, [](auto& v) { return max_pool2d(v[0], {3, 3}, {2, 2}, {1, 1}); }, 0, 0);
  check_same("max 2x2", {x}, [](auto& v) { return max_pool2d(v[0], {2, 2}, {2, 2}); }, 0, 0);
  check_same("avg 3x3 s2 p1 incl", {x}, [](auto& v) { return avg_pool2d(v[0], {3, 3}, {2, 2}, {1, 1}, true); });
  check_same("avg 3x3 s1 p1 excl", {x}, [](auto& v) { return avg_pool2d(v[0], {3, 3}, {1, 1}, {1, 1}, false); });
  check_same("adaptive 4x3", {x}, [](auto& v) { return adaptive_avg_pool2d(v[0], {4, 3}); });
  check_same("global", {x}, [](auto& v) { return adaptive_avg_pool2d(v[0], {1, 1}); });
}

TEST_CASE("cuda: matmul and linear (cuBLAS) match the CPU in every layout") {
  if (skip_without_gpu()) return;
  check_same("2-D 37x53 @ 53x29", {rnd({37, 53}, 1), rnd({53, 29}, 2)}, [](auto& v) { return matmul(v[0], v[1]); });
  check_same("batched, shared b", {rnd({3, 17, 40}, 3), rnd({40, 9}, 4)}, [](auto& v) { return matmul(v[0], v[1]); });
  check_same("batched", {rnd({3, 17, 40}, 5), rnd({3, 40, 9}, 6)}, [](auto& v) { return matmul(v[0], v[1]); });
  check_same("linear (transposed weight read in place)", {rnd({64, 256}, 7), rnd({100, 256}, 8), rnd({100}, 9)},
             [](auto& v) { return linear(v[0], v[1], v[2]); });
  check_same("transposed a", {rnd({40, 17}, 10), rnd({40, 9}, 11)}, [](auto& v) { return matmul(transpose(v[0], 0, 1), v[1]); });
}

TEST_CASE("cuda: mixed devices and unsupported dtypes are clear errors") {
  if (skip_without_gpu()) return;
  Tensor xg = rnd({1, 2, 5, 5}, 1).to(gpu()), wc = rnd({2, 2, 3, 3}, 2);
  CHECK_THROWS_WITH_AS(conv2d(xg, wc, Tensor()), doctest::Contains("different devices"), Error);
  CHECK_THROWS_WITH_AS(matmul(rnd({2, 3}, 3).to(gpu()), rnd({3, 2}, 4)), doctest::Contains("different devices"), Error);
  Tensor xi = Tensor::zeros({1, 1, 4, 4}, DType::Int64).to(gpu());
  CHECK_THROWS_WITH_AS(max_pool2d(xi, {2, 2}, {2, 2}), doctest::Contains("float32 or float64"), Error);
}
