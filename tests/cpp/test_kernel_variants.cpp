// Every optimized implementation listed in kernels.inc against the scalar reference, on awkward sizes, and every
// kernel (reference and optimized) bit-identical for 1, 2 and 3 threads; one binary checks the SDOT kernels when run
// as a Cortex-A76 and the ARMv8.0 ones as a Cortex-A53. Nothing here names an implementation: the
// instances come from kernel_variants(), and each kernel of kernels.inc must have its cases_<name>() below (a new
// kernel without cases does not compile).
// Comparison, as kernels.inc says per kernel: `exact` bit for bit (NaN and signed zeros included); `rounded`: both
// results are sums of the same K products, each within gamma_K * sum|terms| of the exact value (gamma_K ~ K 2^-24),
// so they may differ by 2 (K + 2) 2^-24 * sum|terms|, where sum|terms| is the reference run on absolute values.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bit_compare.h"
#include "core/parallel.h"
#include "kernels/kernels.h"
#include "rng/philox.h"

namespace ez {
namespace {

using Buf = std::vector<float>;  // a kernel's outputs; an integer kernel's hold each value's int32 bits (ints())

// One run of a kernel on fixed inputs: the outputs of table `t`'s implementation, on the absolute values of the
// inputs when `magnitude` (only `rounded` kernels are asked for that).
struct KernelCase {
  std::string what;  // shape and seed, for the failure message
  long reduction;    // terms per output sum (`rounded` tolerance); 0 for `exact` kernels
  std::function<Buf(const KernelTable& t, bool magnitude)> run;
  bool integer = false;  // the outputs are integers stored by ints(): failures print them as integers
};

// Integer outputs, one value per slot as the bits of its int32 (exact for every int8, int32 and uint32 value).
template <class T>
Buf ints(const std::vector<T>& v) {
  Buf out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    const std::int32_t x = static_cast<std::int32_t>(v[i]);
    std::memcpy(&out[i], &x, sizeof x);
  }
  return out;
}

::testing::AssertionResult same_ints(const Buf& want, const Buf& got, const std::string& what) {
  if (want.size() != got.size())
    return ::testing::AssertionFailure() << what << ": size " << got.size() << " != " << want.size();
  for (std::size_t i = 0; i < want.size(); ++i) {
    std::int32_t w, g;
    std::memcpy(&w, &want[i], sizeof w);
    std::memcpy(&g, &got[i], sizeof g);
    if (w != g)
      return ::testing::AssertionFailure() << what << ": first difference at element " << i << " of " << want.size()
                                           << ": got " << g << ", want " << w;
  }
  return ::testing::AssertionSuccess();
}
using Cases = std::vector<KernelCase>;

Buf random_buf(std::size_t n, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  Buf b(n);
  for (float& v : b) v = dist(gen);
  return b;
}

// Values in [-1, 1), sprinkled with +0, -0 and NaN.
Buf signed_values(std::size_t n, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  Buf v(n);
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
Buf tied_values(std::size_t n, std::uint32_t seed) {
  std::mt19937 gen(seed);
  Buf v(n);
  for (std::size_t i = 0; i < n; ++i) {
    const int k = static_cast<int>(gen() % 6);
    v[i] = k == 5 ? -0.f : static_cast<float>(k - 2);
  }
  return v;
}

// The buffer itself, or its absolute values for the magnitude run.
const float* pick(const Buf& b, bool magnitude, Buf& scratch) {
  if (!magnitude) return b.data();
  scratch.resize(b.size());
  for (std::size_t i = 0; i < b.size(); ++i) scratch[i] = std::fabs(b[i]);
  return scratch.data();
}

Buf initial(const Buf& b, bool magnitude) {
  Buf out = b;
  if (magnitude)
    for (float& v : out) v = std::fabs(v);
  return out;
}

// ---- dense kernels: gemm, conv2d, linear ----

const std::vector<std::array<int, 3>> kGemmSizes = {
    // Edges of every tile size; k = 300 spans two reduction blocks, n = 1030 two column blocks, m = 400 packs B,
    // m small against k takes the dot-tile path when B is transposed; the last two need several threads' chunks.
    // m > 288 (3 x 96) makes broadcasting tiles read A's rows in place: {301, 35, 300} across two reduction blocks.
    {1, 1, 1},   {3, 7, 5},     {7, 17, 15},  {16, 16, 16}, {17, 33, 3},   {33, 15, 100}, {5, 100, 17},
    {100, 3, 33}, {1, 65, 300}, {3, 1030, 5}, {400, 17, 33}, {2, 3, 200}, {150, 70, 90}, {9, 40, 400},
    {301, 35, 300}};

Cases cases_gemm_f32() {
  Cases out;
  std::uint32_t seed = 100;
  for (const auto& [m, n, k] : kGemmSizes)
    for (int trans = 0; trans < 4; ++trans)
      for (bool accumulate : {false, true}) {
        const bool ta = trans & 1, tb = trans & 2;
        // op(A) and op(B) with row strides 3 and 1 wider than needed; C's padding columns must stay untouched.
        const int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 1, ldc = n + 2;
        const Buf a = random_buf(static_cast<std::size_t>(ta ? k : m) * lda, seed);
        const Buf b = random_buf(static_cast<std::size_t>(tb ? n : k) * ldb, seed + 1);
        const Buf c0 = random_buf(static_cast<std::size_t>(m) * ldc, seed + 2);
        std::ostringstream s;
        s << "ta=" << ta << " tb=" << tb << " m=" << m << " n=" << n << " k=" << k << " accumulate=" << accumulate
          << " seed=" << seed;
        out.push_back({s.str(), k, [=, m = m, n = n, k = k](const KernelTable& t, bool mag) {
                         Buf sa, sb, c = initial(c0, mag);
                         t.gemm_f32(ta, tb, m, n, k, pick(a, mag, sa), lda, pick(b, mag, sb), ldb, accumulate,
                                    c.data(), ldc);
                         return c;
                       }});
        seed += 3;
      }
  return out;
}

// LeNet-5's conv1 and conv2, k = 1 with padding (the flipped kernel of backward data then crops), a kernel larger
// than the image, an empty output, and two shapes that need several chunks of samples per thread.
const std::vector<Conv2dShape> kConvShapes = {
    {1, 1, 5, 5, 1, 1, 0},    {3, 2, 7, 5, 3, 3, 1}, {2, 3, 8, 9, 5, 5, 2}, {1, 1, 28, 28, 6, 5, 2},
    {2, 6, 14, 14, 16, 5, 2}, {3, 4, 6, 7, 7, 3, 0}, {2, 5, 9, 4, 4, 1, 1}, {1, 2, 3, 3, 2, 5, 2},
    {1, 17, 5, 3, 2, 3, 2},   {2, 3, 4, 4, 2, 5, 0}, {5, 3, 13, 11, 7, 3, 1}, {17, 8, 30, 30, 8, 3, 1},
    // c_out a multiple of 16 with rows that are not: channel tiles (runs of 9 + 8, 11 x 3, 1 position; backward
    // data of c_in 16 is a forward with 16 output channels); rows of 16 keep the row tiles.
    {2, 3, 9, 17, 16, 3, 1},  {1, 2, 5, 35, 32, 3, 0}, {3, 1, 4, 1, 16, 1, 0}, {2, 16, 7, 7, 3, 3, 1},
    {2, 2, 6, 16, 16, 3, 1}};

const std::vector<LinearShape> kLinearShapes = {
    // in = 300 with few rows takes the dot-tile forward; rows = 400 packs the weights; the last three thread.
    // rows > 288 read the input's rows in place (broadcasting tiles); {350, 300, 21} across two reduction blocks.
    {1, 1, 1},  {3, 7, 15},   {7, 16, 17}, {17, 33, 3},   {33, 100, 16}, {100, 3, 7},  {16, 17, 33},
    {1, 100, 100}, {5, 300, 10}, {400, 33, 17}, {15, 1, 100}, {64, 120, 84}, {300, 40, 50}, {6, 500, 70},
    {350, 300, 21}};

std::string str(const Conv2dShape& s) {
  std::ostringstream o;
  o << "n=" << s.n << " c_in=" << s.c_in << " h=" << s.h << " w=" << s.w << " c_out=" << s.c_out << " k=" << s.k
    << " pad=" << s.pad;
  return o.str();
}
std::string str(const LinearShape& s) {
  return "rows=" + std::to_string(s.rows) + " in=" + std::to_string(s.in) + " out=" + std::to_string(s.out);
}

struct LayerSizes {
  std::size_t in, out, weights, bias;
  long fwd_terms, bwd_data_terms, bwd_weight_terms;
};

LayerSizes sizes(const Conv2dShape& s) {
  const std::size_t oh = std::max(0, s.out_h()), ow = std::max(0, s.out_w());
  return {static_cast<std::size_t>(s.n) * s.c_in * s.h * s.w, static_cast<std::size_t>(s.n) * s.c_out * oh * ow,
          static_cast<std::size_t>(s.c_out) * s.c_in * s.k * s.k, static_cast<std::size_t>(s.c_out),
          static_cast<long>(s.c_in) * s.k * s.k, static_cast<long>(s.c_out) * s.k * s.k,
          static_cast<long>(s.n * oh * ow)};
}
LayerSizes sizes(const LinearShape& s) {
  const std::size_t rows = s.rows;
  return {rows * s.in, rows * s.out, static_cast<std::size_t>(s.out) * s.in, static_cast<std::size_t>(s.out),
          s.in, s.out, s.rows};
}

enum class LayerOp { fwd, bwd_data, bwd_weight };

// One op of a layer (forward, backward data or backward weight) on every shape, with `flag` (bias for forward,
// accumulate for backward weight) off and on, two seeds each; dbias is given on odd seeds.
template <class Shape, class Fwd, class BwdData, class BwdWeight>
Cases layer_cases(const std::vector<Shape>& shapes, LayerOp op, std::uint32_t seed, Fwd KernelTable::*fwd,
                  BwdData KernelTable::*bwd_data, BwdWeight KernelTable::*bwd_weight) {
  Cases out;
  for (const Shape& s : shapes)
    for (bool flag : {false, true})
      for (int variant = 0; variant < 2; ++variant, ++seed) {
        const LayerSizes n = sizes(s);
        const Buf x = random_buf(n.in, seed), w = random_buf(n.weights, seed + 1), dy = random_buf(n.out, seed + 2);
        const Buf bias = random_buf(n.bias, seed + 3), y0 = random_buf(n.out, seed + 4);
        const Buf dx0 = random_buf(n.in, seed + 5), dwb0 = random_buf(n.weights + n.bias, seed + 6);
        const std::string what = str(s) + " flag=" + std::to_string(flag) + " seed=" + std::to_string(seed);
        if (op == LayerOp::fwd)
          out.push_back({what, n.fwd_terms, [=](const KernelTable& t, bool mag) {
                           Buf sx, sw, sb, y = y0;
                           (t.*fwd)(s, pick(x, mag, sx), pick(w, mag, sw), flag ? pick(bias, mag, sb) : nullptr,
                                    y.data());
                           return y;
                         }});
        if (op == LayerOp::bwd_data)
          out.push_back({what, n.bwd_data_terms, [=](const KernelTable& t, bool mag) {
                           Buf sdy, sw, dx = dx0;
                           (t.*bwd_data)(s, pick(dy, mag, sdy), pick(w, mag, sw), dx.data());
                           return dx;
                         }});
        if (op == LayerOp::bwd_weight)
          out.push_back({what, n.bwd_weight_terms, [=](const KernelTable& t, bool mag) {
                           Buf sx, sdy, dwb = initial(dwb0, mag);
                           float* dbias = seed % 2 ? dwb.data() + n.weights : nullptr;
                           (t.*bwd_weight)(s, pick(x, mag, sx), pick(dy, mag, sdy), flag, dwb.data(), dbias);
                           return dwb;
                         }});
      }
  return out;
}

Cases conv_cases(LayerOp op) {
  return layer_cases(kConvShapes, op, 500, &KernelTable::conv2d_fwd_f32, &KernelTable::conv2d_bwd_data_f32,
                     &KernelTable::conv2d_bwd_weight_f32);
}
Cases linear_cases(LayerOp op) {
  return layer_cases(kLinearShapes, op, 900, &KernelTable::linear_fwd_f32, &KernelTable::linear_bwd_data_f32,
                     &KernelTable::linear_bwd_weight_f32);
}
Cases cases_conv2d_fwd_f32() { return conv_cases(LayerOp::fwd); }
Cases cases_conv2d_bwd_data_f32() { return conv_cases(LayerOp::bwd_data); }
Cases cases_conv2d_bwd_weight_f32() { return conv_cases(LayerOp::bwd_weight); }
Cases cases_linear_fwd_f32() { return linear_cases(LayerOp::fwd); }
Cases cases_linear_bwd_data_f32() { return linear_cases(LayerOp::bwd_data); }
Cases cases_linear_bwd_weight_f32() { return linear_cases(LayerOp::bwd_weight); }

// Per-point Linear + ReLU + max: (samples, points, in, out). Several MC-point chunks with a ragged last one,
// ragged last panels, in = 300 (two reduction blocks), few rows against in (the dot-tile strategy), a 7-sample
// batch split into column groups, a sample of one point.
const std::vector<std::array<int, 4>> kPointLinearShapes = {
    {1, 1, 1, 1},   {2, 3, 7, 15},  {3, 17, 5, 33},  {2, 100, 64, 65}, {1, 200, 300, 17},
    {4, 2, 200, 5}, {5, 33, 3, 64}, {1, 96, 16, 64}, {7, 50, 33, 130}, {2, 1, 9, 40}};

Cases cases_point_linear_relu_max_f32() {
  Cases out;
  std::uint32_t seed = 1300;
  for (const auto& [n, points, in, outs] : kPointLinearShapes)
    for (bool bias : {false, true}) {
      const LinearShape s{n * points, in, outs};
      const Buf x = random_buf(static_cast<std::size_t>(s.rows) * in, seed);
      const Buf w = random_buf(static_cast<std::size_t>(outs) * in, seed + 1);
      const Buf b = random_buf(static_cast<std::size_t>(outs), seed + 2);
      const std::string what = str(s) + " points=" + std::to_string(points) + " bias=" + std::to_string(bias) +
                               " seed=" + std::to_string(seed);
      out.push_back({what, in, [=, points = points](const KernelTable& t, bool mag) {
                       Buf sx, sw, sb, y(static_cast<std::size_t>(n) * s.out + 1, 7.f);  // the last stays 7
                       t.point_linear_relu_max_f32(s, points, pick(x, mag, sx), pick(w, mag, sw),
                                                   bias ? pick(b, mag, sb) : nullptr, y.data());
                       return y;
                     }});
      seed += 3;
    }
  return out;
}

// ---- elementwise kernels ----

const std::size_t kSizes[] = {1, 2, 3, 5, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 1000, 16389, 40000};

Cases cases_relu_fwd_f32() {
  Cases out;
  for (const std::size_t n : kSizes) {
    const std::uint32_t seed = 11 + static_cast<std::uint32_t>(n);
    const Buf x = signed_values(n, seed);
    const std::string what = "n=" + std::to_string(n) + " seed=" + std::to_string(seed);
    out.push_back({what, 0, [=](const KernelTable& t, bool) {
                     Buf y(n, 7.f);
                     t.relu_fwd_f32(n, x.data(), y.data());
                     return y;
                   }});
    out.push_back({what + " in place", 0, [=](const KernelTable& t, bool) {
                     Buf y = x;
                     t.relu_fwd_f32(n, y.data(), y.data());
                     return y;
                   }});
  }
  return out;
}

Cases cases_relu_bwd_f32() {
  Cases out;
  for (const std::size_t n : kSizes) {
    const std::uint32_t seed = 21 + static_cast<std::uint32_t>(n);
    Buf y = signed_values(n, seed);
    relu_fwd_f32_ref(n, y.data(), y.data());  // a real ReLU output: >= 0, with zeros
    const Buf dy = signed_values(n, seed + 10);
    out.push_back({"n=" + std::to_string(n) + " seed=" + std::to_string(seed), 0, [=](const KernelTable& t, bool) {
                     Buf dx(n, 7.f);
                     t.relu_bwd_f32(n, y.data(), dy.data(), dx.data());
                     return dx;
                   }});
  }
  return out;
}

// The product alpha * x is rounded before the add, as in the reference (no FMA contraction).
Cases cases_axpy_f32() {
  Cases out;
  for (const std::size_t n : kSizes)
    for (const float alpha : {-0.1f, 1.0f / 3.0f, 3.0e5f}) {
      const std::uint32_t seed = 41 + static_cast<std::uint32_t>(n);
      const Buf x = signed_values(n, seed), y0 = signed_values(n, seed + 10);
      out.push_back({"n=" + std::to_string(n) + " alpha=" + std::to_string(alpha) + " seed=" + std::to_string(seed),
                     0, [=](const KernelTable& t, bool) {
                       Buf y = y0;
                       t.axpy_f32(n, alpha, x.data(), y.data());
                       return y;
                     }});
    }
  return out;
}

// Offsets at odd elements, inside a block, across the 2^32-block wrap of the low counter word, and far out; in place
// for odd sizes, else into an output that starts as NaN (every element must be written, theta left alone).
Cases cases_zo_axpy_gaussian_f32() {
  const std::uint64_t offsets[] = {0, 1, 2, 3, 5, 13, 31, 64, 4 * 0xfffffffdull + 1, 4 * 0xffffffffull - 6,
                                   0x123456789abcull};
  const std::size_t sizes[] = {1, 2, 3, 5, 7, 8, 15, 16, 17, 31, 33, 63, 64, 65, 127, 129, 1000, 5003, 61706};
  const PhiloxKey key = step_key(99, 5);
  Cases out;
  for (const std::uint64_t offset : offsets)
    for (const std::size_t n : sizes) {
      if (n > 10000 && offset != 3) continue;  // the LeNet-sized run (several threads' chunks) once is enough
      out.push_back({"n=" + std::to_string(n) + " offset=" + std::to_string(offset) + " seed=99 step=5", 0,
                     [=](const KernelTable& t, bool) {
                       Buf theta(n), out(n, std::numeric_limits<float>::quiet_NaN());
                       for (std::size_t i = 0; i < n; ++i)
                         theta[i] = 0.01f * static_cast<float>(static_cast<int>(i % 201) - 100);
                       float* dst = n % 2 ? theta.data() : out.data();
                       t.zo_axpy_gaussian_f32(n, 0.001f, key, 4, offset, theta.data(), dst);
                       if (dst == out.data()) out.insert(out.end(), theta.begin(), theta.end());  // theta unmoved
                       return n % 2 ? theta : out;
                     }});
    }
  return out;
}

// The sparse int8 perturbation: weights crowded at the clip bounds (and every value in between), the same sizes and
// offsets as the Gaussian one, each range r, sparsity (none, the paper's 0.33, all zeroed), shift and sign; in place
// for odd sizes.
Cases cases_zo_perturb_i8() {
  const std::uint64_t offsets[] = {0, 1, 3, 31, 64, 4 * 0xfffffffdull + 1, 4 * 0xffffffffull - 6, 0x123456789abcull};
  const std::size_t sizes[] = {1, 2, 3, 5, 15, 16, 17, 31, 33, 63, 64, 65, 127, 129, 1000, 5003, 94080};
  const struct {
    int r;
    std::uint32_t threshold;
    int sign, shift;
  } params[] = {{1, 0, 1, 0}, {3, 21627, -1, 0}, {7, 32768, -1, 2}, {127, 21627, 1, 6}, {127, 65536, 1, 0},
                {15, 58982, -1, 3}, {100, 1, 1, 7}, {2, 65535, -1, 1}};
  Cases out;
  std::uint32_t stream = 0;
  for (const std::uint64_t offset : offsets)
    for (const std::size_t n : sizes)
      for (const auto& q : params) {
        if (n > 10000 && offset != 3) continue;  // the fc1-sized run (several threads' chunks) once per setting
        const SparsePerturbation p{step_key(7, 11), stream++ % 5, offset, q.r, q.threshold};
        std::ostringstream what;
        what << "n=" << n << " offset=" << offset << " stream=" << p.stream << " r=" << q.r
             << " threshold=" << q.threshold << " sign=" << q.sign << " shift=" << q.shift << " seed=7 step=11";
        out.push_back({what.str(), 0, [=](const KernelTable& t, bool) {
                         std::vector<std::int8_t> w(n), o(n, 0);
                         for (std::size_t i = 0; i < n; ++i)  // half at +-127, the rest every value
                           w[i] = static_cast<std::int8_t>(i % 4 == 0 ? 127 : i % 4 == 1 ? -127 : (i * 37) % 255 - 127);
                         std::int8_t* dst = n % 2 ? w.data() : o.data();
                         t.zo_perturb_i8(n, p, q.sign, q.shift, w.data(), dst);
                         return ints(std::vector<std::int8_t>(dst, dst + n));
                       }, true});
      }
  return out;
}

// ---- integer kernels: random mantissas, +-127 everywhere (the largest sums: nothing may saturate) and, for the
// conv forward, a non-negative input (post-ReLU: the AVX2 forward then takes its vpmaddubsw path) ----

using I8 = std::vector<std::int8_t>;
using I32 = std::vector<std::int32_t>;

// Mantissas in [-127, 127]; `extreme` gives only +-127 with a constant sign per buffer.
I8 random_i8(std::size_t n, std::uint32_t seed, bool extreme = false) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> dist(-127, 127);
  I8 b(n);
  for (auto& v : b) v = static_cast<std::int8_t>(extreme ? (seed % 2 ? 127 : -127) : dist(gen));
  return b;
}

Cases cases_gemm_i8() {
  const int sizes[][3] = {{1, 1, 1},     {3, 5, 7},   {8, 16, 4},     {17, 33, 15}, {31, 17, 65},
                          {64, 40, 150}, {5, 120, 784}, {2, 3, 1000}, {16, 196, 150}, {9, 64, 3}};
  Cases out;
  for (const auto& sz : sizes)
    for (int mode = 0; mode < 8; ++mode)
      for (bool extreme : {false, true}) {
        if (extreme && mode != 0 && mode != 7) continue;  // the saturation check needs no transposes
        const int m = sz[0], n = sz[1], k = sz[2];
        const bool ta = mode & 1, tb = mode & 2, acc = mode & 4;
        const int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 1, ldc = n + 2;
        const std::uint32_t seed = 11 + static_cast<std::uint32_t>(mode);
        const I8 a = random_i8(static_cast<std::size_t>(ta ? k : m) * lda, seed, extreme);
        const I8 b = random_i8(static_cast<std::size_t>(tb ? n : k) * ldb, seed + 9, extreme);
        I32 c0(static_cast<std::size_t>(m) * ldc);
        for (std::size_t i = 0; i < c0.size(); ++i) c0[i] = static_cast<std::int32_t>(i * 7919 % 100000) - 50000;
        std::ostringstream what;
        what << "m=" << m << " n=" << n << " k=" << k << " ta=" << ta << " tb=" << tb << " accumulate=" << acc
             << " seed=" << seed << (extreme ? " extreme" : "");
        out.push_back({what.str(), 0, [=](const KernelTable& t, bool) {
                         I32 c = c0;
                         t.gemm_i8(ta, tb, m, n, k, a.data(), lda, b.data(), ldb, acc, c.data(), ldc);
                         return ints(c);
                       }, true});
      }
  return out;
}

// LeNet-5's conv1 and conv2, a kernel larger than the image and channel counts around the vector widths. The rows
// from {2, 6, 14, 14, 16, 5, 0} on have c_out a multiple of 8 or 16 and output rows that are not (channel lanes,
// conv_fwd_i8_channels): k = 1, 3, 4, 5, 6 (no, some or every column left to the column image), rows split in runs;
// from {2, 2, 9, 13, 7, 6, 1} on, at most 8 channels and 4 < k <= 8 (paired lanes on AVX-512 VNNI, as conv1).
const Conv2dShape kConvShapesI8[] = {{1, 1, 1, 1, 1, 1, 0},    {2, 3, 7, 5, 4, 3, 1},   {3, 6, 14, 14, 16, 5, 2},
                                     {2, 1, 28, 28, 6, 5, 2},  {1, 2, 9, 17, 5, 3, 0},  {2, 5, 6, 6, 3, 5, 3},
                                     {1, 3, 4, 4, 2, 5, 0},    {5, 2, 3, 33, 17, 3, 1}, {2, 6, 14, 14, 16, 5, 0},
                                     {2, 3, 9, 21, 32, 3, 1},  {1, 2, 8, 11, 8, 4, 1},  {3, 1, 5, 7, 16, 1, 0},
                                     {1, 4, 12, 13, 16, 6, 2},  {2, 2, 9, 13, 7, 6, 1},  {1, 3, 10, 11, 8, 7, 3},
                                     {3, 2, 7, 9, 6, 5, 0},    {1, 1, 12, 12, 6, 8, 2}};
const LinearShape kLinearShapesI8[] = {{1, 1, 1},     {3, 5, 7},    {64, 784, 120}, {33, 17, 40},
                                       {100, 64, 64}, {7, 1024, 3}, {2, 3, 1024}};

// One op of an integer layer on every shape: random, +-127 and (x only) non-negative inputs; outputs start at -1.
template <class Shape, std::size_t N, class Fwd, class BwdData, class BwdWeight>
Cases int_layer_cases(const Shape (&shapes)[N], LayerOp op, Fwd KernelTable::*fwd, BwdData KernelTable::*bwd_data,
                      BwdWeight KernelTable::*bwd_weight) {
  Cases out;
  for (const Shape& s : shapes)
    for (const int mode : {0, 1, 2}) {
      const LayerSizes n = sizes(s);
      const bool extreme = mode == 1;
      I8 x = random_i8(n.in, 3, extreme);
      const I8 w = random_i8(n.weights, 5, extreme), dy = random_i8(n.out, 7, extreme);
      if (mode == 2)
        for (auto& v : x) v = static_cast<std::int8_t>(v < 0 ? -v : v);
      const std::string what =
          str(s) + (mode == 1 ? " extreme" : mode == 2 ? " non-negative x" : "") + " seeds=3,5,7";
      if (op == LayerOp::fwd)
        out.push_back({what, 0, [=](const KernelTable& t, bool) {
                         I32 y(n.out, -1);
                         (t.*fwd)(s, x.data(), w.data(), y.data());
                         return ints(y);
                       }, true});
      if (op == LayerOp::bwd_data && mode != 2)
        out.push_back({what, 0, [=](const KernelTable& t, bool) {
                         I32 dx(n.in, -1);
                         (t.*bwd_data)(s, dy.data(), w.data(), dx.data());
                         return ints(dx);
                       }, true});
      if (op == LayerOp::bwd_weight)
        out.push_back({what, 0, [=](const KernelTable& t, bool) {
                         I32 dw(n.weights, -1);
                         (t.*bwd_weight)(s, x.data(), dy.data(), dw.data());
                         return ints(dw);
                       }, true});
    }
  return out;
}

Cases conv_i8_cases(LayerOp op) {
  return int_layer_cases(kConvShapesI8, op, &KernelTable::conv2d_fwd_i8, &KernelTable::conv2d_bwd_data_i8,
                         &KernelTable::conv2d_bwd_weight_i8);
}
Cases linear_i8_cases(LayerOp op) {
  return int_layer_cases(kLinearShapesI8, op, &KernelTable::linear_fwd_i8, &KernelTable::linear_bwd_data_i8,
                         &KernelTable::linear_bwd_weight_i8);
}
Cases cases_conv2d_fwd_i8() { return conv_i8_cases(LayerOp::fwd); }
Cases cases_conv2d_bwd_data_i8() { return conv_i8_cases(LayerOp::bwd_data); }
Cases cases_conv2d_bwd_weight_i8() { return conv_i8_cases(LayerOp::bwd_weight); }
Cases cases_linear_fwd_i8() { return linear_i8_cases(LayerOp::fwd); }
Cases cases_linear_bwd_data_i8() { return linear_i8_cases(LayerOp::bwd_data); }
Cases cases_linear_bwd_weight_i8() { return linear_i8_cases(LayerOp::bwd_weight); }

// int32 values of 4, 12 and 31 bits, with INT32_MIN, INT32_MAX and 0 among them.
I32 requant_input(std::size_t n, int bits) {
  std::mt19937 gen(17 + bits * 1000 + static_cast<std::uint32_t>(n));
  std::uniform_int_distribution<std::int32_t> full(std::numeric_limits<std::int32_t>::min(),
                                                   std::numeric_limits<std::int32_t>::max());
  I32 x(n);
  for (auto& v : x) v = full(gen) >> (31 - bits);
  if (n > 3) {
    x[1] = std::numeric_limits<std::int32_t>::min();
    x[2] = std::numeric_limits<std::int32_t>::max();
    x[3] = 0;
  }
  return x;
}
const std::size_t kRequantSizes[] = {0, 1, 7, 8, 15, 16, 17, 33, 64, 129, 1000};

Cases cases_max_abs_i32() {
  Cases out;
  for (const std::size_t n : kRequantSizes)
    for (const int bits : {4, 12, 31}) {
      const I32 x = requant_input(n, bits);
      out.push_back({"n=" + std::to_string(n) + " bits=" + std::to_string(bits), 0, [=](const KernelTable& t, bool) {
                       return ints(std::vector<std::uint32_t>{t.max_abs_i32(n, x.data())});
                     }, true});
    }
  return out;
}

Cases cases_round_shift_i8() {
  Cases out;
  for (const std::size_t n : kRequantSizes)
    for (const int bits : {4, 12, 31}) {
      const I32 x = requant_input(n, bits);
      for (const int s : {0, 1, 2, 3, 4, 7, 13, 31, 32})
        for (const Rounding mode : {Rounding::nearest, Rounding::stochastic, Rounding::pseudo_stochastic}) {
          std::ostringstream what;
          what << "n=" << n << " bits=" << bits << " s=" << s << " rounding=" << static_cast<int>(mode)
               << " draws=(1,2),3,4";
          out.push_back({what.str(), 0, [=](const KernelTable& t, bool) {
                           I8 y(n, 99);
                           t.round_shift_i8(n, x.data(), s, mode, DrawStream{{1, 2}, 3, 4}, y.data());
                           return ints(y);
                         }, true});
        }
    }
  return out;
}

// ---- input quantization ----

const std::size_t kQuantSizes[] = {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 100, 784, 25088, 40000};

// Finite values spread over the binade of `scale` and below: exact halves and ties of the rounding, +-0, subnormals,
// and the bounds +-127.5 after scaling.
Buf quant_values(std::size_t n, std::uint32_t seed, float scale) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  Buf v(n);
  for (std::size_t i = 0; i < n; ++i) {
    switch (gen() % 10) {
      case 0: v[i] = scale * (static_cast<float>(static_cast<int>(gen() % 255) - 127) + 0.5f) / 128.f; break;
      case 1: v[i] = i % 2 ? 0.f : -0.f; break;
      case 2:
        v[i] = (i % 2 ? 1.f : -1.f) * std::numeric_limits<float>::denorm_min() * static_cast<float>(gen() % 9);
        break;
      case 3: v[i] = (i % 2 ? 127.5f : -127.5f) * scale / 128.f; break;
      default: v[i] = scale * u(gen);
    }
  }
  return v;
}

