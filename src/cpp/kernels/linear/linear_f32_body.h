// Fully connected layer on the shared GEMM driver (gemm_f32_body.h): y = x W^T + b, dx = dy W, dW (+)= dy^T x.
// The bias is fused into the forward tiles; its gradient sums each column of dy in row order, as the reference.
#pragma once
#include "kernels/gemm/gemm_f32_body.h"
#include "kernels/shapes.h"

namespace ez {
namespace {

template <class V>
void linear_fwd(const LinearShape& s, const float* x, const float* w, const float* bias, float* y) {
  gemm_run<V>({false, true, s.rows, s.out, s.in, x, s.in, w, s.in, y, s.out, bias ? Init::bias_col : Init::zero,
               bias});
}

template <class V>
void linear_bwd_data(const LinearShape& s, const float* dy, const float* w, float* dx) {
  gemm_run<V>({false, false, s.rows, s.in, s.out, dy, s.out, w, s.in, dx, s.in, Init::zero, nullptr});
}

// sums[j] (+)= sum over rows of x[r * cols + j], one vector of columns per task.
template <class V>
void column_sums(int rows, int cols, const float* x, bool accumulate, float* sums) {
  constexpr int W = V::width;
  parallel_for(team_for(static_cast<double>(rows) * cols), ceil_div(cols, W), [&](std::int64_t task) {
    const int j0 = static_cast<int>(task) * W;
    const int lanes = std::min(W, cols - j0);
    typename V::reg acc = V::zero();
    for (int r = 0; r < rows; ++r) {
      const float* src = x + static_cast<long>(r) * cols + j0;
      acc = V::add(acc, lanes == W ? V::load(src) : V::load_n(src, lanes));
    }
    if (accumulate) acc = V::add(acc, V::load_n(sums + j0, lanes));
    V::store_n(sums + j0, acc, lanes);
  });
}

template <class V>
void linear_bwd_weight(const LinearShape& s, const float* x, const float* dy, bool accumulate, float* dw,
                       float* dbias) {
  gemm_run<V>({true, false, s.out, s.in, s.rows, dy, s.out, x, s.in, dw, s.in,
               accumulate ? Init::load : Init::zero, nullptr});
  if (dbias != nullptr) column_sums<V>(s.rows, s.out, dy, accumulate, dbias);
}

}  // namespace
}  // namespace ez
