// Per-point Linear + ReLU + max over the points for avx512: the shared body (point_linear_relu_max_f32_body.h) on f32x16.
#include "kernels/kernels.h"
#include "simd/f32x16_avx512.h"
#include "simd/pointwise_avx512.h"
#include "kernels/linear/point_linear_relu_max_f32_body.h"

namespace ez {

void point_linear_relu_max_f32_avx512(const LinearShape& s, int points, const float* x, const float* w,
                                     const float* bias, float* y) {
  point_linear_relu_max<f32x16, pw_f32x16>(s, points, x, w, bias, y);
}

}  // namespace ez
