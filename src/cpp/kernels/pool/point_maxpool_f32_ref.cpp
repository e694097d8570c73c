// Reference global max-pool over the points of a point cloud, x[n][points][c] -> y[n][c] (PointNet;
// kernels/pool/pool_ref_body.h).
#include "kernels/kernels.h"
#include "kernels/pool/pool_ref_body.h"

namespace ez {

void point_maxpool_fwd_f32_ref(const PointPoolShape& s, const float* x, float* y) { point_maxpool_fwd_ref(s, x, y); }

void point_maxpool_bwd_f32_ref(const PointPoolShape& s, const float* x, const float* y, const float* dy, float* dx) {
  point_maxpool_bwd_ref(s, x, y, dy, dx);
}

}  // namespace ez
