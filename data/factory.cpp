// factory.cpp — name -> dataset / transforms (see factory.h). Per-dataset statistics are the
// usual published training-set mean/std values.
#include "data/factory.h"

#include <filesystem>

#include "core/error.h"
#include "data/cifar.h"
#include "data/idx.h"
#include "data/image_folder.h"

namespace pfq::data {

namespace fs = std::filesystem;

const std::vector<std::string>& dataset_names() {
  static const std::vector<std::string> names = {"fashion-mnist", "mnist", "cifar10", "cifar100", "imagefolder"};
  return names;
}

static void check_name(const std::string& name) {
  for (const auto& n : dataset_names())
    if (n == name) return;
  PFQ_FAIL("unknown dataset '", name, "'; expected one of fashion-mnist, mnist, cifar10, cifar100, imagefolder");
}

std::string default_data_dir(const std::string& name) {
  check_name(name);
  if (name == "fashion-mnist") return "/usr/share/datasets/fashion-mnist";
  if (name == "mnist") return "/usr/share/datasets/mnist";
  return "";
}

NormStats norm_stats(const std::string& name) {
  check_name(name);
  if (name == "fashion-mnist") return {{0.2860f}, {0.3530f}};
  if (name == "mnist") return {{0.1307f}, {0.3081f}};
  if (name == "cifar10") return {{0.4914f, 0.4822f, 0.4465f}, {0.2470f, 0.2435f, 0.2616f}};
  if (name == "cifar100") return {{0.5071f, 0.4865f, 0.4409f}, {0.2673f, 0.2564f, 0.2762f}};
  return {{0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};  // ImageNet
}

// `base` or `base.gz`, whichever exists (plain first); the reader detects gzip by magic anyway.
static std::string idx_path(const std::string& dir, const std::string& base) {
  const std::string plain = dir + "/" + base;
  if (fs::exists(plain)) return plain;
  const std::string gz = plain + ".gz";
  PFQ_CHECK(fs::exists(gz), "IDX file not found: ", gz, " (nor ", plain, ")");
  return gz;
}

std::shared_ptr<Dataset> make_dataset(const std::string& name, const std::string& data_dir, const std::string& split,
                                      const DatasetOptions& options) {
  check_name(name);
  PFQ_CHECK(split == "train" || split == "test", "make_dataset(", name, "): split must be \"train\" or \"test\", got \"",
            split, "\"");
  std::string dir = data_dir.empty() ? default_data_dir(name) : data_dir;
  PFQ_CHECK(!dir.empty(), "make_dataset(", name, "): no default location; pass a data directory");
  PFQ_CHECK(fs::is_directory(dir), "make_dataset(", name, "): data directory not found: ", dir);
  const std::string desc = name + " " + split;
  if (name == "fashion-mnist" || name == "mnist") {
    const std::string prefix = split == "train" ? "train" : "t10k";
    const std::string images = idx_path(dir, prefix + "-images-idx3-ubyte");
    return load_idx(images, idx_path(dir, prefix + "-labels-idx1-ubyte"), 10, desc);
  }
  if (name == "cifar10" || name == "cifar100") {
    const CifarKind kind = name == "cifar10" ? CifarKind::Cifar10
                           : options.cifar100_coarse ? CifarKind::Cifar100Coarse
                                                     : CifarKind::Cifar100Fine;
    const std::string sub = dir + (name == "cifar10" ? "/cifar-10-batches-bin" : "/cifar-100-binary");
    if (!fs::exists(cifar_files(dir, kind, split)[0]) && fs::is_directory(sub)) dir = sub;
    return load_cifar(cifar_files(dir, kind, split), kind, desc);
  }
  ImageFolderOptions o;
  o.skip_bad = options.skip_bad;
  return std::make_shared<ImageFolderDataset>(dir + (split == "train" ? "/train" : "/val"), o);
}

TransformPtr default_transform(const std::string& name, bool train, const TransformOptions& options) {
  const NormStats s = norm_stats(name);
  std::vector<TransformPtr> steps;
  if (name == "imagefolder") {
    PFQ_CHECK(options.image_size > 0 && options.resize_size >= options.image_size, "imagefolder transforms: need 0 < image_size <= resize_size, got image_size ",
              options.image_size, " resize_size ", options.resize_size);
    if (train) {
      steps.push_back(std::make_shared<RandomResizedCrop>(options.image_size));
      steps.push_back(std::make_shared<RandomHorizontalFlip>());
    } else {
      steps.push_back(std::make_shared<Resize>(options.resize_size));
      steps.push_back(std::make_shared<CenterCrop>(options.image_size));
    }
  } else if (train) {
    const bool mnist_like = name == "fashion-mnist" || name == "mnist";
    steps.push_back(mnist_like ? std::make_shared<RandomCrop>(28, 2) : std::make_shared<RandomCrop>(32, 4));
    if (name != "mnist") steps.push_back(std::make_shared<RandomHorizontalFlip>());  // digits are not mirror-symmetric
  }
  steps.push_back(std::make_shared<Normalize>(s.mean, s.std));
  return std::make_shared<Compose>(std::move(steps));
}

DataInfo data_info(const Dataset& dataset, const Transform* transform) {
  Dims d{dataset.channels(), dataset.height(), dataset.width()};
  if (transform) d = transform->output_dims(d);
  return {dataset.num_classes(), d[0], d[1], d[2]};
}

}  // namespace pfq::data
