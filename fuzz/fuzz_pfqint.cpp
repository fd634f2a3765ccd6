// fuzz_pfqint.cpp — libFuzzer target for the integer model reader and runtime (.pfqint; see fuzz_inputs.h and tools/fuzz.sh).
#include "fuzz/fuzz_inputs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  pfq::fuzz::pfqint(data, size);
  return 0;
}
