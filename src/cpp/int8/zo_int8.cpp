// ElasticZO-INT8 rules (int8/zo_int8.h): the perturbation's parameters, the p_zero schedule and the two ways to the
// ternary gradient.
#include "int8/zo_int8.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "int8/rules.h"

namespace ez {

std::uint32_t zo_zero_threshold(double p_zero) {
  if (!(p_zero >= 0.0 && p_zero <= 1.0))
    throw std::invalid_argument("p_zero must lie in [0, 1], got " + std::to_string(p_zero));
  return static_cast<std::uint32_t>(std::lround(p_zero * 65536.0));
}

double zo_p_zero_for_epoch(int epoch) {
  if (epoch < 0) throw std::invalid_argument("epoch must be >= 0, got " + std::to_string(epoch));
  return epoch >= 50 ? 0.9 : epoch >= 20 ? 0.5 : 0.33;
}

void zo_check_perturbation(int r, double p_zero) {
  if (r < 1 || r > kMantissaMax)
    throw std::invalid_argument("the perturbation range r must lie in [1, 127], got " + std::to_string(r));
  zo_zero_threshold(p_zero);
}

int zo_update_shift(int r, int b_zo) {
  zo_check_perturbation(r, 0.0);
  if (b_zo < 1 || b_zo > 7)
    throw std::invalid_argument("the ZO update bit-width b_zo must lie in [1, 7], got " + std::to_string(b_zo));
  return std::max(0, range_bits(static_cast<std::uint32_t>(r)) - b_zo);
}

namespace {

void check_logits(int rows, int classes, const std::int32_t* labels) {
  // rows < 2^23 keeps the sum of the rows' fixed-point log2 (each below 2^33) inside int64; classes <= 4096 keeps a
  // row's sum of terms (each below 2^51) inside uint64.
  if (rows < 0 || rows >= (1 << 23))
    throw std::invalid_argument("rows must lie in [0, 2^23), got " + std::to_string(rows));
  if (classes < 1 || classes > 4096)
    throw std::invalid_argument("classes must lie in [1, 4096], got " + std::to_string(classes));
  for (int i = 0; i < rows; ++i)
    if (labels[i] < 0 || labels[i] >= classes)
      throw std::invalid_argument("label " + std::to_string(labels[i]) + " at row " + std::to_string(i) +
                                  " is outside [0, " + std::to_string(classes) + ")");
}

void check_frac_bits(int frac_bits) {
  if (frac_bits < 0 || frac_bits > kZoMaxFracBits)
    throw std::invalid_argument("frac_bits must lie in [0, " + std::to_string(kZoMaxFracBits) + "], got " +
                                std::to_string(frac_bits));
}

// floor(d / 2^s) for any sign (no reliance on how >> treats negative values).
std::int64_t floor_shift(std::int64_t d, int s) {
  return d >= 0 ? d >> s : -((-d + (std::int64_t{1} << s) - 1) >> s);
}

// alpha_j of one row in units of 2^-frac into `alpha`; returns its maximum (>= 0: the label's own alpha is 0).
// The exponent is capped at 15 - frac, where |alpha| reaches 254 * 47274 < 2^24: logits of that scale (every
// nonzero difference above 2^(15 - frac)) leave one term dominating every sum anyway. The shift is capped at 40,
// past which every alpha is already 0 or -1.
std::int64_t row_alphas(int classes, const std::int8_t* v, int exponent, int label, int frac, std::int64_t* alpha) {
  const int s = std::min(40, 15 - frac - std::clamp(exponent, -64, 15 - frac));
  std::int64_t top = 0;
  for (int j = 0; j < classes; ++j) {
    alpha[j] = floor_shift(static_cast<std::int64_t>(v[j] - v[label]) * 47274, s);
    top = std::max(top, alpha[j]);
  }
  return top;
}

// 2^(k / 2^frac) in Q30 for k < 2^frac, for each frac: products of 2^(2^-i) = the i-th repeated integer square root
// of 2, one per set bit of k, each rounded (at most frac roundings of 2^-30 each: integer arithmetic only).
constexpr int kTableBits = 30;
const std::vector<std::uint64_t>& exp2_table(int frac) {
  static const std::vector<std::vector<std::uint64_t>> tables = [] {
    auto isqrt = [](std::uint64_t x) {  // floor(sqrt(x)), digit by digit
      std::uint64_t r = 0;
      for (std::uint64_t bit = std::uint64_t{1} << 62; bit != 0; bit >>= 2) {
        if (x >= r + bit) {
          x -= r + bit;
          r = (r >> 1) + bit;
        } else {
          r >>= 1;
        }
      }
      return r;
    };
    std::uint64_t root[kZoMaxFracBits + 1];  // root[i] = 2^(2^-i) in Q30
    root[0] = std::uint64_t{2} << kTableBits;
    for (int i = 1; i <= kZoMaxFracBits; ++i) root[i] = isqrt(root[i - 1] << kTableBits);
    std::vector<std::vector<std::uint64_t>> out(kZoMaxFracBits + 1);
    for (int f = 0; f <= kZoMaxFracBits; ++f)
      for (std::uint64_t k = 0; k < (std::uint64_t{1} << f); ++k) {
        std::uint64_t t = std::uint64_t{1} << kTableBits;
        for (int b = 0; b < f; ++b)  // bit b of k stands for 2^(2^b / 2^f) = root[f - b]
          if (k >> b & 1) t = (t * root[f - b] + (std::uint64_t{1} << (kTableBits - 1))) >> kTableBits;
        out[static_cast<std::size_t>(f)].push_back(t);
      }
    return out;
  }();
  return tables[static_cast<std::size_t>(frac)];
}

// sum_j 2^((alpha_j - top) / 2^frac + kZoSumBits) in Q30 over the terms that stay >= 2^0 of that scale: each below
// 2^(31 + 20), so 4096 of them fit in uint64.
std::uint64_t offset_sum(int classes, const std::int64_t* alpha, std::int64_t top, int frac) {
  const std::vector<std::uint64_t>& table = exp2_table(frac);
  const std::int64_t mask = (std::int64_t{1} << frac) - 1;
  std::uint64_t sum = 0;
  for (int j = 0; j < classes; ++j) {
    const std::int64_t d = alpha[j] - top + (std::int64_t{kZoSumBits} << frac);
    if (d >= 0) sum += table[static_cast<std::size_t>(d & mask)] << (d >> frac);
  }
  return sum;
}

// log2 x (x >= 1) with `frac` fractional bits: the bit length gives the integer part; each fractional bit is the
// integer part of the square of the mantissa normalized to [1, 2) (Q1.31), the classic digit-by-digit logarithm.
std::int64_t log2_fixed(std::uint64_t x, int frac) {
  const int n = 63 - __builtin_clzll(x);
  std::int64_t out = static_cast<std::int64_t>(n) << frac;
  std::uint64_t m = n <= 31 ? x << (31 - n) : x >> (n - 31);  // in [2^31, 2^32)
  for (int f = frac - 1; f >= 0; --f) {
    m = (m * m) >> 31;  // m^2 < 2^64; the square lies in [2^31, 2^33)
    if (m >= (std::uint64_t{1} << 32)) {
      m >>= 1;
      out |= std::int64_t{1} << f;
    }
  }
  return out;
}

}  // namespace

double xent_dequantized(int rows, int classes, const std::int8_t* logits, int exponent, const std::int32_t* labels) {
  check_logits(rows, classes, labels);
  if (rows == 0) return 0.0;
  const double scale = std::ldexp(1.0, exponent);
  double total = 0.0;
  for (int r = 0; r < rows; ++r) {  // log sum_j exp(o_j - o_max) - (o_y - o_max), o = v 2^e
    const std::int8_t* row = logits + static_cast<std::size_t>(r) * classes;
    const int top = *std::max_element(row, row + classes);
    double sum = 0.0;
    for (int j = 0; j < classes; ++j) sum += std::exp((row[j] - top) * scale);
    total += std::log(sum) - (row[labels[r]] - top) * scale;
  }
  return total / rows;
}

std::int64_t int_xent_log2(int rows, int classes, const std::int8_t* logits, int exponent,
                           const std::int32_t* labels, int frac_bits) {
  check_logits(rows, classes, labels);
  check_frac_bits(frac_bits);
  std::vector<std::int64_t> alpha(static_cast<std::size_t>(classes));
  std::int64_t total = 0;
  for (int i = 0; i < rows; ++i) {
    const std::int64_t top = row_alphas(classes, logits + static_cast<std::size_t>(i) * classes, exponent, labels[i],
                                        frac_bits, alpha.data());
    // log2 S = top / 2^frac - kZoSumBits + log2(offset sum) - 30 (the table's Q30).
    total += top - (std::int64_t{kZoSumBits + kTableBits} << frac_bits) +
             log2_fixed(offset_sum(classes, alpha.data(), top, frac_bits), frac_bits);
  }
  return total;
}

int zo_sign_fp32(int rows, int classes, const std::int8_t* plus, int e_plus, const std::int8_t* minus, int e_minus,
                 const std::int32_t* labels) {
  const double lp = xent_dequantized(rows, classes, plus, e_plus, labels);
  const double lm = xent_dequantized(rows, classes, minus, e_minus, labels);
  return (lp > lm) - (lp < lm);
}

int zo_sign_int(int rows, int classes, const std::int8_t* plus, int e_plus, const std::int8_t* minus, int e_minus,
                const std::int32_t* labels, int frac_bits) {
  if (rows != 1) {
    const std::int64_t lp = int_xent_log2(rows, classes, plus, e_plus, labels, frac_bits);
    const std::int64_t lm = int_xent_log2(rows, classes, minus, e_minus, labels, frac_bits);
    return (lp > lm) - (lp < lm);
  }
  // One row: S+ against S- exactly, both under the offset of the larger maximum (Eq. 10).
  check_logits(rows, classes, labels);
  check_frac_bits(frac_bits);
  std::vector<std::int64_t> ap(static_cast<std::size_t>(classes)), am(static_cast<std::size_t>(classes));
  const std::int64_t top = std::max(row_alphas(classes, plus, e_plus, labels[0], frac_bits, ap.data()),
                                    row_alphas(classes, minus, e_minus, labels[0], frac_bits, am.data()));
  const std::uint64_t sp = offset_sum(classes, ap.data(), top, frac_bits);
  const std::uint64_t sm = offset_sum(classes, am.data(), top, frac_bits);
  return (sp > sm) - (sp < sm);
}

}  // namespace ez
