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

// |v| >> s rounded (nearest or NITI's pseudo-stochastic), not yet clipped; 1 <= s <= 31.
template <class V, bool Nearest>
inline typename V::reg rounded_magnitude(typename V::reg v, int s, int lo_bits, typename V::reg mask,
                                         typename V::reg lo_mask) {
  const typename V::reg mag = V::abs(v), q = V::srl(mag, s), r = V::band(mag, mask);
  if constexpr (Nearest) return V::add(q, V::srl(r, s - 1));
  const typename V::reg hi = V::srl(r, lo_bits), lo = V::sll(V::band(r, lo_mask), s & 1);
  return V::sub(q, V::cmpgt(hi, lo));  // all ones (-1) where hi > lo, so + 1; hi, lo < 2^31: a signed compare
}

// Four vectors at a time: the rounded magnitudes take their signs as int32 (q < 2^31 since s >= 1) and one
// saturating narrowing store clips four vectors to +-127 (V::store4_i8).
template <class V, bool Nearest>
void round_shift_lanes(std::size_t n, const std::int32_t* x, int s, std::int8_t* y) {
  constexpr std::size_t W = V::width;
  using reg = typename V::reg;
  const reg mask = V::set1(static_cast<std::int32_t>((1u << s) - 1u)), cap = V::set1(kMantissaMax);
  const int lo_bits = s / 2;
  const reg lo_mask = V::set1(static_cast<std::int32_t>((1u << lo_bits) - 1u));
  std::size_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    reg m[4];
    for (std::size_t j = 0; j < 4; ++j) {
      const reg v = V::load(x + i + j * W);
      m[j] = V::copy_sign(rounded_magnitude<V, Nearest>(v, s, lo_bits, mask, lo_mask), v);
    }
    V::store4_i8(y + i, m);
  }
  for (; i + W <= n; i += W) {
    const reg v = V::load(x + i);
    V::store_i8(y + i, V::copy_sign(V::min_s(rounded_magnitude<V, Nearest>(v, s, lo_bits, mask, lo_mask), cap), v));
  }
  if (i < n) round_shift_i8_ref(n - i, x + i, s, Nearest ? Rounding::nearest : Rounding::pseudo_stochastic,
                                DrawStream{}, y + i);
}

template <class V>
void round_shift_body(std::size_t n, const std::int32_t* x, int s, Rounding mode, const DrawStream& draws,
                      std::int8_t* y) {
  if (s < 1 || s > 31 || mode == Rounding::stochastic) return round_shift_i8_ref(n, x, s, mode, draws, y);
  if (mode == Rounding::nearest) return round_shift_lanes<V, true>(n, x, s, y);
  round_shift_lanes<V, false>(n, x, s, y);
}

}  // namespace
}  // namespace ez
