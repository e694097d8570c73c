// Reference axpy.
#include "kernels/kernels.h"

namespace ez {

void axpy_f32_ref(std::size_t n, float alpha, const float* x, float* y) {
  for (std::size_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

}  // namespace ez
