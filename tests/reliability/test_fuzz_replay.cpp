// test_fuzz_replay.cpp — replays every file of fuzz/corpus/<target>/ and fuzz/regressions/<target>/
// through the same entry points as the libFuzzer targets (fuzz/fuzz_inputs.h): each input must
// be accepted or rejected with pfq::Error (no crash, no other exception; under ASan+UBSan no
// report). An input that once crashed a reader is kept in fuzz/regressions/ for good, and must
// be refused with the message listed for it below (not merely "no crash").
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <vector>

#include "core/error.h"
#include "data/image_folder.h"
#include "fuzz/fuzz_inputs.h"
#include "quant/integer/model.h"

namespace fs = std::filesystem;

namespace {

using Entry = void (*)(const uint8_t*, size_t);

int replay(const std::string& target, Entry entry) {
  int count = 0;
  for (const char* kind : {"corpus", "regressions"}) {
    const fs::path dir = fs::path(PFQ_SOURCE_ROOT) / "fuzz" / kind / target;
    if (!fs::is_directory(dir)) continue;
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_regular_file()) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const fs::path& f : files) {
      std::ifstream in(f, std::ios::binary);
      std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      INFO("input ", f.string());
      CHECK_NOTHROW(entry(bytes.data(), bytes.size()));
      ++count;
    }
  }
  return count;
}

}  // namespace

TEST_CASE("fuzz replay: CIFAR reader corpus and regressions") { CHECK(replay("cifar", pfq::fuzz::cifar) > 0); }
TEST_CASE("fuzz replay: IDX reader (plain and gzip) corpus and regressions") { CHECK(replay("idx", pfq::fuzz::idx) > 0); }
TEST_CASE("fuzz replay: image decoder corpus and regressions") { CHECK(replay("image", pfq::fuzz::image) > 0); }
TEST_CASE("fuzz replay: safetensors checkpoint reader corpus and regressions") {
  CHECK(replay("safetensors", pfq::fuzz::safetensors) > 0);
}
TEST_CASE("fuzz replay: workflow --config reader corpus and regressions") {
  CHECK(replay("workflow_config", pfq::fuzz::workflow_config) > 0);
}

TEST_CASE("fuzz replay: integer model (.pfqint) reader and runtime corpus and regressions") {
  CHECK(replay("pfqint", pfq::fuzz::pfqint) > 0);
}

TEST_CASE("fuzz regressions: every input is refused with the message expected for it") {
  // fuzz/regressions/<target>/<file> -> a part of the pfq::Error it must raise. A new regression
  // file needs its line here (the case fails on a file it does not list).
  const std::map<std::string, std::string> expected = {
      {"image/stb-dht-overflow-1.jpg", "corrupt JPEG): the Huffman table at byte offset 177 declares 658 codes, more than 256"},
      {"image/stb-dht-overflow-2-truncated.jpg",
       "corrupt JPEG): the Huffman table at byte offset 175 declares 1461 codes, more than 256"},
      {"image/stb-dht-overflow-3-fill-before-soi.jpg",
       "corrupt JPEG): the Huffman table at byte offset 386 declares 618 codes, more than 256"},
      {"image/stb-jpeg-shift-exponent-1.jpg", pfq::data::turbojpeg_compiled()  // libjpeg-turbo or stb_image decodes it
                                                   ? "cannot decode image (corrupt JPEG): Unsupported marker type 0x0d"
                                                   : "cannot decode image (expected JPEG or PNG): unknown marker"},
      {"image/stb-png-empty-idat-1.png", "corrupt PNG): empty IDAT chunk at byte offset 33 before any image data"},
      {"image/stb-png-idat-length-oom-1.png",
       "corrupt PNG): the chunk at byte offset 33 claims 1711276052 bytes but the file ends 44 bytes later"},
      {"image/stb-undefined-huffman-table-1.jpg",
       "corrupt JPEG): the scan at byte offset 594 uses AC Huffman table 0, which no DHT segment before it defines"},
      // the corpus's ResNet-20 (width 0.0625, W4/A4) edited past each bound the .pfqint loader
      // enforces (quant/integer/io.cpp): each must be refused naming the node or tensor
      {"pfqint/conv-padding-4096.pfqint",
       "node 'layer3.2.conv2': output [4, 8197, 8197] has more than 67108864 values per image, more than an integer model may ask for"},
      {"pfqint/frac-bits-31.pfqint", "node 'relu.1': frac_bits 31 must be in 0..30"},
      {"pfqint/input-shape-100000.pfqint",
       "header: input_shape [1, 100000, 28] does not match the architecture record's in_channels/input_size [1, 28, 28]"},
      {"pfqint/multiplier-not-q31.pfqint",
       "node 'layer1.0.relu.1': tensor 'layer1.0.relu.1.term0.multiplier' [0] = 5: a multiplier must be 0 or have |m| in [2^30, 2^31)"},
      {"pfqint/shift-63.pfqint", "node 'layer1.0.relu.1': term 0 shift out of 0..62"},
      {"pfqint/truncated.pfqint", "data_offsets [2055, 2095] of tensor 'fc.weight_scale' are out of the data buffer (2075 bytes)"},
      {"pfqint/weight-outside-bit-range.pfqint", "node 'layer1.0.conv1': weight 3 = 100 is outside the 4-bit range"},
  };
  // The readers as fuzz/fuzz_inputs.cpp calls them, without its "any pfq::Error is fine".
  const std::map<std::string, void (*)(const std::string&)> readers = {
      {"image", [](const std::string& path) { (void)pfq::data::decode_image_file(path, int64_t{1} << 20, int64_t{1} << 20); }},
      {"pfqint", [](const std::string& path) { (void)pfq::quant::load_integer_model(path); }},
  };
  int checked = 0;
  const fs::path root = fs::path(PFQ_SOURCE_ROOT) / "fuzz" / "regressions";
  for (const auto& dir : fs::directory_iterator(root)) {
    const std::string target = dir.path().filename().string();
    INFO("target ", target);
    REQUIRE_MESSAGE(readers.count(target) == 1, "no reader for fuzz/regressions/", target, " in this test");
    for (const auto& e : fs::directory_iterator(dir.path())) {
      const std::string rel = target + "/" + e.path().filename().string();
      INFO("input ", rel);
      auto it = expected.find(rel);
      std::string got;
      try {
        readers.at(target)(e.path().string());
      } catch (const pfq::Error& err) {
        got = err.what();
      }
      INFO("message: ", got);
      CHECK_MESSAGE(it != expected.end(), "fuzz/regressions/", rel, " has no expected message in this test");
      if (it == expected.end()) continue;
      CHECK_FALSE(got.empty());  // refused, not accepted
      CHECK(got.find(it->second) != std::string::npos);
      ++checked;
    }
  }
  CHECK(checked == static_cast<int>(expected.size()));  // every listed input still exists
}
