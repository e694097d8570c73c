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

// Which rounding each tensor class uses, chosen per run (ElasticZOConfig::rounding). The default is NITI's first
// commit (the LeNet/MNIST code the paper builds on): activations, errors and weight gradients pseudo-stochastic, the
// loss gradient stochastic.
enum class TensorClass : std::uint8_t { activations, errors, weight_grads, loss_grad };
inline constexpr TensorClass kTensorClasses[] = {TensorClass::activations, TensorClass::errors,
                                                 TensorClass::weight_grads, TensorClass::loss_grad};
struct RoundingPolicy {
  Rounding activations = Rounding::pseudo_stochastic;
  Rounding errors = Rounding::pseudo_stochastic;
  Rounding weight_grads = Rounding::pseudo_stochastic;
  Rounding loss_grad = Rounding::stochastic;

  Rounding of(TensorClass c) const;
  Rounding& of(TensorClass c);
  static RoundingPolicy first_commit() { return {}; }
  // NITI's final version: activations and errors round to nearest.
  static RoundingPolicy final_version() {
    return {Rounding::nearest, Rounding::nearest, Rounding::pseudo_stochastic, Rounding::stochastic};
  }
};

inline constexpr int kMantissaMax = 127;  // int8 mantissas never take -128, so negation is always exact

// Where the uniform draws of stochastic rounding come from: element i of a rounded tensor uses the 32-bit word
// i of Philox stream (key, stream) starting at `offset` (word j = lane j % 4 of block j / 4, as rng/philox.h),
// so the result is a pure function of (key, stream, offset + i): any thread or SIMD lane draws its own.
struct DrawStream {
  PhiloxKey key{0, 0};
  std::uint32_t stream = 0;
  std::uint64_t offset = 0;
};

// Where a stochastic rounding draws, apart from every other stream of a step (the ZO perturbations use the streams
// 0..L-1 of their parameter layers, the loss gradient "LOSS"): the activations of module m use stream
// kActivationDraws + m, the error module m propagates kErrorDraws + m, the weight gradient of backprop parameter i
// kWeightGradDraws + i. The key is the step's (the same for the + and - passes, so that their difference is the
// perturbation's and not the rounding's), or {0, 0} outside a training step (an evaluation is then a pure function
// of weights and input).
inline constexpr std::uint32_t kActivationDraws = 0x41000000u;  // "A"
inline constexpr std::uint32_t kErrorDraws = 0x45000000u;       // "E"
inline constexpr std::uint32_t kWeightGradDraws = 0x57000000u;  // "W"

// How one INT8 layer rounds its requantized output (activations) and the error it propagates (errors), with the
// draws a stochastic scheme takes.
struct LayerRounding {
  Rounding activations = RoundingPolicy{}.activations;
  Rounding errors = RoundingPolicy{}.errors;
  DrawStream forward_draws{}, backward_draws{};
};

inline LayerRounding layer_rounding(const RoundingPolicy& p, PhiloxKey key, std::uint32_t module) {
  return {p.activations, p.errors, {key, kActivationDraws + module, 0}, {key, kErrorDraws + module, 0}};
}

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
