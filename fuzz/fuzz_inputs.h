// fuzz_inputs.h — the fuzzed entry points of pfq's readers, shared by the libFuzzer targets
// (fuzz/fuzz_*.cpp) and the regression test that replays fuzz/corpus and fuzz/regressions
// (tests/reliability). Each function writes the bytes to a temp file, runs one reader on it
// and returns normally when the reader accepted the input or rejected it with pfq::Error;
// anything else (another exception, a crash, a sanitizer report) is a finding.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace pfq::fuzz {

// Writes `data` to a per-process temp file (under /dev/shm when present) named with `suffix`
// and returns its path; the file is reused between calls.
std::string write_temp(const uint8_t* data, size_t size, const std::string& suffix);

// Byte 0 picks CIFAR-10 / CIFAR-100 fine / CIFAR-100 coarse; the rest is the file.
void cifar(const uint8_t* data, size_t size);
// Byte 0: bit 0 = gzip-compress the rest before reading, bit 1 = 1-d (labels) else 3-d
// (images); bit 2 also loads the file as labels paired with a generated image file.
void idx(const uint8_t* data, size_t size);
// The bytes are an image file (JPEG/PNG expected): decode_image_file with small limits.
void image(const uint8_t* data, size_t size);
// The bytes are a checkpoint: header, tensors (load_safetensors), pfq metadata
// (load_checkpoint) and the model it records (model_from_checkpoint; the file's own size bounds
// what gets built).
void safetensors(const uint8_t* data, size_t size);
// The bytes are a `pfq workflow --config` file: read_workflow_config + apply_quick.
void workflow_config(const uint8_t* data, size_t size);
// The bytes are an integer model (.pfqint): load_integer_model, then, when the model is small
// (an input of at most 4096 values, no padding wider than its kernel), one forward pass of a
// ramp image through the integer runtime.
void pfqint(const uint8_t* data, size_t size);

}  // namespace pfq::fuzz
