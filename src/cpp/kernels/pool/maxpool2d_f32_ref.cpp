// Reference k x k max-pooling with stride k; backward finds the argmax again by comparing with the output.
#include "kernels/kernels.h"

namespace ez {

void maxpool2d_fwd_f32_ref(const Pool2dShape& s, const float* x, float* y) {
  const int oh = s.out_h(), ow = s.out_w();
  for (long plane = 0; plane < static_cast<long>(s.n) * s.c; ++plane) {
    const float* xp = x + plane * s.h * s.w;
    float* yp = y + plane * oh * ow;
    for (int oy = 0; oy < oh; ++oy) {
      for (int ox = 0; ox < ow; ++ox) {
        float m = xp[(oy * s.k) * s.w + ox * s.k];
        for (int ky = 0; ky < s.k; ++ky)
          for (int kx = 0; kx < s.k; ++kx) {
            const float v = xp[(oy * s.k + ky) * s.w + ox * s.k + kx];
            m = v > m ? v : m;
          }
        yp[oy * ow + ox] = m;
      }
    }
  }
}

void maxpool2d_bwd_f32_ref(const Pool2dShape& s, const float* x, const float* y, const float* dy, float* dx) {
  const int oh = s.out_h(), ow = s.out_w();
  for (long plane = 0; plane < static_cast<long>(s.n) * s.c; ++plane) {
    const float* xp = x + plane * s.h * s.w;
    float* dxp = dx + plane * s.h * s.w;
    for (int i = 0; i < s.h * s.w; ++i) dxp[i] = 0.f;
    for (int oy = 0; oy < oh; ++oy) {
      for (int ox = 0; ox < ow; ++ox) {
        const float m = y[plane * oh * ow + oy * ow + ox];
        bool routed = false;
        for (int ky = 0; ky < s.k && !routed; ++ky)
          for (int kx = 0; kx < s.k && !routed; ++kx) {
            const int idx = (oy * s.k + ky) * s.w + ox * s.k + kx;
            if (xp[idx] == m) {
              dxp[idx] = dy[plane * oh * ow + oy * ow + ox];
              routed = true;
            }
          }
      }
    }
  }
}

}  // namespace ez
