// Optimized dense FP32 kernels (gemm, conv2d, linear) of every available ISA against the scalar references, on
// awkward sizes, and bit-identical across 1, 2 and 3 threads.
// Tolerance: both results are sums of the same K products, each within gamma_K * sum|terms| of the exact value
// (gamma_K ~ K * 2^-24), so they may differ by 2 (K + 2) 2^-24 * sum|terms|; sum|terms| is the reference run
// on the absolute values of the inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/parallel.h"
#include "kernels/kernels.h"

namespace ez {
namespace {

using Buf = std::vector<float>;
// Runs one kernel of table `t` on the case's inputs (their absolute values when `magnitude`), returns its output.
using KernelRun = std::function<Buf(const KernelTable& t, bool magnitude)>;

Buf random_buf(std::size_t n, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  Buf b(n);
  for (float& v : b) v = dist(gen);
  return b;
}

// The buffer itself, or its absolute values for the magnitude run.
const float* pick(const Buf& b, bool magnitude, Buf& scratch) {
  if (!magnitude) return b.data();
  scratch.resize(b.size());
  for (std::size_t i = 0; i < b.size(); ++i) scratch[i] = std::fabs(b[i]);
  return scratch.data();
}

// A copy of an output's initial contents (absolute values for the magnitude run).
Buf initial(const Buf& b, bool magnitude) {
  Buf out = b;
  if (magnitude) {
    for (float& v : out) v = std::fabs(v);
  }
  return out;
}

std::vector<std::string> optimized_isas() {
  std::vector<std::string> out;
  for (const auto& isa : available_isas()) {
    if (isa != "ref") out.push_back(isa);
  }
  return out;
}

class DenseKernels : public ::testing::TestWithParam<std::string> {
 protected:
  void expect_matches_ref(const std::string& what, long reduction, const KernelRun& run) {
    const KernelTable ref = make_kernel_table("ref"), opt = make_kernel_table(GetParam());
    const Buf want = run(ref, false), mag = run(ref, true), got = run(opt, false);
    ASSERT_EQ(got.size(), want.size());
    const double unit = 2.0 * (reduction + 2) * std::ldexp(1.0, -24);
    for (std::size_t i = 0; i < got.size(); ++i) {
      const double tol = unit * mag[i];
      if (!(std::fabs(static_cast<double>(got[i]) - want[i]) <= tol)) {
        ADD_FAILURE() << GetParam() << " " << what << ": first difference at element " << i << ": got " << got[i]
                      << ", reference " << want[i] << ", tolerance " << tol;
        return;
      }
    }
  }

