// ReLU forward and backward for avx512: the shared body (relu_f32_body.h) on pw_f32x16.
// Exact: the same bits as the reference.
#include "kernels/kernels.h"
#include "simd/pointwise_avx512.h"
#include "kernels/activation/relu_f32_body.h"

namespace ez {

void relu_fwd_f32_avx512(std::size_t n, const float* x, float* y) {
  relu_fwd<pw_f32x16>(n, x, y);
}

void relu_bwd_f32_avx512(std::size_t n, const float* y, const float* dy, float* dx) {
  relu_bwd<pw_f32x16>(n, y, dy, dx);
}

}  // namespace ez
