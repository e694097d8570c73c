// AVX2 lanes (8 x u32, 8 x f32) for the Philox and Box-Muller of rng/gaussian.h. Include only from *_avx2.cpp.
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace ez {
namespace {

struct RngOpsAvx2 {
  using U = __m256i;
  using F = __m256;
  static constexpr std::uint32_t kBlocks = 8;
  static U splat_u(std::uint32_t v) { return _mm256_set1_epi32(static_cast<int>(v)); }
  static F splat_f(float v) { return _mm256_set1_ps(v); }
  static U iota() { return _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7); }
  static U load_u(const std::uint32_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static F loadu_f(const float* p) { return _mm256_loadu_ps(p); }
  static void storeu_f(float* p, F v) { _mm256_storeu_ps(p, v); }
  static U add(U a, U b) { return _mm256_add_epi32(a, b); }
  static U sub(U a, U b) { return _mm256_sub_epi32(a, b); }
  static U band(U a, U b) { return _mm256_and_si256(a, b); }
  static U bxor(U a, U b) { return _mm256_xor_si256(a, b); }
  static U bxor3(U a, U b, U c) { return bxor(bxor(a, b), c); }
  static U select(U mask, U a, U b) { return _mm256_blendv_epi8(b, a, mask); }
  template <int N> static U shr(U a) { return _mm256_srli_epi32(a, N); }
  template <int N> static U shl(U a) { return _mm256_slli_epi32(a, N); }
  static F to_float(U a) { return _mm256_cvtepi32_ps(a); }
  static F as_float(U a) { return _mm256_castsi256_ps(a); }
  static U as_bits(F a) { return _mm256_castps_si256(a); }
  static F fma(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F sub(F a, F b) { return _mm256_sub_ps(a, b); }
  static F sqrt(F a) { return _mm256_sqrt_ps(a); }
  // _mm256_mul_epu32 multiplies the even lanes into 64 bits; the odd lanes go through a 32-bit shift.
  static void mulhilo(U a, std::uint32_t m, U& hi, U& lo) {
    const U mv = splat_u(m);
    const U even = _mm256_mul_epu32(a, mv);
    const U odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), mv);
    hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
    lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
  }
  // z[k] lane b holds element 4b + k; afterwards z[q] holds elements 8q .. 8q + 7.
  static void transpose4(F (&z)[4]) {
    const F t0 = _mm256_unpacklo_ps(z[0], z[1]), t1 = _mm256_unpackhi_ps(z[0], z[1]);
    const F t2 = _mm256_unpacklo_ps(z[2], z[3]), t3 = _mm256_unpackhi_ps(z[2], z[3]);
    const F b04 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    const F b15 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    const F b26 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    const F b37 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    z[0] = _mm256_permute2f128_ps(b04, b15, 0x20);
    z[1] = _mm256_permute2f128_ps(b26, b37, 0x20);
    z[2] = _mm256_permute2f128_ps(b04, b15, 0x31);
    z[3] = _mm256_permute2f128_ps(b26, b37, 0x31);
  }
};

}  // namespace
}  // namespace ez
