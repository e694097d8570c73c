// Vectorized input quantization on a float lane type V (ISA files only). max |x| compares the bits of |x| as
// unsigned integers (the order of non-negative floats; NaN and infinity above every finite value). The scaling by
// 2^shift is one multiply, exact like the reference's ldexp (a result too small for a normal float rounds to 0 in
// both); shifts whose power of two is not a normal float take the reference. Rounding half away from zero:
// t = trunc(y), and |y - t| (exact) >= 1/2 adds the sign. Exact: the same bits as the reference.
#pragma once
#include <algorithm>
#include <cstdint>

#include "core/parallel.h"
#include "kernels/elementwise_body.h"
#include "kernels/kernels.h"

namespace ez {
namespace {

template <class V>
std::uint32_t max_abs_bits_body(std::size_t n, const float* x) {
  constexpr std::size_t W = V::width;
  typename V::reg m = V::set1(0);
  std::size_t i = 0;
  for (; i + W <= n; i += W) m = V::max_u(m, V::abs_bits(x + i));
  return std::max(V::reduce_max_u(m), max_abs_bits_f32_ref(n - i, x + i));
}

template <class V>
void quantize_body(std::size_t n, const float* x, int shift, std::int8_t* v) {
  if (shift < -126 || shift > 127) return quantize_f32_i8_ref(n, x, shift, v);
  const float scale = std::ldexp(1.0f, shift);
  for_each_vector<V>(
      n, [&](std::size_t i) { V::quantize(x + i, scale, v + i); },
      [&](std::size_t i, std::size_t count) { quantize_f32_i8_ref(count, x + i, shift, v + i); });
}

}  // namespace
}  // namespace ez