// The largest |x| as float bits, with a NaN or -inf at a fixed place or none.
Cases cases_max_abs_bits_f32() {
  Cases out;
  for (const std::size_t n : kQuantSizes)
    for (const int special : {0, 1, 2}) {
      Buf x = quant_values(n, 70 + static_cast<std::uint32_t>(n), 3.f);
      if (special) x[(n * 5) / 7] = special == 1 ? std::numeric_limits<float>::quiet_NaN() : -INFINITY;
      out.push_back({"n=" + std::to_string(n) + (special == 1 ? " with NaN" : special == 2 ? " with -inf" : "") +
                         " seed=" + std::to_string(70 + n), 0, [=](const KernelTable& t, bool) {
                       return ints(std::vector<std::uint32_t>{t.max_abs_bits_f32(n, x.data())});
                     }, true});
    }
  return out;
}

// Shifts of every size a batch can ask for, the ends of the vector paths' range (-126, 127) and just past them.
Cases cases_quantize_f32_i8() {
  Cases out;
  for (const std::size_t n : kQuantSizes)
    for (const int shift : {-127, -126, -20, 0, 1, 7, 9, 30, 127, 128}) {
      const float scale = std::ldexp(1.f, 7 - shift);  // the batch's max|x| lies in this binade
      const Buf x = quant_values(n, 71 + static_cast<std::uint32_t>(n), scale);
      out.push_back({"n=" + std::to_string(n) + " shift=" + std::to_string(shift) + " seed=" + std::to_string(71 + n),
                     0, [=](const KernelTable& t, bool) {
                       std::vector<std::int8_t> v(n, 99);
                       t.quantize_f32_i8(n, x.data(), shift, v.data());
                       return ints(v);
                     }, true});
    }
  return out;
}

