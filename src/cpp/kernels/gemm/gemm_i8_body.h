// Blocked int8 x int8 -> int32 GEMM driver, templated on an ISA's microkernel type M (simd/i8_*.h); included
// only by ISA files. C[m x n] (+)= A[m x k] B[k x n], with k cut into groups of M::kg consecutive values:
//   A is packed per panel of rows as [group][row][kg] (a row's group is broadcast to every lane),
//   B per vector of M::width columns as [group][M::b_layout of width x kg] (one vector register per group),
// and M::dot(acc, a, b) adds each lane's kg products into its int32 accumulator. Padding (k past the end, rows
// and columns past the edge) is zero and never stored. Integer sums are exact, so the result cannot depend on
// blocking, threads or ISA: every kernel equals the reference bit for bit (no intermediate ever saturates: pair
// sums of int8 products stay below 2 * 127^2 < 2^15, |int32| sums below 2^31 for the reductions NITI sees).
// M::b_offset: B is stored as b + 128 (unsigned, for x86's u8 x s8 dot product); each row i then carries the
// correction -128 * sum_k a[i][k], added at the end.
#pragma once
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <utility>

#include "core/parallel.h"
#include "memory/tracker.h"

#define EZ_UNROLL_I8 _Pragma("GCC unroll 32")

namespace ez {
namespace {

inline int div_up(int a, int b) { return (a + b - 1) / b; }

// Stands in for B rows past k: read, never written.
alignas(64) constexpr std::int8_t kZeroRow[64] = {};

// Row i of A: element p at row(i)[p * cs]; rows at base + i * rs, or base + row_off[i] when row_off is set.
struct ASrc {
  const std::int8_t* base;
  long rs, cs;
  const int* row_off;
  const std::int8_t* row(int i) const { return base + (row_off ? row_off[i] : i * rs); }
};

// B by rows (k_contig false): element (p, column lane l of vector v) at base + koff(p) + vcol(v) + l, the lanes of
// a vector contiguous; koff(p) = p * ldb or koff[p]. By columns (k_contig true): column j's k values contiguous at
// base + col_off(j) (col_off[j], or j * ldb).
struct BSrc {
  const std::int8_t* base;
  bool k_contig;
  long ldb;
  const int* koff;     // rows: per-k offsets (null: p * ldb)
  const int* vcol;     // rows: per-vector column offsets (null: v * width)
  const int* col_off;  // columns: per-column offsets (null: j * ldb)
  // Rows: the memory holds a whole vector past every partial one (padded images do), so packing may read all
  // `width` lanes; the extra lanes are computed and never stored.
  bool overread = false;
};

// Where vector v of C lands: row i at c + i * ldc + vcol(v), lanes(v) of its lanes (vcol null: v * width, and
// lanes min(width, n - v * width)).
struct COut {
  std::int32_t* c;
  long ldc;
  int n;
  const int* vcol;
  const int* lanes;
};

template <class M>
struct I8Gemm {
  using elem = typename M::elem;
  static constexpr int W = M::width, KG = M::kg, MR = M::tile_rows, NV = M::tile_vecs;

  static int groups(int k) { return div_up(k, KG); }
  // Elements of one packed B vector and of one packed A panel (MR rows) over k.
  static long b_vec_elems(int k) { return static_cast<long>(groups(k)) * W * KG; }
  static long a_panel_elems(int k) { return static_cast<long>(groups(k)) * MR * KG; }

  // Rows i0..i0+mr of A as [group][mr][kg] (zero past k); corr[r] = -128 * sum of row r when M::b_offset.
  static void pack_a(const ASrc& a, int i0, int mr, int k, elem* dst, std::int32_t* corr) {
    if constexpr (words_transpose()) {
      if (a.cs == 1) return pack_a_words_transposed(a, i0, mr, k, dst, corr);
    }
    const int gs = groups(k);
    for (int r = 0; r < mr; ++r) {
      const std::int8_t* src = a.row(i0 + r);
      std::int64_t sum = 0;
      for (int g = 0; g < gs; ++g) {
        elem* d = dst + (static_cast<long>(g) * mr + r) * KG;
        for (int t = 0; t < KG; ++t) {
          const int p = g * KG + t;
          const std::int8_t v = p < k ? src[p * a.cs] : std::int8_t{0};
          d[t] = static_cast<elem>(v);
          sum += v;
        }
      }
      // Taken modulo 2^32 like the vector sums it corrects, so the final sum is exact whenever C fits in int32.
      if (M::b_offset) corr[r] = static_cast<std::int32_t>(static_cast<std::uint32_t>(-128 * sum));
    }
  }

