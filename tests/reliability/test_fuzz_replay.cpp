// test_fuzz_replay.cpp — replays every file of fuzz/corpus/<target>/ and fuzz/regressions/<target>/
// through the same entry points as the libFuzzer targets (fuzz/fuzz_inputs.h): each input must
// be accepted or rejected with pfq::Error (no crash, no other exception; under ASan+UBSan no
// report). An input that once crashed a reader is kept in fuzz/regressions/ for good.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "fuzz/fuzz_inputs.h"

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