// ---- pooling: tied maxima must send the error to the first one ----

// Odd and even sizes, rows wider than every vector, LeNet's 28x28 and 14x14 (the first large enough to thread),
// and a 3x3 window that goes to the reference; row tails of 8 and 7 outputs after a whole vector (partial vectors).
const Pool2dShape kPoolShapes[] = {{1, 1, 2, 2, 2},   {2, 3, 5, 7, 2},    {1, 2, 3, 67, 2},  {2, 2, 34, 66, 2},
                                   {8, 6, 28, 28, 2}, {4, 16, 14, 14, 2}, {1, 2, 9, 10, 3}, {1, 1, 1, 5, 2},
                                   {1, 3, 4, 16, 2},  {2, 1, 5, 47, 2},   {1, 2, 2, 48, 2}};
// Channel counts around the vector widths and the 256-channel task blocks; the last shape is large enough to thread.
const PointPoolShape kPointShapes[] = {{1, 1, 1},   {2, 3, 5},   {2, 7, 17},   {3, 16, 33},
                                       {2, 5, 257}, {2, 9, 520}, {1, 1, 1024}, {4, 64, 200}};

std::string str(const Pool2dShape& s) {
  return "n=" + std::to_string(s.n) + " c=" + std::to_string(s.c) + " h=" + std::to_string(s.h) +
         " w=" + std::to_string(s.w) + " k=" + std::to_string(s.k);
}
std::string str(const PointPoolShape& s) {
  return "n=" + std::to_string(s.n) + " points=" + std::to_string(s.points) + " c=" + std::to_string(s.c);
}
std::size_t in_size(const Pool2dShape& s) { return static_cast<std::size_t>(s.n) * s.c * s.h * s.w; }
std::size_t out_size(const Pool2dShape& s) { return static_cast<std::size_t>(s.n) * s.c * s.out_h() * s.out_w(); }
std::size_t in_size(const PointPoolShape& s) { return static_cast<std::size_t>(s.n) * s.points * s.c; }
std::size_t out_size(const PointPoolShape& s) { return static_cast<std::size_t>(s.n) * s.c; }

