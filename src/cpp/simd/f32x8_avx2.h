// f32x8: thin AVX2+FMA helpers over 8 floats, for *_avx2.cpp files only (anonymous namespace: nothing leaks
// into baseline code).
#pragma once
#include <immintrin.h>

namespace ez {
namespace {

struct f32x8 {
  using reg = __m256;
  static constexpr int width = 8;
  // Register blocking: 12 of the 16 ymm registers hold the outer-product tile, 9 the dot tile (12 would spill).
  static constexpr int tile_rows = 6, tile_vecs = 2;
  static constexpr int dot_rows = 3, dot_cols = 3;

  static reg zero() { return _mm256_setzero_ps(); }
  static reg set1(float x) { return _mm256_set1_ps(x); }
  static reg load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, reg v) { _mm256_storeu_ps(p, v); }
  static __m256i mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  // First n lanes (1 <= n <= width), the others zero; masked lanes are never read or written.
  static reg load_n(const float* p, int n) { return _mm256_maskload_ps(p, mask(n)); }
  static void store_n(float* p, reg v, int n) { _mm256_maskstore_ps(p, mask(n), v); }
  static reg fmadd(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
  static constexpr bool lane_fma = false;  // broadcasts come straight from memory (vbroadcastss / {1toN})
  static reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
  static float reduce_add(reg v) {
    const __m128 q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 d = _mm_add_ps(q, _mm_movehl_ps(q, q));
    return _mm_cvtss_f32(_mm_add_ss(d, _mm_movehdup_ps(d)));
  }
};

}  // namespace
}  // namespace ez
