// ReLU, axpy, 2-D and point max-pooling of every ISA against the reference, bit for bit: awkward sizes, negative
// values, signed zeros and NaN, ties inside pooling windows (the error must reach the first max), in-place ReLU,
// and 1 vs 3 threads.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "bit_compare.h"
#include "core/parallel.h"
#include "kernels/kernels.h"

namespace ez {
namespace {

using testing::same_bits;

const std::size_t kSizes[] = {1, 2, 3, 5, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 1000, 16389, 40000};

// Values in [-1, 1), sprinkled with +0, -0 and NaN.
std::vector<float> signed_values(std::size_t n, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    switch (gen() % 16) {
      case 0: v[i] = 0.f; break;
      case 1: v[i] = -0.f; break;
      case 2: v[i] = std::numeric_limits<float>::quiet_NaN(); break;
      default: v[i] = u(gen);
    }
  }
  return v;
}

// Few distinct values (-2 .. 2 and -0), so that pooling windows often hold several equal maxima.
std::vector<float> tied_values(std::size_t n, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    const int k = static_cast<int>(gen() % 6);
    v[i] = k == 5 ? -0.f : static_cast<float>(k - 2);
  }
  return v;
}

std::vector<std::string> simd_isas() {
  std::vector<std::string> out;
  for (const auto& isa : available_isas())
    if (isa != "ref") out.push_back(isa);
  return out;
}

// Runs `body` once per non-reference ISA with 1 and with 3 threads, restoring the thread count.
template <class Body>
void for_each_isa_and_thread_count(Body body) {
  const int saved = num_threads();
  for (const auto& isa : simd_isas()) {
    const KernelTable t = make_kernel_table(isa);
    for (const int threads : {1, 3}) {
      set_num_threads(threads);
      body(t, isa + " threads=" + std::to_string(threads));
    }
  }
  set_num_threads(saved);
}

TEST(Pointwise, ReluForwardOutOfPlaceAndInPlace) {
  for_each_isa_and_thread_count([](const KernelTable& t, const std::string& what) {
    for (const std::size_t n : kSizes) {
      const std::vector<float> x = signed_values(n, 11 + static_cast<std::uint32_t>(n));
      std::vector<float> want(n), got(n, 7.f);
      relu_fwd_f32_ref(n, x.data(), want.data());
      t.relu_fwd_f32(n, x.data(), got.data());
      ASSERT_TRUE(same_bits(want, got, what + " relu_fwd n=" + std::to_string(n) + " seed=" + std::to_string(11 + n)));
      std::vector<float> inplace = x;
      t.relu_fwd_f32(n, inplace.data(), inplace.data());
      ASSERT_TRUE(same_bits(want, inplace, what + " in-place relu_fwd n=" + std::to_string(n)));
    }
  });
}

TEST(Pointwise, ReluBackward) {
  for_each_isa_and_thread_count([](const KernelTable& t, const std::string& what) {
    for (const std::size_t n : kSizes) {
      std::vector<float> y = signed_values(n, 21 + static_cast<std::uint32_t>(n));
      relu_fwd_f32_ref(n, y.data(), y.data());  // a real ReLU output: >= 0, with zeros
      const std::vector<float> dy = signed_values(n, 31 + static_cast<std::uint32_t>(n));
      std::vector<float> want(n), got(n, 7.f);
      relu_bwd_f32_ref(n, y.data(), dy.data(), want.data());
      t.relu_bwd_f32(n, y.data(), dy.data(), got.data());
      ASSERT_TRUE(same_bits(want, got, what + " relu_bwd n=" + std::to_string(n) + " seed=" + std::to_string(21 + n)));
    }
  });
}

TEST(Pointwise, AxpyRoundsTheProductLikeTheReference) {
  for_each_isa_and_thread_count([](const KernelTable& t, const std::string& what) {
    for (const std::size_t n : kSizes)
      for (const float alpha : {-0.1f, 1.0f / 3.0f, 3.0e5f}) {
        const std::vector<float> x = signed_values(n, 41 + static_cast<std::uint32_t>(n));
        std::vector<float> want = signed_values(n, 51 + static_cast<std::uint32_t>(n)), got = want;
        axpy_f32_ref(n, alpha, x.data(), want.data());
        t.axpy_f32(n, alpha, x.data(), got.data());
        ASSERT_TRUE(same_bits(want, got, what + " axpy n=" + std::to_string(n) + " alpha=" + std::to_string(alpha)));
      }
  });
}

std::string str(const Pool2dShape& s) {
  return "n=" + std::to_string(s.n) + " c=" + std::to_string(s.c) + " h=" + std::to_string(s.h) +
         " w=" + std::to_string(s.w) + " k=" + std::to_string(s.k);
}

