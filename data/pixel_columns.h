// pixel_columns.h — 16 rows of an 8-bit interleaved image turned into columns of floats, the
// layout the 8-bit resize's horizontal pass works on (data/transforms.cpp, resize_window_u8), and
// its output columns turned back into rows.
#pragma once
#include <cstdint>

namespace pfq::data {

// For every column j = 3 * x + c (x < w, c < 3) of the 16 rows rows[0..15] (each 3 * w bytes, RGB
// interleaved): cols[(c * w + x) * 16 + r] = rows[r][j] / 255.0f, the bits to_float() stores. With
// AVX-512 sixteen columns at a time (16 x 16 transposes in registers), else one value at a time.
void pixel_columns_16(const uint8_t* const rows[16], int64_t w, float* cols);

// The one-value-at-a-time version: the reference of the tests, and the tail of the vector one.
void pixel_columns_16_scalar(const uint8_t* const rows[16], int64_t w, int64_t first_column, float* cols);

// The way back: rows[r * row_stride + i] = cols[i * 16 + r] for the first `nrows` (<= 16) rows and
// every column i < n. With AVX-512 sixteen columns at a time, else one value at a time.
void rows_of_columns_16(const float* cols, int64_t n, int64_t nrows, float* rows, int64_t row_stride);

// The one-value-at-a-time version, from column first_column on.
void rows_of_columns_16_scalar(const float* cols, int64_t n, int64_t first_column, int64_t nrows, float* rows,
                               int64_t row_stride);

}  // namespace pfq::data
