/// \file
/// gradcheck.h — the finite-difference gradient checker (float64) every op and module of pfq is
/// tested with, public so that a new op or layer written outside the library is checked the same
/// way (examples/new_op_gradcheck.cpp). Central differences on each input element in turn: meant
/// for small tensors (two forward passes per element). Leaves out second derivatives.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "core/ops.h"

namespace pfq {

/// The outcome of gradcheck().
struct GradcheckResult {
  /// True when every element matched within the tolerances.
  bool ok = true;
  /// Largest |analytic - numeric| seen.
  double max_abs_err = 0;
  std::string report;  ///< first mismatches: input, element, analytic, numeric
};

/// Checks d(sum(w * f(inputs)))/d(inputs[i]) for every float64 input with requires_grad,
/// with a fixed random weighting w (so that a wrong gradient cannot hide behind a plain sum),
/// against central differences with step `eps`.
/// requires: every input with requires_grad is a contiguous float64 CPU tensor; f is
///   deterministic (it runs 2 * numel + 2 times).
/// ensures: ok when |analytic - numeric| <= atol + rtol * |numeric| everywhere; inputs' values
///   are restored and their .grad() holds the analytic gradient.
GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f, std::vector<Tensor> inputs,
                          double eps = 1e-6, double atol = 1e-6, double rtol = 1e-4);

/// max |a - b| over all elements (same shape; any float dtype, compared in double).
double max_abs_diff(const Tensor& a, const Tensor& b);

}  // namespace pfq
