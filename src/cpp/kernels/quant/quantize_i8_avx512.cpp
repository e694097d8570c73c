// Input quantization for avx512: the shared body (quantize_i8_body.h) on 16 float lanes. Exact.
#include <immintrin.h>

#include <cmath>

#include "kernels/quant/quantize_i8_body.h"
#include "simd/i32_lanes_x86.h"

namespace ez {
namespace {

struct quant_f32x16 : i32x16_lanes {
  static constexpr std::size_t width = 16;
  static reg abs_bits(const float* x) { return band(load(reinterpret_cast<const std::int32_t*>(x)), set1(0x7fffffff)); }
  static void quantize(const float* x, float scale, std::int8_t* v) {
    const __m512 y = _mm512_mul_ps(_mm512_loadu_ps(x), _mm512_set1_ps(scale));
    const __m512 t = _mm512_roundscale_ps(y, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __mmask16 half = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(y, t)), _mm512_set1_ps(0.5f), _CMP_GE_OQ);
    const __m512 one = _mm512_castsi512_ps(_mm512_or_si512(
        _mm512_and_si512(_mm512_castps_si512(y), _mm512_set1_epi32(INT32_MIN)), _mm512_castps_si512(_mm512_set1_ps(1.0f))));
    const __m512 r = _mm512_mask_add_ps(t, half, t, one);
    const __m512 cap = _mm512_set1_ps(127.0f);
    const __m512i q = _mm512_cvttps_epi32(_mm512_max_ps(_mm512_min_ps(r, cap), _mm512_sub_ps(_mm512_setzero_ps(), cap)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(v), _mm512_cvtepi32_epi8(q));
  }
};

}  // namespace

std::uint32_t max_abs_bits_f32_avx512(std::size_t n, const float* x) { return max_abs_bits_body<quant_f32x16>(n, x); }

void quantize_f32_i8_avx512(std::size_t n, const float* x, int shift, std::int8_t* v) {
  quantize_body<quant_f32x16>(n, x, shift, v);
}

}  // namespace ez