// Forward (backward = false) or backward of a pooling kernel on tied and on signed values; backward gets the
// reference forward's output.
template <class Shape, std::size_t N, class FwdRef, class Fwd, class Bwd>
Cases pool_cases(const Shape (&shapes)[N], bool backward, FwdRef fwd_ref, Fwd KernelTable::*fwd,
                 Bwd KernelTable::*bwd) {
  Cases out;
  for (const Shape& s : shapes)
    for (const bool ties : {true, false}) {
      const std::size_t in = in_size(s), outn = out_size(s);
      const Buf x = ties ? tied_values(in, 61) : signed_values(in, 62);
      const std::string what = str(s) + (ties ? " tied values seed=61" : " signed values seed=62");
      if (!backward) {
        out.push_back({what, 0, [=](const KernelTable& t, bool) {
                         Buf y(outn, 7.f);
                         (t.*fwd)(s, x.data(), y.data());
                         return y;
                       }});
        continue;
      }
      Buf y(outn);
      fwd_ref(s, x.data(), y.data());
      const Buf dy = signed_values(outn, 63);
      out.push_back({what, 0, [=](const KernelTable& t, bool) {
                       Buf dx(in, 7.f);
                       (t.*bwd)(s, x.data(), y.data(), dy.data(), dx.data());
                       return dx;
                     }});
    }
  return out;
}

