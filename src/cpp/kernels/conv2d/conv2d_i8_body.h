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

template <class M>
void conv_fwd_i8(const Conv2dShape& s, const std::int8_t* x, const std::int8_t* w, std::int32_t* y) {
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
