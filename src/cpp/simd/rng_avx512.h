// AVX-512 lanes (16 x u32, 16 x f32) for the Philox and Box-Muller of rng/gaussian.h. Include only from
// *_avx512.cpp.
#pragma once
// GCC 12 reports the _mm512_undefined_* inside its own intrinsics as uninitialized once the loop that inlines them
// becomes a thread pool task (a false positive): silence it for this AVX-512 file, before the intrinsics are read.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstdint>

namespace ez {
namespace {

struct RngOpsAvx512 {
  using U = __m512i;
  using F = __m512;
  static constexpr std::uint32_t kBlocks = 16;
  static U splat_u(std::uint32_t v) { return _mm512_set1_epi32(static_cast<int>(v)); }
  static F splat_f(float v) { return _mm512_set1_ps(v); }
  static U iota() { return _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15); }
  static U load_u(const std::uint32_t* p) { return _mm512_loadu_si512(p); }
  static F loadu_f(const float* p) { return _mm512_loadu_ps(p); }
  static void storeu_f(float* p, F v) { _mm512_storeu_ps(p, v); }
  static U add(U a, U b) { return _mm512_add_epi32(a, b); }
  static U sub(U a, U b) { return _mm512_sub_epi32(a, b); }
  static U band(U a, U b) { return _mm512_and_si512(a, b); }
  static U bxor(U a, U b) { return _mm512_xor_si512(a, b); }
  static U bxor3(U a, U b, U c) { return _mm512_ternarylogic_epi32(a, b, c, 0x96); }  // one instruction
  static U select(U mask, U a, U b) { return _mm512_ternarylogic_epi32(mask, a, b, 0xCA); }  // mask ? a : b, bitwise
  template <int N> static U shr(U a) { return _mm512_srli_epi32(a, N); }
  template <int N> static U shl(U a) { return _mm512_slli_epi32(a, N); }
  static F to_float(U a) { return _mm512_cvtepi32_ps(a); }
  static F as_float(U a) { return _mm512_castsi512_ps(a); }
  static U as_bits(F a) { return _mm512_castps_si512(a); }
  static F fma(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F sub(F a, F b) { return _mm512_sub_ps(a, b); }
  static F sqrt(F a) { return _mm512_sqrt_ps(a); }
  // _mm512_mul_epu32 multiplies the even lanes into 64 bits; the odd lanes reach it by swapping neighbours. The
  // swap and the two merges are three lane shuffles (a masked shuffle merges as it moves) where 64-bit shifts and
  // blends took five instructions: bench_zo, n = 97,266, 1 thread, 1.03 -> 0.95 ns per element (AMD EPYC).
  static void mulhilo(U a, std::uint32_t m, U& hi, U& lo) {
    const U mv = splat_u(m);
    const U even = _mm512_mul_epu32(a, mv);
    const U odd = _mm512_mul_epu32(_mm512_shuffle_epi32(a, _MM_PERM_CDAB), mv);
    hi = _mm512_mask_shuffle_epi32(odd, 0x5555, even, _MM_PERM_CDAB);  // even lanes: high half of their product
    lo = _mm512_mask_shuffle_epi32(even, 0xAAAA, odd, _MM_PERM_CDAB);  // odd lanes: low half of theirs
  }
  // z[k] lane b holds element 4b + k; afterwards z[q] holds elements 16q .. 16q + 15.
  static void transpose4(F (&z)[4]) {
    const F t0 = _mm512_unpacklo_ps(z[0], z[1]), t1 = _mm512_unpackhi_ps(z[0], z[1]);
    const F t2 = _mm512_unpacklo_ps(z[2], z[3]), t3 = _mm512_unpackhi_ps(z[2], z[3]);
    // Within each 128-bit lane L these hold the 4 elements of block 4L + 0, 1, 2, 3.
    const F b0 = _mm512_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    const F b1 = _mm512_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    const F b2 = _mm512_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    const F b3 = _mm512_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    const F lo01 = _mm512_shuffle_f32x4(b0, b1, _MM_SHUFFLE(1, 0, 1, 0));  // blocks 0 4 1 5
    const F lo23 = _mm512_shuffle_f32x4(b2, b3, _MM_SHUFFLE(1, 0, 1, 0));  // blocks 2 6 3 7
    const F hi01 = _mm512_shuffle_f32x4(b0, b1, _MM_SHUFFLE(3, 2, 3, 2));  // blocks 8 12 9 13
    const F hi23 = _mm512_shuffle_f32x4(b2, b3, _MM_SHUFFLE(3, 2, 3, 2));  // blocks 10 14 11 15
    z[0] = _mm512_shuffle_f32x4(lo01, lo23, _MM_SHUFFLE(2, 0, 2, 0));
    z[1] = _mm512_shuffle_f32x4(lo01, lo23, _MM_SHUFFLE(3, 1, 3, 1));
    z[2] = _mm512_shuffle_f32x4(hi01, hi23, _MM_SHUFFLE(2, 0, 2, 0));
    z[3] = _mm512_shuffle_f32x4(hi01, hi23, _MM_SHUFFLE(3, 1, 3, 1));
  }
};

}  // namespace
}  // namespace ez