Cases cases_maxpool2d_fwd_f32() {
  return pool_cases(kPoolShapes, false, maxpool2d_fwd_f32_ref, &KernelTable::maxpool2d_fwd_f32,
                    &KernelTable::maxpool2d_bwd_f32);
}
Cases cases_maxpool2d_bwd_f32() {
  return pool_cases(kPoolShapes, true, maxpool2d_fwd_f32_ref, &KernelTable::maxpool2d_fwd_f32,
                    &KernelTable::maxpool2d_bwd_f32);
}
Cases cases_maxpool2d_relu_fwd_f32() {
  return pool_cases(kPoolShapes, false, maxpool2d_relu_fwd_f32_ref, &KernelTable::maxpool2d_relu_fwd_f32,
                    &KernelTable::maxpool2d_bwd_f32);
}
Cases cases_point_maxpool_fwd_f32() {
  return pool_cases(kPointShapes, false, point_maxpool_fwd_f32_ref, &KernelTable::point_maxpool_fwd_f32,
                    &KernelTable::point_maxpool_bwd_f32);
}
Cases cases_point_maxpool_bwd_f32() {
  return pool_cases(kPointShapes, true, point_maxpool_fwd_f32_ref, &KernelTable::point_maxpool_fwd_f32,
                    &KernelTable::point_maxpool_bwd_f32);
}

