// 2x2 max-pooling of int8 for neon: the shared body (maxpool2d_i8_body.h); the vertical max of the two rows, then
// SMAXP takes the max of each adjacent pair (the 8 maxima, in order, as one 64-bit lane). Exact.
#include <arm_neon.h>

#include "kernels/pool/maxpool2d_i8_body.h"

namespace ez {
namespace {

struct i8x16_pool {
  static std::uint64_t pool8(const std::int8_t* r0, const std::int8_t* r1) {
    const int8x16_t v = vmaxq_s8(vld1q_s8(r0), vld1q_s8(r1));
    return vget_lane_u64(vreinterpret_u64_s8(vpmax_s8(vget_low_s8(v), vget_high_s8(v))), 0);
  }
  static void store8(std::int8_t* y, std::uint64_t v) { std::memcpy(y, &v, 8); }
};

}  // namespace

void maxpool2d_fwd_i8_neon(const Pool2dShape& s, const std::int8_t* x, std::int8_t* y) {
  maxpool2d_fwd_i8_body<i8x16_pool>(s, x, y);
}

}  // namespace ez
