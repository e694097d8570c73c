// Vectorized requantization on a lane type V (simd/i32_lanes_*.h); ISA files only. max |x| with unsigned lanes
// (|INT32_MIN| = 2^31 fits), and NITI's nearest and pseudo-stochastic rounding on sign and magnitude, lane for
// lane the formulas of int8/rounding.h. Stochastic rounding and s = 32 take the reference: their draws are one
// Philox word per element (the loss gradient, a few hundred values per step), not worth a vector Philox here.
#pragma once
#include <algorithm>
#include <cstdint>

#include "int8/rounding.h"
#include "kernels/kernels.h"

namespace ez {
namespace {

template <class V>
std::uint32_t max_abs_body(std::size_t n, const std::int32_t* x) {
  constexpr std::size_t W = V::width;
  typename V::reg m = V::set1(0);
  std::size_t i = 0;
  for (; i + W <= n; i += W) m = V::max_u(m, V::abs(V::load(x + i)));
  std::uint32_t r = V::reduce_max_u(m);
  for (; i < n; ++i) r = std::max(r, magnitude(x[i]));
  return r;
}

template <class V>
void round_shift_body(std::size_t n, const std::int32_t* x, int s, Rounding mode, const DrawStream& draws,
                      std::int8_t* y) {
  constexpr std::size_t W = V::width;
  if (s < 1 || s > 31 || mode == Rounding::stochastic) {
    round_shift_i8_ref(n, x, s, mode, draws, y);
    return;
  }
  using reg = typename V::reg;
  const reg mask = V::set1(static_cast<std::int32_t>((1u << s) - 1u)), one = V::set1(1), cap = V::set1(kMantissaMax);
  const int lo_bits = s / 2;
  const reg lo_mask = V::set1(static_cast<std::int32_t>((1u << lo_bits) - 1u));
  std::size_t i = 0;
  for (; i + W <= n; i += W) {
    const reg v = V::load(x + i), mag = V::abs(v);
    const reg q = V::srl(mag, s), r = V::band(mag, mask);
    reg up;
    if (mode == Rounding::nearest) {
      up = V::srl(r, s - 1);
    } else {
      const reg hi = V::srl(r, lo_bits), lo = V::sll(V::band(r, lo_mask), s & 1);
      up = V::band(V::cmpgt(hi, lo), one);  // hi, lo < 2^31: a signed compare is exact
    }
    const reg m = V::min_s(V::add(q, up), cap);  // q < 2^31 since s >= 1
    V::store_i8(y + i, V::copy_sign(m, v));
  }
  if (i < n) round_shift_i8_ref(n - i, x + i, s, mode, draws, y + i);
}

}  // namespace
}  // namespace ez
