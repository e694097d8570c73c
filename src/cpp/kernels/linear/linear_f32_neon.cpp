// Fully connected layer for neon: the shared body (linear_f32_body.h) on f32x4 vectors.
#include "kernels/kernels.h"
#include "simd/f32x4_neon.h"
#include "kernels/linear/linear_f32_body.h"

namespace ez {

void linear_fwd_f32_neon(const LinearShape& s, const float* x, const float* w, const float* bias, float* y) {
  linear_fwd<f32x4>(s, x, w, bias, y);
}

void linear_bwd_data_f32_neon(const LinearShape& s, const float* dy, const float* w, float* dx) {
  linear_bwd_data<f32x4>(s, dy, w, dx);
}

void linear_bwd_weight_f32_neon(const LinearShape& s, const float* x, const float* dy, bool accumulate, float* dw,
                                float* dbias) {
  linear_bwd_weight<f32x4>(s, x, dy, accumulate, dw, dbias);
}

}  // namespace ez
