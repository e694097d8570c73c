// axpy for avx512: the shared body (axpy_f32_body.h) on pw_f32x16.
// Exact: the same bits as the reference.
#include "kernels/kernels.h"
#include "simd/pointwise_avx512.h"
#include "kernels/blas/axpy_f32_body.h"

namespace ez {

void axpy_f32_avx512(std::size_t n, float alpha, const float* x, float* y) {
  axpy<pw_f32x16>(n, alpha, x, y);
}

}  // namespace ez
