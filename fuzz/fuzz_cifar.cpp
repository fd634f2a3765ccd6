// fuzz_cifar.cpp — libFuzzer target for the cifar reader (see fuzz_inputs.h and tools/fuzz.sh).
#include "fuzz/fuzz_inputs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  pfq::fuzz::cifar(data, size);
  return 0;
}