  // The VNNI layouts (bytes [lane][4], B offset by 128) of the microkernels with a W x W int32 transpose (those with
  // channel lanes): a group of 4 k values is one 32-bit word of a row, so W groups of W rows pack as one transpose.
  static constexpr bool words_transpose() {
    return M::channel_lanes && M::b_offset && sizeof(elem) == 1 && KG == 4 && MR <= W;
  }

  // pack_a for rows in place (cs = 1): W words (groups) of each row loaded at once and transposed in registers (rows
  // past mr zero), each group's mr words stored at once; the row sums of the correction from the same registers,
  // by M::dot against bytes of 1. Where the byte loop moved one byte at a time (fc1's input: 25,088 bytes a pass).
  static void pack_a_words_transposed(const ASrc& a, int i0, int mr, int k, elem* dst, std::int32_t* corr) {
    using reg = typename M::reg;
    const int whole = k / KG;
    const reg ones = M::set1(0x01010101);
    typename M::acc sums = M::zero_acc();
    for (int g0 = 0; g0 < whole; g0 += W) {
      const int count = std::min(W, whole - g0);
      reg r[W];
      EZ_UNROLL_I8
      for (int i = 0; i < W; ++i)
        r[i] = i < mr ? M::load_n(reinterpret_cast<const std::int32_t*>(a.row(i0 + i) + g0 * KG), count) : M::set1(0);
      M::transpose(r);
      for (int g = 0; g < count; ++g) {
        sums = M::dot(sums, r[g], ones);
        M::store_n(reinterpret_cast<std::int32_t*>(dst + static_cast<long>(g0 + g) * mr * KG), r[g], mr);
      }
    }
    alignas(64) std::int32_t row_sum[W];
    M::store(row_sum, M::finish(sums));
    for (int r = 0; r < mr; ++r) {
      std::int64_t sum = row_sum[r];
      if (whole * KG < k) {  // the last group, zero past k
        const std::int8_t* src = a.row(i0 + r);
        elem* d = dst + (static_cast<long>(whole) * mr + r) * KG;
        for (int t = 0; t < KG; ++t) {
          const int p = whole * KG + t;
          d[t] = p < k ? src[p] : std::int8_t{0};
          sum += d[t];
        }
      }
      corr[r] = static_cast<std::int32_t>(static_cast<std::uint32_t>(-128 * sum));
    }
  }

  // Vector v of B (lanes columns) over k, into dst[group][b_layout].
  static void pack_b(const BSrc& b, int v, int lanes, int k, elem* dst) {
    const int gs = groups(k);
    if (!b.k_contig) {
      const long col = b.vcol ? b.vcol[v] : static_cast<long>(v) * W;
      for (int g = 0; g < gs; ++g) {
        const std::int8_t* rows[KG];
        for (int t = 0; t < KG; ++t) {
          const int p = g * KG + t;
          rows[t] = p < k ? b.base + (b.koff ? b.koff[p] : p * b.ldb) + col : kZeroRow;
        }
        M::pack_rows(rows, b.overread ? W : lanes, dst + static_cast<long>(g) * W * KG);
      }
      return;
    }
    if (bytes_by_lane()) return pack_b_columns_by_words(b, v, lanes, k, dst);
    for (int g = 0; g < gs; ++g) {
      elem* d = dst + static_cast<long>(g) * W * KG;
      std::fill(d, d + W * KG, elem{0});
      for (int l = 0; l < lanes; ++l) {
        const int j = v * W + l;
        const std::int8_t* src = b.base + (b.col_off ? b.col_off[j] : j * b.ldb) + g * KG;
        const int valid = std::min(KG, k - g * KG);
        for (int t = 0; t < valid; ++t) d[M::b_index(l, t)] = M::b_elem(src[t]);
        for (int t = valid; t < KG; ++t) d[M::b_index(l, t)] = M::b_elem(0);
      }
    }
  }

  // Groups [g0, g0 + count) (count <= W, all whole) of vector v's lanes (words_transpose): each lane's count words
  // loaded as one row, W rows turned into the groups' packed vectors by one transpose, then flipped. Lanes past the
  // edge load the flip itself, so they pack as zero, as the word path leaves them. ~5 instructions per 64 bytes
  // where the word path moves 4 bytes at a time (fc1's W^T: 94,080 bytes a pass).
  static void pack_b_words_transposed(const BSrc& b, int v, int lanes, int g0, int count, std::uint32_t flip,
                                      elem* dst) {
    using reg = typename M::reg;
    const reg f = M::set1(static_cast<std::int32_t>(flip));
    reg r[W];
    EZ_UNROLL_I8
    for (int l = 0; l < W; ++l) {
      if (l >= lanes) {
        r[l] = f;
        continue;
      }
      const int j = v * W + l;
      const std::int8_t* src = b.base + (b.col_off ? b.col_off[j] : j * b.ldb) + g0 * KG;
      r[l] = M::load_n(reinterpret_cast<const std::int32_t*>(src), count);
    }
    M::transpose(r);
    EZ_UNROLL_I8
    for (int g = 0; g < W; ++g) {
      if (g < count)
        M::store_n(reinterpret_cast<std::int32_t*>(dst + static_cast<long>(g0 + g) * W * KG), M::bxor(r[g], f), W);
    }
  }

