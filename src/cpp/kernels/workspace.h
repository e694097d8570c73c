// Workspace of the optimized conv and GEMM kernels (FP32 and int8), in one place: the kernel bodies size their
// ScratchBuffers from these functions, and the layers declare the same bytes to the memory plan, which lends them to
// the kernels (memory/tracker.h, WorkspaceArena). Other kernels, and every reference kernel, take no workspace.
#pragma once
#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

#include "core/parallel.h"
#include "kernels/shapes.h"
#include "memory/tracker.h"

namespace ez {

// Register tiling of an optimized kernel level (simd/f32x*.h): vector width, outer-tile rows and vectors, and
// whether its outer tiles load A's values as vectors (lane_fma: A must be packed) or broadcast them from memory.
struct TileDims {
  int width, tile_rows, tile_vecs;
  bool lane_fma = false;
};
// The tiling of an ISA level's kernels (`Kernel::isa`); false for "ref", whose kernels take no workspace.
bool tile_dims(const std::string& isa, TileDims& out);

// What the layers declare: workspace bytes of each kernel for the implementation the active table chose.
std::size_t conv2d_fwd_workspace(const Conv2dShape& s);
std::size_t conv2d_bwd_workspace(const Conv2dShape& s, bool bias);  // the larger of backward data and weight
std::size_t linear_fwd_workspace(const LinearShape& s);
std::size_t linear_bwd_workspace(const LinearShape& s);
std::size_t conv2d_fwd_i8_workspace(const Conv2dShape& s);
std::size_t conv2d_bwd_data_i8_workspace(const Conv2dShape& s);
std::size_t conv2d_bwd_weight_i8_workspace(const Conv2dShape& s);
std::size_t linear_fwd_i8_workspace(const LinearShape& s);
std::size_t linear_bwd_data_i8_workspace(const LinearShape& s);
std::size_t linear_bwd_weight_i8_workspace(const LinearShape& s);
std::size_t point_linear_max_workspace(const LinearShape& s, int points);

inline long ws_ceil_div(long a, long b) { return (a + b - 1) / b; }
// Bytes of a workspace piece of `count` 4-byte values, as an arena lends it (rounded up to the alignment).
inline std::size_t ws_piece(long count) { return aligned_bytes(static_cast<std::size_t>(std::max(count, 0L)) * 4); }

// Forward: tap offsets, three per-slot tables (W-wide pieces of output rows), packed weights, one zero-padded
// image per thread (plus W floats of slack for a slot's last vector).
struct ConvFwdScratch {
  long taps = 0, slots = 0, wpack = 0, xpad = 0, img = 0;
  int team = 1;
  std::size_t bytes() const { return ws_piece(taps) + 3 * ws_piece(slots) + ws_piece(wpack) + ws_piece(xpad); }
};
inline ConvFwdScratch conv_fwd_scratch(const Conv2dShape& s, int width) {
  ConvFwdScratch r;
  const long oh = s.out_h(), ow = s.out_w();
  if (s.n <= 0 || s.c_out <= 0 || oh <= 0 || ow <= 0) return r;
  r.taps = static_cast<long>(s.c_in) * s.k * s.k;
  r.slots = oh * ws_ceil_div(ow, width);
  r.wpack = s.c_out * r.taps;
  r.img = static_cast<long>(s.c_in) * (oh + s.k - 1) * (ow + s.k - 1) + width;
  r.team = team_for(2.0 * s.n * s.c_out * oh * ow * r.taps);
  r.xpad = r.team * r.img;
  return r;
}

// Backward data: the flipped, transposed kernel, then the forward convolution of dy with it.
inline Conv2dShape conv_bwd_data_problem(const Conv2dShape& s) {
  return {s.n, s.c_out, s.out_h(), s.out_w(), s.c_in, s.k, s.k - 1 - s.pad};
}
inline std::size_t conv_bwd_data_bytes(const Conv2dShape& s, int width) {
  if (s.out_h() <= 0 || s.out_w() <= 0) return 0;
  return ws_piece(static_cast<long>(s.c_in) * s.c_out * s.k * s.k) +
         conv_fwd_scratch(conv_bwd_data_problem(s), width).bytes();
}

// Backward weight: tap offsets, padded x and dy of a chunk of samples (about 1 MiB; the chunking depends on the
// shape only), and the chunks' partial sums.
struct ConvBwdWeightScratch {
  long taps = 0, img = 0, grad = 0, outs = 0, wsize = 0;
  int chunk = 0, chunks = 0;
  std::size_t bytes() const {
    return chunks == 0 ? 0 : ws_piece(taps) + ws_piece(chunk * img) + ws_piece(chunk * grad) + ws_piece(chunks * outs);
  }
};
inline ConvBwdWeightScratch conv_bwd_weight_scratch(const Conv2dShape& s, bool bias) {
  ConvBwdWeightScratch r;
  const long oh = s.out_h(), ow = s.out_w();
  r.taps = static_cast<long>(s.c_in) * s.k * s.k;
  r.wsize = s.c_out * r.taps;
  r.outs = r.wsize + (bias ? s.c_out : 0);
  if (s.n <= 0 || oh <= 0 || ow <= 0) return r;
  const long wr = ow + s.k - 1, hp = oh + s.k - 1;
  // The last tap's rows run k - 1 floats past its plane (into the next one, or this slack).
  r.img = static_cast<long>(s.c_in) * hp * wr + s.k;
  r.grad = s.c_out * oh * wr;
  r.chunk = static_cast<int>(std::clamp((1L << 18) / (r.img + r.grad), 1L, static_cast<long>(s.n)));
  r.chunks = static_cast<int>(ws_ceil_div(s.n, r.chunk));
  return r;
}

// GEMM C (+)= op(A) op(B): the dot strategy reads both operands in place; the outer-product strategy packs
// blocks of B (shared) and of A (shared when A has few rows, else per thread), unless read in place.
constexpr int kGemmKC = 256, kGemmBlocks = 16;  // reduction block; MC = MR x 16 rows, NC = NR x 16 columns
inline bool gemm_uses_dot(bool trans_a, bool trans_b, int m, int k) { return !trans_a && trans_b && 3 * m < k; }
struct GemmOuterScratch {
  bool direct_a = false, direct_b = false, rows_a = false, shared_a = false, own_a = false;
  int kc_max = 0, panels_max = 0, team = 1;
  long bpack = 0, apack = 0;
  std::size_t bytes() const { return ws_piece(bpack) + ws_piece(apack); }
};
inline GemmOuterScratch gemm_outer_scratch(bool trans_a, bool trans_b, int m, int n, int k, const TileDims& t) {
  GemmOuterScratch r;
  const int mr = t.tile_rows, nr = t.width * t.tile_vecs, mc = mr * kGemmBlocks, nc = nr * kGemmBlocks;
  r.direct_b = !trans_b && m <= 4 * mr;
  r.direct_a = trans_a && n <= 4 * nr;
  r.rows_a = !trans_a && !t.lane_fma && m > 3 * mc;  // broadcasting tiles read many rows of A in place
  r.kc_max = std::min(k, kGemmKC);
  r.panels_max = static_cast<int>(ws_ceil_div(std::min(n, nc), nr));
  r.shared_a = !r.direct_a && m <= 3 * mc;
  r.own_a = !r.direct_a && !r.rows_a && !r.shared_a;
  r.team = team_for(2.0 * m * n * k);
  r.bpack = static_cast<long>(r.panels_max) * nr * r.kc_max;
  r.apack = static_cast<long>(r.direct_a || r.rows_a ? 0 : r.shared_a ? m : r.team * mc) * r.kc_max;
  return r;
}
inline std::size_t gemm_bytes(bool trans_a, bool trans_b, int m, int n, int k, const TileDims& t) {
  if (m <= 0 || n <= 0 || k <= 0 || gemm_uses_dot(trans_a, trans_b, m, k)) return 0;
  return gemm_outer_scratch(trans_a, trans_b, m, n, k, t).bytes();
}

// ---- int8 (gemm_i8_body.h, conv2d_i8_body.h) ----

// An integer microkernel (simd/i8_x86.h, i8_neon.h): vector width, k values per group, rows per A panel, bytes per
// packed element. A packed A panel holds groups(k) x tile_rows x kg elements, a packed B vector groups(k) x width x kg.
struct I8Tiles {
  int width, kg, tile_rows, elem_bytes;
  // Whether its conv forward has channel lanes (conv_fwd_i8_channels), and copies the padded image into its own
  // element type or offset for them.
  bool channel_lanes = false, converts = false;
  // Whether its channel lanes may come in pairs (conv_i8_channels: two kg-column groups of a kernel row per channel).
  bool pair_lanes = false;
  long groups(long k) const { return ws_ceil_div(k, kg); }
  long panels(long rows) const { return ws_ceil_div(rows, tile_rows); }
};
// The microkernels an integer implementation (`Kernel::isa`) may run, for the conv forward or for every other
// kernel (AVX2's conv forward takes u8x8 for a non-negative input, s16x8 otherwise); empty for "ref".
std::vector<I8Tiles> i8_tiles(const std::string& isa, bool conv_forward);

// Bytes of a workspace piece of `count` elements of `elem_bytes`, as an arena lends it.
inline std::size_t ws_piece_of(long count, int elem_bytes) {
  return aligned_bytes(static_cast<std::size_t>(std::max(count, 0L)) * static_cast<std::size_t>(elem_bytes));
}

// GEMM: A's panels and their -128 row-sum corrections, B's vectors.
inline std::size_t gemm_i8_bytes(int m, int n, int k, const I8Tiles& t) {
  if (m <= 0 || n <= 0 || k <= 0) return 0;
  const long panels = t.panels(m), g = t.groups(k);
  return ws_piece_of(panels * g * t.tile_rows * t.kg, t.elem_bytes) + ws_piece_of(panels * t.tile_rows, 4) +
         ws_piece_of(ws_ceil_div(n, t.width) * g * t.width * t.kg, t.elem_bytes);
}

// Channel lanes (conv2d_i8_body.h conv_fwd_i8_channels): taken when c_out is a multiple of the vector width and the
// output rows are not, or when fewer channels than the width fill at least a third of it (bench_int8: LeNet-5's
// conv1, 6 channels in 8 lanes or even 16, beats the row tiles and their per-sample packing). Taps are grouped by kg columns of one row of the padded image (k - k % kg columns) and the
// columns left over by kg rows of one column, read from an image whose element (r, x) holds rows r .. r + kg - 1
// of column k - k % kg + x, its rows `v_stride` elements apart (a whole number of vectors).
// Paired lanes (microkernels with `pair_lanes`, at most W / 2 channels, kg < k <= 2 kg: LeNet-5's conv1): channel c
// in lanes 2c and 2c + 1, which take columns 0..kg-1 and kg..2kg-1 of a kernel row (zero weights past k) from one
// 2 kg-byte broadcast of the padded image, and are added at the end: one group per kernel row and no column image
// (conv1: 5 dot products per position instead of 7).
struct ConvI8Channels {
  long hp, wr, v_stride, h_groups, v_groups;
  bool use, pairs;
  long groups() const { return h_groups + v_groups; }
};
inline ConvI8Channels conv_i8_channels(const Conv2dShape& s, int width, int kg, bool pair_lanes) {
  const long oh = s.out_h(), ow = s.out_w(), wr = ow + s.k - 1, left = s.k % kg;
  const bool use = s.n > 0 && oh > 0 && ow > 0 &&
                   ((s.c_out % width == 0 && ow % width != 0) || (s.c_out < width && 3 * s.c_out >= width));
  if (use && pair_lanes && 2 * s.c_out <= width && s.k > kg && s.k <= 2 * kg)
    return {oh + s.k - 1, wr, 0, static_cast<long>(s.c_in) * s.k, 0, true, true};
  return {oh + s.k - 1, wr, ws_ceil_div(wr - (s.k - left), width) * width, static_cast<long>(s.c_in) * s.k * (s.k / kg),
          static_cast<long>(s.c_in) * left * ws_ceil_div(s.k, kg), use, false};
}
// Their scratch: the packed weights and corrections, then per thread the padded image (a vector of slack), its copy
// widened to the microkernel's element type (int16 elements only) and the column image.
inline std::size_t conv_fwd_i8_channel_bytes(const Conv2dShape& s, const I8Tiles& t) {
  const ConvI8Channels c = conv_i8_channels(s, t.width, t.kg, t.pair_lanes);
  const long team = team_for(2.0 * s.n * s.c_out * s.out_h() * s.out_w() * s.c_in * s.k * s.k);
  const long img = static_cast<long>(s.c_in) * c.hp * c.wr;
  const long channels = ws_ceil_div(s.c_out, t.width) * t.width;
  return ws_piece_of(channels * c.groups() * t.kg, t.elem_bytes) + ws_piece_of(channels, 4) +
         ws_piece_of(team * (img + t.width), 1) + ws_piece_of(t.converts ? team * img : 0, t.elem_bytes) +
         ws_piece_of(c.v_groups > 0 ? team * s.c_in * c.hp * c.v_stride * t.kg : 0, t.elem_bytes);
}
// Forward: the packed weights and corrections, then per thread a zero-padded image (a vector of slack) and the
// packed slots of one sample.
inline std::size_t conv_fwd_i8_bytes(const Conv2dShape& s, const I8Tiles& t) {
  const long oh = s.out_h(), ow = s.out_w();
  if (s.n <= 0 || s.c_out <= 0 || oh <= 0 || ow <= 0) return 0;
  if (t.channel_lanes && conv_i8_channels(s, t.width, t.kg, t.pair_lanes).use) return conv_fwd_i8_channel_bytes(s, t);
  const long taps = static_cast<long>(s.c_in) * s.k * s.k, panels = t.panels(s.c_out), g = t.groups(taps);
  const long img = static_cast<long>(s.c_in) * (oh + s.k - 1) * (ow + s.k - 1) + t.width;
  const long slots = oh * ws_ceil_div(ow, t.width);
  const long team = team_for(2.0 * s.n * s.c_out * oh * ow * taps);
  return ws_piece_of(panels * g * t.tile_rows * t.kg, t.elem_bytes) + ws_piece_of(panels * t.tile_rows, 4) +
         ws_piece_of(team * img, 1) + ws_piece_of(team * slots * g * t.width * t.kg, t.elem_bytes);
}
// Backward data: the forward of the flipped kernel (its transposed copy is not scratch).
inline std::size_t conv_bwd_data_i8_bytes(const Conv2dShape& s, const I8Tiles& t) {
  if (s.out_h() <= 0 || s.out_w() <= 0) return 0;
  return conv_fwd_i8_bytes(conv_bwd_data_problem(s), t);
}
// Backward weight: per thread a padded input, a padded output error and their packings; per run of samples (at
// most 8) an int32 partial gradient.
inline std::size_t conv_bwd_weight_i8_bytes(const Conv2dShape& s, const I8Tiles& t) {
  const long oh = s.out_h(), ow = s.out_w(), taps = static_cast<long>(s.c_in) * s.k * s.k, wsize = s.c_out * taps;
  if (s.n <= 0 || oh <= 0 || ow <= 0 || wsize == 0) return 0;
  const long wr = ow + s.k - 1, len = oh * wr, img = static_cast<long>(s.c_in) * (oh + s.k - 1) * wr + s.k;
  const long team = team_for(2.0 * s.n * s.c_out * oh * ow * taps), runs = std::min(s.n, 8);
  const long panels = t.panels(s.c_out), g = t.groups(len);
  return ws_piece_of(team * img, 1) + ws_piece_of(team * s.c_out * len, 1) +
         ws_piece_of(team * panels * g * t.tile_rows * t.kg, t.elem_bytes) +
         ws_piece_of(team * ws_ceil_div(taps, t.width) * g * t.width * t.kg, t.elem_bytes) +
         ws_piece_of(team * panels * t.tile_rows, 4) + ws_piece_of(runs * wsize, 4);
}

// Per-point Linear + ReLU + max over the points: the weights packed once (the whole reduction, outer tiles only),
// per thread a packed block of MC points x the whole reduction (lane-FMA outer tiles; broadcasting ones read the
// rows in place) and an MC x NR tile of outputs (dot tiles, and partial sums of a reduction longer than a block).
// Tasks are (sample, group of column panels): one group when there are samples enough to keep every thread busy.
struct PointLinearMaxScratch {
  bool dot = false;
  int team = 1, panels = 0, groups = 1;
  long bpack = 0, apack = 0, tile = 0;  // apack and tile per thread
  std::size_t bytes() const { return ws_piece(bpack) + ws_piece(team * apack) + ws_piece(team * tile); }
};
inline PointLinearMaxScratch point_linear_max_scratch(const LinearShape& s, int points, const TileDims& t) {
  PointLinearMaxScratch r;
  if (points <= 0 || s.rows <= 0 || s.out <= 0 || s.in <= 0) return r;
  const int nr = t.width * t.tile_vecs, mc = t.tile_rows * kGemmBlocks, samples = s.rows / points;
  r.dot = gemm_uses_dot(false, true, s.rows, s.in);  // the strategy linear_fwd takes, so the bits are the same
  r.team = team_for(2.0 * s.rows * s.out * s.in);
  r.panels = static_cast<int>(ws_ceil_div(s.out, nr));
  r.groups = static_cast<int>(std::clamp(ws_ceil_div(4L * r.team, samples), 1L, static_cast<long>(r.panels)));
  r.bpack = r.dot ? 0 : static_cast<long>(r.panels) * nr * s.in;
  r.apack = r.dot || !t.lane_fma ? 0 : static_cast<long>(std::min(mc, points)) * s.in;  // else rows read in place
  r.tile = static_cast<long>(mc) * nr;
  return r;
}

}  // namespace ez