// int8 mantissas: every value in [-128, 127] at random, and few distinct values (ties), on the same shapes.
Cases cases_maxpool2d_fwd_i8() {
  Cases out;
  for (const Pool2dShape& s : kPoolShapes)
    for (const bool ties : {true, false}) {
      std::mt19937 gen(ties ? 64 : 65);
      std::vector<std::int8_t> x(in_size(s));
      for (auto& v : x)
        v = static_cast<std::int8_t>(ties ? static_cast<int>(gen() % 5) - 2 : static_cast<int>(gen() % 256) - 128);
      out.push_back({str(s) + (ties ? " tied values seed=64" : " all values seed=65"), 0,
                     [=](const KernelTable& t, bool) {
                       std::vector<std::int8_t> y(out_size(s), 7);
                       t.maxpool2d_fwd_i8(s, x.data(), y.data());
                       return ints(y);
                     }, true});
    }
  return out;
}

// ---- loss ----

Cases cases_softmax_xent_f32() {
  Cases out;
  for (const auto& [rows, classes] : std::vector<std::array<int, 2>>{{1, 1}, {3, 10}, {64, 10}, {7, 40}, {256, 3}}) {
    const std::uint32_t seed = 80 + static_cast<std::uint32_t>(rows);
    Buf logits = random_buf(static_cast<std::size_t>(rows) * classes, seed);
    for (float& v : logits) v *= 20.f;  // far from 0, so the max-shift matters
    std::vector<std::int32_t> labels(rows);
    for (int r = 0; r < rows; ++r) labels[r] = (r * 7) % classes;
    out.push_back({"rows=" + std::to_string(rows) + " classes=" + std::to_string(classes) + " seed=" +
                       std::to_string(seed),
                   classes, [=](const KernelTable& t, bool mag) {
                     Buf sl, grad(logits.size() + 1);
                     grad.back() = t.softmax_xent_f32(rows, classes, pick(logits, mag, sl), labels.data(), 0.5f,
                                                      grad.data());
                     return grad;
                   }});
  }
  return out;
}

