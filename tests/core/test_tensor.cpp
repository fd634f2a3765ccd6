// test_tensor.cpp — Tensor basics: creation, views sharing storage, contiguous(), dtype and
// device conversion, seeded random fills, the caching allocator.
#include <doctest/doctest.h>

#include "core/device.h"
#include "core/ops.h"
#include "tests/skip.h"

using namespace pfq;

TEST_CASE("tensor: shape, strides, fills and from_vector") {
  Tensor t = Tensor::zeros({2, 3, 4});
  CHECK(t.shape() == Shape{2, 3, 4});
  CHECK(t.strides() == Shape{12, 4, 1});
  CHECK(t.numel() == 24);
  CHECK(t.size(-1) == 4);
  CHECK(t.is_contiguous());
  CHECK(Tensor::full({2}, 3.5).to_vector<float>() == std::vector<float>{3.5f, 3.5f});
  CHECK(Tensor::arange(4, DType::Int64).to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2, 3});
  CHECK(Tensor::scalar(2.0, DType::Float64).item() == 2.0);
  CHECK_THROWS_WITH_AS(Tensor::from_vector<float>({1, 2, 3}, {2, 2}), doctest::Contains("do not fill shape [2, 2]"), Error);
}

TEST_CASE("tensor: shallow copies share data, clone copies") {
  Tensor a = Tensor::zeros({3});
  Tensor b = a;
  b.fill_(2);
  CHECK(a.to_vector<float>() == std::vector<float>{2, 2, 2});
  Tensor c = a.clone();
  c.fill_(5);
  CHECK(a.to_vector<float>()[0] == 2);
}

TEST_CASE("tensor: views share storage; contiguous copies strided views") {
  Tensor a = Tensor::arange(6);
  Tensor m = reshape(a, {2, 3});
  Tensor t = transpose(m, 0, 1);
  CHECK(t.shape() == Shape{3, 2});
  CHECK_FALSE(t.is_contiguous());
  CHECK(t.storage() == a.storage());
  CHECK(t.contiguous().to_vector<float>() == std::vector<float>{0, 3, 1, 4, 2, 5});
  Tensor s = slice(m, 1, 1, 3);
  CHECK(s.storage() == a.storage());
  CHECK(s.contiguous().to_vector<float>() == std::vector<float>{1, 2, 4, 5});
  s.fill_(9);  // writes through the view
  CHECK(a.to_vector<float>() == std::vector<float>{0, 9, 9, 3, 9, 9});
  Tensor p = permute(reshape(Tensor::arange(24), {2, 3, 4}), {2, 0, 1});
  CHECK(p.shape() == Shape{4, 2, 3});
  CHECK(p.contiguous().to_vector<float>()[1] == 4);  // p[0,0,1] = x[0,1,0]
  // reshape of a non-contiguous view copies
  Tensor r = reshape(t, {6});
  CHECK(r.to_vector<float>() == std::vector<float>{0, 3, 9, 9, 9, 9});
}

TEST_CASE("tensor: dtype conversion") {
  Tensor f = Tensor::from_vector<float>({1.5f, -2.25f}, {2});
  Tensor d = f.to(DType::Float64);
  CHECK(d.dtype() == DType::Float64);
  CHECK(d.to_vector<double>() == std::vector<double>{1.5, -2.25});
  CHECK(Tensor::from_vector<double>({2.9, -1.9}, {2}).to(DType::Int64).to_vector<int64_t>() == std::vector<int64_t>{2, -1});
  CHECK(Tensor::from_vector<uint8_t>({255, 3}, {2}).to(DType::Float32).to_vector<float>() == std::vector<float>{255, 3});
}

TEST_CASE("tensor: seeded random fills are reproducible and roughly distributed") {
  Generator g1(42), g2(42), g3(43);
  Tensor a = Tensor::randn({1000}, g1), b = Tensor::randn({1000}, g2), c = Tensor::randn({1000}, g3);
  CHECK(a.to_vector<float>() == b.to_vector<float>());
  CHECK(a.to_vector<float>() != c.to_vector<float>());
  CHECK(mean(a).item() == doctest::Approx(0).epsilon(0.1).scale(1));
  CHECK(var(a).item() == doctest::Approx(1).epsilon(0.1));
  Tensor u = Tensor::rand({1000}, g1, 2, 3);
  CHECK(min(u).item() >= 2);
  CHECK(max(u).item() < 3);
  Tensor m = Tensor::bernoulli({4000}, 0.25, g1);
  CHECK(mean(m).item() == doctest::Approx(0.25).epsilon(0.1));
  // generator state round trip
  Generator s(5);
  s.normal();
  std::string st = s.state();
  double next = s.normal();
  Generator r(0);
  r.set_state(st);
  CHECK(r.normal() == next);
}

