// f32x4: thin NEON helpers over 4 floats (ARMv8.0 baseline), for *_neon.cpp files only.
#pragma once
#include <arm_neon.h>

namespace ez {
namespace {

struct f32x4 {
  using reg = float32x4_t;
  static constexpr int width = 4;
  // Register blocking: 24 of the 32 q registers hold the outer-product tile, 16 the dot tile.
  static constexpr int tile_rows = 8, tile_vecs = 3;
  static constexpr int dot_rows = 4, dot_cols = 4;

  static reg zero() { return vdupq_n_f32(0.f); }
  static reg set1(float x) { return vdupq_n_f32(x); }
  static reg load(const float* p) { return vld1q_f32(p); }
  static void store(float* p, reg v) { vst1q_f32(p, v); }
  // First n lanes (1 <= n <= width), the others zero. NEON has no masked memory access, so go lane by lane.
  static reg load_n(const float* p, int n) {
    reg v = vdupq_n_f32(0.f);
    v = vsetq_lane_f32(p[0], v, 0);
    if (n > 1) v = vsetq_lane_f32(p[1], v, 1);
    if (n > 2) v = vsetq_lane_f32(p[2], v, 2);
    if (n > 3) v = vsetq_lane_f32(p[3], v, 3);
    return v;
  }
  static void store_n(float* p, reg v, int n) {
    p[0] = vgetq_lane_f32(v, 0);
    if (n > 1) p[1] = vgetq_lane_f32(v, 1);
    if (n > 2) p[2] = vgetq_lane_f32(v, 2);
    if (n > 3) p[3] = vgetq_lane_f32(v, 3);
  }
  static reg fmadd(reg a, reg b, reg c) { return vfmaq_f32(c, a, b); }
  // Tiles multiply by a lane of a loaded vector (fmla by element) instead of broadcasting each scalar, so four
  // broadcast operands take one register. `lane` must fold to a constant (it does in unrolled tile loops).
  static constexpr bool lane_fma = true;
  static reg fmadd_lane(reg a, int lane, reg b, reg c) {
    switch (lane) {
      case 0: return vfmaq_laneq_f32(c, b, a, 0);
      case 1: return vfmaq_laneq_f32(c, b, a, 1);
      case 2: return vfmaq_laneq_f32(c, b, a, 2);
      default: return vfmaq_laneq_f32(c, b, a, 3);
    }
  }
  static reg add(reg a, reg b) { return vaddq_f32(a, b); }
  static float reduce_add(reg v) { return vaddvq_f32(v); }
};

}  // namespace
}  // namespace ez
