// ElasticZO-INT8 (Algorithm 2, SPEC §5-6) without the layers: the sparse int8 perturbation zeta and its rounding
// for the ZO update, the ternary ZO gradient from the two passes' int8 logits (FP32 cross-entropy of the dequantized
// logits, or integer arithmetic only), and the p_zero schedule. Every definition here is integer arithmetic on
// Philox words, so the same (seed, step, layer, index) gives the same zeta on any thread count, ISA or machine.
#pragma once
#include <cstddef>
#include <cstdint>

#include "int8/rounding.h"
#include "kernels/shapes.h"
#include "rng/philox.h"

namespace ez {

// zeta of one Philox word w (element i of a tensor uses word offset + i of its stream, as rounding.h's draw_word):
//   u = ((w & 0xffff) * (2r + 1)) >> 16      uniform on [0, 2r] (multiply-shift: bias below (2r + 1) / 2^16)
//   keep = (w >> 16) >= zero_threshold       P(zeroed) = zero_threshold / 2^16
//   zeta = keep ? u - r : 0
// The low half picks the value and the high half the mask, so the two are independent. One word per element
// (a Philox block serves four) keeps the regeneration cheap.
inline int zo_zeta_of_word(std::uint32_t w, int r, std::uint32_t zero_threshold) {
  const int u = static_cast<int>(((w & 0xffffu) * static_cast<std::uint32_t>(2 * r + 1)) >> 16);
  return (w >> 16) >= zero_threshold ? u - r : 0;
}

inline int zo_zeta(const SparsePerturbation& p, std::uint64_t i) {
  return zo_zeta_of_word(draw_word({p.key, p.stream, p.offset}, i), p.r, p.zero_threshold);
}

// R_s(zeta): zeta rounded right by `shift` bits with NITI's pseudo-stochastic rounding on sign and magnitude
// (rounding.h); shift 0 leaves it as it is. The ZO update's g * zeta rounded to b_zo bits is g * R_s(zeta): the
// rounding is odd, so the sign of g can be applied after it.
inline int zo_round(int zeta, int shift) {
  if (shift == 0) return zeta;
  const auto mag = static_cast<int>(round_magnitude(static_cast<std::uint32_t>(zeta < 0 ? -zeta : zeta), shift,
                                                    Rounding::pseudo_stochastic, 0));
  return zeta < 0 ? -mag : mag;
}

// One element of the kernel zo_perturb_i8: clip(w + sign * R_s(zeta), +-127).
inline std::int8_t zo_apply(std::int8_t w, int sign, int rounded_zeta) {
  const int v = w + sign * rounded_zeta;
  return static_cast<std::int8_t>(v > kMantissaMax ? kMantissaMax : v < -kMantissaMax ? -kMantissaMax : v);
}

// zero_threshold = round(p_zero * 2^16); p_zero must lie in [0, 1] (std::invalid_argument otherwise). The only
// floating-point step of the perturbation, taken once per configuration, not per element.
std::uint32_t zo_zero_threshold(double p_zero);

// The paper's sparsity schedule: p_zero = 0.33, then 0.5 from epoch 20, then 0.9 from epoch 50 (epochs from 0, as
// niti_mu_for_epoch and the FP32 learning-rate decay count them).
double zo_p_zero_for_epoch(int epoch);

// The shift s of the ZO update: g * zeta rounded to b_zo bits. As NITI's weight update with mu = b_zo, s is the
// range of the product minus b_zo, at least 0 (taken as it is). Choice: the range is that of the bound r
// (range_bits(r)), not a scan of the drawn zeta, so the update stays one pass; the two differ only when no element of
// a layer draws |zeta| >= 2^(range_bits(r) - 1). r in [1, 127], b_zo in [1, 7] (std::invalid_argument otherwise).
int zo_update_shift(int r, int b_zo);

// Checks r and p_zero for a perturbation (std::invalid_argument naming the bad one).
void zo_check_perturbation(int r, double p_zero);

// The mean softmax cross-entropy of int8 logits v * 2^e (rows x classes), in double: the loss an INT8 run reports
// and the one behind the paper's "INT8" column (its sign of l+ - l-).
double xent_dequantized(int rows, int classes, const std::int8_t* logits, int exponent, const std::int32_t* labels);

// Integer-only cross-entropy in base 2 (SPEC §6, Eqs. 6-12), with F = frac_bits fractional bits (F = 0: the paper's
// method exactly). For each row,
//   alpha_j = floor((v_j - v_y) * 47274 * 2^e * 2^F / 2^15)  (47274 / 2^15 ~ log2 e: exp becomes a power of two;
//                                                               alpha in units of 2^-F)
//   S = sum_j 2^(alpha_j / 2^F) ~ sum_j exp(o_j - o_y), so the row's loss is ~ ln S = ln 2 * log2 S.
// Every alpha is offset by the same amount so that the largest term is 2^kZoSumBits; terms below 2^0 after the
// offset (2^-20 of the largest or less) are dropped. The fractional part of an exponent is read from a table of
// 2^(k / 2^F) in Q30 built by integer square roots. Returns sum over rows of log2 S in fixed point with F fractional
// bits: F = 0 gives the paper's floor(log2 S) (the bit length of S minus one) on integer alphas; F > 0 keeps the
// fraction of both the exponents and the logarithm (the bits after the leading one, by repeated squaring), which
// the sign needs when the two passes' logits differ by less than a power of two. frac_bits in [0, 8],
// classes in [1, 4096], labels in [0, classes) (std::invalid_argument otherwise).
inline constexpr int kZoSumBits = 20;
inline constexpr int kZoMaxFracBits = 8;
std::int64_t int_xent_log2(int rows, int classes, const std::int8_t* logits, int exponent,
                           const std::int32_t* labels, int frac_bits);

// The ternary ZO gradient g = sign(l+ - l-) in {-1, 0, +1} from the two passes' logits (exponents e_plus, e_minus).
//  - zo_sign_fp32: the sign of the difference of xent_dequantized (the paper's INT8 column).
//  - zo_sign_int: integer only (INT8*): one row compares S+ with S- (both sums under one offset, Eq. 10); several
//    rows compare the sums over rows of log2 S (Eq. 12 for frac_bits 0), each as int_xent_log2.
int zo_sign_fp32(int rows, int classes, const std::int8_t* plus, int e_plus, const std::int8_t* minus, int e_minus,
                 const std::int32_t* labels);
int zo_sign_int(int rows, int classes, const std::int8_t* plus, int e_plus, const std::int8_t* minus, int e_minus,
                const std::int32_t* labels, int frac_bits);

}  // namespace ez
