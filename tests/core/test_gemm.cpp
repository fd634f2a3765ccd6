// test_gemm.cpp — pfq::cpu::gemm (float: oneDNN's sgemm or Eigen by shape; double: Eigen)
// against a naive triple loop: all four transpose combinations, odd sizes, strided leading
// dimensions, alpha/beta semantics (beta == 0 overwrites a NaN-filled C), K == 0, empty
// products, and calls from inside an OpenMP parallel region (one product per thread, as the
// im2col convolutions run them).
#include <doctest/doctest.h>
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "core/cpu/gemm.h"

namespace {

struct Case {
  bool ta, tb;
  int64_t M, N, K;
  int64_t pad_a, pad_b, pad_c;  // extra elements per row beyond the stored row length
  double alpha, beta;
};

template <typename T>
struct Problem {
  Case c;
  int64_t lda, ldb, ldc;
  std::vector<T> A, B, C0;

  Problem(const Case& cs, uint32_t seed) : c(cs) {
    lda = (c.ta ? c.M : c.K) + c.pad_a;
    ldb = (c.tb ? c.K : c.N) + c.pad_b;
    ldc = c.N + c.pad_c;
    std::mt19937 g(seed);
    std::uniform_real_distribution<double> u(-1, 1);
    A.resize(static_cast<size_t>((c.ta ? c.K : c.M) * lda));
    B.resize(static_cast<size_t>((c.tb ? c.N : c.K) * ldb));
    C0.resize(static_cast<size_t>(c.M * ldc));
    for (auto& v : A) v = static_cast<T>(u(g));
    for (auto& v : B) v = static_cast<T>(u(g));
    // beta == 0 must not read C: fill it with NaN so that any leak shows.
    for (auto& v : C0) v = c.beta == 0 ? std::numeric_limits<T>::quiet_NaN() : static_cast<T>(u(g));
  }

  std::vector<T> run() const {
    std::vector<T> C;
    run_into(C);
    return C;
  }
  // C = C0, then the product into C (same buffer each time: results may depend on alignment).
  void run_into(std::vector<T>& C) const {
    C.assign(C0.begin(), C0.end());
    pfq::cpu::gemm<T>(c.ta, c.tb, c.M, c.N, c.K, static_cast<T>(c.alpha), A.data(), lda, B.data(), ldb, static_cast<T>(c.beta),
                      C.data(), ldc);
  }

  // Number of elements of C (including the padding after each row, which must stay as it
  // was) that are off the double-precision triple loop by more than a rounding bound.
  int64_t mismatches(const std::vector<T>& C) const {
    const double eps = std::numeric_limits<T>::epsilon();
    int64_t bad = 0;
    for (int64_t i = 0; i < c.M; ++i) {
      for (int64_t j = 0; j < c.N; ++j) {
        double s = 0, mag = 0;
        for (int64_t k = 0; k < c.K; ++k) {
          const double a = c.ta ? A[k * lda + i] : A[i * lda + k];
          const double b = c.tb ? B[j * ldb + k] : B[k * ldb + j];
          s += a * b;
          mag += std::abs(a * b);
        }
        const double c0 = C0[i * ldc + j];
        const double want = c.alpha * s + (c.beta == 0 ? 0.0 : c.beta * c0);
        const double bound = 4 * eps * (c.K + 2) * (std::abs(c.alpha) * mag + std::abs(c.beta == 0 ? 0.0 : c.beta * c0)) + 1e-30;
        const double got = C[i * ldc + j];
        if (!(std::abs(got - want) <= bound)) ++bad;
      }
      for (int64_t j = c.N; j < ldc; ++j)
        if (std::memcmp(&C[i * ldc + j], &C0[i * ldc + j], sizeof(T)) != 0) ++bad;
    }
    return bad;
  }
};

// Shapes on both sides of the oneDNN/Eigen switch of gemm.cpp (A*B^T with long K and a small
// output stays on Eigen; the pointwise-convolution shapes go to oneDNN), vectors, odd sizes.
std::vector<Case> cases() {
  const int64_t sizes[][3] = {{1, 1, 1},   {1, 7, 5},    {7, 1, 5},     {5, 6, 1},    {3, 5, 2},   {17, 33, 9},
                              {37, 53, 29}, {64, 70, 65}, {24, 96, 520}, {100, 130, 300}, {31, 200, 17}};
  std::vector<Case> out;
  int i = 0;
  for (const auto& s : sizes)
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb)
        for (const auto& [alpha, beta] : {std::pair{1.0, 0.0}, std::pair{1.0, 1.0}, std::pair{-0.75, 0.5}, std::pair{2.5, 0.0}}) {
          // contiguous and strided leading dimensions alternate
          const bool strided = (i++ % 2) == 1;
          out.push_back({ta == 1, tb == 1, s[0], s[1], s[2], strided ? 3 : 0, strided ? 5 : 0, strided ? 7 : 0, alpha, beta});
        }
  return out;
}

