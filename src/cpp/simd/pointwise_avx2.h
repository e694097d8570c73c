// pw_f32x8: AVX2 helpers for the pointwise, pooling and axpy kernels: comparisons and selections that follow the
// reference's rules bit for bit (ties, signed zeros, NaN), and the even/odd split of 2-wide pooling windows.
// For *_avx2.cpp files only (anonymous namespace: nothing leaks into baseline code).
#pragma once
#include <immintrin.h>

namespace ez {
namespace {

struct pw_f32x8 {
  using reg = __m256;
  using mask = __m256;  // all-ones lanes
  static constexpr int width = 8;
  static reg set1(float x) { return _mm256_set1_ps(x); }
  static reg load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, reg v) { _mm256_storeu_ps(p, v); }
  static reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
  static reg mul(reg a, reg b) { return _mm256_mul_ps(a, b); }
  // v where a > 0, else +0 (also for NaN a): the reference's `a > 0 ? v : 0`.
  static reg keep_if_positive(reg a, reg v) {
    return _mm256_and_ps(_mm256_cmp_ps(a, _mm256_setzero_ps(), _CMP_GT_OQ), v);
  }
  // v > m ? v : m. maxps returns its second operand unless the first is greater, which is exactly that rule,
  // for NaNs and for +0 / -0 as well.
  static reg take_greater(reg v, reg m) { return _mm256_max_ps(v, m); }
  static mask equal(reg a, reg b) { return _mm256_cmp_ps(a, b, _CMP_EQ_OQ); }
  static mask none() { return _mm256_setzero_ps(); }
  static mask either(mask a, mask b) { return _mm256_or_ps(a, b); }
  static mask but_not(mask a, mask b) { return _mm256_andnot_ps(b, a); }  // a and not b
  static reg select(mask m, reg v) { return _mm256_and_ps(m, v); }       // v where m, else +0
  // p[0 .. 2 width) -> even = p[0], p[2], ...; odd = p[1], p[3], ...
  static void load_pairs(const float* p, reg& even, reg& odd) { split_pairs(load(p), load(p + 8), even, odd); }
  // The first n (1 <= n <= width) pairs of p, as load_pairs, and the first n lanes of v: masked loads and stores
  // touch nothing past them, so rows narrower than a vector (LeNet-5's pooled 7) stay vectorized.
  static void load_pairs_n(const float* p, int n, reg& even, reg& odd) {
    const int lo = n < 4 ? 2 * n : 8;
    split_pairs(_mm256_maskload_ps(p, first_lanes(lo)), _mm256_maskload_ps(p + 8, first_lanes(2 * n - lo)), even,
                odd);
  }
  static void store_n(float* p, reg v, int n) { _mm256_maskstore_ps(p, first_lanes(n), v); }
  static __m256i first_lanes(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  // a, b = p[0 .. 16) -> even = p[0], p[2], ...; odd = p[1], p[3], ...
  static void split_pairs(reg a, reg b, reg& even, reg& odd) {
    // The shuffles work inside 128-bit halves: 64-bit chunks come out as (a lo, b lo, a hi, b hi); swap the middle.
    even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0))),
                                                  _MM_SHUFFLE(3, 1, 2, 0)));
    odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1))),
                                                 _MM_SHUFFLE(3, 1, 2, 0)));
  }
  static void store_pairs(float* p, reg even, reg odd) {
    const reg lo = _mm256_unpacklo_ps(even, odd), hi = _mm256_unpackhi_ps(even, odd);
    store(p, _mm256_permute2f128_ps(lo, hi, 0x20));
    store(p + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
  }
};

}  // namespace
}  // namespace ez
