// ElasticZO-INT8 rules (int8/zo_int8.h): the sparse perturbation's values and statistics, golden values shared by
// every architecture (this file also runs under qemu as Cortex-A53 and A76), the exact restore by never writing
// perturbed weights, the ZO update's rounding, and the ternary gradient both ways. The kernel's SIMD versions are
// compared with the reference in test_kernel_variants.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <utility>
#include <vector>

#include "int8/zo_int8.h"
#include "kernels/kernels.h"

namespace ez {
namespace {

SparsePerturbation perturbation(int r, double p_zero, std::uint32_t stream = 2, std::uint64_t offset = 0) {
  return {step_key(2026, 17), stream, offset, r, zo_zero_threshold(p_zero)};
}

std::vector<int> zetas(const SparsePerturbation& p, std::size_t n) {
  std::vector<int> z(n);
  for (std::size_t i = 0; i < n; ++i) z[i] = zo_zeta(p, i);
  return z;
}

TEST(ZoInt8, ZetaGoldenValues) {
  // Frozen from the reference (x86): the same (seed, step, layer, index) must give these on every machine.
  const std::vector<int> want = {-2, 3, -3, 1, 0, 1, -1, -3, 1, 1, -3, -2, 0, 1, 1, 0, 3, 3, 0, 3, 2, 0, 0, 2};
  EXPECT_EQ(zetas(perturbation(3, 0.33), want.size()), want);
}

TEST(ZoInt8, ZetaIsUniformOnTheRangeWithTheRequestedSparsity) {
  for (const auto& [r, p_zero] : std::vector<std::pair<int, double>>{{1, 0.33}, {3, 0.5}, {7, 0.9}, {127, 0.0}}) {
    const std::size_t n = 400000;
    const std::vector<int> z = zetas(perturbation(r, p_zero, 5), n);
    std::vector<double> count(static_cast<std::size_t>(2 * r + 1));
    for (int v : z) {
      ASSERT_LE(std::abs(v), r);
      count[static_cast<std::size_t>(v + r)] += 1;
    }
    // A kept element is uniform on [-r, r], so zeros come from the mask and from drawing 0: p_zero + each.
    const double each = (1.0 - p_zero) / (2 * r + 1), zeros = count[static_cast<std::size_t>(r)] / n;
    EXPECT_NEAR(zeros, p_zero + each, 5.0 * std::sqrt(0.25 / n)) << "r=" << r << " p_zero=" << p_zero;
    for (int v = -r; v <= r; ++v)
      if (v != 0)
        EXPECT_NEAR(count[static_cast<std::size_t>(v + r)] / n, each, 5.0 * std::sqrt(each / n) + 1e-4)
            << "r=" << r << " value " << v;
  }
}

TEST(ZoInt8, ZetaDependsOnLayerStepAndIndexOnly) {
  const SparsePerturbation a = perturbation(5, 0.33, 1, 0), b = perturbation(5, 0.33, 1, 100);
  for (std::uint64_t i = 0; i < 50; ++i) EXPECT_EQ(zo_zeta(a, 100 + i), zo_zeta(b, i));  // offset = index shift
  const std::vector<int> layer1 = zetas(perturbation(5, 0.0, 1), 64), layer2 = zetas(perturbation(5, 0.0, 2), 64);
  EXPECT_NE(layer1, layer2);
  SparsePerturbation next = perturbation(5, 0.0, 1);
  next.key = step_key(2026, 18);
  EXPECT_NE(zetas(next, 64), layer1);
}

TEST(ZoInt8, SparsityExtremes) {
  for (int v : zetas(perturbation(9, 1.0), 1000)) EXPECT_EQ(v, 0);
  int zeros = 0;
  for (int v : zetas(perturbation(127, 0.0), 1000)) zeros += v == 0;
  EXPECT_LT(zeros, 20);  // only drawn zeros, 1 in 255
}

TEST(ZoInt8, ZeroThresholdAndSchedule) {
  EXPECT_EQ(zo_zero_threshold(0.0), 0u);
  EXPECT_EQ(zo_zero_threshold(0.33), 21627u);  // round(0.33 * 65536 = 21626.88)
  EXPECT_EQ(zo_zero_threshold(0.5), 32768u);
  EXPECT_EQ(zo_zero_threshold(1.0), 65536u);
  EXPECT_THROW(zo_zero_threshold(-0.01), std::invalid_argument);
  EXPECT_THROW(zo_zero_threshold(1.5), std::invalid_argument);
  EXPECT_THROW(zo_zero_threshold(std::nan("")), std::invalid_argument);
  // The paper's steps at epochs 20 and 50 (counted from 0), as niti_mu_for_epoch's.
  const std::pair<int, double> schedule[] = {{0, 0.33}, {19, 0.33}, {20, 0.5}, {49, 0.5}, {50, 0.9}, {99, 0.9}};
  for (const auto& [epoch, p_zero] : schedule) EXPECT_EQ(zo_p_zero_for_epoch(epoch), p_zero) << "epoch " << epoch;
  EXPECT_THROW(zo_p_zero_for_epoch(-1), std::invalid_argument);
}

TEST(ZoInt8, UpdateShiftAndRounding) {
  EXPECT_EQ(zo_update_shift(1, 1), 0);    // |zeta| <= 1 already fits 1 bit
  EXPECT_EQ(zo_update_shift(3, 1), 1);    // range 2
  EXPECT_EQ(zo_update_shift(4, 1), 2);    // range 3 (bit length of 4)
  EXPECT_EQ(zo_update_shift(127, 1), 6);
  EXPECT_EQ(zo_update_shift(127, 7), 0);
  EXPECT_THROW(zo_update_shift(0, 1), std::invalid_argument);
  EXPECT_THROW(zo_update_shift(128, 1), std::invalid_argument);
  EXPECT_THROW(zo_update_shift(3, 0), std::invalid_argument);
  EXPECT_THROW(zo_update_shift(3, 8), std::invalid_argument);
  // NITI's pseudo-stochastic rounding on the magnitude, worked by hand. s = 1: lo = 0, so an odd value rounds away.
  EXPECT_EQ(zo_round(1, 1), 1);
  EXPECT_EQ(zo_round(3, 1), 2);
  EXPECT_EQ(zo_round(-3, 1), -2);
  EXPECT_EQ(zo_round(2, 1), 1);
  // s = 2: remainder bits (hi, lo) = (1, 0) rounds up, (1, 1) does not.
  EXPECT_EQ(zo_round(2, 2), 1);
  EXPECT_EQ(zo_round(3, 2), 0);
  EXPECT_EQ(zo_round(6, 2), 2);
  EXPECT_EQ(zo_round(-7, 2), -1);
  // s = 3: hi = upper 2 bits, lo = lowest bit shifted once: 5 = 0b101 -> hi 2, lo 2: down; 6 -> hi 3, lo 0: up.
  EXPECT_EQ(zo_round(5, 3), 0);
  EXPECT_EQ(zo_round(6, 3), 1);
  EXPECT_EQ(zo_round(0, 3), 0);
  EXPECT_EQ(zo_round(-127, 6), -1);  // q 1, remainder 63: hi 7 = lo 7, so down
  EXPECT_EQ(zo_round(-4, 0), -4);
}

// The restore mechanism: the passes never write the weights. The + and - operands are built from the stored weights
// (clip(w + zeta), clip(w - zeta)); the weights stay as they were, so a step abandoned anywhere leaves them exact,
// and the update is one in-place pass from the untouched weights. Weights at the clip bounds are the hard case:
// moving the stored weights in place (+zeta, -2 zeta, +zeta) loses what the clipping cut.
TEST(ZoInt8, PerturbedOperandsLeaveTheWeightsExactAtTheClipBounds) {
  const std::size_t n = 5003;
  std::vector<std::int8_t> w(n);
  for (std::size_t i = 0; i < n; ++i) w[i] = static_cast<std::int8_t>(i % 3 == 0 ? 127 : i % 3 == 1 ? -127 : 126);
  const std::vector<std::int8_t> before = w;
  const SparsePerturbation p = perturbation(3, 0.33);
  for (const std::string& isa : available_isas()) {
    const KernelTable& k = kernel_table(isa);
    std::vector<std::int8_t> plus(n), minus(n);
    k.zo_perturb_i8(n, p, +1, 0, w.data(), plus.data());
    k.zo_perturb_i8(n, p, -1, 0, w.data(), minus.data());
    EXPECT_EQ(w, before) << isa;
    int clipped = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const int z = zo_zeta(p, i);
      ASSERT_EQ(plus[i], std::max(-127, std::min(127, w[i] + z))) << isa << " element " << i;
      ASSERT_EQ(minus[i], std::max(-127, std::min(127, w[i] - z))) << isa << " element " << i;
      clipped += w[i] + z > 127 || w[i] + z < -127 || w[i] - z > 127 || w[i] - z < -127;
    }
    EXPECT_GT(clipped, 1000) << "the clip bounds must be exercised";
  }
  // What in-place moves would do: the naive restore differs wherever a move was clipped.
  int lost = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const int z = zo_zeta(p, i);
    auto clip = [](int v) { return std::max(-127, std::min(127, v)); };
    lost += clip(clip(clip(w[i] + z) - 2 * z) + z) != w[i];
  }
  EXPECT_GT(lost, 500);
}

