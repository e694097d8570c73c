// NITI's rounding of one int32 right by s >= 1 bits, on sign and magnitude (NITI's Python truncated toward zero,
// so no scheme may use a floor-ing arithmetic shift on negatives), then clipped to the int8 mantissa range
// [-127, 127]. Header-only so the scalar reference kernels and the SIMD tails share one definition per value.
#pragma once
#include <cstdint>

#include "kernels/shapes.h"
#include "rng/philox.h"

namespace ez {

// Which rounding a tensor class uses (NITI.md): nearest = half away from zero; stochastic = up with probability
// r / 2^s from a counter-based draw; pseudo_stochastic = NITI's draw-free scheme (the remainder's upper half
// compared with its lower half).
enum class Rounding : std::uint8_t { nearest, stochastic, pseudo_stochastic };

inline constexpr int kMantissaMax = 127;  // int8 mantissas never take -128, so negation is always exact

// Where the uniform draws of stochastic rounding come from: element i of a rounded tensor uses the 32-bit word
// i of Philox stream (key, stream) starting at `offset` (word j = lane j % 4 of block j / 4, as rng/philox.h),
// so the result is a pure function of (key, stream, offset + i): any thread or SIMD lane draws its own.
struct DrawStream {
  PhiloxKey key{0, 0};
  std::uint32_t stream = 0;
  std::uint64_t offset = 0;
};

inline std::uint32_t draw_word(const DrawStream& d, std::uint64_t i) {
  const std::uint64_t word = d.offset + i;
  return philox_block(d.key, d.stream, word / 4)[word % 4];
}

// |x| as unsigned, exact for every int32 (also INT32_MIN).
inline std::uint32_t magnitude(std::int32_t x) {
  return x < 0 ? 0u - static_cast<std::uint32_t>(x) : static_cast<std::uint32_t>(x);
}

// Rounds |x| / 2^s to an integer for 1 <= s <= 32 (s = 32 occurs for a weight update with mu = 0 of a gradient
// of magnitude 2^31); `draw` (any 32-bit word) is used by the stochastic scheme. The result may exceed 127;
// callers clip. 64-bit arithmetic keeps s = 32 defined.
inline std::uint32_t round_magnitude(std::uint32_t mag32, int s, Rounding mode, std::uint32_t draw) {
  const std::uint64_t mag = mag32, mask = (std::uint64_t{1} << s) - 1u, q = mag >> s, r = mag & mask;
  switch (mode) {
    case Rounding::nearest:
      return static_cast<std::uint32_t>(q + (r >> (s - 1)));  // r >= 2^(s-1): ties away from zero
    case Rounding::stochastic:  // u uniform in [0, 2^s - 1]: up with probability r / 2^s
      return static_cast<std::uint32_t>(q + (r > (draw & mask) ? 1u : 0u));
    case Rounding::pseudo_stochastic: {
      // hi: upper ceil(s/2) bits of r, lo: lower floor(s/2) bits, shifted left once when s is odd so both have
      // ceil(s/2) bits of scale; s = 1 gives lo = 0, so a remainder of 1 always rounds away from zero.
      const int lo_bits = s / 2;
      const std::uint64_t hi = r >> lo_bits, lo = (r & ((std::uint64_t{1} << lo_bits) - 1u)) << (s & 1);
      return static_cast<std::uint32_t>(q + (hi > lo ? 1u : 0u));
    }
  }
  return static_cast<std::uint32_t>(q);
}

inline std::int8_t clip_mantissa(std::uint32_t mag, bool negative) {
  const int v = mag > static_cast<std::uint32_t>(kMantissaMax) ? kMantissaMax : static_cast<int>(mag);
  return static_cast<std::int8_t>(negative ? -v : v);
}

// round(x / 2^s) on sign and magnitude, clipped to [-127, 127]; 1 <= s <= 32.
inline std::int8_t round_shift(std::int32_t x, int s, Rounding mode, std::uint32_t draw) {
  return clip_mantissa(round_magnitude(magnitude(x), s, mode, draw), x < 0);
}

}  // namespace ez
