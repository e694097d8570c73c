// axpy for neon: the shared body (axpy_f32_body.h) on pw_f32x4.
// Exact: the same bits as the reference.
#include "kernels/kernels.h"
#include "simd/pointwise_neon.h"
#include "kernels/blas/axpy_f32_body.h"

namespace ez {

void axpy_f32_neon(std::size_t n, float alpha, const float* x, float* y) {
  axpy<pw_f32x4>(n, alpha, x, y);
}

}  // namespace ez
