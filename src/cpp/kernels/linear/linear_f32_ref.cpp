// Reference fully connected layer, y = x W^T + b with W[out][in], written out without the GEMM kernel.
#include "kernels/kernels.h"

namespace ez {

void linear_fwd_f32_ref(const LinearShape& s, const float* x, const float* w, const float* bias, float* y) {
#pragma omp parallel for schedule(static)
  for (int r = 0; r < s.rows; ++r) {
    for (int o = 0; o < s.out; ++o) {
      float acc = bias ? bias[o] : 0.f;
      for (int i = 0; i < s.in; ++i) acc += x[static_cast<long>(r) * s.in + i] * w[static_cast<long>(o) * s.in + i];
      y[static_cast<long>(r) * s.out + o] = acc;
    }
  }
}

void linear_bwd_data_f32_ref(const LinearShape& s, const float* dy, const float* w, float* dx) {
#pragma omp parallel for schedule(static)
  for (int r = 0; r < s.rows; ++r) {
    for (int i = 0; i < s.in; ++i) {
      float acc = 0.f;
      for (int o = 0; o < s.out; ++o) acc += dy[static_cast<long>(r) * s.out + o] * w[static_cast<long>(o) * s.in + i];
      dx[static_cast<long>(r) * s.in + i] = acc;
    }
  }
}

void linear_bwd_weight_f32_ref(const LinearShape& s, const float* x, const float* dy, bool accumulate, float* dw,
                               float* dbias) {
#pragma omp parallel for schedule(static)
  for (int o = 0; o < s.out; ++o) {
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
  }
}

}  // namespace ez
