// point max-pooling forward and backward for avx2: the shared body (point_maxpool_f32_body.h) on pw_f32x8.
// Exact: the same bits as the reference.
#include "kernels/kernels.h"
#include "simd/pointwise_avx2.h"
#include "kernels/pool/point_maxpool_f32_body.h"

namespace ez {

void point_maxpool_fwd_f32_avx2(const PointPoolShape& s, const float* x, float* y) {
  point_maxpool_fwd<pw_f32x8>(s, x, y);
}

void point_maxpool_bwd_f32_avx2(const PointPoolShape& s, const float* x, const float* y, const float* dy, float* dx) {
  point_maxpool_bwd<pw_f32x8>(s, x, y, dy, dx);
}

}  // namespace ez
