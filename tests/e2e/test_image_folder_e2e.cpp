// test_image_folder_e2e.cpp — `pfq train` on an image folder as users have one: a corrupt
// image and a stray non-image file stop the run naming the file, or with --skip-bad are
// skipped, counted in metrics (skipped_files) and named in <out>/skipped_files.txt; the
// --image-size / --resize-size options set the training and evaluation geometry; pfq bench
// --modes index lists the folder, and the loader row reports per-worker rates and the decoder.
#include <doctest/doctest.h>
#include <stb/stb_image_write.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "../data/data_test_util.h"
#include "apps/bench_loader.h"
#include "apps/checkpoint.h"
#include "apps/metrics.h"
#include "apps/trainer.h"
#include "core/random.h"
#include "data/image_decode.h"

using namespace pfq;
namespace fs = std::filesystem;

namespace {

// root/{train,val}/{a,b}/img<i>.png, 20x24 random pixels, plus a corrupt PNG and a text file in
// train/b; returns those two paths.
std::vector<std::string> make_folder(const std::string& root) {
  Generator g(5);
  for (const char* split : {"train", "val"})
    for (const char* cls : {"a", "b"})
      for (int i = 0; i < 4; ++i) {
        const int w = 20, h = 24;
        std::vector<uint8_t> pix(static_cast<size_t>(w * h * 3));
        for (auto& p : pix) p = static_cast<uint8_t>(g.next_u64() & 0xff);
        const std::string path = root + "/" + split + "/" + cls + "/img" + std::to_string(i) + ".png";
        fs::create_directories(fs::path(path).parent_path());
        REQUIRE(stbi_write_png(path.c_str(), w, h, 3, pix.data(), w * 3) != 0);
      }
  const std::string bad = root + "/train/b/broken.png", stray = root + "/train/b/notes.txt";
  data::testing::write_file(bad, {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, 'I', 'H'});
  data::testing::write_file(stray, {'h', 'i'});
  return {stray, bad};  // listing order: the stray file is met at start-up, the image when decoded
}

}  // namespace

TEST_CASE("e2e: train on an image folder with bad files: stops naming the file, or --skip-bad counts and names them") {
  data::testing::TempDir tmp;
  const std::vector<std::string> bad = make_folder(tmp / "folder");
  app::TrainOptions o;
  o.model = "resnet20";
  o.dataset = "imagefolder";
  o.data_dir = tmp / "folder";
  o.image_size = 16;
  o.resize_size = 18;
  o.epochs = 1;
  o.batch_size = 4;
  o.workers = 1;
  o.quiet = true;
  o.out = tmp / "run";
  CHECK_THROWS_WITH_AS(app::train(o), doctest::Contains((bad[0] + ": not an image file").c_str()), Error);

  o.skip_bad = true;
  const app::TrainResult r = app::train(o);
  CHECK(r.epochs_run == 1);
  const auto rows = app::MetricsLog(o.out, "metrics").rows();
  REQUIRE(rows.size() == 1);
  CHECK(rows[0]["skipped_files"].get<int64_t>() == 2);
  std::ifstream f(o.out + "/skipped_files.txt");
  std::stringstream text;
  text << f.rdbuf();
  CHECK(text.str() == bad[0] + "\n" + bad[1] + "\n");
  // the geometry came from --image-size: a 16x16 model input
  const app::Checkpoint ck = app::load_checkpoint(r.last_checkpoint);
  CHECK(ck.model.input_size == 16);
}

TEST_CASE("e2e: pfq bench index lists an image folder; the loader row reports images/s per worker and the JPEG decoder") {
  data::testing::TempDir tmp;
  make_folder(tmp / "folder");
  fs::remove(tmp / "folder/train/b/notes.txt");
  fs::remove(tmp / "folder/train/b/broken.png");
  const auto idx = app::bench_index(tmp / "folder");
  CHECK(idx["files"].get<int64_t>() == 8);
  CHECK(idx["classes"].get<int64_t>() == 2);
  CHECK(idx["seconds"].get<double>() >= 0);
  CHECK_THROWS_WITH_AS(app::bench_index(""), doctest::Contains("pass --data-dir"), Error);

  app::LoaderBenchOptions lo;
  lo.model = "mobilenetv1";
  lo.width = 0.25;
  lo.dataset = "imagefolder";
  lo.data_dir = tmp / "folder";
  lo.batch = 2;
  lo.workers = 2;
  lo.warmup = 0;
  lo.steps = 1;
  lo.loader_batches = 2;
  const auto r = app::bench_loader(lo);
  CHECK(r["input"].dump() == "[3,224,224]");  // as text: clang cannot compare ordered_json with json inside CHECK
  CHECK(r["loader_images_per_s_per_worker"].get<double>() == doctest::Approx(r["loader_images_per_s"].get<double>() / 2));
  CHECK(r["loader_cpu_ms_per_image"].get<double>() > 0);
  CHECK(r["jpeg_decoder"].get<std::string>() ==
        (!data::turbojpeg_compiled()    ? "stb_image"
         : data::jpeg_window_compiled() ? "libjpeg-turbo (TurboJPEG; crop windows: libjpeg)"
                                        : "libjpeg-turbo (TurboJPEG)"));
}
