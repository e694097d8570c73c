// Philox4x32-10 / 4x64-10 against Random123's known answers and numpy, the Box-Muller maths against double libm,
// the statistics of the normals, and zo_axpy_gaussian_f32 of every ISA giving the same bits on every architecture,
// for any split and thread count (against the reference at awkward offsets: test_kernel_variants.cpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "bit_compare.h"
#include "core/parallel.h"
#include "kernels/kernels.h"
#include "rng/gaussian.h"
#include "rng/philox.h"

namespace ez {
namespace {

constexpr double kTwoPi = 6.283185307179586476925;

TEST(Philox4x32, Random123KnownAnswers) {
  EXPECT_EQ(philox4x32_10({0, 0, 0, 0}, {0, 0}), (PhiloxCounter{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
  EXPECT_EQ(philox4x32_10({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff}),
            (PhiloxCounter{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}));
  // The counter and key are the leading hex digits of pi.
  EXPECT_EQ(philox4x32_10({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}),
            (PhiloxCounter{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}));
}

TEST(Philox4x32, BlockCounterLayoutIsBlockLowHighStreamZero) {
  const PhiloxKey key{0x01234567, 0x89abcdef};
  EXPECT_EQ(philox_block(key, 7, (std::uint64_t{3} << 32) + 5), philox4x32_10({5, 3, 7, 0}, key));
}

TEST(Philox4x64, Random123KnownAnswers) {
  EXPECT_EQ(philox4x64_10({0, 0, 0, 0}, {0, 0}),
            (Philox64Counter{0x16554d9eca36314c, 0xdb20fe9d672d0fdc, 0xd7e772cee186176b, 0x7e68b68aec7ba23b}));
  const std::uint64_t ones = ~std::uint64_t{0};
  EXPECT_EQ(philox4x64_10({ones, ones, ones, ones}, {ones, ones}),
            (Philox64Counter{0x87b092c3013fe90b, 0x438c3c67be8d0224, 0x9cc7d7c69cd777b6, 0xa09caebf594f0ba0}));
  EXPECT_EQ(philox4x64_10({0x243f6a8885a308d3, 0x13198a2e03707344, 0xa4093822299f31d0, 0x082efa98ec4e6c89},
                          {0x452821e638d01377, 0xbe5466cf34e90c6c}),
            (Philox64Counter{0xa528f45403e61d95, 0x38c72dbd566e9788, 0xa5a1610e72fd18b5, 0x57bd43b5e52b7fe6}));
}

// Expected words from numpy: Philox(key=[seed, 0], counter=step - 1).random_raw() (numpy increments first).
TEST(StepKey, MatchesNumpyPhiloxFirstWord) {
  const PhiloxKey a = step_key(0, 0), b = step_key(12345, 1), c = step_key(~std::uint64_t{0}, 987654321);
  EXPECT_EQ(a.k0, 0xca36314cu);
  EXPECT_EQ(a.k1, 0x16554d9eu);
  EXPECT_EQ(b.k0, 0x0ed6a560u);
  EXPECT_EQ(b.k1, 0xa5792c0au);
  EXPECT_EQ(c.k0, 0xbc51235du);
  EXPECT_EQ(c.k1, 0x35722232u);
}

// |got - want| in units of the float ulp at want.
double ulp_error(float got, double want) {
  if (want == 0.0) return got == 0.0f ? 0.0 : 1e30;
  int e;
  std::frexp(want, &e);
  return std::fabs(static_cast<double>(got) - want) / std::ldexp(1.0, e - 24);
}

// Every 7th of the 2^24 inputs of each function (all of them take 10x longer, and qemu runs these tests too).
TEST(GaussianMath, RadiusWithinOneUlpOfDoubleLibm) {
  double worst = 0;
  std::uint32_t worst_k = 0;
  for (std::uint32_t k = 0; k < (1u << 24); k += 7) {
    const double u = (k + 1.0) / 16777216.0;
    const double err = ulp_error(box_muller_radius<ScalarOps>(k << 8), std::sqrt(-2.0 * std::log(u)));
    if (err > worst) worst = err, worst_k = k;
  }
  EXPECT_LE(worst, 1.0) << "at w >> 8 = " << worst_k;
}

TEST(GaussianMath, SinCosWithinTwoUlpOfDoubleLibm) {
  double worst_c = 0, worst_s = 0;
  std::uint32_t worst_kc = 0, worst_ks = 0;
  for (std::uint32_t k = 0; k < (1u << 24); k += 7) {
    float c, s;
    box_muller_sincos<ScalarOps>(k << 8, c, s);
    const double a = kTwoPi * k / 16777216.0;
    // The exact zeros of cos and sin (quadrant boundaries) must come out as zeros.
    const double ec = k % (1u << 22) == 0 && k % (1u << 23) != 0 ? (c == 0.0f ? 0.0 : 1e30) : ulp_error(c, std::cos(a));
    const double es = k % (1u << 23) == 0 ? (s == 0.0f ? 0.0 : 1e30) : ulp_error(s, std::sin(a));
    if (ec > worst_c) worst_c = ec, worst_kc = k;
    if (es > worst_s) worst_s = es, worst_ks = k;
  }
  EXPECT_LE(worst_c, 2.0) << "cos at w >> 8 = " << worst_kc;
  EXPECT_LE(worst_s, 2.0) << "sin at w >> 8 = " << worst_ks;
}

TEST(GaussianMath, NormalsWithinFourUlpOfTheDoubleFormula) {
  const PhiloxKey key = step_key(2024, 3);
  double worst = 0;
  std::uint64_t worst_i = 0;
  for (std::uint64_t i = 0; i < 200000; ++i) {
    const PhiloxCounter w = philox_block(key, 1, i / 4);
    const unsigned lane = static_cast<unsigned>(i % 4), pair = lane / 2;
    const double r = std::sqrt(-2.0 * std::log(((w[2 * pair] >> 8) + 1.0) / 16777216.0));
    const double a = kTwoPi * (w[2 * pair + 1] >> 8) / 16777216.0;
    const double want = r * (lane % 2 == 0 ? std::cos(a) : std::sin(a));
    if (std::fabs(want) < 1e-6) continue;  // the exact zeros are covered above
    const double err = ulp_error(gaussian_at(key, 1, i), want);
    if (err > worst) worst = err, worst_i = i;
  }
  EXPECT_LE(worst, 4.0) << "at index " << worst_i;
}

double normal_cdf(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

// The normals of one stream made by the reference kernel (theta = 0, scale = 1 gives theta = z).
std::vector<float> ref_normals(std::size_t n, PhiloxKey key, std::uint32_t stream, std::uint64_t offset) {
  std::vector<float> z(n, 0.0f);
  zo_axpy_gaussian_f32_ref(n, 1.0f, key, stream, offset, z.data(), z.data());
  return z;
}

// Thresholds sit at about 5 standard errors (KS: p = 0.001), for a fixed seed: a real bias fails every time.
TEST(GaussianStats, MeanVarianceKsTailsAndPairCorrelation) {
  const std::size_t n = std::size_t{1} << 20;
  const std::vector<float> z = ref_normals(n, step_key(7, 11), 3, 0);
  double sum = 0, sum2 = 0, cross = 0;
  std::size_t beyond2 = 0, beyond3 = 0, beyond4 = 0;
  float max_abs = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double v = z[i];
    sum += v;
    sum2 += v * v;
    if (i % 2 == 0) cross += v * z[i + 1];  // the two normals of one Box-Muller pair share their radius
    beyond2 += std::fabs(v) > 2;
    beyond3 += std::fabs(v) > 3;
    beyond4 += std::fabs(v) > 4;
    max_abs = std::max(max_abs, std::fabs(z[i]));
  }
  const double rn = static_cast<double>(n);
  EXPECT_LT(std::fabs(sum / rn), 5 / std::sqrt(rn));
  EXPECT_LT(std::fabs(sum2 / rn - 1), 5 * std::sqrt(2 / rn));
  EXPECT_LT(std::fabs(cross / (rn / 2)), 5 / std::sqrt(rn / 2));
  const auto tail_ok = [&](std::size_t count, double x) {
    const double p = 2 * normal_cdf(-x), mean = p * rn, sd = std::sqrt(rn * p * (1 - p));
    EXPECT_LT(std::fabs(static_cast<double>(count) - mean), 5 * sd + 1) << "|z| > " << x << ": " << count;
  };
  tail_ok(beyond2, 2);
  tail_ok(beyond3, 3);
  tail_ok(beyond4, 4);
  EXPECT_LE(max_abs, 5.7683f);  // sqrt(48 ln 2), from the smallest uniform 2^-24
  std::vector<float> sorted = z;
  std::sort(sorted.begin(), sorted.end());
  double ks = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double f = normal_cdf(sorted[i]);
    ks = std::max({ks, f - i / rn, (i + 1) / rn - f});
  }
  EXPECT_LT(ks, 1.95 / std::sqrt(rn));
}

TEST(GaussianStats, StreamsAndKeysAreUncorrelated) {
  const std::size_t n = 1 << 16;
  const std::vector<float> a = ref_normals(n, step_key(1, 1), 0, 0), b = ref_normals(n, step_key(1, 1), 1, 0),
                           c = ref_normals(n, step_key(1, 2), 0, 0);
  double ab = 0, ac = 0;
  for (std::size_t i = 0; i < n; ++i) ab += double{a[i]} * b[i], ac += double{a[i]} * c[i];
  EXPECT_LT(std::fabs(ab / n), 5 / std::sqrt(double(n)));
  EXPECT_LT(std::fabs(ac / n), 5 / std::sqrt(double(n)));
}

TEST(ZoAxpyGaussian, RefAddsScaledNormalsOfTheIndexedElements) {
  const PhiloxKey key{0xdeadbeef, 42};
  std::vector<float> theta(37);
  for (std::size_t i = 0; i < theta.size(); ++i) theta[i] = 0.25f * static_cast<float>(i);
  const std::vector<float> before = theta;
  std::vector<float> want = theta;
  for (std::size_t i = 0; i < want.size(); ++i) want[i] += -0.5f * gaussian_at(key, 9, 1001 + i);
  std::vector<float> out(theta.size());  // aside: theta stays as it was
  zo_axpy_gaussian_f32_ref(theta.size(), -0.5f, key, 9, 1001, theta.data(), out.data());
  EXPECT_TRUE(testing::same_bits(want, out, "ref vs gaussian_at, aside"));
  EXPECT_TRUE(testing::same_bits(before, theta, "theta after an aside build"));
  zo_axpy_gaussian_f32_ref(theta.size(), -0.5f, key, 9, 1001, theta.data(), theta.data());
  EXPECT_TRUE(testing::same_bits(want, theta, "ref vs gaussian_at, in place"));
}

std::vector<float> start_theta(std::size_t n) {
  std::vector<float> t(n);
  for (std::size_t i = 0; i < n; ++i) t[i] = 0.01f * static_cast<float>(static_cast<int>(i % 201) - 100);
  return t;
}

// FNV-1a of the bits. The constants were recorded on x86-64; qemu's aarch64 run checks they hold there too.
std::uint64_t hash_bits(const std::vector<float>& v) {
  std::uint64_t h = 14695981039346656037ull;
  for (const float f : v) {
    std::uint32_t b;
    std::memcpy(&b, &f, sizeof b);
    for (int i = 0; i < 4; ++i) h = (h ^ ((b >> (8 * i)) & 0xffu)) * 1099511628211ull;
  }
  return h;
}

TEST(ZoAxpyGaussian, SameBitsOnEveryArchitecture) {
  for (const std::string& isa : available_isas()) {
    std::vector<float> z(4099, 0.0f);
    make_kernel_table(isa).zo_axpy_gaussian_f32(z.size(), 1.0f, step_key(2025, 7), 5, 3, z.data(), z.data());
    EXPECT_EQ(z[0], 0x1.edb3dp-2f) << isa;
    EXPECT_EQ(z[4098], -0x1.9e39a4p+0f) << isa;
    EXPECT_EQ(hash_bits(z), 0x111164bfcc4cf1c9ull) << isa;
  }
}

TEST(ZoAxpyGaussian, SplittingTheRangeChangesNothing) {
  const PhiloxKey key = step_key(3, 8);
  const std::size_t n = 6007;
  for (const std::string& isa : available_isas()) {
    const KernelTable t = make_kernel_table(isa);
    std::vector<float> whole = start_theta(n);
    t.zo_axpy_gaussian_f32(n, 1.0f, key, 2, 11, whole.data(), whole.data());
    for (const std::size_t cut : {std::size_t{1}, std::size_t{3}, std::size_t{129}, std::size_t{4099}}) {
      std::vector<float> parts = start_theta(n);
      t.zo_axpy_gaussian_f32(cut, 1.0f, key, 2, 11, parts.data(), parts.data());
      t.zo_axpy_gaussian_f32(n - cut, 1.0f, key, 2, 11 + cut, parts.data() + cut, parts.data() + cut);
      ASSERT_TRUE(testing::same_bits(whole, parts, isa + " cut at " + std::to_string(cut)));
    }
  }
}

TEST(ZoAxpyGaussian, OneTwoAndThreeThreadsGiveTheSameBits) {
  const PhiloxKey key = step_key(5, 13);
  const std::size_t n = 61706;  // LeNet-5 conv1 + conv2 + fc1 weights
  const int saved = num_threads();
  for (const std::string& isa : available_isas()) {
    const KernelTable t = make_kernel_table(isa);
    std::vector<float> one;
    for (const int threads : {1, 2, 3}) {
      set_num_threads(threads);
      std::vector<float> theta = start_theta(n);
      t.zo_axpy_gaussian_f32(n, 0.5f, key, 0, 3, theta.data(), theta.data());
      if (threads == 1)
        one = theta;
      else
        ASSERT_TRUE(testing::same_bits(one, theta, isa + " with " + std::to_string(threads) + " threads"));
    }
  }
  set_num_threads(saved);
}

}  // namespace
}  // namespace ez
