// test_loader.cpp — DataLoader on small in-memory datasets: each sample once per epoch,
// seeded per-epoch shuffles, identical batches for 0/1/3 workers, drop_last, resuming at a
// batch, early destruction, error propagation from workers, batch shapes/dtypes, and an image
// folder whose undecodable files the workers skip concurrently (tools/tsan-loader.sh runs these);
// DeviceBatches on the CPU (the cuda suite checks its asynchronous uploads on a GPU).
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>

#include "core/error.h"
#include "core/device.h"
#include "data/device_batches.h"
#include "data/image_folder.h"
#include "data/loader.h"
#include "data/transforms.h"
#include "tests/data/data_test_util.h"
#include "tests/skip.h"

using namespace pfq::data;

namespace {

// n images 1x4x4 whose pixels all equal the sample index; label = index % 3.
std::shared_ptr<InMemoryDataset> indexed(int64_t n) {
  std::vector<float> pix;
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < n; ++i) {
    for (int k = 0; k < 16; ++k) pix.push_back(static_cast<float>(i) + static_cast<float>(k) / 100.0f);
    labels.push_back(i % 3);
  }
  return std::make_shared<InMemoryDataset>(std::move(pix), n, 1, 4, 4, std::move(labels), 3, "indexed");
}

std::vector<Batch> run_epoch(DataLoader& dl, int64_t epoch, int64_t first = 0) {
  dl.start_epoch(epoch, first);
  std::vector<Batch> out;
  while (auto b = dl.next()) out.push_back(std::move(*b));
  return out;
}

// Sample index of every row of every batch (pixel (0, 0) holds it).
std::vector<int64_t> sample_ids(const std::vector<Batch>& batches) {
  std::vector<int64_t> ids;
  for (const Batch& b : batches) {
    const float* p = b.images.data<float>();
    for (int64_t i = 0; i < b.images.size(0); ++i) ids.push_back(static_cast<int64_t>(p[i * 16]));
  }
  return ids;
}

bool same_batches(const std::vector<Batch>& a, const std::vector<Batch>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].index != b[i].index || a[i].images.shape() != b[i].images.shape()) return false;
    if (a[i].images.to_vector<float>() != b[i].images.to_vector<float>()) return false;
    if (a[i].labels.to_vector<int64_t>() != b[i].labels.to_vector<int64_t>()) return false;
  }
  return true;
}

TransformPtr augment() {
  return std::make_shared<Compose>(std::vector<TransformPtr>{std::make_shared<RandomCrop>(4, 1),
                                                             std::make_shared<RandomHorizontalFlip>()});
}

// Throws on one index; every other sample comes from `base`.
class Faulty : public Dataset {
 public:
  Faulty(std::shared_ptr<InMemoryDataset> base, int64_t bad) : base_(std::move(base)), bad_(bad) {}
  int64_t size() const override { return base_->size(); }
  Sample get(int64_t i) const override {
    PFQ_CHECK(i != bad_, "faulty: sample ", i, " cannot be read");
    return base_->get(i);
  }
  int64_t num_classes() const override { return 3; }
  int64_t channels() const override { return 1; }
  int64_t height() const override { return 4; }
  int64_t width() const override { return 4; }
  std::string description() const override { return "faulty"; }

 private:
  std::shared_ptr<InMemoryDataset> base_;
  int64_t bad_;
};

}  // namespace

