// Reference 2-D convolution (stride 1, zero padding): the shared reference loops (conv2d_ref_body.h) in float.
#include "kernels/conv2d/conv2d_ref_body.h"
#include "kernels/kernels.h"

namespace ez {

void conv2d_fwd_f32_ref(const Conv2dShape& s, const float* x, const float* w, const float* bias, float* y) {
  conv_fwd_ref<float, float>(s, x, w, bias, y);
}

void conv2d_bwd_data_f32_ref(const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  conv_bwd_data_ref<float, float>(s, dy, w, dx);
}

void conv2d_bwd_weight_f32_ref(const Conv2dShape& s, const float* x, const float* dy, bool accumulate, float* dw,
                               float* dbias) {
  conv_bwd_weight_ref<float, float>(s, x, dy, accumulate, dw);
  if (dbias == nullptr) return;
  const int ohw = s.out_h() * s.out_w();
  for (int co = 0; co < s.c_out; ++co) {
    float acc = 0.f;
    for (int n = 0; n < s.n; ++n) {
      const float* dyp = dy + (static_cast<long>(n) * s.c_out + co) * ohw;
      for (int i = 0; i < ohw; ++i) acc += dyp[i];
    }
    dbias[co] = accumulate ? dbias[co] + acc : acc;
  }
}

}  // namespace ez
