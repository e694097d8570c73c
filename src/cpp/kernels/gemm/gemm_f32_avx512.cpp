// GEMM for avx512: the shared blocked driver (gemm_f32_body.h) on f32x16 vectors.
#include "kernels/kernels.h"
#include "simd/f32x16_avx512.h"
#include "kernels/gemm/gemm_f32_body.h"

namespace ez {

void gemm_f32_avx512(bool trans_a, bool trans_b, int m, int n, int k, const float* a, int lda, const float* b, int ldb,
                   bool accumulate, float* c, int ldc) {
  gemm_run<f32x16>({trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc, accumulate ? Init::load : Init::zero, nullptr});
}

}  // namespace ez
