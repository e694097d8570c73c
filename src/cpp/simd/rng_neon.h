// NEON lanes for the Philox and Box-Muller of rng/gaussian.h. Each lane type is a pair of 128-bit registers
// (8 x u32, 8 x f32): two independent chains per instruction stream keep the in-order Cortex-A53 busy.
// Include only from *_neon.cpp.
#pragma once
#include <arm_neon.h>

#include <cstdint>

namespace ez {
namespace {

struct RngOpsNeon {
  struct U {
    uint32x4_t v[2];
  };
  struct F {
    float32x4_t v[2];
  };
  static constexpr std::uint32_t kBlocks = 8;
  static U splat_u(std::uint32_t x) { return {{vdupq_n_u32(x), vdupq_n_u32(x)}}; }
  static F splat_f(float x) { return {{vdupq_n_f32(x), vdupq_n_f32(x)}}; }
  static U iota() {
    static const std::uint32_t k[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    return load_u(k);
  }
  static U load_u(const std::uint32_t* p) { return {{vld1q_u32(p), vld1q_u32(p + 4)}}; }
  static F loadu_f(const float* p) { return {{vld1q_f32(p), vld1q_f32(p + 4)}}; }
  static void storeu_f(float* p, F a) {
    vst1q_f32(p, a.v[0]);
    vst1q_f32(p + 4, a.v[1]);
  }
  static U add(U a, U b) { return {{vaddq_u32(a.v[0], b.v[0]), vaddq_u32(a.v[1], b.v[1])}}; }
  static U sub(U a, U b) { return {{vsubq_u32(a.v[0], b.v[0]), vsubq_u32(a.v[1], b.v[1])}}; }
  static U band(U a, U b) { return {{vandq_u32(a.v[0], b.v[0]), vandq_u32(a.v[1], b.v[1])}}; }
  static U bxor(U a, U b) { return {{veorq_u32(a.v[0], b.v[0]), veorq_u32(a.v[1], b.v[1])}}; }
  static U bxor3(U a, U b, U c) { return bxor(bxor(a, b), c); }  // EOR3 needs ARMv8.2 SHA3, absent on the A53
  static U select(U m, U a, U b) { return {{vbslq_u32(m.v[0], a.v[0], b.v[0]), vbslq_u32(m.v[1], a.v[1], b.v[1])}}; }
  template <int N> static U shr(U a) { return {{vshrq_n_u32(a.v[0], N), vshrq_n_u32(a.v[1], N)}}; }
  template <int N> static U shl(U a) { return {{vshlq_n_u32(a.v[0], N), vshlq_n_u32(a.v[1], N)}}; }
  static F to_float(U a) {
    return {{vcvtq_f32_s32(vreinterpretq_s32_u32(a.v[0])), vcvtq_f32_s32(vreinterpretq_s32_u32(a.v[1]))}};
  }
  static F as_float(U a) { return {{vreinterpretq_f32_u32(a.v[0]), vreinterpretq_f32_u32(a.v[1])}}; }
  static U as_bits(F a) { return {{vreinterpretq_u32_f32(a.v[0]), vreinterpretq_u32_f32(a.v[1])}}; }
  static F fma(F a, F b, F c) { return {{vfmaq_f32(c.v[0], a.v[0], b.v[0]), vfmaq_f32(c.v[1], a.v[1], b.v[1])}}; }
  static F add(F a, F b) { return {{vaddq_f32(a.v[0], b.v[0]), vaddq_f32(a.v[1], b.v[1])}}; }
  static F mul(F a, F b) { return {{vmulq_f32(a.v[0], b.v[0]), vmulq_f32(a.v[1], b.v[1])}}; }
  static F sub(F a, F b) { return {{vsubq_f32(a.v[0], b.v[0]), vsubq_f32(a.v[1], b.v[1])}}; }
  static F sqrt(F a) { return {{vsqrtq_f32(a.v[0]), vsqrtq_f32(a.v[1])}}; }
  // vmull_u32 gives two 64-bit products; the low and high halves are then unzipped.
  static void mulhilo(U a, std::uint32_t m, U& hi, U& lo) {
    const uint32x2_t m2 = vdup_n_u32(m);
    const uint32x4_t m4 = vdupq_n_u32(m);
    for (int h = 0; h < 2; ++h) {
      const uint32x4_t p01 = vreinterpretq_u32_u64(vmull_u32(vget_low_u32(a.v[h]), m2));
      const uint32x4_t p23 = vreinterpretq_u32_u64(vmull_high_u32(a.v[h], m4));
      lo.v[h] = vuzp1q_u32(p01, p23);
      hi.v[h] = vuzp2q_u32(p01, p23);
    }
  }
  // z[k] lane b holds element 4b + k; afterwards z[q] holds elements 8q .. 8q + 7 (blocks 2q and 2q + 1).
  static void transpose4(F (&z)[4]) {
    float32x4_t blk[8];
    for (int h = 0; h < 2; ++h) {
      const float32x4_t t0 = vtrn1q_f32(z[0].v[h], z[1].v[h]), t1 = vtrn2q_f32(z[0].v[h], z[1].v[h]);
      const float32x4_t t2 = vtrn1q_f32(z[2].v[h], z[3].v[h]), t3 = vtrn2q_f32(z[2].v[h], z[3].v[h]);
      const float64x2_t d0 = vreinterpretq_f64_f32(t0), d1 = vreinterpretq_f64_f32(t1);
      const float64x2_t d2 = vreinterpretq_f64_f32(t2), d3 = vreinterpretq_f64_f32(t3);
      blk[4 * h + 0] = vreinterpretq_f32_f64(vtrn1q_f64(d0, d2));
      blk[4 * h + 1] = vreinterpretq_f32_f64(vtrn1q_f64(d1, d3));
      blk[4 * h + 2] = vreinterpretq_f32_f64(vtrn2q_f64(d0, d2));
      blk[4 * h + 3] = vreinterpretq_f32_f64(vtrn2q_f64(d1, d3));
    }
    for (int q = 0; q < 4; ++q) z[q] = {{blk[2 * q], blk[2 * q + 1]}};
  }
};

}  // namespace
}  // namespace ez
