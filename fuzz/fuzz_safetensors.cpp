// fuzz_safetensors.cpp — libFuzzer target for the safetensors reader (see fuzz_inputs.h and tools/fuzz.sh).
#include "fuzz/fuzz_inputs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  pfq::fuzz::safetensors(data, size);
  return 0;
}
