// stb_guards.cpp — see stb_guards.h. The JPEG walk follows the segments the way stb_image reads
// them (fill bytes before SOI and between segments, zeros past the end of the file) and keeps
// what stb_image has been told so far; it stops where stb_image would stop with its own error.
#include "data/stb_guards.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace pfq::data {

namespace {

// What the segments before the current one defined. stb_image keeps its tables in a malloc()ed,
// never cleared struct and does not record which ones a DHT/DQT segment filled, so a scan using
// an undefined table decodes with whatever the heap held: an assertion failure or out-of-bounds
// reads (fuzz/regressions/image/stb-undefined-huffman-table-1.jpg).
struct JpegTables {
  struct Component {
    int id = 0;
    int quant = 0;  // quantization table
    bool scanned = false;
  };
  bool huffman[2][4] = {};  // [0 DC, 1 AC][table id]
  bool quant[4] = {};
  bool frame = false;  // SOF seen
  bool progressive = false;
  std::vector<Component> components;
};

class JpegWalk {
 public:
  JpegWalk(const std::vector<uint8_t>& b, const std::string& path) : b_(b), path_(path) {}

  void run() {
    size_t i = 1;  // stb_image accepts fill bytes (0xFF) before the SOI marker FF D8
    while (i < b_.size() && b_[i] == 0xFF) ++i;
    if (b_.empty() || b_[0] != 0xFF || i >= b_.size() || b_[i] != 0xD8) return;  // not a JPEG
    ++i;
    while (i + 1 < b_.size()) {
      const uint8_t m = b_[i + 1];
      if (b_[i] != 0xFF) {  // entropy-coded data: on to the next 0xFF byte (or the last byte)
        const void* ff = std::memchr(b_.data() + i + 1, 0xFF, b_.size() - i - 2);
        i = ff ? static_cast<size_t>(static_cast<const uint8_t*>(ff) - b_.data()) : b_.size() - 1;
        continue;
      }
      if (m == 0xFF) {  // fill bytes
        ++i;
        continue;
      }
      if (m == 0x00 || m == 0x01 || m == 0xD8 || (m >= 0xD0 && m <= 0xD7)) {  // stuffed byte, TEM, SOI, RSTn
        i += 2;
        continue;
      }
      if (m == 0xD9) return end_of_image(i);
      if (i + 3 >= b_.size()) return;
      const size_t len = size_t{b_[i + 2]} << 8 | b_[i + 3];
      bool go_on = true;
      if (m == 0xC4) go_on = huffman_tables(i, len);
      else if (m == 0xDB) go_on = quant_tables(i, len);
      else if (m == 0xC0 || m == 0xC1 || m == 0xC2) go_on = frame(i, len, m == 0xC2);
      else if (m == 0xDA) go_on = scan(i, len);
      if (!go_on) return;  // stb_image refuses the file here itself
      i += 2 + len;
    }
  }

 private:
  int at(size_t k) const { return k < b_.size() ? b_[k] : 0; }
  template <typename... Args>
  [[noreturn]] void fail(const Args&... what) const {
    PFQ_FAIL(path_, ": cannot decode image (corrupt JPEG): ", what...);
  }

  // DHT: tables while the segment length lasts, read past the end of the file as zeros.
  bool huffman_tables(size_t i, size_t len) {
    int64_t left = static_cast<int64_t>(len) - 2;
    for (size_t p = i + 4; left > 0 && p < b_.size();) {
      const int cls = at(p) >> 4, id = at(p) & 15;
      if (cls > 1 || id > 3) return false;
      int total = 0;
      for (int k = 1; k <= 16; ++k) total += at(p + k);
      // stb_image writes the code lengths into a 257-entry table: more codes write past it
      if (total > 256) fail("the Huffman table at byte offset ", p, " declares ", total, " codes, more than 256");
      t_.huffman[cls][id] = true;
      p += 17 + static_cast<size_t>(total);
      left -= 17 + total;
    }
    return true;
  }

  bool quant_tables(size_t i, size_t len) {
    int64_t left = static_cast<int64_t>(len) - 2;
    for (size_t p = i + 4; left > 0 && p < b_.size();) {
      const int precision = at(p) >> 4, id = at(p) & 15;
      if (precision > 1 || id > 3) return false;
      t_.quant[id] = true;
      const int n = precision ? 129 : 65;
      p += static_cast<size_t>(n);
      left -= n;
    }
    return true;
  }

