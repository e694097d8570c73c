// Reference GEMM: the textbook triple loop, the oracle for the blocked SIMD versions.
#include "core/parallel.h"
#include "kernels/kernels.h"

namespace ez {

void gemm_f32_ref(bool trans_a, bool trans_b, int m, int n, int k, const float* a, int lda, const float* b, int ldb,
                  bool accumulate, float* c, int ldc) {
  parallel_for(m, [&](std::int64_t task) {
    const int i = static_cast<int>(task);
    for (int j = 0; j < n; ++j) {
      float acc = 0.f;
      for (int p = 0; p < k; ++p) {
        const float av = trans_a ? a[static_cast<long>(p) * lda + i] : a[static_cast<long>(i) * lda + p];
        const float bv = trans_b ? b[static_cast<long>(j) * ldb + p] : b[static_cast<long>(p) * ldb + j];
        acc += av * bv;
      }
      float& out = c[static_cast<long>(i) * ldc + j];
      out = accumulate ? out + acc : acc;
    }
  });
}

}  // namespace ez