TEST(ZoInt8, UpdateSubtractsTheRoundedProductWithClipping) {
  const std::size_t n = 3001;
  std::vector<std::int8_t> w(n);
  for (std::size_t i = 0; i < n; ++i) w[i] = static_cast<std::int8_t>(static_cast<int>(i * 29 % 255) - 127);
  const SparsePerturbation p = perturbation(7, 0.5);
  const int shift = zo_update_shift(7, 1);
  for (const int g : {-1, +1})
    for (const std::string& isa : available_isas()) {
      std::vector<std::int8_t> updated = w;
      kernel_table(isa).zo_perturb_i8(n, p, -g, shift, updated.data(), updated.data());
      for (std::size_t i = 0; i < n; ++i)
        ASSERT_EQ(updated[i], std::max(-127, std::min(127, w[i] - g * zo_round(zo_zeta(p, i), shift))))
            << isa << " g=" << g << " element " << i;
    }
}

// ---- the ternary gradient ----

std::vector<std::int8_t> logits_row(std::initializer_list<int> v) {
  std::vector<std::int8_t> out;
  for (int x : v) out.push_back(static_cast<std::int8_t>(x));
  return out;
}

TEST(ZoInt8, IntegerLog2OfTheLoss) {
  const std::vector<std::int32_t> label = {3};
  // Ten equal logits: every alpha is 0, S = 10, log2 10 = 3.3219280949.
  const std::vector<std::int8_t> flat(10, 17);
  EXPECT_EQ(int_xent_log2(1, 10, flat.data(), -3, label.data(), 0), 3);
  EXPECT_EQ(int_xent_log2(1, 10, flat.data(), -3, label.data(), 4), 53);   // floor(3.3219 * 16)
  EXPECT_EQ(int_xent_log2(1, 10, flat.data(), -3, label.data(), 8), 850);  // floor(3.3219 * 256)
  // Label logit above the others by 1 at e = 0. Integer alphas (F = 0): floor(-47274 / 2^15) = -2 for j != y, so
  // S = 1 + 9/4 = 3.25 and floor(log2) = 1. With F = 4: alpha = floor(-47274 * 16 / 2^15) / 16 = -24/16, so
  // S = 1 + 9 * 2^-1.5 = 4.18198 and log2 S = 2.06420: floor(2.06420 * 16) = 33.
  const std::vector<std::int8_t> peak = logits_row({0, 0, 0, 1, 0, 0, 0, 0, 0, 0});
  EXPECT_EQ(int_xent_log2(1, 10, peak.data(), 0, label.data(), 0), 1);
  EXPECT_EQ(int_xent_log2(1, 10, peak.data(), 0, label.data(), 4), 33);
  // Another class far above the label: S is dominated by one term 2^alpha, alpha = floor(100 * 47274 / 2^15) = 144.
  const std::vector<std::int8_t> wrong = logits_row({100, 0, 0, 0, 0, 0, 0, 0, 0, 0});
  EXPECT_EQ(int_xent_log2(1, 10, wrong.data(), 0, label.data(), 0), 144);
  // Rows add.
  std::vector<std::int8_t> two = flat;
  two.insert(two.end(), peak.begin(), peak.end());
  const std::vector<std::int32_t> labels2 = {3, 3};
  EXPECT_EQ(int_xent_log2(2, 10, two.data(), 0, labels2.data(), 0), 3 + 1);
}

