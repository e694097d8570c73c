// Every integer kernel level this CPU supports (kernels_i8.h) against the scalar references, bit for bit, on
// awkward sizes and for 1, 2 and 3 threads; inputs at the extremes (+-127 everywhere) prove nothing saturates.
// Each test loops over the levels found at run time (not gtest parameters fixed at discovery), so one test binary
// checks the dot-product kernels when run as a Cortex-A76 and the ARMv8.0 ones as a Cortex-A53.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/parallel.h"
#include "int8/rules.h"
#include "kernels/kernels_i8.h"

namespace ez {
namespace {

using I8 = std::vector<std::int8_t>;
using I32 = std::vector<std::int32_t>;

// Mantissas in [-127, 127]; `extreme` gives only +-127 with a constant sign per buffer (the largest sums).
I8 random_i8(std::size_t n, std::uint32_t seed, bool extreme = false) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> dist(-127, 127);
  I8 b(n);
  for (auto& v : b) v = static_cast<std::int8_t>(extreme ? (seed % 2 ? 127 : -127) : dist(gen));
  return b;
}

template <class T>
::testing::AssertionResult same(const std::vector<T>& want, const std::vector<T>& got, const std::string& what) {
  if (want.size() != got.size()) return ::testing::AssertionFailure() << what << ": size " << got.size();
  for (std::size_t i = 0; i < want.size(); ++i)
    if (want[i] != got[i])
      return ::testing::AssertionFailure() << what << ": first difference at element " << i << " of " << want.size()
                                           << ": got " << +got[i] << ", want " << +want[i];
  return ::testing::AssertionSuccess();
}

std::vector<I8KernelTable> optimized_tables() {
  auto t = i8_kernel_tables();
  t.erase(t.begin());
  return t;
}

// Runs `run(table)` with the reference and with every optimized level for 1, 2 and 3 threads; compares outputs.
template <class T>
void check(const std::string& what, const std::function<std::vector<T>(const I8KernelTable&)>& run) {
  const I8KernelTable ref = i8_kernel_tables().front();
  const std::vector<T> want = run(ref);
  const int saved = num_threads();
  for (const I8KernelTable& level : optimized_tables()) {
    for (int threads : {1, 2, 3}) {
      set_num_threads(threads);
      EXPECT_TRUE(same(want, run(level), level.isa + " " + what + ", " + std::to_string(threads) + " threads"));
    }
  }
  set_num_threads(saved);
}

TEST(Int8Kernels, GemmMatchesReference) {
  const int sizes[][3] = {{1, 1, 1},   {3, 5, 7},     {8, 16, 4},   {17, 33, 15}, {31, 17, 65},
                          {64, 40, 150}, {5, 120, 784}, {2, 3, 1000}, {16, 196, 150}, {9, 64, 3}};
  for (const auto& sz : sizes) {
    const int m = sz[0], n = sz[1], k = sz[2];
    for (int mode = 0; mode < 8; ++mode) {
      const bool ta = mode & 1, tb = mode & 2, acc = mode & 4;
      const int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 1, ldc = n + 2;
      for (bool extreme : {false, true}) {
        if (extreme && mode != 0 && mode != 7) continue;  // the saturation check needs no transposes
        const I8 a = random_i8(static_cast<std::size_t>(ta ? k : m) * lda, 11 + mode, extreme);
        const I8 b = random_i8(static_cast<std::size_t>(tb ? n : k) * ldb, 20 + mode, extreme);
        const I32 c0 = [&] {
          I32 c(static_cast<std::size_t>(m) * ldc);
          for (std::size_t i = 0; i < c.size(); ++i) c[i] = static_cast<std::int32_t>(i * 7919 % 100000) - 50000;
          return c;
        }();
        std::ostringstream what;
        what << "gemm m=" << m << " n=" << n << " k=" << k << " ta=" << ta << " tb=" << tb << " acc=" << acc
             << (extreme ? " extreme" : "");
        check<std::int32_t>(what.str(), [&](const I8KernelTable& t) {
          I32 c = c0;
          t.gemm_i8(ta, tb, m, n, k, a.data(), lda, b.data(), ldb, acc, c.data(), ldc);
          return c;
        });
      }
    }
  }
}

TEST(Int8Kernels, Conv2dMatchesReference) {
  const Conv2dShape shapes[] = {{1, 1, 1, 1, 1, 1, 0},   {2, 3, 7, 5, 4, 3, 1},  {3, 6, 14, 14, 16, 5, 2},
                                {2, 1, 28, 28, 6, 5, 2}, {1, 2, 9, 17, 5, 3, 0}, {2, 5, 6, 6, 3, 5, 3},
                                {1, 3, 4, 4, 2, 5, 0},   {5, 2, 3, 33, 17, 3, 1}};
  for (const Conv2dShape& s : shapes) {
    // Random, +-127 (x = +127: the largest non-negative sums), and a random non-negative x (post-ReLU inputs, for
    // which the AVX2 forward takes its vpmaddubsw path).
    for (int mode : {0, 1, 2}) {
      const bool extreme = mode == 1;
      const long xs = static_cast<long>(s.n) * s.c_in * s.h * s.w, ws = static_cast<long>(s.c_out) * s.c_in * s.k * s.k;
      const long ys = static_cast<long>(s.n) * s.c_out * std::max(0, s.out_h()) * std::max(0, s.out_w());
      I8 x = random_i8(xs, 3, extreme);
      const I8 w = random_i8(ws, 5, extreme), dy = random_i8(ys, 7, extreme);
      if (mode == 2)
        for (auto& v : x) v = static_cast<std::int8_t>(v < 0 ? -v : v);
      std::ostringstream shape;
      shape << "n=" << s.n << " c_in=" << s.c_in << " " << s.h << "x" << s.w << " c_out=" << s.c_out << " k=" << s.k
            << " pad=" << s.pad << (mode == 1 ? " extreme" : mode == 2 ? " non-negative x" : "");
      check<std::int32_t>("conv2d_fwd " + shape.str(), [&](const I8KernelTable& t) {
        I32 y(ys, -1);
        t.conv2d_fwd_i8(s, x.data(), w.data(), y.data());
        return y;
      });
      check<std::int32_t>("conv2d_bwd_data " + shape.str(), [&](const I8KernelTable& t) {
        I32 dx(xs, -1);
        t.conv2d_bwd_data_i8(s, dy.data(), w.data(), dx.data());
        return dx;
      });
      check<std::int32_t>("conv2d_bwd_weight " + shape.str(), [&](const I8KernelTable& t) {
        I32 dw(ws, -1);
        t.conv2d_bwd_weight_i8(s, x.data(), dy.data(), dw.data());
        return dw;
      });
    }
  }
}

TEST(Int8Kernels, LinearMatchesReference) {
  const LinearShape shapes[] = {{1, 1, 1}, {3, 5, 7}, {64, 784, 120}, {33, 17, 40}, {100, 64, 64}, {7, 1024, 3},
                                {2, 3, 1024}};
  for (const LinearShape& s : shapes) {
    for (bool extreme : {false, true}) {
      const I8 x = random_i8(static_cast<std::size_t>(s.rows) * s.in, 1, extreme);
      const I8 w = random_i8(static_cast<std::size_t>(s.out) * s.in, 2, extreme);
      const I8 dy = random_i8(static_cast<std::size_t>(s.rows) * s.out, 3, extreme);
      std::ostringstream shape;
      shape << "rows=" << s.rows << " in=" << s.in << " out=" << s.out << (extreme ? " extreme" : "");
      check<std::int32_t>("linear_fwd " + shape.str(), [&](const I8KernelTable& t) {
        I32 y(static_cast<std::size_t>(s.rows) * s.out, -1);
        t.linear_fwd_i8(s, x.data(), w.data(), y.data());
        return y;
      });
      check<std::int32_t>("linear_bwd_data " + shape.str(), [&](const I8KernelTable& t) {
        I32 dx(static_cast<std::size_t>(s.rows) * s.in, -1);
        t.linear_bwd_data_i8(s, dy.data(), w.data(), dx.data());
        return dx;
      });
      check<std::int32_t>("linear_bwd_weight " + shape.str(), [&](const I8KernelTable& t) {
        I32 dw(static_cast<std::size_t>(s.out) * s.in, -1);
        t.linear_bwd_weight_i8(s, x.data(), dy.data(), dw.data());
        return dw;
      });
    }
  }
}

TEST(Int8Kernels, RequantizationMatchesReference) {
  std::mt19937 gen(17);
  std::uniform_int_distribution<std::int32_t> full(std::numeric_limits<std::int32_t>::min(),
                                                   std::numeric_limits<std::int32_t>::max());
  for (std::size_t n : {0u, 1u, 7u, 8u, 15u, 16u, 17u, 33u, 1000u}) {
    for (int bits : {4, 12, 31}) {
      I32 x(n);
      for (auto& v : x) v = full(gen) >> (31 - bits);
      if (n > 3) {
        x[1] = std::numeric_limits<std::int32_t>::min();
        x[2] = std::numeric_limits<std::int32_t>::max();
        x[3] = 0;
      }
      const std::string size = "n=" + std::to_string(n) + " bits=" + std::to_string(bits);
      check<std::uint32_t>("max_abs " + size, [&](const I8KernelTable& t) {
        return std::vector<std::uint32_t>{t.max_abs_i32(n, x.data())};
      });
      for (int s : {0, 1, 2, 3, 4, 7, 13, 31, 32}) {
        for (Rounding mode : {Rounding::nearest, Rounding::stochastic, Rounding::pseudo_stochastic}) {
          check<std::int8_t>("round_shift " + size + " s=" + std::to_string(s) + " " + rounding_name(mode),
                             [&](const I8KernelTable& t) {
                               I8 y(n, 99);
                               t.round_shift_i8(n, x.data(), s, mode, {{1, 2}, 3, 4}, y.data());
                               return y;
                             });
        }
      }
    }
  }
}

// A level without its ISA implementations would only test the reference; each level adds its own dense kernels.
TEST(Int8Kernels, TablesUseTheIsaImplementations) {
  const auto levels = i8_kernel_tables();
  for (std::size_t i = 1; i < levels.size(); ++i) {
    EXPECT_NE(levels[i].gemm_i8, levels[i - 1].gemm_i8) << levels[i].isa;
    EXPECT_NE(levels[i].conv2d_fwd_i8, levels[i - 1].conv2d_fwd_i8) << levels[i].isa;
    EXPECT_NE(levels[i].round_shift_i8, levels.front().round_shift_i8) << levels[i].isa;
  }
}

// On an x86_64 CPU with AVX-512 VNNI (this project's CI machine) or an aarch64 CPU with NEON, the levels exist.
TEST(Int8Dispatch, LevelsFollowCpuFeatures) {
  std::vector<std::string> names;
  for (const auto& t : i8_kernel_tables()) names.push_back(t.isa);
  ASSERT_FALSE(names.empty());
  EXPECT_EQ(names.front(), "ref");
#if defined(__aarch64__)
  EXPECT_NE(std::find(names.begin(), names.end(), "neon"), names.end());
  const char* expect = std::getenv("ELASTICZO_EXPECT_DOTPROD");
  if (expect != nullptr)
    EXPECT_EQ(std::find(names.begin(), names.end(), "neon_dotprod") != names.end(), std::string(expect) == "1");
#elif defined(__x86_64__)
  __builtin_cpu_init();
  EXPECT_EQ(std::find(names.begin(), names.end(), "avx2") != names.end(), __builtin_cpu_supports("avx2") != 0);
  EXPECT_EQ(std::find(names.begin(), names.end(), "avx512_vnni") != names.end(),
            __builtin_cpu_supports("avx512vnni") != 0 && __builtin_cpu_supports("avx512bw") != 0);
#endif
}

}  // namespace
}  // namespace ez
