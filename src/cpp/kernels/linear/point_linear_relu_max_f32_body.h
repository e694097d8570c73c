// Per-point Linear + ReLU + max over the points (kernels.inc: point_linear_relu_max_f32) on the GEMM tiles of
// gemm_f32_body.h. A task takes one sample and a group of column panels; it computes MC points at a time and folds
// ReLU and the max into the sample's output row, so the (points x out) output of the layer is never written to
// memory: outer tiles fold their accumulators in registers (ReluMaxFold; a reduction longer than one block keeps
// its partial sums in an L1-sized tile buffer until the last block), dot tiles go through the tile buffer. The
// outputs are those of linear_fwd on the same level bit for bit: the same strategy (outer or dot tiles, chosen from
// the whole problem as gemm_run does), so the same product chain per output; ReLU keeps +0 for x <= 0 and NaN as the
// ReLU kernel does, and a max of values >= +0 is exact in any order.
#pragma once
#include <algorithm>

#include "kernels/gemm/gemm_f32_body.h"
#include "kernels/shapes.h"

namespace ez {
namespace {

// dst[0 .. lanes) = max(dst, ReLU(row(0)), ..., ReLU(row(rows - 1))).
template <class V, class P, class Row>
inline void fold_relu_max(float* dst, int lanes, int rows, Row row) {
  typename V::reg m = lanes == V::width ? V::load(dst) : V::load_n(dst, lanes);
  EZ_UNROLL
  for (int r = 0; r < rows; ++r) {
    const typename V::reg c = row(r);
    m = P::take_greater(P::keep_if_positive(c, c), m);
  }
  if (lanes == V::width) {
    V::store(dst, m);
  } else {
    V::store_n(dst, m, lanes);
  }
}

// Finishes an outer tile by folding its rows into the running maxima at o.fold, in registers (the tile is never
// stored).
template <class P>
struct ReluMaxFold {
  template <class V, int MR, int NV>
  static void finish(typename V::reg (&acc)[MR][NV], const TileOut& o) {
    EZ_UNROLL
    for (int v = 0; v < NV; ++v)
      fold_relu_max<V, P>(o.fold + o.col[v], o.lanes[v], MR, [&](int r) { return acc[r][v]; });
  }
};

// V: the GEMM vector type (simd/f32x*.h); P: the pointwise type of the same width (simd/pointwise_*.h).
template <class V, class P>
void point_linear_relu_max(const LinearShape& s, int points, const float* x, const float* w, const float* bias,
                           float* y) {
  constexpr int W = V::width, MR = V::tile_rows, NV = V::tile_vecs, NR = W * NV, MC = MR * kGemmBlocks;
  constexpr int DR = V::dot_rows, DC = V::dot_cols;
  // Broadcasting tiles read the points' rows in place; a lane-FMA tile (NEON) loads its A values as vectors, packed.
  constexpr bool kRowsInPlace = !V::lane_fma;
  static_assert(P::width == W, "pointwise and GEMM vectors of one level");
  const PointLinearMaxScratch sz = point_linear_max_scratch(s, points, {W, MR, NV, V::lane_fma});
  if (sz.panels == 0) return;
  const int samples = s.rows / points, per_group = ceil_div(sz.panels, sz.groups);
  const GemmArgs g{false, true, s.rows, s.out, s.in, x, s.in, w, s.in, nullptr, s.out,
                   bias ? Init::bias_col : Init::zero, bias};
  ScratchBuffer<float> bpack(sz.bpack), apack(sz.team * sz.apack), tiles(sz.team * sz.tile);
  if (!sz.dot) {  // every panel of the weights over the whole reduction, [jp][k][NR], zeros past the last column
    parallel_for(sz.team, sz.panels, [&](std::int64_t jp) {
      const int j0 = static_cast<int>(jp) * NR;
      for (int pc = 0; pc < s.in; pc += kGemmKC)
        pack_b(g, pc, std::min(kGemmKC, s.in - pc), j0, std::min(NR, s.out - j0), NR,
               bpack.data() + (jp * s.in + pc) * NR);
    });
  }
  parallel_for(sz.team, static_cast<std::int64_t>(samples) * sz.groups, [&](std::int64_t task, int slot) {
    const int b = static_cast<int>(task / sz.groups), group = static_cast<int>(task % sz.groups);
    const int jp_begin = group * per_group, jp_end = std::min(sz.panels, jp_begin + per_group);
    if (jp_begin >= jp_end) return;
    float* tile = tiles.data() + static_cast<long>(slot) * sz.tile;
    float* ap = apack.data() + static_cast<long>(slot) * sz.apack;
    float* yb = y + static_cast<long>(b) * s.out;
    std::fill(yb + jp_begin * NR, yb + std::min(s.out, jp_end * NR), 0.f);
    for (int r0 = 0; r0 < points; r0 += MC) {
      const int mc = std::min(MC, points - r0), i0 = b * points + r0;
      if (!sz.dot && !kRowsInPlace) {
        for (int pc = 0; pc < s.in; pc += kGemmKC) pack_a(g, i0, mc, pc, std::min(kGemmKC, s.in - pc), MR, ap + mc * pc);
      }
      for (int jp = jp_begin; jp < jp_end; ++jp) {
        const int j0 = jp * NR, nr = std::min(NR, s.out - j0), nv = ceil_div(nr, W);
        int col[NV], lanes[NV];
        for (int v = 0; v < nv; ++v) {
          col[v] = v * W;
          lanes[v] = std::min(W, nr - v * W);
        }
        if (sz.dot) {
          const DotSegs segs{1, 1, s.in, 0, 0, 0, 0};
          for (int ip = 0; ip < mc; ip += DR) {
            const int mr = std::min(DR, mc - ip);
            const float* ar[DR];
            for (int r = 0; r < mr; ++r) ar[r] = x + static_cast<long>(i0 + ip + r) * s.in;
            for (int jj = 0; jj < nr; jj += DC) {
              const int np = std::min(DC, nr - jj);
              const float* br[DC];
              for (int j = 0; j < np; ++j) br[j] = w + static_cast<long>(j0 + jj + j) * s.in;
              dot_fn<V>(mr, np)(ar, br, segs, DotOut{tile + ip * NR + jj, NR, g.init, bias ? bias + j0 + jj : nullptr});
            }
          }
          for (int v = 0; v < nv; ++v)
            fold_relu_max<V, P>(yb + j0 + v * W, lanes[v], mc, [&](int r) { return V::load(tile + r * NR + v * W); });
        } else {
          // Reduction blocks before the last leave their sums in the tile; the last folds them into yb.
          for (int pc = 0; pc < s.in; pc += kGemmKC) {
            const int kc = std::min(kGemmKC, s.in - pc);
            const bool last = pc + kc == s.in;
            const float* bv[NV];
            for (int v = 0; v < nv; ++v) bv[v] = bpack.data() + (static_cast<long>(jp) * s.in + pc) * NR + v * W;
            const TileOut out_init{tile, NR, col, lanes, pc == 0 ? g.init : Init::load, bias ? bias + j0 : nullptr,
                                   yb + j0};
            for (int ip = 0; ip < mc; ip += MR) {
              TileOut out = out_init;
              out.c = tile + ip * NR;
              const int mr = std::min(MR, mc - ip);
              const auto tile_fn = last ? outer_fn<V, StrideOff, ReluMaxFold<P>, kRowsInPlace>(mr, nv)
                                        : outer_fn<V, StrideOff, StoreTile, kRowsInPlace>(mr, nv);
              if (kRowsInPlace) {
                tile_fn(kc, x + static_cast<long>(i0 + ip) * s.in + pc, s.in, bv, StrideOff{NR}, out);
              } else {
                tile_fn(kc, ap + mc * pc + ip * kc, mr, bv, StrideOff{NR}, out);
              }
            }
          }
        }
      }
    }
  });
}

}  // namespace
}  // namespace ez
