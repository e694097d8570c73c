// 2-D convolution for avx512: the shared body (conv2d_f32_body.h) on f32x16 vectors.
#include "kernels/kernels.h"
#include "simd/f32x16_avx512.h"
#include "kernels/conv2d/conv2d_f32_body.h"

namespace ez {

void conv2d_fwd_f32_avx512(const Conv2dShape& s, const float* x, const float* w, const float* bias, float* y) {
  conv_fwd<f32x16>(s, x, w, bias, y);
}

void conv2d_bwd_data_f32_avx512(const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  conv_bwd_data<f32x16>(s, dy, w, dx);
}

void conv2d_bwd_weight_f32_avx512(const Conv2dShape& s, const float* x, const float* dy, bool accumulate, float* dw,
                                float* dbias) {
  conv_bwd_weight<f32x16>(s, x, dy, accumulate, dw, dbias);
}

}  // namespace ez
