/// \file
/// factory.h — datasets and default transforms by name: fashion-mnist | mnist | cifar10 |
/// cifar100 | imagefolder, as the command line and configs refer to them. Also the shape and
/// class count of what the loader will produce. Downloading datasets is left out.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/transforms.h"

namespace pfq::data {

/// Options of make_dataset() for particular datasets.
struct DatasetOptions {
  bool cifar100_coarse = false;  ///< cifar100: the 20 coarse labels instead of the 100 fine ones
  bool skip_bad = false;         ///< imagefolder: skip (and count) non-image/undecodable files
};

/// Options of default_transform() for image folders.
struct TransformOptions {
  int64_t image_size = 224;   ///< imagefolder: crop size of train and eval
  int64_t resize_size = 256;  ///< imagefolder eval: shorter side before the center crop
};

/// Per-channel normalisation statistics of a dataset's training set.
struct NormStats {
  /// Mean and standard deviation per channel.
  ///@{
  std::vector<float> mean, std;
  ///@}
};

/// The dataset names make_dataset() knows ("fashion-mnist", "cifar10", ...).
const std::vector<std::string>& dataset_names();
/// Where the dataset is installed by default ("" when there is no default location).
std::string default_data_dir(const std::string& name);
/// The normalisation statistics default_transform() uses for dataset `name`.
NormStats norm_stats(const std::string& name);

/// split is "train" or "test". imagefolder reads data_dir/train or data_dir/val; the IDX
/// datasets read the four standard (optionally .gz) files; cifar10 / cifar100 also look in
/// cifar-10-batches-bin / cifar-100-binary below data_dir. An empty data_dir means the default.
std::shared_ptr<Dataset> make_dataset(const std::string& name, const std::string& data_dir, const std::string& split,
                                      const DatasetOptions& options = {});

/// Train: the dataset's augmentation then normalize. Eval: normalize only (imagefolder: resize +
/// center crop first).
TransformPtr default_transform(const std::string& name, bool train, const TransformOptions& options = {});

/// What batches will hold: classes and the per-sample {C, H, W} after `transform` (may be null).
struct DataInfo {
  /// Classes and the per-sample image dimensions.
  ///@{
  int64_t num_classes, channels, height, width;
  ///@}
};
/// Classes of `dataset` and the image dims after `transform` (throws when they vary per image).
DataInfo data_info(const Dataset& dataset, const Transform* transform);

}  // namespace pfq::data
