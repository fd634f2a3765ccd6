// op_cases.h — the op-case table: one row per differentiable op and option (shapes, input
// range, a lambda applying the op). Used by the gradcheck suite (float64 finite differences,
// tests/core/test_gradcheck_ops.cpp) and by the cuda suite (CUDA against CPU, forward and
// gradients, tests/cuda/test_cuda_ops.cpp): adding a row adds the op to both. Constants a row
// makes (targets, running statistics) follow the device and dtype of its first input.
#pragma once
#include <functional>
#include <vector>

#include "core/ops.h"

namespace pfq::test {

using OpFn = std::function<Tensor(const std::vector<Tensor>&)>;
struct OpCase {
  const char* name;
  std::vector<Shape> shapes;
  OpFn f;
  double lo = -1, hi = 1;  // input range (keep away from kinks: e.g. positive for log)
};

const std::vector<OpCase>& op_cases();

// Conv2dOptions with equal stride/padding/dilation in both dimensions.
Conv2dOptions copt(int64_t stride, int64_t pad, int64_t dilation, int64_t groups);

}  // namespace pfq::test