TEST_CASE("tensor: caching allocator reuses freed blocks") {
  cpu_allocator_release_cache();
  auto before = cpu_allocator_stats();
  { Tensor a = Tensor::empty({1 << 16}); }
  { Tensor b = Tensor::empty({1 << 16}); }
  auto after = cpu_allocator_stats();
  CHECK(after.cache_hits >= before.cache_hits + 1);
}

TEST_CASE("tensor: to(cuda) without CUDA is a clear error, never a silent CPU fallback") {
  if (cuda_device_count() > 0) {
    PFQ_SKIP("a CUDA GPU is present (covered by the cuda suite)");
  }
  Tensor a = Tensor::ones({2});
  CHECK_THROWS_AS(a.to(Device::cuda(0)), Error);
  CHECK(Device::parse("cuda:1") == Device::cuda(1));
  CHECK_THROWS_WITH_AS(Device::parse("gpu"), doctest::Contains("expected cpu, cuda or cuda:N"), Error);
}

TEST_CASE("device: the CPU needs nothing; a CUDA device is required before use (core/device.h)") {
  CHECK_NOTHROW(require_device(Device::cpu()));
  CHECK_NOTHROW(synchronize(Device::cpu()));
  CHECK(parse_usable_device("cpu") == Device::cpu());
  CHECK_THROWS_WITH_AS(parse_usable_device("gpu"), doctest::Contains("expected cpu, cuda or cuda:N"), Error);
  int calls = 0;
  double host = -1;
  CHECK(device_time_ms(Device::cpu(), [&] { ++calls; }, 50, &host) >= 0);
  CHECK(calls == 1);
  CHECK(host >= 0);
  CHECK(cuda_devices().size() == static_cast<size_t>(cuda_device_count()));
  if (cuda_compiled()) {
    MESSAGE("skipped the no-CUDA half: this build has CUDA (covered by the cuda suite)");
    return;
  }
  CHECK(cuda_device_count() == 0);
  CHECK_THROWS_WITH_AS(require_device(Device::cuda(0)), doctest::Contains("built without CUDA"), Error);
  CHECK_THROWS_WITH_AS(parse_usable_device("cuda:0"), doctest::Contains("built without CUDA"), Error);
  CHECK_THROWS_WITH_AS(PinnedUploader(Device::cuda(0)), doctest::Contains("built without CUDA"), Error);
}

TEST_CASE("tensor: strided element-wise ops visit every element in order (size-1 and mergeable dimensions coalesced)") {
  // Against index arithmetic over the logical shape: permuted, sliced, expanded and size-1 views.
  Generator g(3);
  const Tensor base = Tensor::randn({4, 1, 6, 1, 5}, g);
  const Tensor scale = Tensor::randn({4, 1, 1, 1, 1}, g);
  auto naive = [](const Tensor& a, const Tensor& b, auto f) {  // a, b: same shape, any strides
    const Shape& s = a.shape();
    std::vector<float> out;
    std::vector<int64_t> idx(s.size(), 0);
    const float* pa = static_cast<const float*>(a.storage()->data());
    const float* pb = static_cast<const float*>(b.storage()->data());
    for (int64_t n = 0; n < a.numel(); ++n) {
      int64_t oa = a.offset(), ob = b.offset();
      for (size_t d = 0; d < s.size(); ++d) {
        oa += idx[d] * a.strides()[d];
        ob += idx[d] * b.strides()[d];
      }
      out.push_back(f(pa[oa], pb[ob]));
      for (size_t d = s.size(); d-- > 0;)
        if (++idx[d] < s[d]) break;
        else idx[d] = 0;
    }
    return out;
  };
  const auto mulf = [](float x, float y) { return x * y; };
  const Tensor cases[][2] = {
      {base, expand(scale, base.shape())},                                         // a weight times a per-row scale
      {permute(base, {2, 4, 0, 1, 3}), permute(base, {2, 4, 0, 1, 3})},            // transposed views
      {slice(base, 2, 1, 6, 2), expand(slice(scale, 0, 0, 4), {4, 1, 3, 1, 5})},  // a strided slice
      {reshape(base, {24, 5}), transpose(reshape(Tensor::randn({5, 24}, g), {5, 24}), 0, 1)},
  };
  for (const auto& c : cases) {
    CAPTURE(shape_str(c[0].shape()));
    const std::vector<float> got = mul(c[0], c[1]).contiguous().to_vector<float>();
    CHECK(got == naive(c[0], c[1], mulf));
    CHECK(c[0].contiguous().to_vector<float>() == naive(c[0], c[0], [](float x, float) { return x; }));
  }
}
