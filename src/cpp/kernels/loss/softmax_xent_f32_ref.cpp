// Reference softmax cross-entropy: log-sum-exp with the row max subtracted, so large logits do not overflow.
#include <cmath>

#include "kernels/kernels.h"

namespace ez {

float softmax_xent_f32_ref(int rows, int classes, const float* logits, const std::int32_t* labels, float scale,
                           float* dlogits) {
  double total = 0.0;  // double: the mean over a batch must not depend on summation luck
  for (int r = 0; r < rows; ++r) {
    const float* z = logits + static_cast<long>(r) * classes;
    float m = z[0];
    for (int j = 1; j < classes; ++j) m = z[j] > m ? z[j] : m;
    double sum = 0.0;
    for (int j = 0; j < classes; ++j) sum += std::exp(static_cast<double>(z[j] - m));
    const double lse = std::log(sum) + m;
    total += lse - z[labels[r]];
    if (dlogits != nullptr) {
      float* d = dlogits + static_cast<long>(r) * classes;
      for (int j = 0; j < classes; ++j) {
        const double p = std::exp(static_cast<double>(z[j]) - lse);
        d[j] = static_cast<float>(scale * (p - (j == labels[r] ? 1.0 : 0.0)) / rows);
      }
    }
  }
  return static_cast<float>(total / rows);
}

}  // namespace ez