TEST_SUITE("data") {

TEST_CASE("loader: every sample exactly once, shapes and dtypes") {
  LoaderOptions o;
  o.batch_size = 4;
  o.workers = 2;
  o.seed = 5;
  DataLoader dl(indexed(10), nullptr, o);
  CHECK(dl.num_batches() == 3);
  std::vector<Batch> e = run_epoch(dl, 0);
  REQUIRE(e.size() == 3);
  CHECK(e[0].images.shape() == pfq::Shape{4, 1, 4, 4});
  CHECK(e[2].images.shape() == pfq::Shape{2, 1, 4, 4});
  CHECK(e[0].images.dtype() == pfq::DType::Float32);
  CHECK(e[0].labels.dtype() == pfq::DType::Int64);
  CHECK(e[0].labels.shape() == pfq::Shape{4});
  for (int b = 0; b < 3; ++b) {
    CHECK(e[static_cast<size_t>(b)].index == b);
    CHECK(e[static_cast<size_t>(b)].epoch == 0);
  }
  std::vector<int64_t> ids = sample_ids(e);
  std::vector<int64_t> labels;
  for (const Batch& b : e)
    for (int64_t l : b.labels.to_vector<int64_t>()) labels.push_back(l);
  for (size_t i = 0; i < ids.size(); ++i) CHECK(labels[i] == ids[i] % 3);
  CHECK(e[1].images.data<float>()[16 + 5] == static_cast<float>(ids[5]) + 0.05f);  // pixels kept in place
  std::vector<int64_t> sorted = ids;
  std::sort(sorted.begin(), sorted.end());
  CHECK(sorted == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  CHECK(ids != sorted);  // shuffled
}

TEST_CASE("loader: shuffle depends on seed and epoch only") {
  LoaderOptions o;
  o.batch_size = 8;
  o.seed = 7;
  auto ds = indexed(64);
  DataLoader a(ds, nullptr, o), b(ds, nullptr, o);
  const auto a0 = sample_ids(run_epoch(a, 0)), a1 = sample_ids(run_epoch(a, 1));
  CHECK(a0 != a1);
  CHECK(sample_ids(run_epoch(b, 1)) == a1);  // order of epochs run does not matter
  CHECK(sample_ids(run_epoch(b, 0)) == a0);
  CHECK(a0 == epoch_order(64, 7, 0, true));
  CHECK(epoch_order(64, 8, 0, true) != a0);
  o.shuffle = false;
  DataLoader plain(ds, nullptr, o);
  CHECK(sample_ids(run_epoch(plain, 3)) == epoch_order(64, 7, 3, false));
  CHECK(epoch_order(5, 7, 3, false) == std::vector<int64_t>{0, 1, 2, 3, 4});
}

TEST_CASE("loader: augmented batches are identical for 0, 1 and 3 workers") {
  auto ds = indexed(37);
  std::vector<std::vector<Batch>> runs;
  for (int workers : {0, 1, 3}) {
    LoaderOptions o;
    o.batch_size = 5;
    o.workers = workers;
    o.prefetch = workers == 3 ? 2 : 0;
    o.seed = 99;
    DataLoader dl(ds, augment(), o);
    std::vector<Batch> e = run_epoch(dl, 2);
    CHECK(e.size() == 8);
    runs.push_back(std::move(e));
  }
  CHECK(same_batches(runs[0], runs[1]));
  CHECK(same_batches(runs[0], runs[2]));
  // The augmentation of a sample is a function of (seed, epoch, index): recompute one by hand.
  const Batch& b = runs[0][3];
  const std::vector<int64_t> order = epoch_order(37, 99, 2, true);
  const int64_t sample = order[3 * 5 + 4];
  pfq::Generator g(sample_seed(99, 2, sample));
  Image want = augment()->apply(ds->get(sample).image, g);
  std::vector<float> all = b.images.to_vector<float>();
  CHECK(std::vector<float>(all.begin() + 4 * 16, all.begin() + 5 * 16) == want.data);
  // ... seeded differently in another epoch or with another seed.
  CHECK(sample_seed(99, 3, sample) != sample_seed(99, 2, sample));
  CHECK(sample_seed(99, 2, sample) != sample_seed(100, 2, sample));
}

TEST_CASE("loader: drop_last") {
  LoaderOptions o;
  o.batch_size = 4;
  o.drop_last = true;
  o.workers = 3;
  DataLoader dl(indexed(10), nullptr, o);
  CHECK(dl.num_batches() == 2);
  std::vector<Batch> e = run_epoch(dl, 0);
  REQUIRE(e.size() == 2);
  CHECK(e[1].images.size(0) == 4);
  std::vector<int64_t> ids = sample_ids(e);
  std::vector<int64_t> order = epoch_order(10, 0, 0, true);
  CHECK(ids == std::vector<int64_t>(order.begin(), order.begin() + 8));
}

TEST_CASE("loader: resume an epoch at a batch index") {
  LoaderOptions o;
  o.batch_size = 3;
  o.workers = 2;
  o.seed = 4;
  auto ds = indexed(20);
  DataLoader full(ds, augment(), o), resumed(ds, augment(), o);
  std::vector<Batch> all = run_epoch(full, 6);
  REQUIRE(all.size() == 7);
  std::vector<Batch> tail = run_epoch(resumed, 6, 4);
  REQUIRE(tail.size() == 3);
  CHECK(tail[0].index == 4);
  CHECK(same_batches(std::vector<Batch>(all.begin() + 4, all.end()), tail));
  CHECK(run_epoch(resumed, 6, 7).empty());
  CHECK_THROWS_WITH_AS(resumed.start_epoch(6, 8), doctest::Contains("first_batch 8 outside [0, 7]"), pfq::Error);
}

TEST_CASE("loader: stopping early and restarting do not deadlock") {
  LoaderOptions o;
  o.batch_size = 2;
  o.workers = 3;
  o.prefetch = 2;
  auto ds = indexed(40);
  {
    DataLoader dl(ds, augment(), o);
    dl.start_epoch(0);
    REQUIRE(dl.next().has_value());
  }  // destroyed with workers blocked on a full prefetch window
  DataLoader dl(ds, nullptr, o);
  dl.start_epoch(0);
  const auto first = dl.next();
  REQUIRE(first.has_value());
  dl.start_epoch(1);  // abandon epoch 0 midway
  const std::vector<int64_t> order = epoch_order(40, 0, 1, true);
  int count = 0;
  while (auto b = dl.next()) {
    CHECK(b->epoch == 1);
    CHECK(b->images.data<float>()[0] == static_cast<float>(order[static_cast<size_t>(count * 2)]));
    ++count;
  }
  CHECK(count == 20);
  CHECK_FALSE(dl.next().has_value());  // stays at the end
  DataLoader never(ds, nullptr, o);
  CHECK_THROWS_WITH_AS(never.next(), doctest::Contains("call start_epoch"), pfq::Error);
}

TEST_CASE("loader: worker exceptions reach the consumer at the failing batch") {
  for (int workers : {0, 2}) {
    LoaderOptions o;
    o.batch_size = 2;
    o.shuffle = false;
    o.workers = workers;
    DataLoader dl(std::make_shared<Faulty>(indexed(10), 7), nullptr, o);
    dl.start_epoch(0);
    for (int b = 0; b < 3; ++b) CHECK(dl.next().has_value());  // samples 0..5
    CHECK_THROWS_WITH_AS(dl.next(), doctest::Contains("faulty: sample 7 cannot be read"), pfq::Error);
    CHECK_THROWS_WITH_AS(dl.next(), doctest::Contains("sample 7"), pfq::Error);  // sticky until start_epoch
    dl.start_epoch(0, 4);
    CHECK(dl.next().has_value());
  }
}

TEST_CASE("loader: images of different sizes need a resizing transform") {
  std::vector<float> pix(2 * 16, 0.0f);
  auto ds = std::make_shared<InMemoryDataset>(pix, 2, 1, 4, 4, std::vector<int64_t>{0, 1}, 2, "tiny");
  LoaderOptions o;
  o.batch_size = 2;
  o.shuffle = false;
  // A transform whose output size depends on the sample's random draw.
  class Jagged : public Transform {
   public:
    Image apply(Image img, pfq::Generator&) const override {
      return img.data[0] == 0 && img.height == 4 ? crop(img, 0, 0, 4, call_++ == 0 ? 4 : 3) : img;
    }
    std::string describe() const override { return "Jagged"; }

   private:
    mutable std::atomic<int> call_{0};
  };
  DataLoader dl(ds, std::make_shared<Jagged>(), o);
  dl.start_epoch(0);
  CHECK_THROWS_WITH_AS(dl.next(), doctest::Contains("tiny: sample 1 is 1x4x3 after transforms but sample 0 is 1x4x4"),
                       pfq::Error);
  CHECK_THROWS_AS(DataLoader(ds, nullptr, LoaderOptions{0, true, false, 1, 0, 0}), pfq::Error);
}

TEST_CASE("loader: an image folder with undecodable files, skip_bad, on 3 workers") {
  // ImageFolderDataset::get marks bad files under a mutex and counts them atomically while the
  // workers decode; every epoch still yields every index (a bad file gives the next good one).
  using namespace pfq::data::testing;
  TempDir dir;
  const std::vector<uint8_t> png = read_file(std::string(PFQ_SOURCE_ROOT) + "/fuzz/corpus/image/gray2x2.png");
  for (int c = 0; c < 2; ++c)
    for (int i = 0; i < 12; ++i)
      write_file(dir / ("root/c" + std::to_string(c) + "/" + std::to_string(i) + ".png"),
                 i % 4 == 3 ? std::vector<uint8_t>{1, 2, 3} : png);
  ImageFolderOptions fo;
  fo.skip_bad = true;
  auto ds = std::make_shared<ImageFolderDataset>(dir / "root", fo);
  LoaderOptions o;
  o.batch_size = 4;
  o.workers = 3;
  o.prefetch = 2;
  DataLoader dl(ds, nullptr, o);
  for (int64_t epoch = 0; epoch < 2; ++epoch) {
    int64_t samples = 0;
    for (const Batch& b : run_epoch(dl, epoch)) {
      CHECK(b.images.shape() == pfq::Shape{b.images.size(0), 3, 2, 2});
      samples += b.images.size(0);
    }
    CHECK(samples == 24);
  }
  CHECK(ds->skipped() == 6);
}

}  // TEST_SUITE

TEST_CASE("device batches: on the CPU they are the loader's batches, errors come at the failing batch") {
  for (bool async : {true, false}) {
    CAPTURE(async);
    LoaderOptions o;
    o.batch_size = 3;
    o.shuffle = true;
    o.workers = 2;
    DataLoader reference(indexed(10), nullptr, o), dl(indexed(10), nullptr, o);
    DeviceBatches db(dl, pfq::Device::cpu(), async);
    for (int64_t epoch : {0, 1}) {
      const std::vector<Batch> want = run_epoch(reference, epoch, epoch);  // epoch 1 resumes at batch 1
      db.start_epoch(epoch, epoch);
      std::vector<Batch> got;
      while (auto b = db.next()) {
        CHECK(b->images.device() == pfq::Device::cpu());
        CHECK(b->images.data<float>() == b->host.images.data<float>());  // no copy on the CPU
        CHECK(b->labels.data<int64_t>() == b->host.labels.data<int64_t>());
        got.push_back(b->host);
      }
      CHECK(same_batches(got, want));
      CHECK_FALSE(db.next().has_value());
    }
    o.shuffle = false;
    DataLoader faulty(std::make_shared<Faulty>(indexed(10), 7), nullptr, o);
    DeviceBatches fb(faulty, pfq::Device::cpu(), async);
    fb.start_epoch(0);
    for (int b = 0; b < 2; ++b) CHECK(fb.next().has_value());  // samples 0..5
    CHECK_THROWS_WITH_AS(fb.next(), doctest::Contains("faulty: sample 7 cannot be read"), pfq::Error);
    CHECK_THROWS_WITH_AS(fb.next(), doctest::Contains("sample 7"), pfq::Error);
    fb.start_epoch(0, 3);
    CHECK(fb.next().has_value());
  }
}

TEST_CASE("device batches: a cuda device without a GPU is an error, never a CPU fallback") {
  if (pfq::cuda_device_count() > 0) {
    PFQ_SKIP("a GPU is present (the cuda suite covers uploads)");
  }
  LoaderOptions o;
  o.batch_size = 4;
  o.workers = 0;
  DataLoader dl(indexed(8), nullptr, o);
  const char* why = pfq::cuda_compiled() ? "no CUDA GPU present" : "built without CUDA";
  CHECK_THROWS_WITH_AS(DeviceBatches(dl, pfq::Device::cuda(0), true), doctest::Contains(why), pfq::Error);
  DeviceBatches sync(dl, pfq::Device::cuda(0), false);
  sync.start_epoch(0);
  CHECK_THROWS_WITH_AS(sync.next(), doctest::Contains(why), pfq::Error);
}
