// image_folder.cpp — ImageFolderDataset and the stb_image decoder (the one translation unit
// that compiles stb_image, restricted to JPEG/PNG and kept static so it cannot clash with the
// system libstb). Listing uses std::filesystem; decoding happens per get().
#include "data/image_folder.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>

#include "core/error.h"
#include "data/stb_guards.h"

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

static std::vector<uint8_t> read_whole_file(const std::string& path, int64_t max_bytes) {
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

Image decode_image_file(const std::string& path, int64_t max_pixels, int64_t max_file_bytes) {
  std::vector<uint8_t> bytes = read_whole_file(path, max_file_bytes);
  check_jpeg_for_stb(bytes, path);  // refuses what Debian's stb_image mishandles (stb_guards.h)
  check_png_for_stb(bytes, path);
  const int len = static_cast<int>(bytes.size());
  int w = 0, h = 0, comp = 0;
  PFQ_CHECK(stbi_info_from_memory(bytes.data(), len, &w, &h, &comp), path,
            ": cannot decode image (expected JPEG or PNG): ", stbi_failure_reason());
  PFQ_CHECK(int64_t{w} * h <= max_pixels, path, ": image header claims ", w, "x", h, " pixels, more than the limit of ",
            max_pixels);
  stbi_uc* pix = stbi_load_from_memory(bytes.data(), len, &w, &h, &comp, 3);
  PFQ_CHECK(pix, path, ": cannot decode image (expected JPEG or PNG): ", stbi_failure_reason());
  Image img(3, h, w);
  const int64_t hw = int64_t{h} * w;
  for (int64_t p = 0; p < hw; ++p)
    for (int c = 0; c < 3; ++c) img.data[static_cast<size_t>(c * hw + p)] = static_cast<float>(pix[p * 3 + c]) / 255.0f;
  stbi_image_free(pix);
  return img;
}

ImageFolderDataset::ImageFolderDataset(const std::string& root, ImageFolderOptions options)
    : root_(root), options_(options) {
  std::error_code ec;
  PFQ_CHECK(fs::is_directory(root, ec), root, ": image folder not found (expected root/<class>/<image> folders)");
  try {
    for (const auto& entry : fs::directory_iterator(root))
      if (entry.is_directory() && entry.path().filename().string()[0] != '.')
        classes_.push_back(entry.path().filename().string());
  } catch (const fs::filesystem_error& e) {
    PFQ_FAIL(root, ": cannot list the image folder: ", e.code().message());
  }
  std::sort(classes_.begin(), classes_.end());
  PFQ_CHECK(!classes_.empty(), root, ": no class folders (expected root/<class>/<image>)");
  for (size_t k = 0; k < classes_.size(); ++k) {
    std::vector<std::string> found;
    const fs::path dir = fs::path(root) / classes_[k];
    try {
      list_class(dir, found);
    } catch (const fs::filesystem_error& e) {  // unreadable folder, symlink loop, ...
      PFQ_FAIL(dir.string(), ": cannot list class folder '", classes_[k], "': ", e.code().message(), " (at ", e.path1().string(), ")");
    }
    PFQ_CHECK(!found.empty(), dir.string(), ": class folder '", classes_[k], "' contains no images");
    std::sort(found.begin(), found.end());
    for (auto& p : found) {
      files_.push_back(std::move(p));
      labels_.push_back(static_cast<int64_t>(k));
    }
  }
  bad_.assign(files_.size(), false);
}

void ImageFolderDataset::list_class(const fs::path& dir, std::vector<std::string>& found) {
  for (const auto& entry : fs::recursive_directory_iterator(dir, fs::directory_options::follow_directory_symlink)) {
    if (!entry.is_regular_file() || entry.path().filename().string()[0] == '.') continue;
    const std::string p = entry.path().string();
    if (has_image_extension(p)) {
      found.push_back(p);
      continue;
    }
    PFQ_CHECK(options_.skip_bad, p, ": not an image file (expected .jpg, .jpeg or .png); remove it or set skip_bad");
    ++skipped_listing_;
  }
}

std::string ImageFolderDataset::description() const {
  return detail::cat("image folder ", root_, ": ", files_.size(), " images in ", classes_.size(), " classes");
}

const std::string& ImageFolderDataset::path(int64_t index) const {
  PFQ_CHECK(index >= 0 && index < size(), root_, ": index ", index, " outside [0, ", size(), ")");
  return files_[static_cast<size_t>(index)];
}

int64_t ImageFolderDataset::label(int64_t index) const {
  path(index);  // bounds check
  return labels_[static_cast<size_t>(index)];
}

Sample ImageFolderDataset::get(int64_t index) const {
  const std::string& first = path(index);
  if (!options_.skip_bad) return Sample{decode_image_file(first, options_.max_pixels, options_.max_file_bytes), labels_[index]};
  const int64_t n = size();
  for (int64_t k = 0; k < n; ++k) {
    const int64_t i = (index + k) % n;
    {
      std::lock_guard<std::mutex> lock(bad_mu_);
      if (bad_[static_cast<size_t>(i)]) continue;
    }
    try {
      return Sample{decode_image_file(files_[static_cast<size_t>(i)], options_.max_pixels, options_.max_file_bytes),
                    labels_[static_cast<size_t>(i)]};
    } catch (const Error&) {
      std::lock_guard<std::mutex> lock(bad_mu_);
      if (!bad_[static_cast<size_t>(i)]) {
        bad_[static_cast<size_t>(i)] = true;
        ++skipped_decode_;
      }
    }
  }
  PFQ_FAIL(root_, ": none of the ", n, " images could be decoded (skip_bad is set)");
}

}  // namespace pfq::data