TEST(ZoInt8, IntegerLog2MatchesDoubleLog2) {
  std::uint32_t state = 12345;
  auto next = [&state] { return state = state * 1664525u + 1013904223u; };
  for (int trial = 0; trial < 2000; ++trial) {
    const int classes = 2 + static_cast<int>(next() % 40), e = -7 + static_cast<int>(next() % 6);
    std::vector<std::int8_t> v(static_cast<std::size_t>(classes));
    for (auto& x : v) x = static_cast<std::int8_t>(static_cast<int>(next() % 255) - 127);
    const std::vector<std::int32_t> label = {static_cast<std::int32_t>(next() % classes)};
    for (const int frac : {0, 3, 8}) {
      // The same alphas in double (exact: integers times a power of two), S = sum 2^(alpha / 2^F), then log2.
      double s = 0;
      for (int j = 0; j < classes; ++j) {
        const double alpha = std::floor((v[j] - v[label[0]]) * 47274.0 * std::ldexp(1.0, e + frac) / 32768.0);
        s += std::exp2(std::ldexp(alpha, -frac));
      }
      const double want = std::log2(s) * std::ldexp(1.0, frac);
      const std::int64_t got = int_xent_log2(1, classes, v.data(), e, label.data(), frac);
      // The table's roundings (2^-30 each), the dropped terms and the truncated squarings cost at most one unit of
      // the last fractional bit.
      ASSERT_LE(static_cast<double>(got), want + 1e-4) << "trial " << trial << " frac " << frac;
      ASSERT_GE(static_cast<double>(got), std::floor(want) - 1.0) << "trial " << trial << " frac " << frac;
    }
  }
}