// Odd and even sizes, rows wider than every vector, LeNet's 28x28 and 14x14 (the first large enough to thread),
// and a 3x3 window that goes to the reference.
const Pool2dShape kPoolShapes[] = {{1, 1, 2, 2, 2},   {2, 3, 5, 7, 2},    {1, 2, 3, 67, 2},  {2, 2, 34, 66, 2},
                                   {8, 6, 28, 28, 2}, {4, 16, 14, 14, 2}, {1, 2, 9, 10, 3}, {1, 1, 1, 5, 2}};

TEST(Pooling, MaxPool2dForwardAndBackwardWithTies) {
  for_each_isa_and_thread_count([](const KernelTable& t, const std::string& what) {
    for (const Pool2dShape& s : kPoolShapes)
      for (const bool ties : {true, false}) {
        const std::size_t in = static_cast<std::size_t>(s.n) * s.c * s.h * s.w;
        const std::size_t out = static_cast<std::size_t>(s.n) * s.c * s.out_h() * s.out_w();
        const std::vector<float> x = ties ? tied_values(in, 61) : signed_values(in, 62);
        std::vector<float> y_want(out), y_got(out, 7.f);
        maxpool2d_fwd_f32_ref(s, x.data(), y_want.data());
        t.maxpool2d_fwd_f32(s, x.data(), y_got.data());
        const std::string where = what + " " + str(s) + (ties ? " tied values seed=61" : " signed values seed=62");
        ASSERT_TRUE(same_bits(y_want, y_got, "maxpool2d_fwd " + where));
        const std::vector<float> dy = signed_values(out, 63);
        std::vector<float> dx_want(in), dx_got(in, 7.f);
        maxpool2d_bwd_f32_ref(s, x.data(), y_want.data(), dy.data(), dx_want.data());
        t.maxpool2d_bwd_f32(s, x.data(), y_want.data(), dy.data(), dx_got.data());
        ASSERT_TRUE(same_bits(dx_want, dx_got, "maxpool2d_bwd " + where));
      }
  });
}

// The reference itself: a window of four equal maxima sends the whole error to its top-left element.
TEST(Pooling, MaxPool2dBackwardRoutesToTheFirstMaximum) {
  const Pool2dShape s{1, 1, 2, 4, 2};
  const std::vector<float> x = {1, 1, 0, 2, 1, 1, 2, 2};
  const std::vector<float> y = {1, 2}, dy = {5, 6};
  for (const auto& isa : available_isas()) {
    std::vector<float> dx(8, 7.f);
    make_kernel_table(isa).maxpool2d_bwd_f32(s, x.data(), y.data(), dy.data(), dx.data());
    EXPECT_TRUE(same_bits({5, 0, 0, 6, 0, 0, 0, 0}, dx, isa));
  }
}

std::string str(const PointPoolShape& s) {
  return "n=" + std::to_string(s.n) + " points=" + std::to_string(s.points) + " c=" + std::to_string(s.c);
}

// Channel counts around the vector widths and the 256-channel task blocks; the last shape is large enough to thread.
const PointPoolShape kPointShapes[] = {{1, 1, 1},  {2, 3, 5},    {2, 7, 17},   {3, 16, 33},
                                       {2, 5, 257}, {2, 9, 520}, {1, 1, 1024}, {4, 64, 200}};

TEST(Pooling, PointMaxPoolForwardAndBackwardWithTies) {
  for_each_isa_and_thread_count([](const KernelTable& t, const std::string& what) {
    for (const PointPoolShape& s : kPointShapes)
      for (const bool ties : {true, false}) {
        const std::size_t in = static_cast<std::size_t>(s.n) * s.points * s.c;
        const std::size_t out = static_cast<std::size_t>(s.n) * s.c;
        const std::vector<float> x = ties ? tied_values(in, 71) : signed_values(in, 72);
        std::vector<float> y_want(out), y_got(out, 7.f);
        point_maxpool_fwd_f32_ref(s, x.data(), y_want.data());
        t.point_maxpool_fwd_f32(s, x.data(), y_got.data());
        const std::string where = what + " " + str(s) + (ties ? " tied values seed=71" : " signed values seed=72");
        ASSERT_TRUE(same_bits(y_want, y_got, "point_maxpool_fwd " + where));
        const std::vector<float> dy = signed_values(out, 73);
        std::vector<float> dx_want(in), dx_got(in, 7.f);
        point_maxpool_bwd_f32_ref(s, x.data(), y_want.data(), dy.data(), dx_want.data());
        t.point_maxpool_bwd_f32(s, x.data(), y_want.data(), dy.data(), dx_got.data());
        ASSERT_TRUE(same_bits(dx_want, dx_got, "point_maxpool_bwd " + where));
      }
  });
}

}  // namespace
}  // namespace ez
