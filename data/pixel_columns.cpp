// pixel_columns.cpp — see pixel_columns.h.
#include "data/pixel_columns.h"

#if defined(__AVX512F__)
// GCC 12's AVX-512 headers start many intrinsics from _mm512_undefined_*(), which
// -Wmaybe-uninitialized / -Wuninitialized report at every use (GCC bug 105593, fixed in GCC 13):
// not a bug here.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>
#endif

namespace pfq::data {

void pixel_columns_16_scalar(const uint8_t* const rows[16], int64_t w, int64_t first_column, float* cols) {
  for (int64_t j = first_column; j < 3 * w; ++j) {
    float* d = cols + ((j % 3) * w + j / 3) * 16;
    for (int r = 0; r < 16; ++r) d[r] = static_cast<float>(rows[r][j]) / 255.0f;
  }
}

void rows_of_columns_16_scalar(const float* cols, int64_t n, int64_t first_column, int64_t nrows, float* rows,
                               int64_t row_stride) {
  for (int64_t r = 0; r < nrows; ++r)
    for (int64_t i = first_column; i < n; ++i) rows[r * row_stride + i] = cols[i * 16 + r];
}

#if defined(__AVX512F__)
namespace {

// v[i] (row i, 16 columns) becomes column i of the 16 rows. After the 32- and 64-bit interleaves
// the 128-bit lane L of v[4 * i + k] holds rows 4i..4i+3 of column 4L + k; two lane shuffles then
// gather each column's four lanes.
[[gnu::always_inline]] inline void transpose_16x16(__m512 v[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]);
  }
  const auto lo64 = [](__m512 a, __m512 b) {
    return _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(a), _mm512_castps_pd(b)));
  };
  const auto hi64 = [](__m512 a, __m512 b) {
    return _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(a), _mm512_castps_pd(b)));
  };
  for (int i = 0; i < 4; ++i) {
    v[4 * i] = lo64(t[4 * i], t[4 * i + 2]);
    v[4 * i + 1] = hi64(t[4 * i], t[4 * i + 2]);
    v[4 * i + 2] = lo64(t[4 * i + 1], t[4 * i + 3]);
    v[4 * i + 3] = hi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int k = 0; k < 4; ++k) {
    // lanes 0-1 / 2-3 of rows 0-3 and 4-7 (s), of rows 8-11 and 12-15 (q)
    const __m512 s_lo = _mm512_shuffle_f32x4(v[k], v[4 + k], _MM_SHUFFLE(1, 0, 1, 0));
    const __m512 s_hi = _mm512_shuffle_f32x4(v[k], v[4 + k], _MM_SHUFFLE(3, 2, 3, 2));
    const __m512 q_lo = _mm512_shuffle_f32x4(v[8 + k], v[12 + k], _MM_SHUFFLE(1, 0, 1, 0));
    const __m512 q_hi = _mm512_shuffle_f32x4(v[8 + k], v[12 + k], _MM_SHUFFLE(3, 2, 3, 2));
    t[k] = _mm512_shuffle_f32x4(s_lo, q_lo, _MM_SHUFFLE(2, 0, 2, 0));       // column k
    t[4 + k] = _mm512_shuffle_f32x4(s_lo, q_lo, _MM_SHUFFLE(3, 1, 3, 1));   // column 4 + k
    t[8 + k] = _mm512_shuffle_f32x4(s_hi, q_hi, _MM_SHUFFLE(2, 0, 2, 0));   // column 8 + k
    t[12 + k] = _mm512_shuffle_f32x4(s_hi, q_hi, _MM_SHUFFLE(3, 1, 3, 1));  // column 12 + k
  }
  for (int i = 0; i < 16; ++i) v[i] = t[i];
}

}  // namespace

void pixel_columns_16(const uint8_t* const rows[16], int64_t w, float* cols) {
  const int64_t n = 3 * w;
  const __m512 k255 = _mm512_set1_ps(255.0f);
  int64_t j0 = 0;
  for (; j0 + 16 <= n; j0 += 16) {
    __m512 v[16];
    for (int r = 0; r < 16; ++r) {
      const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[r] + j0));
      // exact integers, then the correctly rounded division: the scalar version's bits
      v[r] = _mm512_div_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(bytes)), k255);
    }
    transpose_16x16(v);
    for (int64_t j = 0; j < 16; ++j) {
      const int64_t col = j0 + j;
      _mm512_storeu_ps(cols + ((col % 3) * w + col / 3) * 16, v[j]);
    }
  }
  pixel_columns_16_scalar(rows, w, j0, cols);
}
void rows_of_columns_16(const float* cols, int64_t n, int64_t nrows, float* rows, int64_t row_stride) {
  int64_t i0 = 0;
  for (; i0 + 16 <= n; i0 += 16) {
    __m512 v[16];
    for (int i = 0; i < 16; ++i) v[i] = _mm512_loadu_ps(cols + (i0 + i) * 16);
    transpose_16x16(v);
    for (int64_t r = 0; r < nrows; ++r) _mm512_storeu_ps(rows + r * row_stride + i0, v[r]);
  }
  rows_of_columns_16_scalar(cols, n, i0, nrows, rows, row_stride);
}
#else
void pixel_columns_16(const uint8_t* const rows[16], int64_t w, float* cols) { pixel_columns_16_scalar(rows, w, 0, cols); }
void rows_of_columns_16(const float* cols, int64_t n, int64_t nrows, float* rows, int64_t row_stride) {
  rows_of_columns_16_scalar(cols, n, 0, nrows, rows, row_stride);
}
#endif

}  // namespace pfq::data
