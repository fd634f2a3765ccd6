// test_errors.cpp — argument errors name the op, the offending shapes/dtypes/devices, and the
// repository-relative source file.
#include <doctest/doctest.h>

#include "core/error.h"
#include "core/ops.h"

using namespace pfq;

TEST_CASE("errors: shape, dtype and argument mismatches are clear") {
  Tensor f = Tensor::zeros({2, 3});
  CHECK_THROWS_WITH_AS(add(f, Tensor::zeros({2, 3}, DType::Float64)), doctest::Contains("add: dtype mismatch: float32[2, 3] cpu and float64[2, 3] cpu"), Error);
  CHECK_THROWS_WITH_AS(matmul(f, Tensor::zeros({2, 3})), doctest::Contains("matmul: inner dimensions differ: [2, 3] @ [2, 3]"), Error);
  CHECK_THROWS_WITH_AS(reshape(f, {4, -1}), doctest::Contains("cannot infer -1"), Error);
  CHECK_THROWS_WITH_AS(reshape(f, {5}), doctest::Contains("does not hold the 6 elements"), Error);
  CHECK_THROWS_WITH_AS(sum(f, {2}), doctest::Contains("axis 2 out of range"), Error);
  CHECK_THROWS_WITH_AS(permute(f, {0, 0}), doctest::Contains("repeated"), Error);
  CHECK_THROWS_WITH_AS(concat({f, Tensor::zeros({3, 3})}, 1), doctest::Contains("differ in dimension 0"), Error);
  CHECK_THROWS_WITH_AS(batch_norm(Tensor::zeros({2, 3, 2, 2}), Tensor::ones({4}), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5),
                       doctest::Contains("for 3 channels"), Error);
  CHECK_THROWS_WITH_AS(batch_norm(Tensor::zeros({2, 3}), Tensor(), Tensor(), Tensor(), Tensor(), false, 0.1, 1e-5),
                       doctest::Contains("eval mode needs running_mean"), Error);
  CHECK_THROWS_WITH_AS(f.item(), doctest::Contains("expected exactly one element"), Error);
  CHECK_THROWS_WITH_AS(Tensor().shape(), doctest::Contains("undefined tensor"), Error);
  CHECK_THROWS_WITH_AS(f.data<double>(), doctest::Contains("data<float64>() on a float32 tensor"), Error);
  CHECK_THROWS_WITH_AS(max_pool2d(Tensor::zeros({1, 1, 2, 2}), {3, 3}, {1, 1}), doctest::Contains("smaller than the kernel"), Error);
  // errors carry the source location
  try {
    add(f, Tensor::zeros({4}));
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("elementwise.cpp:") != std::string::npos);
  }
}

TEST_CASE("errors: the location is the repository-relative file, never the build machine's path") {
  // libpfq is a unity build (its __FILE__ is "<build>/../core/ops/...") and its apps and tests
  // are not ("../apps/..."): both must come out as the path from the repository root.
  std::string what;
  try {
    matmul(Tensor::zeros({2, 3}), Tensor::zeros({2, 3}));
  } catch (const Error& e) {
    what = e.what();
  }
  INFO(what);
  CHECK(what.find(" [core/") != std::string::npos);
  CHECK(what.find(PFQ_SOURCE_ROOT) == std::string::npos);
  CHECK(what.find("..") == std::string::npos);
  what.clear();
  try {
    PFQ_FAIL("from a test file");  // tests/ is compiled from the build folder, not as a unity
  } catch (const Error& e) {
    what = e.what();
  }
  CHECK(what.find("from a test file [tests/core/test_errors.cpp:") == 0);
}
