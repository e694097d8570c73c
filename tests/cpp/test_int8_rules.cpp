// Golden values of NITI's integer rules (int8/rules.h), worked out by hand from shared/docs/NITI.md: each rounding
// scheme on positive and negative values, odd and even shifts and s = 1; the range at powers of two; the weight
// update with mu in {0, 3, 5}; the integer cross-entropy gradient in both exponent branches.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <vector>

#include "int8/rules.h"
#include "kernels/kernels.h"
#include "rng/gaussian.h"

namespace ez {
namespace {

using I8 = std::vector<std::int8_t>;
using I32 = std::vector<std::int32_t>;

int r(std::int32_t x, int s, Rounding mode, std::uint32_t draw = 0) { return round_shift(x, s, mode, draw); }

TEST(Int8Rounding, NearestIsHalfAwayFromZero) {
  const Rounding m = Rounding::nearest;
  // s = 1: 1/2 -> 1, 3/2 -> 2, on both signs.
  EXPECT_EQ(r(1, 1, m), 1);
  EXPECT_EQ(r(-1, 1, m), -1);
  EXPECT_EQ(r(2, 1, m), 1);
  EXPECT_EQ(r(3, 1, m), 2);
  EXPECT_EQ(r(-3, 1, m), -2);
  // s = 2 (even): 5/4 -> 1, 6/4 -> 2, 7/4 -> 2.
  EXPECT_EQ(r(5, 2, m), 1);
  EXPECT_EQ(r(6, 2, m), 2);
  EXPECT_EQ(r(7, 2, m), 2);
  EXPECT_EQ(r(-5, 2, m), -1);
  EXPECT_EQ(r(-6, 2, m), -2);
  // s = 3 (odd): 11/8 -> 1, 12/8 -> 2, -20/8 = -2.5 -> -3 (a floor-ing shift would give -2 or -3 wrongly).
  EXPECT_EQ(r(11, 3, m), 1);
  EXPECT_EQ(r(12, 3, m), 2);
  EXPECT_EQ(r(-12, 3, m), -2);
  EXPECT_EQ(r(-20, 3, m), -3);
  EXPECT_EQ(r(-19, 3, m), -2);
}

TEST(Int8Rounding, PseudoStochasticComparesRemainderHalves) {
  const Rounding m = Rounding::pseudo_stochastic;
  // s = 1: lo = 0, so a remainder of 1 always rounds away from zero.
  EXPECT_EQ(r(1, 1, m), 1);
  EXPECT_EQ(r(-1, 1, m), -1);
  EXPECT_EQ(r(3, 1, m), 2);
  EXPECT_EQ(r(-3, 1, m), -2);
  EXPECT_EQ(r(2, 1, m), 1);
  // s = 2 (even): r = 2 (hi 1 > lo 0) rounds up; r = 3 (1, 1) and r = 1 (0, 1) do not.
  EXPECT_EQ(r(6, 2, m), 2);
  EXPECT_EQ(r(7, 2, m), 1);
  EXPECT_EQ(r(5, 2, m), 1);
  EXPECT_EQ(r(-6, 2, m), -2);
  EXPECT_EQ(r(-7, 2, m), -1);
  // s = 3 (odd): hi = r >> 1, lo = (r & 1) << 1; up for r in {2, 4, 6, 7}.
  const int up3[8] = {0, 0, 1, 0, 1, 0, 1, 1};
  for (int rem = 0; rem < 8; ++rem) {
    EXPECT_EQ(r(8 + rem, 3, m), 1 + up3[rem]) << "r = " << rem;
    EXPECT_EQ(r(-8 - rem, 3, m), -1 - up3[rem]) << "r = " << rem;
  }
  // s = 4 (even): hi = r >> 2, lo = r & 3: r = 9 (2 > 1) up, r = 6 (1 < 2) not.
  EXPECT_EQ(r(25, 4, m), 2);
  EXPECT_EQ(r(-22, 4, m), -1);
}

TEST(Int8Rounding, StochasticComparesRemainderWithDraw) {
  const Rounding m = Rounding::stochastic;
  // 13 / 8: q = 1, r = 5; up when 5 > u = draw & 7.
  EXPECT_EQ(r(13, 3, m, 4), 2);
  EXPECT_EQ(r(13, 3, m, 5), 1);
  EXPECT_EQ(r(13, 3, m, 0xFFFFFFF4u), 2);  // only the low s bits of the draw count
  EXPECT_EQ(r(-13, 3, m, 4), -2);
  EXPECT_EQ(r(-13, 3, m, 7), -1);
  // s = 1: a remainder of 1 rounds away exactly when the draw's low bit is 0.
  EXPECT_EQ(r(3, 1, m, 0), 2);
  EXPECT_EQ(r(3, 1, m, 1), 1);
  EXPECT_EQ(r(-3, 1, m, 0), -2);
  // s = 2 (even): 6 / 4 with u = 1 up, u = 2 not.
  EXPECT_EQ(r(6, 2, m, 1), 2);
  EXPECT_EQ(r(6, 2, m, 2), 1);
  // Exact multiples never move.
  EXPECT_EQ(r(-16, 3, m, 0), -2);
}

TEST(Int8Rounding, StochasticIsUnbiasedOverPhiloxDraws) {
  // 5 / 8 = 0.625 and -37 / 16 = -2.3125 in expectation; the draws are the Philox words of the stream.
  const DrawStream d{{7, 11}, 3, 100};
  for (const auto& [x, s] : {std::pair<int, int>{5, 3}, {-37, 4}}) {
    const int n = 200000;
    I32 xs(n, x);
    I8 y(n);
    round_shift_i8_ref(n, xs.data(), s, Rounding::stochastic, d, y.data());
    double mean = 0;
    for (int i = 0; i < n; ++i) {
      ASSERT_EQ(y[i], r(x, s, Rounding::stochastic, draw_word(d, i)));
      mean += y[i];
    }
    EXPECT_NEAR(mean / n, x / std::ldexp(1.0, s), 0.005) << x << " / 2^" << s;
  }
  // draw_word is word (offset + i) of the stream: lane (offset + i) % 4 of block (offset + i) / 4.
  EXPECT_EQ(draw_word(d, 5), philox_block(d.key, d.stream, 26)[1]);
}

TEST(Int8Rounding, ClipsToSymmetricInt8) {
  for (Rounding m : {Rounding::nearest, Rounding::pseudo_stochastic, Rounding::stochastic}) {
    EXPECT_EQ(r(300, 1, m), 127);
    EXPECT_EQ(r(-300, 1, m), -127);  // never -128
    EXPECT_EQ(r(std::numeric_limits<std::int32_t>::min(), 1, m), -127);
  }
  EXPECT_EQ(r(255, 1, Rounding::nearest), 127);  // 127.5 rounds to 128, clipped
  // s = 32 (mu = 0 on a gradient of magnitude 2^31): 2^31 / 2^32 = 0.5 rounds away from zero.
  EXPECT_EQ(r(std::numeric_limits<std::int32_t>::min(), 32, Rounding::nearest), -1);
  const I32 x{200, -200, 5, -128};
  I8 y(4);
  round_shift_i8_ref(4, x.data(), 0, Rounding::nearest, {}, y.data());
  EXPECT_EQ(y, (I8{127, -127, 5, -127}));
}

TEST(Int8Range, BitLengthAtPowersOfTwo) {
  EXPECT_EQ(range_bits(0), 0);
  EXPECT_EQ(range_bits(1), 1);
  EXPECT_EQ(range_bits(2), 2);
  EXPECT_EQ(range_bits(3), 2);
  EXPECT_EQ(range_bits(127), 7);
  EXPECT_EQ(range_bits(128), 8);  // ceil(log2 128) would be 7, and 128 would not fit in 7 bits
  EXPECT_EQ(range_bits(129), 8);
  EXPECT_EQ(range_bits(255), 8);
  EXPECT_EQ(range_bits(256), 9);
  EXPECT_EQ(range_bits(0x80000000u), 32);
  for (int k = 0; k < 31; ++k) {
    const std::int32_t p = std::int32_t{1} << k;
    EXPECT_EQ(range_i32(1, &p), k + 1) << "2^" << k;
    const std::int32_t q = -p;
    EXPECT_EQ(range_i32(1, &q), k + 1) << "-2^" << k;
    if (k > 1) {
      const std::int32_t below = p - 1;
      EXPECT_EQ(range_i32(1, &below), k) << "2^" << k << " - 1";
    }
  }
  const std::int32_t lowest = std::numeric_limits<std::int32_t>::min();
  EXPECT_EQ(range_i32(1, &lowest), 32);
  const I32 zeros(5, 0);
  EXPECT_EQ(range_i32(zeros.size(), zeros.data()), 0);
}

TEST(Int8Requantize, ShiftsByRangeMinusSeven) {
  I8 y(3);
  // max 128 = 2^7: range 8, s = 1.
  const I32 a{128, -3, 64};
  EXPECT_EQ(requantize_i8(3, a.data(), Rounding::nearest, {}, y.data()), 1);
  EXPECT_EQ(y, (I8{64, -2, 32}));
  // max 127: range 7, taken as it is.
  const I32 b{127, -127, 0};
  EXPECT_EQ(requantize_i8(3, b.data(), Rounding::nearest, {}, y.data()), 0);
  EXPECT_EQ(y, (I8{127, -127, 0}));
  // max 1000: range 10, s = 3: 125, -3/8 -> 0, 4/8 -> 1 (nearest) or 0 (pseudo-stochastic: hi 2 > lo 0 -> 1).
  const I32 c{1000, -3, 4};
  EXPECT_EQ(requantize_i8(3, c.data(), Rounding::nearest, {}, y.data()), 3);
  EXPECT_EQ(y, (I8{125, 0, 1}));
  EXPECT_EQ(requantize_i8(3, c.data(), Rounding::pseudo_stochastic, {}, y.data()), 3);
  EXPECT_EQ(y, (I8{125, 0, 1}));
}

TEST(Int8Quantize, InputPerBatch) {
  I8 v(3);
  // max 0.5 = 2^-1: b = 0, e = -7, v = round(x * 128).
  const std::vector<float> a{0.5f, -0.25f, 0.1f};
  EXPECT_EQ(quantize_input(3, a.data(), v.data()), -7);
  EXPECT_EQ(v, (I8{64, -32, 13}));
  // max 2.82 (normalized MNIST white): b = 2, e = -5, v = round(x * 32), halves away from zero.
  const std::vector<float> b{2.82f, -0.421875f, 0.015625f};
  EXPECT_EQ(quantize_input(3, b.data(), v.data()), -5);
  EXPECT_EQ(v, (I8{90, -14, 1}));
  // max 1.99: b = 1, 1.99 * 64 = 127.36 -> 127; an all-zero batch gets e = -7.
  const std::vector<float> c{1.99f, -1.99f, 0.f};
  EXPECT_EQ(quantize_input(3, c.data(), v.data()), -6);
  EXPECT_EQ(v, (I8{127, -127, 0}));
  const std::vector<float> z(3, 0.f);
  EXPECT_EQ(quantize_input(3, z.data(), v.data()), -7);
  EXPECT_EQ(v, (I8{0, 0, 0}));
  const std::vector<float> bad{1.f, std::nanf("")};
  EXPECT_THROW(quantize_input(2, bad.data(), v.data()), std::invalid_argument);
}

TEST(Int8Init, NitiXavierScaledToMantissas) {
  const PhiloxKey key{3, 4};
  for (WeightInit init : {WeightInit::xavier_normal, WeightInit::xavier_uniform}) {
    const int fan_in = 150, fan_out = 400, n = 2400;
    I8 w(n);
    const int e = niti_init_weights(fan_in, fan_out, n, init, key, 9, w.data());
    int vmax = 0;
    double sum2 = 0;
    for (int v : w) {
      vmax = std::max(vmax, std::abs(v));
      sum2 += static_cast<double>(v) * v;
    }
    EXPECT_EQ(vmax, 127);
    // value = v 2^e = w * (127/128) 2^(e+7) / max|w|, and max|w| lies in [2^(e+6), 2^(e+7)): NITI's scale makes
    // the values 1 to 2 times Xavier's (both inits have Xavier's std sqrt(2 / (fan_in + fan_out))).
    const double std_xavier = std::sqrt(2.0 / (fan_in + fan_out));
    const double std_int = std::sqrt(sum2 / n) * std::ldexp(1.0, e);
    EXPECT_GT(std_int, 0.9 * std_xavier);
    EXPECT_LT(std_int, 2.1 * std_xavier);
    // Deterministic: the same key and stream give the same mantissas.
    I8 again(n);
    EXPECT_EQ(niti_init_weights(fan_in, fan_out, n, init, key, 9, again.data()), e);
    EXPECT_EQ(again, w);
  }
  // The normal init is round(z / max|z| * 127) of the project's Gaussian stream.
  I8 w(64);
  niti_init_weights(5, 7, 64, WeightInit::xavier_normal, key, 2, w.data());
  float zmax = 0;
  for (int i = 0; i < 64; ++i) zmax = std::max(zmax, std::fabs(std::sqrt(2.f / 12.f) * gaussian_at(key, 2, i)));
  for (int i = 0; i < 64; ++i)
    EXPECT_EQ(w[i], static_cast<int>(std::round(std::sqrt(2.f / 12.f) * gaussian_at(key, 2, i) / zmax * 127.f)));
}

TEST(Int8Update, GradientBitWidthMu) {
  const I32 g{100, -50, 3, 0, 100};
  const I8 w0{10, 10, 10, -127, -120};
  // range(100) = 7. mu = 5: s = 2, pseudo-stochastic: 100 -> 25, -50 -> -12.5 (r = 2: hi 1 > lo 0) -> -13, 3 -> 0.
  I8 w = w0;
  EXPECT_EQ(niti_weight_update(5, g.data(), 5, Rounding::pseudo_stochastic, {}, w.data()), 2);
  EXPECT_EQ(w, (I8{-15, 23, 10, -127, -127}));  // -120 - 25 clipped
  // mu = 3: s = 4: 100 = 6 * 16 + 4 (hi 1 > lo 0) -> 7, -50 = -(3 * 16 + 2) (hi 0 < lo 2) -> -3.
  w = w0;
  EXPECT_EQ(niti_weight_update(5, g.data(), 3, Rounding::pseudo_stochastic, {}, w.data()), 4);
  EXPECT_EQ(w, (I8{3, 13, 10, -127, -127}));
  // mu = 0: s = 7, ternary steps: 100 (hi 12 > lo 8) -> 1, -50 (hi 6 > lo 4) -> -1, 3 (hi 0 < lo 6) -> 0.
  w = w0;
  EXPECT_EQ(niti_weight_update(5, g.data(), 0, Rounding::pseudo_stochastic, {}, w.data()), 7);
  EXPECT_EQ(w, (I8{9, 11, 10, -127, -121}));
  // range(G) <= mu: G is taken as it is.
  const I32 small{20, -3};
  w = {0, 0};
  EXPECT_EQ(niti_weight_update(2, small.data(), 5, Rounding::pseudo_stochastic, {}, w.data()), 0);
  EXPECT_EQ(w, (I8{-20, 3}));
  // A zero gradient leaves the weights alone.
  const I32 zero{0, 0};
  w = {5, -5};
  EXPECT_EQ(niti_weight_update(2, zero.data(), 5, Rounding::pseudo_stochastic, {}, w.data()), 0);
  EXPECT_EQ(w, (I8{5, -5}));
  EXPECT_THROW(niti_weight_update(2, zero.data(), 8, Rounding::nearest, {}, w.data()), std::invalid_argument);
  EXPECT_THROW(niti_weight_update(2, zero.data(), -1, Rounding::nearest, {}, w.data()), std::invalid_argument);
}

TEST(Int8Update, MuSchedule) {
  EXPECT_EQ(niti_mu_for_epoch(0), 5);
  EXPECT_EQ(niti_mu_for_epoch(19), 5);
  EXPECT_EQ(niti_mu_for_epoch(20), 4);
  EXPECT_EQ(niti_mu_for_epoch(49), 4);
  EXPECT_EQ(niti_mu_for_epoch(50), 3);
  EXPECT_EQ(niti_mu_for_epoch(99), 3);
}

I8 xent(const I8& v, int e, const I32& labels, Rounding mode = Rounding::nearest) {
  I8 g(v.size());
  int_xent_grad(static_cast<int>(labels.size()), static_cast<int>(v.size() / labels.size()), v.data(), e,
                labels.data(), mode, {}, g.data());
  return g;
}

TEST(Int8Loss, BaseTwoSoftmaxBranch) {
  // e = -3: s = floor(v 47274 / 2^18) = (1, 0, 0); d = (10, 9, 9), t = (1023, 511, 511), sum 2045;
  // p = (1024, 511, 511), sum 2046; at the label 511 - 2046 = -1535; /16 to nearest: 64, 31.94 -> 32, -95.94 -> -96.
  EXPECT_EQ(xent({8, 4, 0}, -3, {2}), (I8{64, 32, -96}));
  // A confident right answer: s = (11, 0, -12) -> t = (1023, 0, 0): zero gradient; a confident wrong one: +-2048 / 16
  // = +-128, clipped to 127.
  EXPECT_EQ(xent({64, 0, -64}, -3, {0}), (I8{0, 0, 0}));
  EXPECT_EQ(xent({64, 0, -64}, -3, {1}), (I8{127, -127, 0}));
  // e = 1 >= 0: s = floor(v 47274 * 2 / 2^15) = (8, 2, 0); t = (1023, 15, 3), sum 1041; p = (2012, 29, 5), sum 2046;
  // label 0: 2012 - 2046 = -34 -> -2.125 -> -2; 29 / 16 = 1.81 -> 2; 5 / 16 -> 0.
  EXPECT_EQ(xent({3, 1, 0}, 1, {0}), (I8{-2, 2, 0}));
  // Two rows at once, the second the first's mirror image.
  EXPECT_EQ(xent({8, 4, 0, 0, 4, 8}, -3, {2, 0}), (I8{64, 32, -96, -96, 32, 64}));
}

TEST(Int8Loss, SecondOrderBranchForSmallLogits) {
  // e = -8: t = 2^17 + v 2^9 + v^2 = (192272, 89872), sum 282144; p = (1395, 652), sum 2047; label 1: -1395;
  // /16: 87.19 -> 87.
  EXPECT_EQ(xent({100, -100}, -8, {1}), (I8{87, -87}));
  // e = -7 is in this branch too: t = 2^15 + v 2^8 + v^2 = (32768, 32768 + 256 + 1 = 33025), sum 65793;
  // p = (1019, 1027), sum 2046; label 0: 1019 - 2046 = -1027 -> -64.19 -> -64; 1027 -> 64.
  EXPECT_EQ(xent({0, 1}, -7, {0}), (I8{-64, 64}));
}

TEST(Int8Loss, StochasticRoundingAndBadLabels) {
  // Each value is the floor or the ceiling of p / 16.
  const I8 g = xent({8, 4, 0}, -3, {2}, Rounding::stochastic);
  EXPECT_EQ(g[0], 64);
  EXPECT_TRUE(g[1] == 31 || g[1] == 32);
  EXPECT_TRUE(g[2] == -95 || g[2] == -96);
  I8 out(3);
  const I8 v{1, 2, 3};
  const I32 bad{3};
  EXPECT_THROW(int_xent_grad(1, 3, v.data(), 0, bad.data(), Rounding::nearest, {}, out.data()), std::invalid_argument);
}

TEST(Int8Policy, FirstCommitByDefault) {
  const RoundingPolicy p;
  EXPECT_EQ(p.of(TensorClass::activations), Rounding::pseudo_stochastic);
  EXPECT_EQ(p.of(TensorClass::errors), Rounding::pseudo_stochastic);
  EXPECT_EQ(p.of(TensorClass::weight_grads), Rounding::pseudo_stochastic);
  EXPECT_EQ(p.of(TensorClass::loss_grad), Rounding::stochastic);
  EXPECT_EQ(RoundingPolicy::final_version().of(TensorClass::activations), Rounding::nearest);
  EXPECT_EQ(parse_rounding("pseudo_stochastic"), Rounding::pseudo_stochastic);
  EXPECT_THROW(parse_rounding("floor"), std::invalid_argument);
}

}  // namespace
}  // namespace ez