// ---- the harness ----

enum class Compare { exact, rounded };

struct KernelInfo {
  std::string name;
  Compare compare;
  Cases (*cases)();
};

const std::vector<KernelInfo>& kernel_list() {
  static const std::vector<KernelInfo> all = {
#define EZ_KERNEL(name, compare, sig) {#name, Compare::compare, &cases_##name},
#include "kernels/kernels.inc"
#undef EZ_KERNEL
  };
  return all;
}

const KernelInfo& info(const std::string& kernel) {
  for (const KernelInfo& k : kernel_list())
    if (k.name == kernel) return k;
  throw std::logic_error("kernel " + kernel + " is not in kernels.inc");
}

::testing::AssertionResult within_tolerance(const Buf& want, const Buf& mag, const Buf& got, long reduction,
                                            const std::string& what) {
  if (got.size() != want.size()) return ::testing::AssertionFailure() << what << ": size differs";
  const double unit = 2.0 * (reduction + 2) * std::ldexp(1.0, -24);
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double tol = unit * mag[i];
    if (!(std::fabs(static_cast<double>(got[i]) - want[i]) <= tol))
      return ::testing::AssertionFailure() << what << ": first difference at element " << i << ": got " << got[i]
                                           << ", reference " << want[i] << ", tolerance " << tol;
  }
  return ::testing::AssertionSuccess();
}

// Runs `body` with 1, 2 and 3 threads and restores the thread count.
template <class Body>
void for_thread_counts(Body body) {
  const int saved = num_threads();
  for (const int threads : {1, 2, 3}) {
    set_num_threads(threads);
    body(threads);
  }
  set_num_threads(saved);
}

std::string name_of(const KernelVariant& v) { return v.kernel + "_" + v.isa; }

class KernelVariants : public ::testing::TestWithParam<KernelVariant> {};

// Instantiated for every compiled implementation, so the test list is the same whatever CPU discovered it (ctest
// reuses one discovery for the A53 and A76 runs under qemu); one the CPU lacks must be refused instead of run.
TEST_P(KernelVariants, MatchesTheReferenceForAnyThreadCount) {
  const KernelVariant& v = GetParam();
  if (!v.runnable) {
    EXPECT_THROW(table_with(v), std::invalid_argument) << name_of(v) << " needs " << feature_names(v.needs);
    return;
  }
  const KernelInfo& k = info(v.kernel);
  const KernelTable& ref = kernel_table("ref");
  const KernelTable opt = table_with(v);
  const Cases cases = k.cases();
  ASSERT_FALSE(cases.empty()) << v.kernel;
  for (const KernelCase& c : cases) {
    const std::string what = name_of(v) + " " + c.what;
    const Buf want = c.run(ref, false);
    const Buf mag = k.compare == Compare::rounded ? c.run(ref, true) : Buf{};
    for_thread_counts([&](int threads) {
      const Buf got = c.run(opt, false);
      const std::string where = what + " threads=" + std::to_string(threads);
      if (c.integer)
        ASSERT_TRUE(same_ints(want, got, where));
      else if (k.compare == Compare::exact)
        ASSERT_TRUE(testing::same_bits(want, got, where));
      else
        ASSERT_TRUE(within_tolerance(want, mag, got, c.reduction, where));
    });
    if (HasFatalFailure()) return;
  }
}

