// ReLU forward and backward over any pw_f32xN vector type (simd/pointwise_*.h). Exact: the same bits as the
// reference (the mask keeps +0 for x <= 0 and for NaN, as `x > 0 ? x : 0` does). y may alias x.
#pragma once
#include "kernels/elementwise_body.h"
#include "kernels/kernels.h"

namespace ez {
namespace {

template <class V>
void relu_fwd(std::size_t n, const float* x, float* y) {
  for_each_vector<V>(
      n, [=](std::size_t i) { V::store(y + i, V::keep_if_positive(V::load(x + i), V::load(x + i))); },
      [=](std::size_t i, std::size_t count) { relu_fwd_f32_ref(count, x + i, y + i); });
}

template <class V>
void relu_bwd(std::size_t n, const float* y, const float* dy, float* dx) {
  for_each_vector<V>(
      n, [=](std::size_t i) { V::store(dx + i, V::keep_if_positive(V::load(y + i), V::load(dy + i))); },
      [=](std::size_t i, std::size_t count) { relu_bwd_f32_ref(count, y + i, dy + i, dx + i); });
}

}  // namespace
}  // namespace ez
