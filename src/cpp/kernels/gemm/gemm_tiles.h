// Register-blocked FP32 microkernels, templated on a SIMD type from simd/; included only by ISA files.
// Outer-product tile: each output is one chain of fused multiply-adds in reduction order, started from zero, the
// bias or the output itself. Dot tile: vectors run along the reduction, so each output is W per-lane chains
// summed by V::reduce_add's fixed tree. Either way the result depends on the shape only, never on threads.
#pragma once
#include <algorithm>
#include <array>
#include <utility>

// Loops over a tile's rows and vectors must be unrolled completely: only then does the compiler keep the
// accumulator array in registers instead of storing it back to the stack on every step.
#define EZ_UNROLL _Pragma("GCC unroll 32")

namespace ez {
namespace {

inline int ceil_div(int a, int b) { return (a + b - 1) / b; }

enum class Init { zero, load, bias_row, bias_col };

// Where an outer tile's accumulators start and end: row r at c + r * ldc; vector v covers lanes[v] columns
// from col[v]. bias_row reads bias[r], bias_col reads bias[col[v] + lane]. `fold`: the row a folding finish
// (below) reduces the tile into instead of storing it.
struct TileOut {
  float* c;
  long ldc;
  const int* col;
  const int* lanes;
  Init init;
  const float* bias;
  float* fold = nullptr;
};

// How an outer tile leaves its accumulators: StoreTile writes row r to c + r * ldc (the GEMM). A fused kernel may
// reduce the rows in registers instead (point_linear_relu_max_f32_body.h).
struct StoreTile {
  template <class V, int MR, int NV>
  static void finish(typename V::reg (&acc)[MR][NV], const TileOut& o) {
    EZ_UNROLL
    for (int r = 0; r < MR; ++r) {
      float* crow = o.c + r * o.ldc;
      EZ_UNROLL
      for (int v = 0; v < NV; ++v) {
        if (o.lanes[v] == V::width) {
          V::store(crow + o.col[v], acc[r][v]);
        } else {
          V::store_n(crow + o.col[v], acc[r][v], o.lanes[v]);
        }
      }
    }
  }
};

// Offset of the B operand's reduction step p from each vector's base: a fixed stride (a matrix row or a packed
// panel) or a table (the taps of a convolution over a padded image).
struct StrideOff {
  long stride;
  long operator()(int p) const { return stride * p; }
};
struct TableOff {
  const int* table;
  long operator()(int p) const { return table[p]; }
};

// acc[r][v] (+)= sum_p a[p * lda + r] * b[v][off(p) .. +W): A's MR values of step p are contiguous and broadcast
// (a packed panel, lda = MR, or a transposed matrix read in place), B is loaded as vectors. ARows: A's rows are read
// in place instead, a[r * lda + p] (a row-major matrix, no packing; broadcasts from memory, so not for lane_fma).
template <class V, int MR, int NV, class Off, class Finish, bool ARows>
void outer_tile(int k, const float* a, long lda, const float* const* b, Off off, const TileOut& o) {
  static_assert(!(ARows && V::lane_fma), "rows in place are broadcast one by one");
  using reg = typename V::reg;
  constexpr int W = V::width;
  reg acc[MR][NV];
  EZ_UNROLL
  for (int r = 0; r < MR; ++r) {
    const float* crow = o.c + r * o.ldc;
    EZ_UNROLL
    for (int v = 0; v < NV; ++v) {
      if (o.init == Init::zero) {
        acc[r][v] = V::zero();
      } else if (o.init == Init::bias_row) {
        acc[r][v] = V::set1(o.bias[r]);
      } else {
        const float* src = (o.init == Init::load ? crow : o.bias) + o.col[v];
        acc[r][v] = o.lanes[v] == W ? V::load(src) : V::load_n(src, o.lanes[v]);
      }
    }
  }
  const float* bp[NV];
  EZ_UNROLL
  for (int v = 0; v < NV; ++v) bp[v] = b[v];
  for (int p = 0; p < k; ++p) {
    const long q = off(p);
    reg bv[NV];
    EZ_UNROLL
    for (int v = 0; v < NV; ++v) bv[v] = V::load(bp[v] + q);
    if constexpr (V::lane_fma) {
      EZ_UNROLL
      for (int r0 = 0; r0 < MR; r0 += W) {
        const reg a4 = MR - r0 >= W ? V::load(a + r0) : V::load_n(a + r0, MR - r0);
        EZ_UNROLL
        for (int l = 0; l < W; ++l) {
          if (r0 + l >= MR) break;
          EZ_UNROLL
          for (int v = 0; v < NV; ++v) acc[r0 + l][v] = V::fmadd_lane(a4, l, bv[v], acc[r0 + l][v]);
        }
      }
    } else {
      EZ_UNROLL
      for (int r = 0; r < MR; ++r) {
        const reg av = V::set1(ARows ? a[r * lda] : a[r]);
        EZ_UNROLL
        for (int v = 0; v < NV; ++v) acc[r][v] = V::fmadd(av, bv[v], acc[r][v]);
      }
    }
    a += ARows ? 1 : lda;
  }
  Finish::template finish<V, MR, NV>(acc, o);
}

template <class Off>
using OuterFn = void (*)(int, const float*, long, const float* const*, Off, const TileOut&);

template <class V, class Off, class Finish, bool ARows, int... I>
constexpr std::array<OuterFn<Off>, sizeof...(I)> outer_table(std::integer_sequence<int, I...>) {
  return {{&outer_tile<V, I / V::tile_vecs + 1, I % V::tile_vecs + 1, Off, Finish, ARows>...}};
}

// The tile for mr rows (1..tile_rows) and nv vectors (1..tile_vecs): edges get exact-size tiles, no padding work.
template <class V, class Off, class Finish = StoreTile, bool ARows = false>
OuterFn<Off> outer_fn(int mr, int nv) {
  static constexpr auto table =
      outer_table<V, Off, Finish, ARows>(std::make_integer_sequence<int, V::tile_rows * V::tile_vecs>{});
  return table[(mr - 1) * V::tile_vecs + (nv - 1)];
}

// A dot tile's reduction: outer x inner segments of len contiguous floats; segment (u, i) starts at
// u * a_outer + i * a_inner from each A row (and likewise for B). The last vector of a segment may be partial.
struct DotSegs {
  int outer, inner, len;
  long a_outer, a_inner, b_outer, b_inner;
};

// out[r * ldo + j] = base + a_r . b_j with base 0, the old value (load) or bias[j] (bias_col).
struct DotOut {
  float* out;
  long ldo;
  Init init;
  const float* bias;
};

template <class V, int MR, int NP>
void dot_tile(const float* const* a, const float* const* b, const DotSegs& s, const DotOut& o) {
  using reg = typename V::reg;
  constexpr int W = V::width;
  reg acc[MR][NP];
  EZ_UNROLL
  for (int r = 0; r < MR; ++r) {
    EZ_UNROLL
    for (int j = 0; j < NP; ++j) acc[r][j] = V::zero();
  }
  const float* ap[MR];
  const float* bp[NP];
  EZ_UNROLL
  for (int r = 0; r < MR; ++r) ap[r] = a[r];
  EZ_UNROLL
  for (int j = 0; j < NP; ++j) bp[j] = b[j];
  // One loop for whole and partial vectors, so the accumulators stay in registers across segments.
  const int vecs = (s.len + W - 1) / W;
  for (int u = 0; u < s.outer; ++u) {
    for (int i = 0; i < s.inner; ++i) {
      const long ao = u * s.a_outer + i * s.a_inner, bo = u * s.b_outer + i * s.b_inner;
      for (int v = 0; v < vecs; ++v) {
        const int lanes = std::min(W, s.len - v * W);
        reg av[MR];
        EZ_UNROLL
        for (int r = 0; r < MR; ++r) {
          const float* src = ap[r] + ao + v * W;
          av[r] = lanes == W ? V::load(src) : V::load_n(src, lanes);
        }
        EZ_UNROLL
        for (int j = 0; j < NP; ++j) {
          const float* src = bp[j] + bo + v * W;
          const reg bv = lanes == W ? V::load(src) : V::load_n(src, lanes);
          EZ_UNROLL
          for (int r = 0; r < MR; ++r) acc[r][j] = V::fmadd(av[r], bv, acc[r][j]);
        }
      }
    }
  }
  EZ_UNROLL
  for (int r = 0; r < MR; ++r) {
    EZ_UNROLL
    for (int j = 0; j < NP; ++j) {
      float& dst = o.out[r * o.ldo + j];
      const float base = o.init == Init::load ? dst : o.init == Init::bias_col ? o.bias[j] : 0.f;
      dst = base + V::reduce_add(acc[r][j]);
    }
  }
}

using DotFn = void (*)(const float* const*, const float* const*, const DotSegs&, const DotOut&);

template <class V, int... I>
constexpr std::array<DotFn, sizeof...(I)> dot_table(std::integer_sequence<int, I...>) {
  return {{&dot_tile<V, I / V::dot_cols + 1, I % V::dot_cols + 1>...}};
}

// The dot tile for mr A rows (1..dot_rows) and np B rows (1..dot_cols).
template <class V>
DotFn dot_fn(int mr, int np) {
  static constexpr auto table = dot_table<V>(std::make_integer_sequence<int, V::dot_rows * V::dot_cols>{});
  return table[(mr - 1) * V::dot_cols + (np - 1)];
}

}  // namespace
}  // namespace ez
