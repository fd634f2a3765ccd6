// test_cuda_ops.cpp — every row of the op-case table (tests/op_cases.cpp) on CUDA against the
// CPU: forward values and the gradients of every input for a fixed random output weighting,
// in float64 (tight: only summation order differs) and float32 (against the float64 CPU
// result, with float32 tolerances). Skips with a MESSAGE without a GPU.
#include <doctest/doctest.h>

#include <exception>
#include <string>
#include <vector>

#include "tests/cuda/cuda_test_util.h"
#include "tests/gradcheck.h"
#include "tests/op_cases.h"

using namespace pfq;
using namespace pfq::test;

namespace {

struct Run {
  Tensor y;
  std::vector<Tensor> grads;  // undefined where the op gave none
};

// Applies `c` to copies of `inputs` with dtype dt on dev and backpropagates `weight` (y's shape).
Run run_case(const OpCase& c, const std::vector<Tensor>& inputs, const Tensor& weight, DType dt, Device dev) {
  std::vector<Tensor> xs;
  for (const Tensor& t : inputs) xs.push_back(leaf_on(t, dt, dev));
  Run r;
  r.y = c.f(xs);
  if (weight.defined() && r.y.requires_grad()) r.y.backward(weight.to(dt).to(dev));
  for (const Tensor& x : xs) r.grads.push_back(x.grad());
  return r;
}

// Compares one precision's CUDA run with the CPU float64 reference; tolerances scale with the
// magnitude of the reference values.
void check_run(const char* what, const OpCase& c, const Run& cpu, const Run& gpu, double atol, double rtol) {
  INFO("op case: ", std::string(c.name), " (", what, ")");
  CHECK(gpu.y.device().is_cuda());
  Closeness f = compare(gpu.y, cpu.y, atol * magnitude(cpu.y), rtol);
  INFO("forward:\n", f.report);
  CHECK(f.ok);
  REQUIRE(gpu.grads.size() == cpu.grads.size());
  for (size_t i = 0; i < cpu.grads.size(); ++i) {
    CAPTURE(i);
    CHECK(gpu.grads[i].defined() == cpu.grads[i].defined());
    if (!cpu.grads[i].defined() || !gpu.grads[i].defined()) continue;
    CHECK(gpu.grads[i].device().is_cuda());
    Closeness g = compare(gpu.grads[i], cpu.grads[i], atol * magnitude(cpu.grads[i]), rtol);
    INFO("gradient of input ", i, ":\n", g.report);
    CHECK(g.ok);
  }
}

}  // namespace

TEST_CASE("cuda: every op of the op-case table matches the CPU (forward and gradients, float64 and float32)") {
  if (skip_without_gpu()) return;
  uint64_t seed = 100;  // the gradcheck suite's inputs
  int failures = 0;
  for (const auto& c : op_cases()) {
    std::vector<Tensor> inputs;
    for (const auto& s : c.shapes) inputs.push_back(rand64(s, seed++, c.lo, c.hi, false));
    try {
      const Run ref = [&] {
        Run r0 = run_case(c, inputs, Tensor(), DType::Float64, Device::cpu());  // for y's shape
        return run_case(c, inputs, rand64(r0.y.shape(), 7, -1, 1, false), DType::Float64, Device::cpu());
      }();
      const Tensor weight = rand64(ref.y.shape(), 7, -1, 1, false);
      check_run("float64", c, ref, run_case(c, inputs, weight, DType::Float64, gpu()), 1e-11, 1e-9);
      check_run("float32", c, ref, run_case(c, inputs, weight, DType::Float32, gpu()), 2e-5, 1e-4);
    } catch (const std::exception& e) {
      ++failures;
      FAIL_CHECK("op case '" << std::string(c.name) << "' threw on CUDA: " << std::string(e.what()));
    }
  }
  CHECK(failures == 0);
}
