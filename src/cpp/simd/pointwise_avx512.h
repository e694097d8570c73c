// pw_f32x16: AVX-512 helpers for the pointwise, pooling and axpy kernels: comparisons and selections that follow
// the reference's rules bit for bit (ties, signed zeros, NaN), and the even/odd split of 2-wide pooling windows.
// For *_avx512.cpp files only (anonymous namespace: nothing leaks into baseline code).
#pragma once
// GCC 12 reports the _mm512_undefined_* inside its own intrinsics as uninitialized once the loop that inlines them
// becomes a thread pool task (a false positive): silence it for this AVX-512 file, before the intrinsics are read.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

namespace ez {
namespace {

struct pw_f32x16 {
  using reg = __m512;
  using mask = __mmask16;
  static constexpr int width = 16;
  static reg set1(float x) { return _mm512_set1_ps(x); }
  static reg load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, reg v) { _mm512_storeu_ps(p, v); }
  static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  static reg mul(reg a, reg b) { return _mm512_mul_ps(a, b); }
  // v where a > 0, else +0 (also for NaN a): the reference's `a > 0 ? v : 0`.
  static reg keep_if_positive(reg a, reg v) {
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(a, _mm512_setzero_ps(), _CMP_GT_OQ), v);
  }
  // v > m ? v : m. vmaxps returns its second operand unless the first is greater, which is exactly that rule,
  // for NaNs and for +0 / -0 as well.
  static reg take_greater(reg v, reg m) { return _mm512_max_ps(v, m); }
  static mask equal(reg a, reg b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }
  static mask none() { return 0; }
  static mask either(mask a, mask b) { return static_cast<mask>(a | b); }
  static mask but_not(mask a, mask b) { return static_cast<mask>(a & ~b); }
  static reg select(mask m, reg v) { return _mm512_maskz_mov_ps(m, v); }  // v where m, else +0
  // p[0 .. 2 width) -> even = p[0], p[2], ...; odd = p[1], p[3], ...
  static void load_pairs(const float* p, reg& even, reg& odd) { split_pairs(load(p), load(p + 16), even, odd); }
  // The first n (1 <= n <= width) pairs of p, as load_pairs; nothing past p[2n) is read. With store_n, the
  // pooling of rows narrower than a vector (LeNet-5's 14 and 7) stays vectorized.
  static void load_pairs_n(const float* p, int n, reg& even, reg& odd) {
    const int lo = n < 8 ? 2 * n : 16;
    split_pairs(_mm512_maskz_loadu_ps(first_lanes(lo), p), _mm512_maskz_loadu_ps(first_lanes(2 * n - lo), p + 16),
                even, odd);
  }
  static void store_n(float* p, reg v, int n) { _mm512_mask_storeu_ps(p, first_lanes(n), v); }
  static __mmask16 first_lanes(int n) { return static_cast<__mmask16>((1u << n) - 1u); }
  // a, b = p[0 .. 32) -> even = p[0], p[2], ...; odd = p[1], p[3], ...
  static void split_pairs(reg a, reg b, reg& even, reg& odd) {
    even = _mm512_permutex2var_ps(a, _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30), b);
    odd = _mm512_permutex2var_ps(a, _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31), b);
  }
  static void store_pairs(float* p, reg even, reg odd) {
    store(p, _mm512_permutex2var_ps(even, _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23),
                                    odd));
    store(p + 16, _mm512_permutex2var_ps(
                      even, _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31), odd));
  }
};

}  // namespace
}  // namespace ez
