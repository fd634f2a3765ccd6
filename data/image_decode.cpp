// image_decode.cpp — decode_image_bytes (image_decode.h): the file's magic picks the decoder
// (JPEG: TurboJPEG when compiled in, else stb_image; PNG: stb_image), after stb_guards.h's
// checks. The one translation unit that compiles stb_image, restricted to JPEG/PNG and kept
// static so it cannot clash with the system libstb.
#include "data/image_decode.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>

#include "core/error.h"
#include "data/stb_guards.h"
#include "data/transforms.h"

#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_NO_STDIO
#define STBI_MAX_DIMENSIONS (1 << 16)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
// Corrupt entropy-coded JPEG data drives stb's bit reader to a negative bit count, and
// stbi__grow_buffer_unsafe then shifts by 24 - count >= 32 (fuzz/regressions/image/
// stb-jpeg-shift-exponent-1.jpg). On the targets pfq builds for, the shift only garbles the
// pixels of an already corrupt file, and no guard can see it before decoding, so UBSan's shift
// check is off for stb's functions alone (clang, the sanitizer build; gcc builds no sanitizers).
#ifdef __clang__
#pragma clang attribute push(__attribute__((no_sanitize("shift"))), apply_to = function)
#endif
#include <stb/stb_image.h>
#ifdef __clang__
#pragma clang attribute pop
#endif
#pragma GCC diagnostic pop

namespace pfq::data {

namespace fs = std::filesystem;

bool has_image_extension(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

std::vector<uint8_t> read_image_file(const std::string& path, int64_t max_bytes) {
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  PFQ_CHECK(!ec, path, ": cannot read the file size: ", ec.message());
  PFQ_CHECK(size > 0, path, ": cannot decode image: the file is empty");
  PFQ_CHECK(size <= static_cast<uintmax_t>(max_bytes), path, ": image file of ", size, " bytes exceeds the limit of ",
            max_bytes, " bytes");
  std::vector<uint8_t> bytes(size);
  FILE* f = std::fopen(path.c_str(), "rb");
  PFQ_CHECK(f, path, ": cannot open");
  size_t got = std::fread(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
  PFQ_CHECK(got == bytes.size(), path, ": read only ", got, " of ", size, " bytes");
  return bytes;
}

static bool is_jpeg(const std::vector<uint8_t>& b) { return b.size() >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF; }

static void check_pixel_limit(int64_t h, int64_t w, const DecodeLimits& limits, const std::string& path) {
  PFQ_CHECK(w * h <= limits.max_pixels, path, ": image header claims ", w, "x", h, " pixels, more than the limit of ",
            limits.max_pixels);
}

static ImageU8 decode_with_stb(const std::vector<uint8_t>& bytes, const std::string& path, const DecodeLimits& limits) {
  const int len = static_cast<int>(bytes.size());
  int w = 0, h = 0, comp = 0;
  PFQ_CHECK(stbi_info_from_memory(bytes.data(), len, &w, &h, &comp), path,
            ": cannot decode image (expected JPEG or PNG): ", stbi_failure_reason());
  check_pixel_limit(h, w, limits, path);
  stbi_uc* pix = stbi_load_from_memory(bytes.data(), len, &w, &h, &comp, 3);
  PFQ_CHECK(pix, path, ": cannot decode image (expected JPEG or PNG): ", stbi_failure_reason());
  ImageU8 img;
  img.height = h;
  img.width = w;
  img.hwc.assign(pix, pix + static_cast<size_t>(h) * static_cast<size_t>(w) * 3);
  stbi_image_free(pix);
  return img;
}

// Whether the bytes end with the EOI marker (FF D9). Only such files go through the window
// decoder, which stops at the window's last row: a truncated file (no EOI; "Premature end of JPEG
// file" from a whole decode) or one with bytes after its EOI decodes whole, refused or accepted
// exactly as before.
static bool ends_with_eoi(const std::vector<uint8_t>& b) {
  return b.size() >= 4 && b[b.size() - 2] == 0xFF && b[b.size() - 1] == 0xD9;
}

ImageU8 decode_image_bytes_u8(const std::vector<uint8_t>& bytes, const std::string& path, const DecodeLimits& limits,
                              const SourceScaleFn& source_scale, const SourceWindowFn& source_window) {
  // refuses what Debian's stb_image mishandles (stb_guards.h); for TurboJPEG too, so that a
  // corrupt file gets the same message whichever decoder the build has
  check_jpeg_for_stb(bytes, path);
  check_png_for_stb(bytes, path);
  if (turbojpeg_compiled() && is_jpeg(bytes)) {
    const JpegHeader hd = turbojpeg_header(bytes, path);
    check_pixel_limit(hd.height, hd.width, limits, path);
    const double f = source_scale ? source_scale(hd.height, hd.width) : 1.0;
    const std::pair<int, int> scale = turbojpeg_scale(f);
    if (source_window && jpeg_window_compiled() && ends_with_eoi(bytes)) {
      // the picture's size at that scale (TJSCALED) and the window the transform will read of it
      const int64_t h = (hd.height * scale.first + scale.second - 1) / scale.second;
      const int64_t w = (hd.width * scale.first + scale.second - 1) / scale.second;
      const CropBox box = source_window(h, w);
      if (box.height < h || box.width < w) return jpeg_decode_window_u8(bytes, path, scale, box);
    }
    return turbojpeg_decode_u8(bytes, path, scale);
  }
  return decode_with_stb(bytes, path, limits);
}

Image decode_image_bytes(const std::vector<uint8_t>& bytes, const std::string& path, const DecodeLimits& limits,
                         const SourceScaleFn& source_scale) {
  return to_float(decode_image_bytes_u8(bytes, path, limits, source_scale));
}

Image decode_image_file(const std::string& path, int64_t max_pixels, int64_t max_file_bytes) {
  return decode_image_bytes(read_image_file(path, max_file_bytes), path, DecodeLimits{max_pixels, max_file_bytes});
}

}  // namespace pfq::data
