// int8 2-D convolution (stride 1) into int32 on the int8 GEMM driver (gemm_i8_body.h); ISA files only.
// Forward: the weights [c_out][taps] are packed once as A; each sample is copied into a zero-padded image, and
// B's vectors are W-wide pieces ("slots") of output rows, whose k values (taps) sit at fixed offsets of the
// padded image, so the packing reads contiguous bytes and no im2col matrix is built. Backward data is the
// forward of the flipped, channel-transposed kernel. Backward weight: dw[co][tap] = sum over samples of dy . x at
// the tap, one GEMM per sample over its output rows padded to the padded input's width (dy zero there), each
// thread summing a contiguous run of samples into its own int32 partial; integer sums make the order irrelevant.
#pragma once
#include <algorithm>
#include <vector>

#include "kernels/gemm/gemm_i8_body.h"
#include "kernels/shapes.h"
#include "kernels/workspace.h"

namespace ez {
namespace {

// Channels of an h x w int8 image into rows of stride wr of an hp-row plane, shifted by pad (negative: cropped),
// zeros elsewhere.
inline void pad_image_i8(const std::int8_t* src, int channels, int h, int w, int pad, int hp, int wr,
                         std::int8_t* dst) {
  std::fill(dst, dst + static_cast<long>(channels) * hp * wr, std::int8_t{0});
  const int px0 = std::max(0, pad), px1 = std::min(wr, w + pad);
  if (px0 >= px1) return;
  for (int c = 0; c < channels; ++c) {
    for (int iy = std::max(0, -pad); iy < h && iy + pad < hp; ++iy) {
      const std::int8_t* row = src + (static_cast<long>(c) * h + iy) * w;
      std::copy(row + px0 - pad, row + px1 - pad, dst + (static_cast<long>(c) * hp + iy + pad) * wr + px0);
    }
  }
}

// Offset of every tap (c, ky, kx) in an image of `channels` planes of hp rows of stride wr.
inline std::vector<int> tap_offsets_i8(int channels, int k, int hp, int wr) {
  std::vector<int> off;
  off.reserve(static_cast<std::size_t>(channels) * k * k);
  for (int c = 0; c < channels; ++c)
    for (int ky = 0; ky < k; ++ky)
      for (int kx = 0; kx < k; ++kx) off.push_back((c * hp + ky) * wr + kx);
  return off;
}

// Channel lanes, NP <= W positions along an output row: acc[j] holds the W channels of position j, summed over the H
// groups (the kg elements at h[off + j] of the padded image) and the V groups (the word at v[(off + j) * kg] of the
// column image), one broadcast per group and position against the group's W x kg packed weights; then the
// correction, and a W x W transpose turns the positions into the lanes of each channel's row y[l * ldy], l < ch.
// Pairs (workspace.h, paired lanes): each H group is 2 kg elements for a pair of lanes, added at the end, channel l
// in lane 2 l.
template <class M, bool Pairs, int NP>
void channel_run(int gh, int gv, const typename M::elem* wp, const std::int32_t* corr,
                 const typename M::elem* h, const int* h_off, const typename M::elem* v, const int* v_off,
                 std::int32_t* y, long ldy, int ch) {
  constexpr int W = M::width, KG = M::kg;
  typename M::acc acc[NP];
  EZ_UNROLL_I8
  for (int j = 0; j < NP; ++j) acc[j] = M::zero_acc();
  for (int g = 0; g < gh; ++g, wp += W * KG) {
    const auto wv = M::load_b(wp);
    const typename M::elem* p = h + h_off[g];
    EZ_UNROLL_I8
    for (int j = 0; j < NP; ++j) {  // input: the unsigned operand
      if constexpr (Pairs) {
        acc[j] = M::dot(acc[j], wv, M::bcast_a2(p + j));
      } else {
        acc[j] = M::dot(acc[j], wv, M::bcast_a(p + j));
      }
    }
  }
  for (int g = 0; g < gv; ++g, wp += W * KG) {
    const auto wv = M::load_b(wp);
    const typename M::elem* p = v + static_cast<long>(v_off[g]) * KG;
    EZ_UNROLL_I8
    for (int j = 0; j < NP; ++j) acc[j] = M::dot(acc[j], wv, M::bcast_a(p + j * KG));
  }
  typename M::reg out[W];
  EZ_UNROLL_I8
  for (int j = 0; j < W; ++j) {
    if (j >= NP) {
      out[j] = M::set1(0);
      continue;
    }
    out[j] = M::finish(acc[j]);
    if (M::b_offset) out[j] = M::add(out[j], M::load_n(corr, W));
    if constexpr (Pairs) out[j] = M::add_pairs(out[j]);
  }
  M::transpose(out);
  constexpr int step = Pairs ? 2 : 1;
  for (int l = 0; l < ch; ++l) M::store_n(y + l * ldy, out[step * l], NP);
}

template <class M>
using ChannelRunFn = void (*)(int, int, const typename M::elem*, const std::int32_t*, const typename M::elem*,
                              const int*, const typename M::elem*, const int*, std::int32_t*, long, int);
template <class M, bool Pairs, int... I>
constexpr std::array<ChannelRunFn<M>, sizeof...(I)> channel_runs(std::integer_sequence<int, I...>) {
  return {{&channel_run<M, Pairs, I + 1>...}};
}

// Forward with W output channels per vector (workspace.h conv_i8_channels): no lane idles on rows narrower than W,
// and nothing is packed per sample but the column image of the leftover columns (k % kg of them), one M::pack_rows
// per W columns of a row, as B's vectors are packed. The padded image takes + 128 in place where the dot product
// reads the input unsigned (M::b_offset; each channel then carries -128 * the sum of its weights), and is widened
// into a copy for int16 microkernels.
template <class M>
void conv_fwd_i8_channels(const Conv2dShape& s, const std::int8_t* x, const std::int8_t* w, std::int32_t* y) {
  using elem = typename M::elem;
  constexpr int W = M::width, KG = M::kg;
  constexpr bool widens = sizeof(elem) != 1;
  const ConvI8Channels c = conv_i8_channels(s, W, KG, M::pair_lanes);
  const int oh = s.out_h(), ow = s.out_w(), taps = s.c_in * s.k * s.k, hp = static_cast<int>(c.hp);
  const int wr = static_cast<int>(c.wr), vr = static_cast<int>(c.v_stride);
  const int kh = c.pairs ? s.k : s.k - s.k % KG;  // columns of the H groups
  const int gh = static_cast<int>(c.h_groups), gv = static_cast<int>(c.v_groups), groups = gh + gv;
  // Lanes per channel and the elements they take from a group (one broadcast).
  const int lpc = c.pairs ? 2 : 1, per_group = lpc * KG, per_block = W / lpc;
  // Offsets of the groups at output (0, 0) and the tap of each of their elements (-1: zero weight).
  std::vector<int> off(static_cast<std::size_t>(groups)), tap(static_cast<std::size_t>(groups) * per_group, -1);
  int g = 0;
  for (int ci = 0; ci < s.c_in; ++ci)
    for (int ky = 0; ky < s.k; ++ky)
      for (int kx = 0; kx < kh; kx += per_group, ++g) {
        off[g] = (ci * hp + ky) * wr + kx;
        for (int t = 0; t < per_group && kx + t < s.k; ++t) tap[g * per_group + t] = (ci * s.k + ky) * s.k + kx + t;
      }
  for (int ci = 0; ci < s.c_in; ++ci)
    for (int kx = kh; kx < s.k; ++kx)
      for (int ky = 0; ky < s.k; ky += KG, ++g) {
        off[g] = (ci * hp + ky) * vr + kx - kh;
        for (int t = 0; t < KG && ky + t < s.k; ++t) tap[g * per_group + t] = (ci * s.k + ky + t) * s.k + kx;
      }
  const int blocks = div_up(s.c_out, per_block);  // channels past c_out: zero weights, never stored
  ScratchBuffer<elem> wpack(static_cast<std::size_t>(blocks) * W * groups * KG);
  ScratchBuffer<std::int32_t> corr(static_cast<std::size_t>(blocks) * W);
  for (int co = 0; co < s.c_out; ++co) {
    const std::int8_t* wrow = w + static_cast<long>(co) * taps;
    const long lane = static_cast<long>(co / per_block) * W + co % per_block * lpc;  // its first lane
    elem* dst = wpack.data() + (static_cast<long>(co / per_block) * groups * W + lane % W) * KG;
    for (int q = 0; q < groups; ++q)
      for (int e = 0; e < per_group; ++e) {
        const int t = tap[q * per_group + e];
        dst[static_cast<long>(q) * W * KG + e] = t < 0 ? 0 : wrow[t];  // e / KG: the pair's lane
      }
    std::int64_t sum = 0;
    for (int p = 0; p < taps; ++p) sum += wrow[p];
    if (M::b_offset) corr[lane] = static_cast<std::int32_t>(static_cast<std::uint32_t>(-128 * sum));
  }
  const long img = static_cast<long>(s.c_in) * hp * wr, vimg = static_cast<long>(s.c_in) * hp * vr * KG;
  const int team = team_for(2.0 * s.n * s.c_out * oh * ow * taps);
  ScratchBuffer<std::int8_t> xpad(static_cast<std::size_t>(team) * (img + W));
  ScratchBuffer<elem> himg(widens ? static_cast<std::size_t>(team) * img : 0, false);
  ScratchBuffer<elem> vbuf(gv > 0 ? static_cast<std::size_t>(team) * vimg : 0, false);
  static constexpr auto single_runs = channel_runs<M, false>(std::make_integer_sequence<int, W>{});
  static constexpr auto pair_runs = channel_runs<M, M::pair_lanes>(std::make_integer_sequence<int, W>{});
  const auto& runs = c.pairs ? pair_runs : single_runs;
  const int ohw = oh * ow;
  parallel_for(team, s.n, [&](std::int64_t n, int slot) {
    std::int8_t* xp = xpad.data() + slot * (img + W);
    pad_image_i8(x + static_cast<long>(n) * s.c_in * s.h * s.w, s.c_in, s.h, s.w, s.pad, hp, wr, xp);
    const elem* h = reinterpret_cast<const elem*>(xp);
    elem* v = vbuf.data() + slot * vimg;
    if (gv > 0) {
      for (int ci = 0; ci < s.c_in; ++ci)
        for (int r = 0; r < hp; ++r) {
          const std::int8_t* rows[KG];
          for (int t = 0; t < KG; ++t) rows[t] = r + t < hp ? xp + (static_cast<long>(ci) * hp + r + t) * wr : kZeroRow;
          for (int x0 = 0; x0 < vr; x0 += W) {  // whole vectors: the slack covers the last row's overread
            const std::int8_t* shifted[KG];
            for (int t = 0; t < KG; ++t) shifted[t] = rows[t] == kZeroRow ? kZeroRow : rows[t] + kh + x0;
            M::pack_rows(shifted, W, v + ((static_cast<long>(ci) * hp + r) * vr + x0) * KG);
          }
        }
    }
    if constexpr (sizeof(elem) == 1 && M::b_offset) {  // + 128 in place, 8 bytes at a time
      for (long e = 0; e + 8 <= img; e += 8) {
        std::uint64_t word;
        std::memcpy(&word, xp + e, 8);
        word ^= 0x8080808080808080u;
        std::memcpy(xp + e, &word, 8);
      }
      for (long e = img / 8 * 8; e < img; ++e) xp[e] = static_cast<std::int8_t>(M::b_elem(xp[e]));
    } else if constexpr (widens) {
      elem* hc = himg.data() + slot * img;
      for (long e = 0; e < img; ++e) hc[e] = M::b_elem(xp[e]);
      h = hc;
    }
    for (int oy = 0; oy < oh; ++oy)
      for (int ox = 0; ox < ow; ox += W) {
        const int np = std::min(W, ow - ox);
        for (int b = 0; b < blocks; ++b)
          runs[np - 1](gh, gv, wpack.data() + static_cast<long>(b) * groups * W * KG, corr.data() + b * W,
                       h + oy * wr + ox, off.data(), v + (static_cast<long>(oy) * vr + ox) * KG, off.data() + gh,
                       y + (static_cast<long>(n) * s.c_out + b * per_block) * ohw + oy * ow + ox, ohw,
                       std::min(per_block, s.c_out - b * per_block));
      }
  });
}

template <class M>
void conv_fwd_i8(const Conv2dShape& s, const std::int8_t* x, const std::int8_t* w, std::int32_t* y) {
  if constexpr (M::channel_lanes) {
    if (conv_i8_channels(s, M::width, M::kg, M::pair_lanes).use) return conv_fwd_i8_channels<M>(s, x, w, y);
  }
  using G = I8Gemm<M>;
  constexpr int W = M::width;
  const int oh = s.out_h(), ow = s.out_w();
  if (s.n <= 0 || s.c_out <= 0 || oh <= 0 || ow <= 0) return;
  const int taps = s.c_in * s.k * s.k, ohw = oh * ow, hp = oh + s.k - 1, wp = ow + s.k - 1;
  // Slack of one vector past the image: the last slot of a row is packed whole (BSrc::overread).
  const long img = static_cast<long>(s.c_in) * hp * wp + W;
  const std::vector<int> off = tap_offsets_i8(s.c_in, s.k, hp, wp);
  const int row_slots = div_up(ow, W), slots = oh * row_slots;
  std::vector<int> slot_in(slots), slot_out(slots), slot_lanes(slots);
  for (int i = 0; i < slots; ++i) {
    const int oy = i / row_slots, ox = (i % row_slots) * W;
    slot_in[i] = oy * wp + ox;
    slot_out[i] = oy * ow + ox;
    slot_lanes[i] = std::min(W, ow - ox);
  }
  ScratchBuffer<typename M::elem> apack(static_cast<std::size_t>(div_up(s.c_out, G::MR)) * G::a_panel_elems(taps));
  ScratchBuffer<std::int32_t> corr(static_cast<std::size_t>(div_up(s.c_out, G::MR)) * G::MR);
  G::pack_a_all({w, taps, 1, nullptr}, s.c_out, taps, apack.data(), corr.data());
  const long bsize = slots * G::b_vec_elems(taps);
  const int team = team_for(2.0 * s.n * s.c_out * ohw * taps);
  ScratchBuffer<std::int8_t> xpad(static_cast<std::size_t>(team) * img);
  std::fill(xpad.data(), xpad.data() + static_cast<long>(team) * img, std::int8_t{0});
  ScratchBuffer<typename M::elem> bpack(static_cast<std::size_t>(team) * bsize);
  const BSrc bs{nullptr, false, 0, off.data(), slot_in.data(), nullptr, true};
  const int tiles = G::tile_count(s.c_out, slots);
  parallel_for(team, s.n, [&](std::int64_t n, int slot) {
    std::int8_t* xp = xpad.data() + slot * img;
    typename M::elem* bp = bpack.data() + slot * bsize;
    pad_image_i8(x + static_cast<long>(n) * s.c_in * s.h * s.w, s.c_in, s.h, s.w, s.pad, hp, wp, xp);
    BSrc b = bs;
    b.base = xp;
    const COut out{y + static_cast<long>(n) * s.c_out * ohw, ohw, ohw, slot_out.data(), slot_lanes.data()};
    G::pack_b_all(b, out, slots, taps, bp);
    G::compute_tiles(s.c_out, slots, taps, apack.data(), corr.data(), bp, out, false, 0, tiles);
  });
}

template <class M>
void conv_bwd_data_i8(const Conv2dShape& s, const std::int8_t* dy, const std::int8_t* w, std::int32_t* dx) {
  const int oh = s.out_h(), ow = s.out_w(), kk = s.k * s.k;
  if (oh <= 0 || ow <= 0) {
    std::fill(dx, dx + static_cast<long>(s.n) * s.c_in * s.h * s.w, 0);
    return;
  }
  std::vector<std::int8_t> wt(static_cast<std::size_t>(s.c_in) * s.c_out * kk);
  for (int co = 0; co < s.c_out; ++co)
    for (int ci = 0; ci < s.c_in; ++ci)
      for (int t = 0; t < kk; ++t)
        wt[(static_cast<long>(ci) * s.c_out + co) * kk + kk - 1 - t] =
            w[(static_cast<long>(co) * s.c_in + ci) * kk + t];
  conv_fwd_i8<M>({s.n, s.c_out, oh, ow, s.c_in, s.k, s.k - 1 - s.pad}, dy, wt.data(), dx);
}

template <class M>
void conv_bwd_weight_i8(const Conv2dShape& s, const std::int8_t* x, const std::int8_t* dy, std::int32_t* dw) {
  using G = I8Gemm<M>;
  const int oh = s.out_h(), ow = s.out_w(), taps = s.c_in * s.k * s.k;
  const long wsize = static_cast<long>(s.c_out) * taps;
  std::fill(dw, dw + wsize, 0);
  if (s.n <= 0 || oh <= 0 || ow <= 0 || wsize == 0) return;
  const int wr = ow + s.k - 1, hp = oh + s.k - 1, len = oh * wr;
  // The last tap's column runs k - 1 bytes past the padded image: the slack keeps them inside (and zero).
  const long img = static_cast<long>(s.c_in) * hp * wr + s.k, grad = static_cast<long>(s.c_out) * len;
  const std::vector<int> off = tap_offsets_i8(s.c_in, s.k, hp, wr);
  const int nvec = div_up(taps, M::width);
  const long apanels = static_cast<long>(div_up(s.c_out, G::MR)) * G::a_panel_elems(len);
  const long bsize = nvec * G::b_vec_elems(len);
  // Runs of samples fixed by the shape, each summed into its own int32 partial (integer sums: any split gives
  // the same bits), then the partials are added.
  const int runs = std::min(s.n, 8), team = team_for(2.0 * s.n * s.c_out * oh * ow * taps);
  ScratchBuffer<std::int8_t> xpad(static_cast<std::size_t>(team) * img), dypad(static_cast<std::size_t>(team) * grad);
  ScratchBuffer<typename M::elem> apack(static_cast<std::size_t>(team) * apanels);
  ScratchBuffer<typename M::elem> bpack(static_cast<std::size_t>(team) * bsize);
  const long corr_size = static_cast<long>(div_up(s.c_out, G::MR)) * G::MR;
  ScratchBuffer<std::int32_t> corr(static_cast<std::size_t>(team) * corr_size);
  ScratchBuffer<std::int32_t> partial(static_cast<std::size_t>(runs) * wsize);
  const int tiles = G::tile_count(s.c_out, nvec);
  parallel_for(team, runs, [&](std::int64_t run, int slot) {
    std::int8_t* xp = xpad.data() + slot * img;
    std::int8_t* gp = dypad.data() + slot * grad;
    typename M::elem* ap = apack.data() + slot * apanels;
    typename M::elem* bp = bpack.data() + slot * bsize;
    std::int32_t* cr = corr.data() + slot * corr_size;
    const COut out{partial.data() + run * wsize, taps, taps, nullptr, nullptr};
    const int n0 = static_cast<int>(s.n * run / runs), n1 = static_cast<int>(s.n * (run + 1) / runs);
    std::fill(xp + img - s.k, xp + img, std::int8_t{0});
    for (int n = n0; n < n1; ++n) {
      pad_image_i8(x + static_cast<long>(n) * s.c_in * s.h * s.w, s.c_in, s.h, s.w, s.pad, hp, wr, xp);
      pad_image_i8(dy + static_cast<long>(n) * s.c_out * oh * ow, s.c_out, oh, ow, 0, oh, wr, gp);
      G::pack_a_all({gp, len, 1, nullptr}, s.c_out, len, ap, cr);
      G::pack_b_all({xp, true, 0, nullptr, nullptr, off.data()}, out, nvec, len, bp);
      G::compute_tiles(s.c_out, nvec, len, ap, cr, bp, out, n > n0, 0, tiles);
    }
  });
  for (int r = 0; r < runs; ++r)
    for (long e = 0; e < wsize; ++e) dw[e] += partial[r * wsize + e];
}

}  // namespace
}  // namespace ez