TEST(ZoInt8, TernarySignBothWays) {
  const std::vector<std::int32_t> labels = {3, 0};
  // The + pass favours the labels more than the - pass: l+ < l-, so g = -1, whatever the exponents.
  std::vector<std::int8_t> plus = logits_row({0, 0, 0, 40, 0, 0, 0, 0, 0, 0});
  const std::vector<std::int8_t> plus2 = logits_row({30, 0, 0, 0, 0, 0, 0, 0, 0, -5});
  plus.insert(plus.end(), plus2.begin(), plus2.end());
  std::vector<std::int8_t> minus = logits_row({0, 0, 0, 10, 0, 0, 0, 0, 0, 0});
  const std::vector<std::int8_t> minus2 = logits_row({5, 0, 0, 0, 0, 0, 0, 0, 0, 0});
  minus.insert(minus.end(), minus2.begin(), minus2.end());
  for (const int rows : {1, 2}) {
    EXPECT_EQ(zo_sign_fp32(rows, 10, plus.data(), -3, minus.data(), -3, labels.data()), -1);
    EXPECT_EQ(zo_sign_fp32(rows, 10, minus.data(), -3, plus.data(), -3, labels.data()), 1);
    for (const int frac : {0, 8}) {
      EXPECT_EQ(zo_sign_int(rows, 10, plus.data(), -3, minus.data(), -3, labels.data(), frac), -1);
      EXPECT_EQ(zo_sign_int(rows, 10, minus.data(), -3, plus.data(), -3, labels.data(), frac), 1);
      EXPECT_EQ(zo_sign_int(rows, 10, plus.data(), -3, plus.data(), -3, labels.data(), frac), 0);
    }
    EXPECT_EQ(zo_sign_fp32(rows, 10, plus.data(), -3, plus.data(), -3, labels.data()), 0);
  }
  // The same mantissas at a larger exponent are larger logits: the + pass (e = -2) is more confident.
  EXPECT_EQ(zo_sign_int(1, 10, plus.data(), -2, plus.data(), -3, labels.data(), 0), -1);
  EXPECT_EQ(zo_sign_fp32(1, 10, plus.data(), -2, plus.data(), -3, labels.data()), -1);
  // One row is compared exactly (no floor): S+ = 1 + 1/4 + 1/8 (alphas 0, -2, -3) against S- = 1 + 1/4 + 1/32
  // (alphas 0, -2, -5), where floor(log2) ties at 0. Terms 2^-30 below the largest are dropped: -184 vs -182 tie.
  const std::vector<std::int32_t> one = {0};
  const std::vector<std::int8_t> c = logits_row({0, -1, -2}), d = logits_row({0, -1, -3});
  EXPECT_EQ(zo_sign_int(1, 3, c.data(), 0, d.data(), 0, one.data(), 0), 1);
  const std::vector<std::int8_t> a = logits_row({0, 0, -127}), b = logits_row({0, 0, -126});
  EXPECT_EQ(zo_sign_int(1, 3, a.data(), 0, b.data(), 0, one.data(), 0), 0);
}