  // Byte layouts [lane][4] whose b_elem is v ^ b_elem(0) (the VNNI offset layout, SDOT, vpmaddubsw): a column's 4 k
  // values of a group are one 32-bit word of the source, moved whole.
  static bool bytes_by_lane() {
    return KG == 4 && sizeof(elem) == 1 && M::b_index(1, 0) == 4 && M::b_index(0, 1) == 1;
  }
  static void pack_b_columns_by_words(const BSrc& b, int v, int lanes, int k, elem* dst) {
    const int gs = groups(k), whole = k / KG;
    const std::uint8_t zero = static_cast<std::uint8_t>(M::b_elem(0));
    const std::uint32_t flip = zero * 0x01010101u;
    int done = 0;  // whole groups packed for every lane by the transposes
    if constexpr (words_transpose()) {
      for (; done < whole; done += W) pack_b_words_transposed(b, v, lanes, done, std::min(W, whole - done), flip, dst);
    }
    for (int l = 0; l < W; ++l) {
      elem* d = dst + l * KG;
      if (l >= lanes) {  // past the edge: zero, as the byte path leaves it
        for (int g = done; g < gs; ++g) std::memset(d + static_cast<long>(g) * W * KG, 0, KG);
        continue;
      }
      const int j = v * W + l;
      const std::int8_t* src = b.base + (b.col_off ? b.col_off[j] : j * b.ldb);
      for (int g = done; g < whole; ++g) {
        std::uint32_t word;
        std::memcpy(&word, src + g * KG, 4);
        word ^= flip;
        std::memcpy(d + static_cast<long>(g) * W * KG, &word, 4);
      }
      if (whole < gs) {  // the last group: k values past k are zero (b_elem(0))
        elem* last = d + static_cast<long>(whole) * W * KG;
        for (int t = 0; t < KG; ++t) last[t] = whole * KG + t < k ? M::b_elem(src[whole * KG + t]) : M::b_elem(0);
      }
    }
  }

  static int vec_col(const COut& o, int v) { return o.vcol ? o.vcol[v] : v * W; }
  static int vec_lanes(const COut& o, int v) { return o.lanes ? o.lanes[v] : std::min(W, o.n - v * W); }

  // acc[r][v] = sum over groups of M::dot, then C = (C if accumulate) + corr[r] + acc.
  template <int R, int V>
  static void tile(int gs, const elem* a, const elem* const* b, const std::int32_t* corr, const COut& o, int i0,
                   int v0, bool accumulate) {
    typename M::acc acc[R][V];
    EZ_UNROLL_I8
    for (int r = 0; r < R; ++r) {
      EZ_UNROLL_I8
      for (int v = 0; v < V; ++v) acc[r][v] = M::zero_acc();
    }
    for (int g = 0; g < gs; ++g) {
      typename M::breg bv[V];
      EZ_UNROLL_I8
      for (int v = 0; v < V; ++v) bv[v] = M::load_b(b[v] + static_cast<long>(g) * W * KG);
      EZ_UNROLL_I8
      for (int r = 0; r < R; ++r) {
        const typename M::areg av = M::bcast_a(a + (static_cast<long>(g) * R + r) * KG);
        EZ_UNROLL_I8
        for (int v = 0; v < V; ++v) acc[r][v] = M::dot(acc[r][v], av, bv[v]);
      }
    }
    // Park the sums in a local buffer first: fixing them up straight from registers (masks, loads of C) makes
    // GCC 12 spill accumulators inside the loop above.
    alignas(64) std::int32_t sums[R][V][W];
    EZ_UNROLL_I8
    for (int r = 0; r < R; ++r) {
      EZ_UNROLL_I8
      for (int v = 0; v < V; ++v) M::store(sums[r][v], M::finish(acc[r][v]));
    }
    for (int r = 0; r < R; ++r) {
      std::int32_t* crow = o.c + static_cast<long>(i0 + r) * o.ldc;
      for (int v = 0; v < V; ++v) {
        const int lanes = vec_lanes(o, v0 + v);
        std::int32_t* dst = crow + vec_col(o, v0 + v);
        typename M::reg res = M::load(sums[r][v]);
        if (M::b_offset) res = M::add(res, M::set1(corr[r]));
        if (accumulate) res = M::add(res, M::load_n(dst, lanes));
        M::store_n(dst, res, lanes);
      }
    }
  }

