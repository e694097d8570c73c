// f32x16: thin AVX-512 helpers over 16 floats, for *_avx512.cpp files only (the header sits in their anonymous
// namespace, so these inline functions never reach baseline code).
#pragma once
// GCC 12 reports the _mm512_undefined_* inside its own intrinsics as uninitialized once the loop that inlines them
// becomes a thread pool task (a false positive): silence it for this AVX-512 file, before the intrinsics are read.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

namespace ez {
namespace {

struct f32x16 {
  using reg = __m512;
  static constexpr int width = 16;
  // Register blocking of the outer-product tile (rows x vectors accumulators) and of the dot tile: 24 of the 32
  // zmm registers hold accumulators, the rest the operands of one step.
  static constexpr int tile_rows = 6, tile_vecs = 4;
  static constexpr int dot_rows = 4, dot_cols = 6;

  static reg zero() { return _mm512_setzero_ps(); }
  static reg set1(float x) { return _mm512_set1_ps(x); }
  static reg load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, reg v) { _mm512_storeu_ps(p, v); }
  static __mmask16 mask(int n) { return static_cast<__mmask16>((1u << n) - 1u); }
  // First n lanes (1 <= n <= width), the others zero; memory past them is never touched.
  static reg load_n(const float* p, int n) { return _mm512_maskz_loadu_ps(mask(n), p); }
  static void store_n(float* p, reg v, int n) { _mm512_mask_storeu_ps(p, mask(n), v); }
  static reg fmadd(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  static constexpr bool lane_fma = false;  // broadcasts come straight from memory (vbroadcastss / {1toN})
  static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  // r[i] lane j -> r[j] lane i: 32-bit and 64-bit unpacks within 128-bit lanes, then a 4 x 4 transpose of the
  // 128-bit lanes (64 shuffles).
  static void transpose(reg (&r)[16]) {
    reg t[16];
    for (int k = 0; k < 8; ++k) {
      t[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
      t[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
    }
    for (int m = 0; m < 4; ++m) {  // r[4m + j] lane L: element 4L + j of rows 4m .. 4m + 3
      const __m512d a = _mm512_castps_pd(t[4 * m]), b = _mm512_castps_pd(t[4 * m + 1]);
      const __m512d c = _mm512_castps_pd(t[4 * m + 2]), d = _mm512_castps_pd(t[4 * m + 3]);
      r[4 * m] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
      r[4 * m + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
      r[4 * m + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
      r[4 * m + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    for (int j = 0; j < 4; ++j) {
      const reg x0 = _mm512_shuffle_f32x4(r[j], r[4 + j], _MM_SHUFFLE(2, 0, 2, 0));
      const reg x1 = _mm512_shuffle_f32x4(r[j], r[4 + j], _MM_SHUFFLE(3, 1, 3, 1));
      const reg x2 = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], _MM_SHUFFLE(2, 0, 2, 0));
      const reg x3 = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], _MM_SHUFFLE(3, 1, 3, 1));
      t[j] = _mm512_shuffle_f32x4(x0, x2, _MM_SHUFFLE(2, 0, 2, 0));
      t[4 + j] = _mm512_shuffle_f32x4(x1, x3, _MM_SHUFFLE(2, 0, 2, 0));
      t[8 + j] = _mm512_shuffle_f32x4(x0, x2, _MM_SHUFFLE(3, 1, 3, 1));
      t[12 + j] = _mm512_shuffle_f32x4(x1, x3, _MM_SHUFFLE(3, 1, 3, 1));
    }
    for (int i = 0; i < 16; ++i) r[i] = t[i];
  }
  // Fixed pairwise tree, so the result never depends on anything but the lanes.
  static float reduce_add(reg v) {
    const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    const __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    const __m128 d = _mm_add_ps(q, _mm_movehl_ps(q, q));
    return _mm_cvtss_f32(_mm_add_ss(d, _mm_movehdup_ps(d)));
  }
};

}  // namespace
}  // namespace ez
