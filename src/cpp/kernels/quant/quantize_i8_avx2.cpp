// Input quantization for avx2: the shared body (quantize_i8_body.h) on 8 float lanes. Exact.
#include <immintrin.h>

#include <cmath>

#include "kernels/quant/quantize_i8_body.h"
#include "simd/i32_lanes_x86.h"

namespace ez {
namespace {

// The unsigned max of |x|'s bits on the requantization's int32 lanes.
struct quant_f32x8 : i32x8_lanes {
  static constexpr std::size_t width = 8;
  static reg abs_bits(const float* x) { return band(load(reinterpret_cast<const std::int32_t*>(x)), set1(0x7fffffff)); }
  static void quantize(const float* x, float scale, std::int8_t* v) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256 y = _mm256_mul_ps(_mm256_loadu_ps(x), _mm256_set1_ps(scale));
    const __m256 t = _mm256_round_ps(y, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 half = _mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_sub_ps(y, t)), _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    const __m256 up = _mm256_and_ps(half, _mm256_or_ps(_mm256_and_ps(y, sign), _mm256_set1_ps(1.0f)));
    const __m256 cap = _mm256_set1_ps(127.0f);
    const __m256 r = _mm256_max_ps(_mm256_min_ps(_mm256_add_ps(t, up), cap), _mm256_sub_ps(_mm256_setzero_ps(), cap));
    const __m256i q = _mm256_cvttps_epi32(r);
    const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(v), _mm_packs_epi16(w, w));
  }
};

}  // namespace

std::uint32_t max_abs_bits_f32_avx2(std::size_t n, const float* x) { return max_abs_bits_body<quant_f32x8>(n, x); }

void quantize_f32_i8_avx2(std::size_t n, const float* x, int shift, std::int8_t* v) {
  quantize_body<quant_f32x8>(n, x, shift, v);
}

}  // namespace ez
