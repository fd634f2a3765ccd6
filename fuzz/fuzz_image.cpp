// fuzz_image.cpp — libFuzzer target for the image reader (see fuzz_inputs.h and tools/fuzz.sh).
#include "fuzz/fuzz_inputs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  pfq::fuzz::image(data, size);
  return 0;
}