std::string describe(const Case& c) {
  return std::string(c.ta ? "T" : "N") + (c.tb ? "T" : "N") + " M=" + std::to_string(c.M) + " N=" + std::to_string(c.N) +
         " K=" + std::to_string(c.K) + " pads " + std::to_string(c.pad_a) + "/" + std::to_string(c.pad_b) + "/" +
         std::to_string(c.pad_c) + " alpha=" + std::to_string(c.alpha) + " beta=" + std::to_string(c.beta);
}

template <typename T>
void check_all() {
  uint32_t seed = 1;
  for (const Case& c : cases()) {
    CAPTURE(describe(c));
    Problem<T> p(c, seed++);
    std::vector<T> C;
    p.run_into(C);
    CHECK(p.mismatches(C) == 0);
    // the same call on the same buffers gives the same bits (fixed thread count)
    const std::vector<T> first = C;
    p.run_into(C);
    CHECK(std::memcmp(C.data(), first.data(), C.size() * sizeof(T)) == 0);
  }
}

}  // namespace

TEST_CASE("gemm<float> against a naive triple loop: transposes, strides, alpha/beta, NaN in C with beta 0") {
  check_all<float>();
}

TEST_CASE("gemm<double> against a naive triple loop") { check_all<double>(); }

TEST_CASE("gemm: K == 0 scales C by beta (beta 0 clears NaN), empty products touch nothing") {
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      const float nan = std::numeric_limits<float>::quiet_NaN();
      std::vector<float> A(4, 1.0f), B(4, 1.0f);
      std::vector<float> C(3 * 6, nan);  // M 3, N 4, ldc 6
      pfq::cpu::gemm<float>(ta, tb, 3, 4, 0, 1.0f, A.data(), 4, B.data(), 4, 0.0f, C.data(), 6);
      for (int64_t i = 0; i < 3; ++i)
        for (int64_t j = 0; j < 6; ++j) {
          if (j < 4) CHECK(C[i * 6 + j] == 0.0f);
          else CHECK(std::isnan(C[i * 6 + j]));
        }
      std::vector<float> D(3 * 4, 2.0f);
      pfq::cpu::gemm<float>(ta, tb, 3, 4, 0, 1.0f, A.data(), 4, B.data(), 4, 0.5f, D.data(), 4);
      CHECK(D == std::vector<float>(12, 1.0f));
      std::vector<double> E(3 * 4, 2.0);
      pfq::cpu::gemm<double>(ta, tb, 3, 4, 0, 1.0, nullptr, 4, nullptr, 4, 1.0, E.data(), 4);
      CHECK(E == std::vector<double>(12, 2.0));
      // M == 0 or N == 0: nothing to do, C (here NaN) is left alone
      std::vector<float> F(4, nan);
      pfq::cpu::gemm<float>(ta, tb, 0, 4, 3, 1.0f, A.data(), 4, B.data(), 4, 0.0f, F.data(), 4);
      pfq::cpu::gemm<float>(ta, tb, 1, 0, 3, 1.0f, A.data(), 4, B.data(), 4, 0.0f, F.data(), 4);
      for (float v : F) CHECK(std::isnan(v));
    }
}

TEST_CASE("gemm<float> inside an OpenMP parallel region: one product per thread, as the convolutions run it") {
  // The pointwise-convolution shapes (forward A*B, input gradient A^T*B, weight gradient A*B^T
  // accumulating with beta 1) and odd ones, each thread on its own data.
  const std::vector<Case> shapes{{false, false, 64, 1024, 32, 0, 0, 0, 1.0, 0.0},  {true, false, 24, 1024, 144, 0, 0, 0, 1.0, 0.0},
                                 {false, true, 128, 128, 512, 0, 0, 0, 1.0, 1.0}, {false, true, 24, 96, 512, 0, 0, 0, 1.0, 1.0},
                                 {true, true, 19, 23, 31, 2, 3, 4, -1.5, 0.0},    {false, false, 37, 53, 29, 3, 5, 7, 0.5, 0.0}};
  const int threads = 2;
  for (const Case& c : shapes) {
    CAPTURE(describe(c));
    std::vector<Problem<float>> probs;
    for (int t = 0; t < threads; ++t) probs.emplace_back(c, 100 + t);
    std::vector<std::vector<float>> par(threads);
    int in_parallel[2] = {0, 0};
#pragma omp parallel num_threads(threads)
    {
      const int t = omp_get_thread_num();
      in_parallel[t] = omp_in_parallel();
      // a few repetitions so that the two threads overlap
      for (int r = 0; r < 3; ++r) probs[t].run_into(par[t]);
    }
    for (int t = 0; t < threads; ++t) {
      CAPTURE(t);
      if (omp_get_max_threads() >= 2) CHECK(in_parallel[t] == 1);
      CHECK(probs[t].mismatches(par[t]) == 0);
    }
  }
}
