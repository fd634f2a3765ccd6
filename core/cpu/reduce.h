// reduce.h — CPU kernels over the rows of a contiguous [rows, cols] buffer (no autograd): row
// sums, row extremes and their scatter (reduce.cpp), log-softmax and the fused softmax
// cross-entropy (loss.cpp). core/ops/reduce.cpp and core/ops/loss.cpp permute the reduced axes
// last and reach these through core/cpu/kernels.h. Sums accumulate in double in a fixed order,
// so results do not depend on the thread count.
#pragma once
#include <cstdint>

namespace pfq::cpu {

// po[o] = sum of row o of px [outer, inner] (one row: fixed 4096-element chunks summed in order).
template <typename T> void sum_rows(const T* px, T* po, int64_t outer, int64_t inner);
// Index of the first maximum (is_max) or minimum of each row of px [outer, inner] (inner > 0)
// into pi [outer], and the value into pv [outer] unless pv is null; a NaN is never chosen over
// an earlier element.
template <typename T> void extreme_rows(const T* px, int64_t outer, int64_t inner, bool is_max, T* pv, int64_t* pi);
// pf[o * inner + pi[o]] = pg[o] for each row o; pf [outer * inner] pre-zeroed.
template <typename T> void scatter_rows(const T* pg, const int64_t* pi, T* pf, int64_t outer, int64_t inner);

// out[r] = x[r] - max - log(sum exp(x[r] - max)) for each row r of x [R, K] (sum in double).
template <typename T> void log_softmax_rows(const T* x, T* out, int64_t R, int64_t K);
// logp [N, K] = log_softmax(x [N, K]) and *loss = mean_i (-(1 - s) logp[i, t_i] - s/K sum_k
// logp[i, k]) for targets t [N] in [0, K) (checked by the caller).
template <typename T> void cross_entropy_forward(const T* x, const int64_t* t, int64_t N, int64_t K, double smoothing, T* logp, T* loss);
// dx [N, K] = scale * (exp(logp) - ((k == t_i) (1 - s) + s / K)), scale = upstream gradient / N.
template <typename T>
void cross_entropy_backward(const T* logp, const int64_t* t, int64_t N, int64_t K, double smoothing, double scale, T* dx);

}  // namespace pfq::cpu
