// Reference per-point Linear + ReLU + max over the points: each output is linear_fwd_f32_ref's sum (from the bias,
// products added in input order), then `v > 0 ? v : 0`, then the max over the points.
#include "core/parallel.h"
#include "kernels/kernels.h"

namespace ez {

void point_linear_relu_max_f32_ref(const LinearShape& s, int points, const float* x, const float* w,
                                   const float* bias, float* y) {
  if (points <= 0) return;
  parallel_for(s.rows / points, [&](std::int64_t b) {
    for (int o = 0; o < s.out; ++o) {
      float m = 0.f;
      for (int p = 0; p < points; ++p) {
        const float* row = x + (b * points + p) * s.in;
        float acc = bias ? bias[o] : 0.f;
        for (int i = 0; i < s.in; ++i) acc += row[i] * w[static_cast<long>(o) * s.in + i];
        const float v = acc > 0.f ? acc : 0.f;
        m = v > m ? v : m;
      }
      y[b * s.out + o] = m;
    }
  });
}

}  // namespace ez
