// Input quantization for neon: the shared body (quantize_i8_body.h) on 4 float lanes. Exact.
#include <arm_neon.h>

#include <cmath>
#include <cstring>

#include "kernels/quant/quantize_i8_body.h"

namespace ez {
namespace {

struct quant_f32x4 {
  static constexpr std::size_t width = 4;
  using reg = uint32x4_t;
  static reg set1(std::int32_t v) { return vdupq_n_u32(static_cast<std::uint32_t>(v)); }
  static reg abs_bits(const float* x) { return vandq_u32(vreinterpretq_u32_f32(vld1q_f32(x)), set1(0x7fffffff)); }
  static reg max_u(reg a, reg b) { return vmaxq_u32(a, b); }
  static std::uint32_t reduce_max_u(reg v) { return vmaxvq_u32(v); }
  static void quantize(const float* x, float scale, std::int8_t* v) {
    const float32x4_t y = vmulq_n_f32(vld1q_f32(x), scale);
    const float32x4_t t = vrndq_f32(y);  // toward zero
    const uint32x4_t half = vcgeq_f32(vabsq_f32(vsubq_f32(y, t)), vdupq_n_f32(0.5f));
    const uint32x4_t one = vorrq_u32(vandq_u32(vreinterpretq_u32_f32(y), vdupq_n_u32(0x80000000u)),
                                     vreinterpretq_u32_f32(vdupq_n_f32(1.0f)));
    const float32x4_t r = vaddq_f32(t, vreinterpretq_f32_u32(vandq_u32(half, one)));
    const int32x4_t q = vcvtq_s32_f32(vmaxq_f32(vminq_f32(r, vdupq_n_f32(127.0f)), vdupq_n_f32(-127.0f)));
    const int16x4_t h = vmovn_s32(q);
    const int8x8_t b = vmovn_s16(vcombine_s16(h, h));
    const std::int32_t word = vget_lane_s32(vreinterpret_s32_s8(b), 0);
    std::memcpy(v, &word, sizeof word);
  }
};

}  // namespace

std::uint32_t max_abs_bits_f32_neon(std::size_t n, const float* x) { return max_abs_bits_body<quant_f32x4>(n, x); }

void quantize_f32_i8_neon(std::size_t n, const float* x, int shift, std::int8_t* v) {
  quantize_body<quant_f32x4>(n, x, shift, v);
}

}  // namespace ez
