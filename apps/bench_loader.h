// bench_loader.h — `pfq bench --modes loader` (apps/): the training data pipeline's images/s
// (decode + the dataset's train augmentation, e.g. random crop + flip + normalize, on the
// loader's worker threads) next to the training step's images/s of a model at the same input
// geometry, on a fixed batch and fed by the loader, and their ratio: the loader must never be
// the bottleneck. Without a CIFAR-10 folder it writes a synthetic one in CIFAR-10 binary format
// to a temporary folder. Image folders (tools/make_bench_jpegs.py writes ImageNet-sized JPEGs)
// time decoding too; the row names the JPEG decoder. Leaves out GPU transfer.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace pfq::app {

struct LoaderBenchOptions {
  std::string model = "resnet20";
  double width = 1.0;
  std::string dataset = "cifar10";  // any dataset_names() entry
  std::string data_dir;             // "" = default location; cifar10 without one: synthetic data
  int64_t batch = 128;
  int workers = 2;
  int warmup = 3, steps = 10;     // training steps, each way
  int64_t loader_batches = 50;    // batches timed for the loader alone (after `warmup` batches)
  int64_t synthetic_images = 10000;
};

// One result row: dataset, source, geometry, loader / train / train-fed images per second, the
// loader's images per second per worker thread, the JPEG decoder, and loader_to_train_ratio (> 1: the loader keeps up). Throws pfq::Error naming the dataset and
// folder when the data is missing.
nlohmann::ordered_json bench_loader(const LoaderBenchOptions& o);

// `pfq bench --modes index`: lists the image folder data_dir/train as training does at start-up
// (no decoding) and returns files, classes, seconds and the resident memory it added (MiB, and
// bytes per file), for the start-up cost of a 1.28M-file ImageNet tree (tools/make_index_tree.py).
nlohmann::ordered_json bench_index(const std::string& data_dir);

// Writes CIFAR-10 binary training files (data_batch_1..5.bin, `images` in all, uniform random
// pixels, labels cycling 0..9) and test_batch.bin (`images` / 5) into dir.
void write_synthetic_cifar10(const std::string& dir, int64_t images, uint64_t seed);

}  // namespace pfq::app
