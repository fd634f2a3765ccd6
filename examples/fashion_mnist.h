// fashion_mnist.h — what the Fashion-MNIST examples share, so that each of them shows only what
// it teaches: "--flag value" parsing, the first N images of each split in a DataLoader (with a
// message saying where the data was expected when it is missing) and top-1 accuracy. Header-only
// and on the installed library's headers alone, like the examples themselves.
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "core/ops.h"
#include "data/factory.h"
#include "data/loader.h"
#include "data/subset.h"
#include "layers/module.h"

namespace example {

// A flag and the variable its value goes to.
using Flag = std::pair<std::string, std::variant<std::string*, int64_t*>>;

// Reads "--flag value" pairs from argv into the flags' variables; false, after a message on
// stderr, on an unknown flag or a flag without a value (the example then exits with status 2).
inline bool parse_flags(int argc, char** argv, const std::vector<Flag>& flags) {
  for (int i = 1; i < argc; i += 2) {
    const std::string flag = argv[i];
    auto it = flags.begin();
    while (it != flags.end() && it->first != flag) ++it;
    if (it == flags.end()) return std::fprintf(stderr, "unknown flag %s (see the comment at the top of this file)\n", argv[i]), false;
    if (i + 1 == argc) return std::fprintf(stderr, "flag %s needs a value\n", argv[i]), false;
    if (auto* s = std::get_if<std::string*>(&it->second)) **s = argv[i + 1];
    else *std::get<int64_t*>(it->second) = std::atoll(argv[i + 1]);
  }
  return true;
}

// Loaders over the first n_train training images (shuffled from seed 0, batches of 128, the
// dataset's augmentation and normalisation) and the first n_test test images (in order, batches of 256).
struct Loaders {
  std::unique_ptr<pfq::data::DataLoader> train, test;
};

// The loaders, or none (after a message naming data_dir on stderr) when the data cannot be read.
inline Loaders fashion_mnist(const std::string& data_dir, int64_t n_train, int64_t n_test) {
  using namespace pfq;
  std::shared_ptr<data::Dataset> train_set, test_set;
  try {
    train_set = data::make_dataset("fashion-mnist", data_dir, "train");
    test_set = data::make_dataset("fashion-mnist", data_dir, "test");
  } catch (const Error& e) {
    std::fprintf(stderr,
                 "Fashion-MNIST data expected at %s (the four IDX files, .gz or not; Debian: apt-get install "
                 "dataset-fashion-mnist, or pass --data-dir)\n  %s\n", data_dir.c_str(), e.what());
    return {};
  }
  Loaders l;
  l.train = std::make_unique<data::DataLoader>(std::make_shared<data::SubsetDataset>(train_set, std::min(n_train, train_set->size())),
                                               data::default_transform("fashion-mnist", true),
                                               data::LoaderOptions{.batch_size = 128, .seed = 0});
  l.test = std::make_unique<data::DataLoader>(std::make_shared<data::SubsetDataset>(test_set, std::min(n_test, test_set->size())),
                                              data::default_transform("fashion-mnist", false),
                                              data::LoaderOptions{.batch_size = 256, .shuffle = false});
  return l;
}

// Top-1 accuracy in percent over one pass of `loader`, in eval mode (BN's running statistics)
// and without a tape.
inline double top1(pfq::Module& model, pfq::data::DataLoader& loader) {
  pfq::NoGradGuard no_grad;
  model.eval();
  int64_t correct = 0, seen = 0;
  loader.start_epoch(0);
  while (auto batch = loader.next()) {
    std::vector<int64_t> pred = pfq::argmax(model(batch->images), 1).to_vector<int64_t>();
    std::vector<int64_t> label = batch->labels.to_vector<int64_t>();
    for (size_t i = 0; i < pred.size(); ++i) correct += pred[i] == label[i];
    seen += int64_t(pred.size());
  }
  return 100.0 * double(correct) / double(seen);
}

}  // namespace example
