// test_cuda_uploads.cpp — asynchronous batch uploads (PinnedUploader, data::DeviceBatches):
// bytes arrive intact whatever the size, a copy never overwrites a block the compute stream is
// still reading (the hazard a caching allocator creates), kernels queued after an upload see its
// data, and DeviceBatches gives on the GPU exactly the batches of the synchronous path.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "core/random.h"
#include "data/device_batches.h"
#include "data/transforms.h"
#include "tests/cuda/cuda_test_util.h"

using namespace pfq;
using namespace pfq::test;

namespace {

std::vector<float> pattern(size_t n, float offset) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<float>(static_cast<int64_t>(i % 4099) - 2000) * 0.25f + offset;
  return v;
}

bool same_bits(const Tensor& device, const std::vector<float>& want) {
  const std::vector<float> got = device.to(Device::cpu()).to_vector<float>();
  return got.size() == want.size() && std::memcmp(got.data(), want.data(), want.size() * sizeof(float)) == 0;
}

// n images 3x8x8 whose pixels encode the sample index; labels index % 5; sample `bad` throws.
class Indexed : public data::Dataset {
 public:
  Indexed(int64_t n, int64_t bad) : n_(n), bad_(bad) {}
  int64_t size() const override { return n_; }
  data::Sample get(int64_t i) const override {
    PFQ_CHECK(i != bad_, "indexed: sample ", i, " cannot be read");
    data::Image img(3, 8, 8);
    for (size_t k = 0; k < img.data.size(); ++k) img.data[k] = static_cast<float>(i) + static_cast<float>(k) / 256.0f;
    return data::Sample{std::move(img), i % 5};
  }
  int64_t num_classes() const override { return 5; }
  int64_t channels() const override { return 3; }
  int64_t height() const override { return 8; }
  int64_t width() const override { return 8; }
  std::string description() const override { return "indexed"; }

 private:
  int64_t n_, bad_;
};

}  // namespace

TEST_CASE("cuda uploads: pinned uploads of any size arrive intact, in stream order") {
  if (skip_without_gpu()) return;
  PinnedUploader up(gpu());
  // Growing, shrinking and growing again: staging buffers are reallocated and reused.
  const size_t sizes[] = {1, 1000, (size_t{3} << 20) / 4, 17, (size_t{5} << 20) / 4, 4096, 1000, 1};
  float offset = 0;
  std::vector<std::pair<Tensor, std::vector<float>>> all;
  for (size_t n : sizes) {
    std::vector<float> host = pattern(n, offset += 0.5f);
    Tensor dst = Tensor::empty({static_cast<int64_t>(n)}, DType::Float32, gpu());
    up.upload(dst.raw_data(), host.data(), n * sizeof(float));
    all.emplace_back(dst, std::move(host));
  }
  for (const auto& [dst, want] : all) CHECK(same_bits(dst, want));
  // A kernel queued right after an upload reads the uploaded values.
  std::vector<float> host = pattern(1 << 20, 3.0f);
  Tensor dst = Tensor::empty({1 << 20}, DType::Float32, gpu());
  up.upload(dst.raw_data(), host.data(), host.size() * sizeof(float));
  Tensor twice = mul(dst, 2.0);
  std::vector<float> want(host);
  for (float& v : want) v *= 2.0f;
  CHECK(same_bits(twice, want));
  CHECK(up.pinned_bytes() >= (size_t{5} << 20));
}

TEST_CASE("cuda uploads: a block still read by queued kernels is not overwritten by the next upload") {
  if (skip_without_gpu()) return;
  Generator g(7);
  const int64_t n = 2048;
  const Tensor x_host = Tensor::randn({n, n}, g, 0.0, 1.0 / 45.0);  // ~1/sqrt(n): products stay O(1)
  const Tensor y0 = Tensor::randn({n, 64}, g).to(gpu());
  // The reference: the same chain of matmuls reading x, with nothing uploaded meanwhile.
  auto chain = [&](const Tensor& x) {
    Tensor y = y0;
    for (int i = 0; i < 40; ++i) y = matmul(x, y);
    return y;
  };
  const std::vector<double> want = cpu64(chain(x_host.to(gpu()))).to_vector<double>();
  synchronize(gpu());

  PinnedUploader up(gpu());
  Tensor x = x_host.to(gpu());
  const void* x_block = x.raw_data();
  Tensor y = chain(x);  // ~40 GEMMs queued; the host returns long before the GPU is done
  x = Tensor();         // x's block goes back to the cache while the GEMMs still read it
  Tensor next = Tensor::empty({n, n}, DType::Float32, gpu());
  WARN_MESSAGE(next.raw_data() == x_block, "the allocator did not hand x's block out again: the hazard is not exercised");
  const std::vector<float> zeros(static_cast<size_t>(n * n), 0.0f);
  up.upload(next.raw_data(), zeros.data(), zeros.size() * sizeof(float));
  const std::vector<double> got = cpu64(y).to_vector<double>();
  REQUIRE(got.size() == want.size());
  CHECK(std::memcmp(got.data(), want.data(), got.size() * sizeof(double)) == 0);
  CHECK(same_bits(next, zeros));
}

TEST_CASE("cuda uploads: DeviceBatches on the GPU give the synchronous path's batches, errors at the failing batch") {
  if (skip_without_gpu()) return;
  data::LoaderOptions o;
  o.batch_size = 6;
  o.workers = 2;
  o.seed = 3;
  auto ds = std::make_shared<Indexed>(40, -1);
  auto aug = std::make_shared<data::Compose>(std::vector<data::TransformPtr>{
      std::make_shared<data::RandomCrop>(8, 2), std::make_shared<data::RandomHorizontalFlip>()});
  data::DataLoader la(ds, aug, o), ls(ds, aug, o);
  data::DeviceBatches async(la, gpu(), true), sync(ls, gpu(), false);
  for (int64_t epoch : {0, 1}) {
    async.start_epoch(epoch, epoch * 2);
    sync.start_epoch(epoch, epoch * 2);
    int64_t count = 0;
    while (auto a = async.next()) {
      auto s = sync.next();
      REQUIRE(s.has_value());
      CHECK(a->host.index == s->host.index);
      CHECK(a->images.device() == gpu());
      CHECK(a->labels.dtype() == DType::Int64);
      CHECK(cpu64(a->images).to_vector<double>() == cpu64(s->images).to_vector<double>());
      CHECK(a->labels.to(Device::cpu()).to_vector<int64_t>() == s->host.labels.to_vector<int64_t>());
      ++count;
    }
    CHECK_FALSE(sync.next().has_value());
    CHECK(count == la.num_batches() - epoch * 2);
  }
  o.shuffle = false;
  data::DataLoader lf(std::make_shared<Indexed>(40, 20), nullptr, o);
  data::DeviceBatches faulty(lf, gpu(), true);
  faulty.start_epoch(0);
  for (int b = 0; b < 3; ++b) CHECK(faulty.next().has_value());  // samples 0..17
  CHECK_THROWS_WITH_AS(faulty.next(), doctest::Contains("indexed: sample 20 cannot be read"), Error);
  faulty.start_epoch(0, 4);
  auto b4 = faulty.next();
  REQUIRE(b4.has_value());
  CHECK(b4->host.index == 4);
}
