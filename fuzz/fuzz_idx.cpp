// fuzz_idx.cpp — libFuzzer target for the idx reader (see fuzz_inputs.h and tools/fuzz.sh).
#include "fuzz/fuzz_inputs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  pfq::fuzz::idx(data, size);
  return 0;
}
