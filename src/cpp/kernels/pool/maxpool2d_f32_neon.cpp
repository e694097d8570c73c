// 2x2 max-pooling forward and backward for neon: the shared body (maxpool2d_f32_body.h) on pw_f32x4.
// Exact: the same bits as the reference.
#include "kernels/kernels.h"
#include "simd/pointwise_neon.h"
#include "kernels/pool/maxpool2d_f32_body.h"

namespace ez {

void maxpool2d_fwd_f32_neon(const Pool2dShape& s, const float* x, float* y) {
  maxpool2d_fwd<pw_f32x4>(s, x, y);
}

void maxpool2d_relu_fwd_f32_neon(const Pool2dShape& s, const float* x, float* y) {
  maxpool2d_fwd<pw_f32x4, true>(s, x, y);
}

void maxpool2d_bwd_f32_neon(const Pool2dShape& s, const float* x, const float* y, const float* dy, float* dx) {
  maxpool2d_bwd<pw_f32x4>(s, x, y, dy, dx);
}

}  // namespace ez
