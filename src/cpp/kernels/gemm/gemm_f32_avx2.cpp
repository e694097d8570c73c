// GEMM for avx2: the shared blocked driver (gemm_f32_body.h) on f32x8 vectors.
#include "kernels/kernels.h"
#include "simd/f32x8_avx2.h"
#include "kernels/gemm/gemm_f32_body.h"

namespace ez {

void gemm_f32_avx2(bool trans_a, bool trans_b, int m, int n, int k, const float* a, int lda, const float* b, int ldb,
                   bool accumulate, float* c, int ldc) {
  gemm_run<f32x8>({trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc, accumulate ? Init::load : Init::zero, nullptr});
}

}  // namespace ez