  using TileFn = void (*)(int, const elem*, const elem* const*, const std::int32_t*, const COut&, int, int, bool);
  template <int... I>
  static constexpr std::array<TileFn, sizeof...(I)> tiles(std::integer_sequence<int, I...>) {
    return {{&tile<I / NV + 1, I % NV + 1>...}};
  }
  static TileFn tile_fn(int mr, int nv) {
    static constexpr auto table = tiles(std::make_integer_sequence<int, MR * NV>{});
    return table[(mr - 1) * NV + (nv - 1)];
  }

  // C rows [0, m) from packed A panels (apack, corr) and packed B vectors (bpack), tiles t of the given range.
  static void compute_tiles(int m, int nvec, int k, const elem* apack, const std::int32_t* corr, const elem* bpack,
                            const COut& o, bool accumulate, int t0, int t1) {
    const int gs = groups(k), vblocks = div_up(nvec, NV);
    for (int t = t0; t < t1; ++t) {
      const int i0 = (t / vblocks) * MR, v0 = (t % vblocks) * NV;
      const int mr = std::min(MR, m - i0), nv = std::min(NV, nvec - v0);
      const elem* bv[NV];
      for (int v = 0; v < nv; ++v) bv[v] = bpack + (v0 + v) * b_vec_elems(k);
      tile_fn(mr, nv)(gs, apack + (i0 / MR) * a_panel_elems(k), bv, corr + i0, o, i0, v0, accumulate);
    }
  }
  static int tile_count(int m, int nvec) { return div_up(m, MR) * div_up(nvec, NV); }

  // Packs all of A (panels of MR rows) and the correction.
  static void pack_a_all(const ASrc& a, int m, int k, elem* apack, std::int32_t* corr) {
    for (int i0 = 0; i0 < m; i0 += MR)
      pack_a(a, i0, std::min(MR, m - i0), k, apack + (i0 / MR) * a_panel_elems(k), corr + i0);
  }
  static void pack_b_all(const BSrc& b, const COut& o, int nvec, int k, elem* bpack) {
    for (int v = 0; v < nvec; ++v) pack_b(b, v, vec_lanes(o, v), k, bpack + v * b_vec_elems(k));
  }

  // The whole product: one job packs A's panels and B's vectors, a second computes the tiles.
  static void run(int m, int k, const ASrc& a, const BSrc& b, const COut& o, int nvec, bool accumulate) {
    if (m <= 0 || nvec <= 0) return;
    const int panels = div_up(m, MR);
    ScratchBuffer<elem> apack(static_cast<std::size_t>(panels) * a_panel_elems(k));
    ScratchBuffer<std::int32_t> corr(static_cast<std::size_t>(panels) * MR);
    ScratchBuffer<elem> bpack(static_cast<std::size_t>(nvec) * b_vec_elems(k));
    const int team = team_for(2.0 * m * nvec * W * static_cast<double>(k));
    parallel_for(team, panels + nvec, [&](std::int64_t task) {
      if (task < panels) {
        const int i0 = static_cast<int>(task) * MR;
        pack_a(a, i0, std::min(MR, m - i0), k, apack.data() + task * a_panel_elems(k), corr.data() + i0);
      } else {
        const int v = static_cast<int>(task - panels);
        pack_b(b, v, vec_lanes(o, v), k, bpack.data() + v * b_vec_elems(k));
      }
    });
    parallel_for(team, tile_count(m, nvec), [&](std::int64_t t) {
      compute_tiles(m, nvec, k, apack.data(), corr.data(), bpack.data(), o, accumulate, static_cast<int>(t),
                    static_cast<int>(t) + 1);
    });
  }
};

// gemm_i8 of kernels.inc on microkernel M.
template <class M>
void gemm_i8_run(bool trans_a, bool trans_b, int m, int n, int k, const std::int8_t* a, int lda, const std::int8_t* b,
                 int ldb, bool accumulate, std::int32_t* c, int ldc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    if (!accumulate)
      for (int i = 0; i < m; ++i) std::fill(c + static_cast<long>(i) * ldc, c + static_cast<long>(i) * ldc + n, 0);
    return;
  }
  const ASrc as{a, trans_a ? 1L : lda, trans_a ? static_cast<long>(lda) : 1L, nullptr};
  const BSrc bs{b, trans_b, ldb, nullptr, nullptr, nullptr};
  I8Gemm<M>::run(m, k, as, bs, {c, ldc, n, nullptr, nullptr}, div_up(n, M::width), accumulate);
}

}  // namespace
}  // namespace ez
