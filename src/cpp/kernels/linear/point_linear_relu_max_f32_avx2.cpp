// Per-point Linear + ReLU + max over the points for avx2: the shared body (point_linear_relu_max_f32_body.h) on f32x8.
#include "kernels/kernels.h"
#include "simd/f32x8_avx2.h"
#include "simd/pointwise_avx2.h"
#include "kernels/linear/point_linear_relu_max_f32_body.h"

namespace ez {

void point_linear_relu_max_f32_avx2(const LinearShape& s, int points, const float* x, const float* w,
                                     const float* bias, float* y) {
  point_linear_relu_max<f32x8, pw_f32x8>(s, points, x, w, bias, y);
}

}  // namespace ez
