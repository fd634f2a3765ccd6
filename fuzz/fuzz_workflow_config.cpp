// fuzz_workflow_config.cpp — libFuzzer target for the workflow_config reader (see fuzz_inputs.h and tools/fuzz.sh).
#include "fuzz/fuzz_inputs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  pfq::fuzz::workflow_config(data, size);
  return 0;
}
