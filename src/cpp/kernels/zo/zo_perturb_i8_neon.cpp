// neon sparse int8 perturbation: the lane-generic kernel of rng/zo_perturb_i8_lanes.h on 8 Philox blocks (32
// elements, two registers) per vector. Exact: the same bytes as zo_perturb_i8_ref for any n, offset and threads.
#include "kernels/kernels.h"
#include "rng/zo_perturb_i8_lanes.h"
#include "simd/rng_neon.h"

namespace ez {
namespace {

struct ZoOpsNeon : RngOpsNeon {
  static U mullo(U a, U b) { return {{vmulq_u32(a.v[0], b.v[0]), vmulq_u32(a.v[1], b.v[1])}}; }
  static U cmpgt(U a, U b) {  // signed, all-ones lanes
    return {{vcgtq_s32(vreinterpretq_s32_u32(a.v[0]), vreinterpretq_s32_u32(b.v[0])),
             vcgtq_s32(vreinterpretq_s32_u32(a.v[1]), vreinterpretq_s32_u32(b.v[1]))}};
  }
  static void store_u(std::uint32_t* p, U v) {
    vst1q_u32(p, v.v[0]);
    vst1q_u32(p + 4, v.v[1]);
  }
  // out = max(w +sat bytes, -127): the saturating add stays within [-128, 127], and the max takes -128 to -127.
  static void add_clip_bytes(const std::int8_t* w, U bytes, std::int8_t* out) {
    for (int h = 0; h < 2; ++h) {
      const int8x16_t s = vqaddq_s8(vld1q_s8(w + 16 * h), vreinterpretq_s8_u32(bytes.v[h]));
      vst1q_s8(out + 16 * h, vmaxq_s8(s, vdupq_n_s8(-127)));
    }
  }
};

}  // namespace

void zo_perturb_i8_neon(std::size_t n, const SparsePerturbation& p, int sign, int shift, const std::int8_t* w,
                        std::int8_t* out) {
  zo_perturb_i8_lanes<ZoOpsNeon>(n, p, sign, shift, w, out);
}

}  // namespace ez
