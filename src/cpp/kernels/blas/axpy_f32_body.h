// y += alpha * x over any pw_f32xN vector type (simd/pointwise_*.h). Exact: the product is rounded before the add
// (no FMA), as in the reference, so SGD updates are the same bits on every ISA.
#pragma once
#include "kernels/elementwise_body.h"
#include "kernels/kernels.h"

namespace ez {
namespace {

template <class V>
void axpy(std::size_t n, float alpha, const float* x, float* y) {
  const typename V::reg a = V::set1(alpha);
  for_each_vector<V>(
      n, [=](std::size_t i) { V::store(y + i, V::add(V::load(y + i), V::mul(a, V::load(x + i)))); },
      [=](std::size_t i, std::size_t count) { axpy_f32_ref(count, alpha, x + i, y + i); });
}

}  // namespace
}  // namespace ez
