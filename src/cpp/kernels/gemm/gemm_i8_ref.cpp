// Reference int8 GEMM: the textbook triple loop with an int32 accumulator, the oracle for the SIMD versions.
#include "core/parallel.h"
#include "kernels/kernels.h"

namespace ez {

void gemm_i8_ref(bool trans_a, bool trans_b, int m, int n, int k, const std::int8_t* a, int lda, const std::int8_t* b,
                 int ldb, bool accumulate, std::int32_t* c, int ldc) {
  parallel_for(m, [&](std::int64_t task) {
    const int i = static_cast<int>(task);
    for (int j = 0; j < n; ++j) {
      std::int32_t acc = 0;
      for (int p = 0; p < k; ++p) {
        const int av = trans_a ? a[static_cast<long>(p) * lda + i] : a[static_cast<long>(i) * lda + p];
        const int bv = trans_b ? b[static_cast<long>(j) * ldb + p] : b[static_cast<long>(p) * ldb + j];
        acc += av * bv;
      }
      std::int32_t& out = c[static_cast<long>(i) * ldc + j];
      out = accumulate ? out + acc : acc;
    }
  });
}

}  // namespace ez
