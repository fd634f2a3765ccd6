// image_folder.cpp — ImageFolderDataset (image_folder.h): listing with std::filesystem, decoding
// per get() through image_decode.h, at a reduced scale when the transform allows it.
#include "data/image_folder.h"

#include <algorithm>
#include <filesystem>

#include "core/error.h"
#include "data/transforms.h"

namespace pfq::data {

namespace fs = std::filesystem;

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
    PFQ_CHECK(options_.skip_bad, p, ": not an image file (expected .jpg, .jpeg or .png); remove it or pass --skip-bad");
    skipped_listing_.push_back(p);
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

template <typename Decode>
Sample ImageFolderDataset::first_decodable(int64_t index, const Decode& decode) const {
  const std::string& first = path(index);
  if (!options_.skip_bad) return Sample{decode(first), labels_[static_cast<size_t>(index)]};
  const int64_t n = size();
  for (int64_t k = 0; k < n; ++k) {
    const int64_t i = (index + k) % n;
    {
      std::lock_guard<std::mutex> lock(bad_mu_);
      if (bad_[static_cast<size_t>(i)]) continue;
    }
    try {
      return Sample{decode(files_[static_cast<size_t>(i)]), labels_[static_cast<size_t>(i)]};
    } catch (const Error&) {
      std::lock_guard<std::mutex> lock(bad_mu_);
      if (!bad_[static_cast<size_t>(i)]) {
        bad_[static_cast<size_t>(i)] = true;
        bad_order_.push_back(i);
        ++skipped_decode_;
      }
    }
  }
  PFQ_FAIL(root_, ": none of the ", n, " images could be decoded (skip_bad is set)");
}

Sample ImageFolderDataset::get(int64_t index) const {
  return first_decodable(index, [&](const std::string& file) {
    return decode_image_file(file, options_.max_pixels, options_.max_file_bytes);
  });
}

Sample ImageFolderDataset::get_transformed(int64_t index, const Transform* transform, Generator& gen) const {
  if (!transform) return get(index);
  const DecodeLimits limits{options_.max_pixels, options_.max_file_bytes};
  // the transform's draws on a copy of gen: apply() below makes the same ones
  const SourceScaleFn scale = [&](int64_t h, int64_t w) { return transform->source_scale(h, w, gen); };
  // training's crop: only the window apply_u8 will read is decoded (JPEGs, jpeg_window_compiled())
  const SourceWindowFn window = [&](int64_t h, int64_t w) { return transform->source_window(h, w, gen); };
  ImageU8 decoded;
  const Sample first = first_decodable(index, [&](const std::string& file) {
    decoded = decode_image_bytes_u8(read_image_file(file, limits.max_file_bytes), file, limits, scale, window);
    return Image();  // the 8-bit image goes to apply_u8 below, which converts only what it keeps
  });
  return Sample{transform->apply_u8(std::move(decoded), gen), first.label};
}

std::vector<std::string> ImageFolderDataset::skipped_files() const {
  std::vector<std::string> out = skipped_listing_;
  std::lock_guard<std::mutex> lock(bad_mu_);
  for (int64_t i : bad_order_) out.push_back(files_[static_cast<size_t>(i)]);
  return out;
}

}  // namespace pfq::data
