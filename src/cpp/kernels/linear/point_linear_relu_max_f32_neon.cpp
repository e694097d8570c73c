// Per-point Linear + ReLU + max over the points for neon: the shared body (point_linear_relu_max_f32_body.h) on f32x4.
#include "kernels/kernels.h"
#include "simd/f32x4_neon.h"
#include "simd/pointwise_neon.h"
#include "kernels/linear/point_linear_relu_max_f32_body.h"

namespace ez {

void point_linear_relu_max_f32_neon(const LinearShape& s, int points, const float* x, const float* w,
                                     const float* bias, float* y) {
  point_linear_relu_max<f32x4, pw_f32x4>(s, points, x, w, bias, y);
}

}  // namespace ez
