// Blocked FP32 GEMM driver shared by the gemm and linear ISA files: C (+)= op(A) op(B), with a bias fused.
// Two strategies, picked from the shape: outer-product tiles over packed panels (BLIS-style), or, for
// A B^T with few rows of A and a long reduction, dot tiles reading both operands in place.
// Threads take whole output tiles, and every tile's reduction runs in one fixed order, so the result is the
// same for any thread count.
#pragma once
#include <algorithm>
#include <cstring>

#include "kernels/gemm/gemm_tiles.h"
#include "core/parallel.h"
#include "kernels/workspace.h"
#include "memory/tracker.h"

namespace ez {
namespace {

struct GemmArgs {
  bool trans_a, trans_b;
  int m, n, k;
  const float* a;
  long lda;
  const float* b;
  long ldb;
  float* c;
  long ldc;
  Init init;  // zero, load (accumulate) or bias_col (bias[j] added to column j)
  const float* bias;
};

// Rows i0..i0+mc of op(A), reduction p0..p0+kc, as panels of `rows` rows laid out [kc][rows] (the last panel
// has the leftover rows), panel by panel.
inline void pack_a(const GemmArgs& g, int i0, int mc, int p0, int kc, int rows, float* dst) {
  for (int ip = 0; ip < mc; ip += rows) {
    const int mr = std::min(rows, mc - ip);
    if (g.trans_a) {
      for (int p = 0; p < kc; ++p) {
        const float* src = g.a + (p0 + p) * g.lda + i0 + ip;
        for (int r = 0; r < mr; ++r) dst[p * mr + r] = src[r];
      }
    } else {
      const float* src = g.a + (i0 + ip) * g.lda + p0;
      for (int p = 0; p < kc; ++p) {
        for (int r = 0; r < mr; ++r) dst[p * mr + r] = src[r * g.lda + p];
      }
    }
    dst += mr * kc;
  }
}

// Columns j0..j0+nr of op(B), reduction p0..p0+kc, laid out [kc][stride] with zeros past nr.
inline void pack_b(const GemmArgs& g, int p0, int kc, int j0, int nr, int stride, float* dst) {
  if (g.trans_b) {
    for (int p = 0; p < kc; ++p) std::fill(dst + p * stride + nr, dst + (p + 1) * stride, 0.f);
    for (int j = 0; j < nr; ++j) {
      const float* src = g.b + (j0 + j) * g.ldb + p0;
      for (int p = 0; p < kc; ++p) dst[p * stride + j] = src[p];
    }
  } else {
    for (int p = 0; p < kc; ++p) {
      std::memcpy(dst + p * stride, g.b + (p0 + p) * g.ldb + j0, sizeof(float) * nr);
      std::fill(dst + p * stride + nr, dst + (p + 1) * stride, 0.f);
    }
  }
}

// Outer-product strategy. Loop nest: column blocks (NC) > reduction blocks (KC) > tasks of (MC rows x a group
// of NR-column panels). Each block of B is packed once and shared; so is A when it has few rows (the tasks then
// split the columns), otherwise each task packs its rows. An operand whose panels would serve only a few tiles
// is read in place instead, when its layout allows: B when A has few rows (only B's ragged last panel is
// packed), a transposed A when B has few columns. Tiles that broadcast A's values from memory (not lane_fma) read
// the rows of a non-transposed A with many rows in place (a per-point layer's input: packing them cost more than
// it saved, e.g. PointNet's 64->64 layer at batch 32 61 -> 92 GFLOP/s on one Zen 4 thread).
template <class V>
void gemm_outer(const GemmArgs& g) {
  constexpr int W = V::width, MR = V::tile_rows, NV = V::tile_vecs, NR = W * NV;
  constexpr int KC = kGemmKC, MC = MR * kGemmBlocks, NC = NR * kGemmBlocks;
  const GemmOuterScratch sz = gemm_outer_scratch(g.trans_a, g.trans_b, g.m, g.n, g.k, {W, MR, NV, V::lane_fma});
  const bool direct_b = sz.direct_b, direct_a = sz.direct_a, rows_a = sz.rows_a;
  const int kc_max = sz.kc_max, panels_max = sz.panels_max;
  const bool shared_a = sz.shared_a, own_a = sz.own_a;
  // Tasks: blocks of rows x groups of column panels. When A has many rows (packed per task or read in place), a task
  // takes MC of them; else tasks are smaller and split the columns too, enough of them to balance two or three
  // threads.
  const bool row_tasks = own_a || rows_a;
  const int mc_task = row_tasks ? MC : 4 * MR, row_blocks = ceil_div(g.m, mc_task), a_panels = ceil_div(g.m, MR);
  const int groups = row_tasks ? 1 : std::min(panels_max, ceil_div(12, row_blocks));
  const int team = sz.team;
  ScratchBuffer<float> bpack(sz.bpack);
  ScratchBuffer<float> apack(sz.apack);
  for (int jc = 0; jc < g.n; jc += NC) {
    const int panels = ceil_div(std::min(NC, g.n - jc), NR);
    const int per_group = ceil_div(panels, groups);
    for (int pc = 0; pc < g.k; pc += KC) {
      const int kc = std::min(KC, g.k - pc);
      parallel_for(team, panels + (shared_a ? a_panels : 0), [&](std::int64_t t) {
        if (t >= panels) {
          const int i0 = static_cast<int>(t - panels) * MR;
          pack_a(g, i0, std::min(MR, g.m - i0), pc, kc, MR, apack.data() + i0 * kc);
          return;
        }
        const int j0 = jc + static_cast<int>(t) * NR, nr = std::min(NR, g.n - j0);
        if (!direct_b || nr < NR) pack_b(g, pc, kc, j0, nr, ceil_div(nr, W) * W, bpack.data() + t * NR * kc);
      });
      const Init init = pc == 0 ? g.init : Init::load;
      parallel_for(team, row_blocks * groups, [&](std::int64_t task, int slot) {
        const int t = static_cast<int>(task);
        const int i0 = (t / groups) * mc_task, mc = std::min(mc_task, g.m - i0);
        const int jp_end = std::min(panels, (t % groups + 1) * per_group);
        if ((t % groups) * per_group >= jp_end) return;
        float* task_a = apack.data() + (own_a ? static_cast<std::size_t>(slot) * MC * kc_max : 0);
        const float* ap = shared_a ? apack.data() + i0 * kc : task_a;
        if (own_a) pack_a(g, i0, mc, pc, kc, MR, task_a);
        for (int jp = (t % groups) * per_group; jp < jp_end; ++jp) {
          const int j0 = jc + jp * NR, nr = std::min(NR, g.n - j0), nv = ceil_div(nr, W);
          const bool in_place = direct_b && nr == NR;
          const float* base = in_place ? g.b + pc * g.ldb + j0 : bpack.data() + jp * NR * kc;
          const StrideOff off{in_place ? g.ldb : nv * W};
          const float* bv[NV];
          int col[NV], lanes[NV];
          for (int v = 0; v < nv; ++v) {
            bv[v] = base + v * W;
            col[v] = j0 + v * W;
            lanes[v] = std::min(W, g.n - col[v]);
          }
          for (int ip = 0; ip < mc; ip += MR) {
            const int mr = std::min(MR, mc - ip);
            const TileOut out{g.c + (i0 + ip) * g.ldc, g.ldc, col, lanes, init, g.bias};
            if constexpr (!V::lane_fma) {
              if (rows_a) {
                outer_fn<V, StrideOff, StoreTile, true>(mr, nv)(kc, g.a + (i0 + ip) * g.lda + pc, g.lda, bv, off, out);
                continue;
              }
            }
            if (direct_a) {
              outer_fn<V, StrideOff>(mr, nv)(kc, g.a + pc * g.lda + i0 + ip, g.lda, bv, off, out);
            } else {
              outer_fn<V, StrideOff>(mr, nv)(kc, ap + ip * kc, mr, bv, off, out);
            }
          }
        }
      });
    }
  }
}

// Dot strategy for C = A B^T: both operands are rows along the reduction, read in place, no packing.
template <class V>
void gemm_dot(const GemmArgs& g) {
  constexpr int DR = V::dot_rows, DC = V::dot_cols;
  const int row_tiles = ceil_div(g.m, DR), col_tiles = ceil_div(g.n, DC);
  const DotSegs segs{1, 1, g.k, 0, 0, 0, 0};
  parallel_for(team_for(2.0 * g.m * g.n * g.k), row_tiles * col_tiles, [&](std::int64_t task) {
    const int t = static_cast<int>(task);
    // Rows of A vary fastest: A (few rows) stays in cache while B streams through once.
    const int i0 = (t % row_tiles) * DR, j0 = (t / row_tiles) * DC;
    const int mr = std::min(DR, g.m - i0), np = std::min(DC, g.n - j0);
    const float* ar[DR];
    const float* br[DC];
    for (int r = 0; r < mr; ++r) ar[r] = g.a + (i0 + r) * g.lda;
    for (int j = 0; j < np; ++j) br[j] = g.b + (j0 + j) * g.ldb;
    const DotOut out{g.c + i0 * g.ldc + j0, g.ldc, g.init, g.bias ? g.bias + j0 : nullptr};
    dot_fn<V>(mr, np)(ar, br, segs, out);
  });
}

template <class V>
void gemm_run(const GemmArgs& g) {
  if (g.m <= 0 || g.n <= 0) return;
  if (g.k <= 0) {  // an empty reduction: C keeps its value or becomes the bias or zero
    if (g.init == Init::load) return;
    for (int i = 0; i < g.m; ++i) {
      for (int j = 0; j < g.n; ++j) g.c[i * g.ldc + j] = g.init == Init::bias_col ? g.bias[j] : 0.f;
    }
    return;
  }
  // Dot tiles pay a horizontal sum per output, about 6 vectors' worth of work, against the k / W products;
  // outer tiles pay about one scalar move per element of B^T to pack it, against the m / W products per element.
  const bool dot = gemm_uses_dot(g.trans_a, g.trans_b, g.m, g.k);
  if (dot) {
    gemm_dot<V>(g);
  } else {
    gemm_outer<V>(g);
  }
}

}  // namespace
}  // namespace ez
