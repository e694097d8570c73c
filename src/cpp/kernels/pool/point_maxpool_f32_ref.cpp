// Reference global max-pool over the points of a point cloud, x[n][points][c] -> y[n][c] (PointNet).
#include "kernels/kernels.h"

namespace ez {

void point_maxpool_fwd_f32_ref(const PointPoolShape& s, const float* x, float* y) {
  for (int n = 0; n < s.n; ++n) {
    const float* xp = x + static_cast<long>(n) * s.points * s.c;
    float* yp = y + static_cast<long>(n) * s.c;
    for (int c = 0; c < s.c; ++c) yp[c] = xp[c];
    for (int p = 1; p < s.points; ++p)
      for (int c = 0; c < s.c; ++c) yp[c] = xp[static_cast<long>(p) * s.c + c] > yp[c] ? xp[static_cast<long>(p) * s.c + c] : yp[c];
  }
}

void point_maxpool_bwd_f32_ref(const PointPoolShape& s, const float* x, const float* y, const float* dy, float* dx) {
  for (int n = 0; n < s.n; ++n) {
    const float* xp = x + static_cast<long>(n) * s.points * s.c;
    float* dxp = dx + static_cast<long>(n) * s.points * s.c;
    for (long i = 0; i < static_cast<long>(s.points) * s.c; ++i) dxp[i] = 0.f;
    for (int c = 0; c < s.c; ++c) {
      const float m = y[static_cast<long>(n) * s.c + c];
      for (int p = 0; p < s.points; ++p)
        if (xp[static_cast<long>(p) * s.c + c] == m) {  // the first point holding the max takes the error
          dxp[static_cast<long>(p) * s.c + c] = dy[static_cast<long>(n) * s.c + c];
          break;
        }
    }
  }
}

}  // namespace ez