  void expect_thread_invariant(const std::string& what, const KernelRun& run) {
    const KernelTable opt = make_kernel_table(GetParam());
    const int saved = num_threads();
    std::vector<Buf> outs;
    for (int threads : {1, 2, 3}) {
      set_num_threads(threads);
      outs.push_back(run(opt, false));
    }
    set_num_threads(saved);
    for (std::size_t t = 1; t < outs.size(); ++t) {
      ASSERT_EQ(outs[t].size(), outs[0].size());
      for (std::size_t i = 0; i < outs[0].size(); ++i) {
        if (std::memcmp(&outs[t][i], &outs[0][i], sizeof(float)) != 0) {
          ADD_FAILURE() << GetParam() << " " << what << ": " << t + 1 << " threads differ from 1 at element " << i
                        << ": " << outs[t][i] << " vs " << outs[0][i];
          return;
        }
      }
    }
  }
};

TEST_P(DenseKernels, TableUsesTheIsaImplementation) {
  const KernelTable t = make_kernel_table(GetParam());
  for (const auto& [name, isa] : t.entries()) {
    if (name == "gemm_f32" || name.rfind("conv2d_", 0) == 0 || name.rfind("linear_", 0) == 0) {
      EXPECT_NE(isa, "ref") << name << " has no " << GetParam() << " implementation";
    }
  }
}

struct GemmCase {
  bool ta, tb;
  int m, n, k;
};

// op(A) and op(B) stored with row strides 3 and 1 wider than needed; C's padding columns must stay untouched.
KernelRun gemm_case(const GemmCase& g, bool accumulate, std::uint32_t seed) {
  const int lda = (g.ta ? g.m : g.k) + 3, ldb = (g.tb ? g.k : g.n) + 1, ldc = g.n + 2;
  const Buf a = random_buf(static_cast<std::size_t>(g.ta ? g.k : g.m) * lda, seed);
  const Buf b = random_buf(static_cast<std::size_t>(g.tb ? g.n : g.k) * ldb, seed + 1);
  const Buf c0 = random_buf(static_cast<std::size_t>(g.m) * ldc, seed + 2);
  return [=](const KernelTable& t, bool mag) {
    Buf sa, sb, c = initial(c0, mag);
    t.gemm_f32(g.ta, g.tb, g.m, g.n, g.k, pick(a, mag, sa), lda, pick(b, mag, sb), ldb, accumulate, c.data(), ldc);
    return c;
  };
}

std::string describe(const GemmCase& g, bool accumulate, std::uint32_t seed) {
  std::ostringstream s;
  s << "gemm ta=" << g.ta << " tb=" << g.tb << " m=" << g.m << " n=" << g.n << " k=" << g.k
    << " accumulate=" << accumulate << " seed=" << seed;
  return s.str();
}

TEST_P(DenseKernels, GemmMatchesReference) {
  // Edges of every tile size; k = 300 spans two reduction blocks, n = 1030 two column blocks, m = 400 packs B,
  // and m small against k takes the dot-tile path when B is transposed.
  const std::vector<std::array<int, 3>> sizes = {{1, 1, 1},    {3, 7, 5},    {7, 17, 15}, {16, 16, 16},
                                                 {17, 33, 3},  {33, 15, 100}, {5, 100, 17}, {100, 3, 33},
                                                 {1, 65, 300}, {3, 1030, 5},  {400, 17, 33}, {2, 3, 200}};
  std::uint32_t seed = 100;
  for (const auto& [m, n, k] : sizes) {
    for (int trans = 0; trans < 4; ++trans) {
      for (bool accumulate : {false, true}) {
        const GemmCase g{(trans & 1) != 0, (trans & 2) != 0, m, n, k};
        expect_matches_ref(describe(g, accumulate, seed), k, gemm_case(g, accumulate, seed));
        seed += 3;
      }
    }
  }
}

TEST_P(DenseKernels, GemmIsThreadInvariant) {
  for (int trans = 0; trans < 4; ++trans) {
    for (const auto& [m, n, k] : std::vector<std::array<int, 3>>{{150, 70, 90}, {9, 40, 400}}) {
      const GemmCase g{(trans & 1) != 0, (trans & 2) != 0, m, n, k};
      expect_thread_invariant(describe(g, true, 7), gemm_case(g, true, 7));
    }
  }
}

// The three kernels of a layer (forward, backward data, backward weight) on one random case. `flag` is the bias
// (forward) or accumulate (backward weight); dbias is given on odd seeds, so null and non-null are both covered.
struct LayerRuns {
  KernelRun fwd, bwd_data, bwd_weight;
};

struct LayerSizes {
  std::size_t in, out, weights, bias;
};

template <class Shape, class Fwd, class BwdData, class BwdWeight>
LayerRuns layer_runs(const Shape& s, const LayerSizes& n, bool flag, std::uint32_t seed, Fwd KernelTable::*fwd,
                     BwdData KernelTable::*bwd_data, BwdWeight KernelTable::*bwd_weight) {
  const Buf x = random_buf(n.in, seed), w = random_buf(n.weights, seed + 1), dy = random_buf(n.out, seed + 2);
  const Buf bias = random_buf(n.bias, seed + 3), y0 = random_buf(n.out, seed + 4), dx0 = random_buf(n.in, seed + 5);
  const Buf dwb0 = random_buf(n.weights + n.bias, seed + 6);
  LayerRuns r;
  r.fwd = [=](const KernelTable& t, bool mag) {
    Buf sx, sw, sb, y = y0;
    (t.*fwd)(s, pick(x, mag, sx), pick(w, mag, sw), flag ? pick(bias, mag, sb) : nullptr, y.data());
    return y;
  };
  r.bwd_data = [=](const KernelTable& t, bool mag) {
    Buf sdy, sw, dx = dx0;
    (t.*bwd_data)(s, pick(dy, mag, sdy), pick(w, mag, sw), dx.data());
    return dx;
  };
  r.bwd_weight = [=](const KernelTable& t, bool mag) {
    Buf sx, sdy, dwb = initial(dwb0, mag);
    float* dbias = seed % 2 ? dwb.data() + n.weights : nullptr;
    (t.*bwd_weight)(s, pick(x, mag, sx), pick(dy, mag, sdy), flag, dwb.data(), dbias);
    return dwb;
  };
  return r;
}

std::string describe(const Conv2dShape& s, const char* op, bool flag, std::uint32_t seed) {
  std::ostringstream o;
  o << op << " n=" << s.n << " c_in=" << s.c_in << " h=" << s.h << " w=" << s.w << " c_out=" << s.c_out
    << " k=" << s.k << " pad=" << s.pad << " flag=" << flag << " seed=" << seed;
  return o.str();
}

LayerRuns conv_runs(const Conv2dShape& s, bool flag, std::uint32_t seed) {
  const std::size_t in = static_cast<std::size_t>(s.n) * s.c_in * s.h * s.w;
  const std::size_t out = static_cast<std::size_t>(s.n) * s.c_out * std::max(0, s.out_h()) * std::max(0, s.out_w());
  const std::size_t wn = static_cast<std::size_t>(s.c_out) * s.c_in * s.k * s.k;
  return layer_runs(s, {in, out, wn, static_cast<std::size_t>(s.c_out)}, flag, seed, &KernelTable::conv2d_fwd_f32,
                    &KernelTable::conv2d_bwd_data_f32, &KernelTable::conv2d_bwd_weight_f32);
}

TEST_P(DenseKernels, Conv2dMatchesReference) {
  // LeNet-5's conv1 and conv2, k = 1 with padding (the flipped kernel of backward data then crops),
  // a kernel larger than the image, and an empty output.
  const std::vector<Conv2dShape> shapes = {{1, 1, 5, 5, 1, 1, 0},   {3, 2, 7, 5, 3, 3, 1},  {2, 3, 8, 9, 5, 5, 2},
                                           {1, 1, 28, 28, 6, 5, 2}, {2, 6, 14, 14, 16, 5, 2}, {3, 4, 6, 7, 7, 3, 0},
                                           {2, 5, 9, 4, 4, 1, 1},   {1, 2, 3, 3, 2, 5, 2},  {1, 17, 5, 3, 2, 3, 2},
                                           {2, 3, 4, 4, 2, 5, 0}};
  std::uint32_t seed = 500;
  for (const auto& s : shapes) {
    const long taps = static_cast<long>(s.c_in) * s.k * s.k;
    const long positions = static_cast<long>(s.n) * std::max(0, s.out_h()) * std::max(0, s.out_w());
    for (bool flag : {false, true}) {
      for (std::uint32_t variant = 0; variant < 2; ++variant, ++seed) {
        const LayerRuns r = conv_runs(s, flag, seed);
        expect_matches_ref(describe(s, "conv2d_fwd", flag, seed), taps, r.fwd);
        expect_matches_ref(describe(s, "conv2d_bwd_data", flag, seed), static_cast<long>(s.c_out) * s.k * s.k,
                           r.bwd_data);
        expect_matches_ref(describe(s, "conv2d_bwd_weight", flag, seed), positions, r.bwd_weight);
      }
    }
  }
}

TEST_P(DenseKernels, Conv2dIsThreadInvariant) {
  // The second shape needs two chunks of samples in backward weight.
  for (const Conv2dShape& s : {Conv2dShape{5, 3, 13, 11, 7, 3, 1}, Conv2dShape{17, 8, 30, 30, 8, 3, 1}}) {
    const LayerRuns r = conv_runs(s, true, 9);
    expect_thread_invariant(describe(s, "conv2d_fwd", true, 9), r.fwd);
    expect_thread_invariant(describe(s, "conv2d_bwd_data", true, 9), r.bwd_data);
    expect_thread_invariant(describe(s, "conv2d_bwd_weight", true, 9), r.bwd_weight);
  }
}

std::string describe(const LinearShape& s, const char* op, bool flag, std::uint32_t seed) {
  std::ostringstream o;
  o << op << " rows=" << s.rows << " in=" << s.in << " out=" << s.out << " flag=" << flag << " seed=" << seed;
  return o.str();
}

LayerRuns linear_runs(const LinearShape& s, bool flag, std::uint32_t seed) {
  const std::size_t rows = static_cast<std::size_t>(s.rows), wn = static_cast<std::size_t>(s.out) * s.in;
  return layer_runs(s, {rows * s.in, rows * s.out, wn, static_cast<std::size_t>(s.out)}, flag, seed,
                    &KernelTable::linear_fwd_f32, &KernelTable::linear_bwd_data_f32,
                    &KernelTable::linear_bwd_weight_f32);
}

TEST_P(DenseKernels, LinearMatchesReference) {
  // in = 300 with few rows takes the dot-tile forward; rows = 400 packs the weights.
  const std::vector<LinearShape> shapes = {{1, 1, 1},    {3, 7, 15},   {7, 16, 17},  {17, 33, 3},
                                           {33, 100, 16}, {100, 3, 7},  {16, 17, 33}, {1, 100, 100},
                                           {5, 300, 10},  {400, 33, 17}, {15, 1, 100}};
  std::uint32_t seed = 900;
  for (const auto& s : shapes) {
    for (bool flag : {false, true}) {
      for (std::uint32_t variant = 0; variant < 2; ++variant, ++seed) {
        const LayerRuns r = linear_runs(s, flag, seed);
        expect_matches_ref(describe(s, "linear_fwd", flag, seed), s.in, r.fwd);
        expect_matches_ref(describe(s, "linear_bwd_data", flag, seed), s.out, r.bwd_data);
        expect_matches_ref(describe(s, "linear_bwd_weight", flag, seed), s.rows, r.bwd_weight);
      }
    }
  }
}

TEST_P(DenseKernels, LinearIsThreadInvariant) {
  for (const LinearShape& s : {LinearShape{64, 120, 84}, LinearShape{300, 40, 50}, LinearShape{6, 500, 70}}) {
    const LayerRuns r = linear_runs(s, true, 11);
    expect_thread_invariant(describe(s, "linear_fwd", true, 11), r.fwd);
    expect_thread_invariant(describe(s, "linear_bwd_data", true, 11), r.bwd_data);
    expect_thread_invariant(describe(s, "linear_bwd_weight", true, 11), r.bwd_weight);
  }
}

INSTANTIATE_TEST_SUITE_P(Isa, DenseKernels, ::testing::ValuesIn(optimized_isas()),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

}  // namespace
}  // namespace ez