  bool frame(size_t i, size_t len, bool progressive) {
    const int n = at(i + 9);
    if (t_.frame || (n != 1 && n != 3 && n != 4) || len != static_cast<size_t>(8 + 3 * n)) return false;
    for (int c = 0; c < n; ++c) {
      JpegTables::Component comp;
      comp.id = at(i + 10 + 3 * c);
      comp.quant = at(i + 12 + 3 * c);
      if (comp.quant > 3) return false;
      t_.components.push_back(comp);
    }
    t_.frame = true;
    t_.progressive = progressive;
    return true;
  }

  bool scan(size_t i, size_t len) {
    const int n = at(i + 4);
    if (!t_.frame || n < 1 || n > static_cast<int>(t_.components.size()) || len != static_cast<size_t>(6 + 2 * n)) return false;
    const int spectral_start = at(i + 5 + 2 * n), approx_high = at(i + 7 + 2 * n) >> 4;
    // baseline scans decode DC and AC; progressive ones DC (first pass only) or AC (every pass)
    const bool uses_dc = !t_.progressive || (spectral_start == 0 && approx_high == 0);
    const bool uses_ac = !t_.progressive || spectral_start > 0;
    for (int k = 0; k < n; ++k) {
      const int id = at(i + 5 + 2 * k), dc = at(i + 6 + 2 * k) >> 4, ac = at(i + 6 + 2 * k) & 15;
      auto comp = std::find_if(t_.components.begin(), t_.components.end(), [&](const auto& c) { return c.id == id; });
      if (comp == t_.components.end() || dc > 3 || ac > 3) return false;
      if (uses_dc && !t_.huffman[0][dc])
        fail("the scan at byte offset ", i, " uses DC Huffman table ", dc, ", which no DHT segment before it defines");
      if (uses_ac && !t_.huffman[1][ac])
        fail("the scan at byte offset ", i, " uses AC Huffman table ", ac, ", which no DHT segment before it defines");
      if (!t_.quant[comp->quant])
        fail("the scan at byte offset ", i, " decodes component ", id, " with quantization table ", comp->quant,
             ", which no DQT segment before it defines");
      comp->scanned = true;
    }
    return true;
  }

  // stb_image returns a component that no scan decoded as uninitialised memory
  void end_of_image(size_t i) const {
    if (!t_.frame) return;
    for (const auto& c : t_.components)
      if (!c.scanned) fail("component ", c.id, " of the frame is in no scan before the end of the image at byte offset ", i);
  }

  const std::vector<uint8_t>& b_;
  const std::string& path_;
  JpegTables t_;
};

}  // namespace

void check_jpeg_for_stb(const std::vector<uint8_t>& bytes, const std::string& path) { JpegWalk(bytes, path).run(); }

// stb_image grows its buffer to a chunk's claimed length before reading it, so a 77-byte file
// claiming a 1.7 GB IDAT chunk made it allocate 1.7 GB (fuzz/regressions/image/).
void check_png_for_stb(const std::vector<uint8_t>& b, const std::string& path) {
  static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  if (b.size() < 8 || !std::equal(sig, sig + 8, b.begin())) return;  // not a PNG
  bool seen_idat = false;
  for (size_t i = 8; i + 8 <= b.size();) {
    const uint64_t len = uint64_t{b[i]} << 24 | uint64_t{b[i + 1]} << 16 | uint64_t{b[i + 2]} << 8 | b[i + 3];
    PFQ_CHECK(len + 12 <= b.size() - i, path, ": cannot decode image (corrupt PNG): the chunk at byte offset ", i, " claims ",
              len, " bytes but the file ends ", b.size() - i, " bytes later");
    if (b[i + 4] == 'I' && b[i + 5] == 'E' && b[i + 6] == 'N' && b[i + 7] == 'D') return;
    const bool idat = b[i + 4] == 'I' && b[i + 5] == 'D' && b[i + 6] == 'A' && b[i + 7] == 'T';
    // stb_image memcpy()s an empty first IDAT into its not yet allocated buffer (undefined behaviour)
    PFQ_CHECK(!(idat && len == 0 && !seen_idat), path, ": cannot decode image (corrupt PNG): empty IDAT chunk at byte offset ", i,
              " before any image data");
    seen_idat = seen_idat || idat;
    i += 12 + static_cast<size_t>(len);
  }
}

}  // namespace pfq::data