// The reference's threading must not change its bits either (a kernel without optimized versions included).
class KernelReferences : public ::testing::TestWithParam<KernelInfo> {};

TEST_P(KernelReferences, SameBitsForAnyThreadCount) {
  const KernelTable& ref = kernel_table("ref");
  for (const KernelCase& c : GetParam().cases()) {
    Buf one;
    for_thread_counts([&](int threads) {
      const Buf got = c.run(ref, false);
      if (threads == 1) one = got;
      const std::string where = GetParam().name + "_ref " + c.what + " threads=" + std::to_string(threads);
      ASSERT_TRUE(c.integer ? same_ints(one, got, where) : testing::same_bits(one, got, where));
    });
    if (HasFatalFailure()) return;
  }
}

INSTANTIATE_TEST_SUITE_P(Kernels, KernelVariants, ::testing::ValuesIn(kernel_variants()),
                         [](const ::testing::TestParamInfo<KernelVariant>& i) { return name_of(i.param); });
INSTANTIATE_TEST_SUITE_P(Kernels, KernelReferences, ::testing::ValuesIn(kernel_list()),
                         [](const ::testing::TestParamInfo<KernelInfo>& i) { return i.param.name; });

// The ISA path does not change a result: every optimized conv forward (row tiles or channel tiles, whichever the
// shape and vector width pick) computes each output as the same chain of fused multiply-adds.
TEST(KernelVariantsAgree, Conv2dForwardSameBitsOnEveryIsa) {
  std::vector<KernelVariant> convs;
  for (const KernelVariant& v : kernel_variants())
    if (v.runnable && v.kernel == "conv2d_fwd_f32") convs.push_back(v);
  for (const KernelCase& c : cases_conv2d_fwd_f32()) {
    std::vector<Buf> got;
    for (const KernelVariant& v : convs) got.push_back(c.run(table_with(v), false));
    for (std::size_t i = 1; i < got.size(); ++i)
      ASSERT_TRUE(testing::same_bits(got[0], got[i], name_of(convs[i]) + " vs " + name_of(convs[0]) + " " + c.what));
  }
}

// The max-pool of a ReLU's input on each level equals that level's relu_fwd then maxpool2d_fwd bit for bit (NaNs,
// signed zeros, ties, partial vectors, the 3x3 reference window), and leaves its input as it was: a model's forward
// gives the same bits with the ReLU folded into the pooling or not.
TEST(KernelVariantsAgree, MaxPoolOfReluEqualsReluThenMaxPool) {
  for (const auto& isa : available_isas()) {
    const KernelTable& t = kernel_table(isa);
    for (const Pool2dShape& s : kPoolShapes)
      for (const bool ties : {true, false}) {
        const Buf x = ties ? tied_values(in_size(s), 71) : signed_values(in_size(s), 72);
        Buf fused(out_size(s), 7.f), pooled(out_size(s), 7.f), x_relu = x, x_after = x;
        t.maxpool2d_relu_fwd_f32(s, x_after.data(), fused.data());
        t.relu_fwd_f32(x_relu.size(), x_relu.data(), x_relu.data());
        t.maxpool2d_fwd_f32(s, x_relu.data(), pooled.data());
        const std::string what = isa + " " + str(s) + (ties ? " tied" : " signed");
        ASSERT_TRUE(testing::same_bits(pooled, fused, what));
        ASSERT_TRUE(testing::same_bits(x, x_after, what + " (input)"));
      }
  }
}

// The fused per-point Linear + ReLU + max of each level equals that level's linear_fwd, relu_fwd and
// point_maxpool_fwd bit for bit, so a model's forward gives the same bits fused (ZO passes, evaluation) or not.
TEST(KernelVariantsAgree, PointLinearReluMaxEqualsItsUnfusedLevel) {
  for (const auto& isa : available_isas()) {
    const KernelTable& t = kernel_table(isa);
    std::uint32_t seed = 1400;
    for (const auto& [n, points, in, outs] : kPointLinearShapes) {
      const LinearShape s{n * points, in, outs};
      const Buf x = signed_values(static_cast<std::size_t>(s.rows) * in, seed);
      const Buf w = random_buf(static_cast<std::size_t>(outs) * in, seed + 1);
      const Buf b = random_buf(static_cast<std::size_t>(outs), seed + 2);
      Buf fused(static_cast<std::size_t>(n) * outs), y(static_cast<std::size_t>(s.rows) * outs), pooled(fused.size());
      t.point_linear_relu_max_f32(s, points, x.data(), w.data(), b.data(), fused.data());
      t.linear_fwd_f32(s, x.data(), w.data(), b.data(), y.data());
      t.relu_fwd_f32(y.size(), y.data(), y.data());
      t.point_maxpool_fwd_f32(PointPoolShape{n, points, outs}, y.data(), pooled.data());
      ASSERT_TRUE(testing::same_bits(pooled, fused, isa + " " + str(s) + " points=" + std::to_string(points)));
      seed += 3;
    }
  }
}

// The reference itself: a window of four equal maxima sends the whole error to its top-left element, on every table.
TEST(Pooling, MaxPool2dBackwardRoutesToTheFirstMaximum) {
  const Pool2dShape s{1, 1, 2, 4, 2};
  const Buf x = {1, 1, 0, 2, 1, 1, 2, 2}, y = {1, 2}, dy = {5, 6};
  for (const auto& isa : available_isas()) {
    Buf dx(8, 7.f);
    kernel_table(isa).maxpool2d_bwd_f32(s, x.data(), y.data(), dy.data(), dx.data());
    EXPECT_TRUE(testing::same_bits({5, 0, 0, 6, 0, 0, 0, 0}, dx, isa));
  }
}

}  // namespace
}  // namespace ez
