/// \file
/// cifar.h — the binary versions of CIFAR-10 (data_batch_{1..5}.bin, test_batch.bin) and
/// CIFAR-100 (train.bin, test.bin). Records are \<label\> \<3072 CHW bytes\> for CIFAR-10 and
/// \<coarse\> \<fine\> \<3072 bytes\> for CIFAR-100. The Python-pickle versions are left out.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace pfq::data {

/// Which CIFAR binary format and label: CIFAR-10, or CIFAR-100 with its fine (100) or coarse (20) labels.
enum class CifarKind { Cifar10, Cifar100Fine, Cifar100Coarse };

/// Pixel bytes of one CIFAR record (3 x 32 x 32, channel-major).
constexpr int64_t kCifarImageBytes = 3 * 32 * 32;
int64_t cifar_record_bytes(CifarKind kind);   ///< 3073 or 3074
int64_t cifar_num_classes(CifarKind kind);    ///< 10, 100 or 20

/// Reads the files in order into one dataset of 3x32x32 images. Each file's size must be a
/// positive multiple of the record size; labels must be in range (errors name file and offset).
std::shared_ptr<InMemoryDataset> load_cifar(const std::vector<std::string>& files, CifarKind kind,
                                            const std::string& description = "cifar");

/// The standard file names of a split ("train" | "test") inside `dir`.
std::vector<std::string> cifar_files(const std::string& dir, CifarKind kind, const std::string& split);

}  // namespace pfq::data
