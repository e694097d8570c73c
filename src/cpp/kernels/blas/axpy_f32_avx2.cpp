// axpy for avx2: the shared body (axpy_f32_body.h) on pw_f32x8.
// Exact: the same bits as the reference.
#include "kernels/kernels.h"
#include "simd/pointwise_avx2.h"
#include "kernels/blas/axpy_f32_body.h"

namespace ez {

void axpy_f32_avx2(std::size_t n, float alpha, const float* x, float* y) {
  axpy<pw_f32x8>(n, alpha, x, y);
}

}  // namespace ez