TEST(ZoInt8, BadArgumentsAreRefused) {
  const std::vector<std::int8_t> v(10, 0);
  const std::vector<std::int32_t> bad = {10}, neg = {-1}, ok = {0};
  EXPECT_THROW(int_xent_log2(1, 10, v.data(), 0, bad.data(), 0), std::invalid_argument);
  EXPECT_THROW(int_xent_log2(1, 10, v.data(), 0, neg.data(), 0), std::invalid_argument);
  EXPECT_THROW(int_xent_log2(1, 10, v.data(), 0, ok.data(), 9), std::invalid_argument);
  EXPECT_THROW(int_xent_log2(1, 10, v.data(), 0, ok.data(), -1), std::invalid_argument);
  EXPECT_THROW(int_xent_log2(1, 0, v.data(), 0, ok.data(), 0), std::invalid_argument);
  EXPECT_THROW(int_xent_log2(1, 4097, std::vector<std::int8_t>(4097).data(), 0, ok.data(), 0), std::invalid_argument);
  EXPECT_THROW(zo_sign_fp32(1, 10, v.data(), 0, v.data(), 0, bad.data()), std::invalid_argument);
  EXPECT_THROW(zo_sign_int(1, 10, v.data(), 0, v.data(), 0, bad.data(), 0), std::invalid_argument);
  EXPECT_THROW(zo_check_perturbation(0, 0.3), std::invalid_argument);
  EXPECT_THROW(zo_check_perturbation(3, 1.2), std::invalid_argument);
  // Extreme exponents stay defined.
  EXPECT_EQ(int_xent_log2(1, 10, v.data(), -2147483647 - 1, ok.data(), 0), 3);
  EXPECT_EQ(int_xent_log2(1, 10, v.data(), 2147483647, ok.data(), 0), 3);
}

}  // namespace
}  // namespace ez
