// int8 GEMM for NEON ARMv8.0 (SMULL/SMLAL/SADALP): the shared driver (gemm_i8_body.h) on the s8x4_mlal microkernel.
#include "kernels/kernels.h"
#include "simd/i8_neon.h"
#include "kernels/gemm/gemm_i8_body.h"

namespace ez {

void gemm_i8_neon(bool trans_a, bool trans_b, int m, int n, int k, const std::int8_t* a, int lda,
                  const std::int8_t* b, int ldb, bool accumulate, std::int32_t* c, int ldc) {
  gemm_i8_run<s8x4_mlal>(trans_a, trans_b, m, n, k, a, lda, b, ldb, accumulate, c, ldc);
}

}  // namespace ez
