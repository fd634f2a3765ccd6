/// \file
/// image_folder.h — ImageNet-style folders root/\<class\>/\<image\> (torchvision ImageFolder):
/// classes are the sorted sub-folder names, files are listed at construction and decoded
/// lazily in get() (image_decode.h: JPEG and PNG only; other formats are left out).
#pragma once
#include <atomic>
#include <memory>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/image_decode.h"

namespace pfq::data {

/// Options of ImageFolderDataset.
struct ImageFolderOptions {
  /// false: a non-image file or an undecodable image is an error naming the file.
  /// true: such files are skipped and counted (skipped()); get() of an undecodable image returns
  /// the next decodable one in listing order, so every index still yields a sample.
  bool skip_bad = false;
  /// Images whose header claims more pixels are rejected before decoding (memory bound).
  int64_t max_pixels = int64_t{1} << 26;
  /// Files larger than this are rejected before being read.
  int64_t max_file_bytes = int64_t{1} << 28;
};

/// An ImageNet-style folder of class sub-folders, decoded lazily (see the file comment).
class ImageFolderDataset : public Dataset {
 public:
  /// Lists the images under `root` (one sub-folder per class); throws when there are none.
  explicit ImageFolderDataset(const std::string& root, ImageFolderOptions options = {});

  int64_t size() const override { return static_cast<int64_t>(files_.size()); }
  Sample get(int64_t index) const override;
  /// Decodes at the scale the transform allows (Transform::source_scale), then applies it.
  Sample get_transformed(int64_t index, const Transform* transform, Generator& gen) const override;
  int64_t num_classes() const override { return static_cast<int64_t>(classes_.size()); }
  int64_t channels() const override { return 3; }
  int64_t height() const override { return 0; }  // varies per image
  int64_t width() const override { return 0; }
  std::string description() const override;

  /// Class names (sorted sub-folder names); label i is classes()[i].
  const std::vector<std::string>& classes() const { return classes_; }
  /// File of sample `index`.
  const std::string& path(int64_t index) const;
  /// Label of sample `index`, without decoding it.
  int64_t label(int64_t index) const;
  /// Files skipped so far: non-image files found at listing + distinct undecodable images met by get().
  int64_t skipped() const { return static_cast<int64_t>(skipped_listing_.size()) + skipped_decode_.load(); }
  std::vector<std::string> skipped_files() const override;

 private:
  std::string root_;
  ImageFolderOptions options_;
  std::vector<std::string> classes_;
  std::vector<std::string> files_;
  std::vector<int64_t> labels_;
  std::vector<std::string> skipped_listing_;  // non-image files, in listing order
  // Appends the image files under `dir` (recursively, following links) to `found`.
  void list_class(const std::filesystem::path& dir, std::vector<std::string>& found);
  mutable std::mutex bad_mu_;
  mutable std::vector<bool> bad_;  // images known to be undecodable (skip_bad only)
  mutable std::vector<int64_t> bad_order_;  // their indices, in the order found
  // skip_bad's walk: the first decodable image from `index` on (wrapping), decoded by `decode`.
  template <typename Decode>
  Sample first_decodable(int64_t index, const Decode& decode) const;
  mutable std::atomic<int64_t> skipped_decode_{0};
};

}  // namespace pfq::data
