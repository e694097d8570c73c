// Reference fully connected layer, y = x W^T + b with W[out][in], written out without the GEMM kernel.
#include "core/parallel.h"
#include "kernels/kernels.h"

namespace ez {

void linear_fwd_f32_ref(const LinearShape& s, const float* x, const float* w, const float* bias, float* y) {
  parallel_for(s.rows, [&](std::int64_t task) {
    const int r = static_cast<int>(task);
    for (int o = 0; o < s.out; ++o) {
      float acc = bias ? bias[o] : 0.f;
      for (int i = 0; i < s.in; ++i) acc += x[static_cast<long>(r) * s.in + i] * w[static_cast<long>(o) * s.in + i];
      y[static_cast<long>(r) * s.out + o] = acc;
    }
  });
}

void linear_bwd_data_f32_ref(const LinearShape& s, const float* dy, const float* w, float* dx) {
  parallel_for(s.rows, [&](std::int64_t task) {
    const int r = static_cast<int>(task);
    for (int i = 0; i < s.in; ++i) {
      float acc = 0.f;
      for (int o = 0; o < s.out; ++o) acc += dy[static_cast<long>(r) * s.out + o] * w[static_cast<long>(o) * s.in + i];
      dx[static_cast<long>(r) * s.in + i] = acc;
    }
  });
}

void linear_bwd_weight_f32_ref(const LinearShape& s, const float* x, const float* dy, bool accumulate, float* dw,
                               float* dbias) {
  parallel_for(s.out, [&](std::int64_t task) {
    const int o = static_cast<int>(task);
    for (int i = 0; i < s.in; ++i) {
      float acc = 0.f;
      for (int r = 0; r < s.rows; ++r) acc += dy[static_cast<long>(r) * s.out + o] * x[static_cast<long>(r) * s.in + i];
      float& out = dw[static_cast<long>(o) * s.in + i];
      out = accumulate ? out + acc : acc;
    }
    if (dbias != nullptr) {
      float acc = 0.f;
      for (int r = 0; r < s.rows; ++r) acc += dy[static_cast<long>(r) * s.out + o];
      dbias[o] = accumulate ? dbias[o] + acc : acc;
    }
  });
}

}  // namespace ez
