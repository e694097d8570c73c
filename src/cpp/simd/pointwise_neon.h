// pw_f32x4: NEON helpers for the pointwise, pooling and axpy kernels: comparisons and selections that follow the
// reference's rules bit for bit (ties, signed zeros, NaN; NEON's fmax differs on those, so it is not used), and the
// even/odd split of 2-wide pooling windows. For *_neon.cpp files only.
#pragma once
#include <arm_neon.h>

namespace ez {
namespace {

struct pw_f32x4 {
  using reg = float32x4_t;
  using mask = uint32x4_t;
  static constexpr int width = 4;
  static reg set1(float x) { return vdupq_n_f32(x); }
  static reg load(const float* p) { return vld1q_f32(p); }
  static void store(float* p, reg v) { vst1q_f32(p, v); }
  static reg add(reg a, reg b) { return vaddq_f32(a, b); }
  static reg mul(reg a, reg b) { return vmulq_f32(a, b); }
  // v where a > 0, else +0 (also for NaN a): the reference's `a > 0 ? v : 0`.
  static reg keep_if_positive(reg a, reg v) { return select(vcgtq_f32(a, vdupq_n_f32(0.f)), v); }
  static reg take_greater(reg v, reg m) { return vbslq_f32(vcgtq_f32(v, m), v, m); }  // v > m ? v : m
  static mask equal(reg a, reg b) { return vceqq_f32(a, b); }
  static mask none() { return vdupq_n_u32(0); }
  static mask either(mask a, mask b) { return vorrq_u32(a, b); }
  static mask but_not(mask a, mask b) { return vbicq_u32(a, b); }  // a and not b
  static reg select(mask m, reg v) { return vreinterpretq_f32_u32(vandq_u32(m, vreinterpretq_u32_f32(v))); }
  // p[0 .. 2 width) -> even = p[0], p[2], ...; odd = p[1], p[3], ...
  static void load_pairs(const float* p, reg& even, reg& odd) {
    const float32x4x2_t v = vld2q_f32(p);
    even = v.val[0];
    odd = v.val[1];
  }
  static void store_pairs(float* p, reg even, reg odd) { vst2q_f32(p, float32x4x2_t{{even, odd}}); }
};

}  // namespace
}  // namespace ez
