// int32 lane helpers for the vectorized requantization (requant_i8_body.h): 8 lanes on AVX2, 16 on AVX-512BW.
// For *_avx2 / *_avx512 files only (anonymous namespace).
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace ez {
namespace {

#if defined(__AVX2__)
struct i32x8_lanes {
  using reg = __m256i;
  static constexpr int width = 8;
  static reg load(const std::int32_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static reg set1(std::int32_t v) { return _mm256_set1_epi32(v); }
  static reg abs(reg v) { return _mm256_abs_epi32(v); }  // INT32_MIN stays 0x80000000 = 2^31 unsigned
  static reg max_u(reg a, reg b) { return _mm256_max_epu32(a, b); }
  static std::uint32_t reduce_max_u(reg v) {
    __m128i m = _mm_max_epu32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    m = _mm_max_epu32(m, _mm_shuffle_epi32(m, 0x4E));
    m = _mm_max_epu32(m, _mm_shuffle_epi32(m, 0xB1));
    return static_cast<std::uint32_t>(_mm_cvtsi128_si32(m));
  }
  static reg srl(reg v, int s) { return _mm256_srl_epi32(v, _mm_cvtsi32_si128(s)); }
  static reg sll(reg v, int s) { return _mm256_sll_epi32(v, _mm_cvtsi32_si128(s)); }
  static reg band(reg a, reg b) { return _mm256_and_si256(a, b); }
  static reg add(reg a, reg b) { return _mm256_add_epi32(a, b); }
  static reg sub(reg a, reg b) { return _mm256_sub_epi32(a, b); }
  static reg cmpgt(reg a, reg b) { return _mm256_cmpgt_epi32(a, b); }
  static reg min_s(reg a, reg b) { return _mm256_min_epi32(a, b); }
  static reg copy_sign(reg m, reg x) { return _mm256_sign_epi32(m, x); }  // x = 0 gives 0, and then m = 0 too
  static void store_i8(std::int8_t* p, reg v) {
    const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(p), _mm_packs_epi16(w, w));
  }
  // Four vectors as 32 bytes clipped to [-127, 127]: the saturating packs work per 128-bit lane, leaving the 4-byte
  // pieces of v[q] at dwords 4L + q of lane L; one dword permute puts them in order, one byte max takes -128 to -127.
  static void store4_i8(std::int8_t* p, const reg (&v)[4]) {
    const __m256i w = _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3]));
    const __m256i ordered = _mm256_permutevar8x32_epi32(w, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm256_max_epi8(ordered, _mm256_set1_epi8(-127)));
  }
};
#endif

#if defined(__AVX512BW__)
struct i32x16_lanes {
  using reg = __m512i;
  static constexpr int width = 16;
  static reg load(const std::int32_t* p) { return _mm512_loadu_si512(p); }
  static reg set1(std::int32_t v) { return _mm512_set1_epi32(v); }
  static reg abs(reg v) { return _mm512_abs_epi32(v); }
  static reg max_u(reg a, reg b) { return _mm512_max_epu32(a, b); }
  static std::uint32_t reduce_max_u(reg v) { return _mm512_reduce_max_epu32(v); }
  static reg srl(reg v, int s) { return _mm512_srl_epi32(v, _mm_cvtsi32_si128(s)); }
  static reg sll(reg v, int s) { return _mm512_sll_epi32(v, _mm_cvtsi32_si128(s)); }
  static reg band(reg a, reg b) { return _mm512_and_si512(a, b); }
  static reg add(reg a, reg b) { return _mm512_add_epi32(a, b); }
  static reg sub(reg a, reg b) { return _mm512_sub_epi32(a, b); }
  static reg cmpgt(reg a, reg b) { return _mm512_movm_epi32(_mm512_cmpgt_epi32_mask(a, b)); }
  static reg min_s(reg a, reg b) { return _mm512_min_epi32(a, b); }
  static reg copy_sign(reg m, reg x) {
    return _mm512_mask_sub_epi32(m, _mm512_cmplt_epi32_mask(x, _mm512_setzero_si512()), _mm512_setzero_si512(), m);
  }
  static void store_i8(std::int8_t* p, reg v) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm512_cvtepi32_epi8(v));
  }
  // Four vectors as 64 bytes clipped to [-127, 127], as i32x8_lanes::store4_i8 with four 128-bit lanes.
  static void store4_i8(std::int8_t* p, const reg (&v)[4]) {
    const __m512i w = _mm512_packs_epi16(_mm512_packs_epi32(v[0], v[1]), _mm512_packs_epi32(v[2], v[3]));
    const __m512i ordered =
        _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), w);
    _mm512_storeu_si512(p, _mm512_max_epi8(ordered, _mm512_set1_epi8(-127)));
  }
};
#endif

}  // namespace
}  // namespace ez
