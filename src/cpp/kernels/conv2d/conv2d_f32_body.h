// 2-D convolution (stride 1) on the shared microkernels (gemm_tiles.h), templated on a SIMD type; ISA files only.
// Forward is an implicit GEMM: each sample is copied once into a zero-padded image, and a vector of W outputs
// along a row reads W consecutive floats of it at a per-tap offset, so no im2col matrix is built. Backward data
// is the forward of the flipped, transposed kernel; backward weight runs dot tiles along output rows over chunks
// of samples fixed by the shape, and adds the chunks' partial sums in chunk order.
// When c_out is a multiple of W but the output rows are not (LeNet-5's conv2: 14-wide rows in 16 lanes), vectors
// hold channels instead (channel tiles, below), which wastes no lane; either way each output is the same chain of
// fused multiply-adds over the taps from the bias, so the two tilings give the same bits.
#pragma once
#include <algorithm>
#include <type_traits>
#include <utility>

#include "kernels/gemm/gemm_f32_body.h"
#include "kernels/shapes.h"
#include "kernels/workspace.h"

namespace ez {
namespace {

// Channels of an h x w image into rows of stride `wr` of an hp-row plane, shifted by `pad` (negative: cropped),
// zeros elsewhere. `zeros_in_place`: dst already holds zeros wherever the image does not land (a zero-filled slot
// that only images of this geometry use), so only the image is copied: the borders' many tiny fills cost more
// than the copy (memset calls of a few floats per row; ~3% of a LeNet-5 ZO step, perf).
inline void pad_image(const float* src, int channels, int h, int w, int pad, int hp, int wr, float* dst,
                      bool zeros_in_place = false) {
  const int px0 = std::max(0, pad), px1 = std::min(wr, w + pad);
  for (int c = 0; c < channels; ++c) {
    for (int py = 0; py < hp; ++py) {
      float* row = dst + (static_cast<long>(c) * hp + py) * wr;
      const int iy = py - pad;
      if (iy < 0 || iy >= h || px0 >= px1) {
        if (!zeros_in_place) std::fill(row, row + wr, 0.f);
        continue;
      }
      if (!zeros_in_place) std::fill(row, row + px0, 0.f);
      std::copy(src + (static_cast<long>(c) * h + iy) * w + px0 - pad, src + (static_cast<long>(c) * h + iy) * w + px1 - pad,
                row + px0);
      if (!zeros_in_place) std::fill(row + px1, row + wr, 0.f);
    }
  }
}

// Offset of every tap p = (c, ky, kx) in an image of `channels` planes of hp rows of stride wr.
inline void tap_offsets(int channels, int k, int hp, int wr, int* off) {
  for (int c = 0, p = 0; c < channels; ++c) {
    for (int ky = 0; ky < k; ++ky) {
      for (int kx = 0; kx < k; ++kx) off[p++] = (c * hp + ky) * wr + kx;
    }
  }
}

// SIMD types with an in-register W x W transpose (V::transpose) can run channel tiles.
template <class V, class = void>
struct HasTranspose : std::false_type {};
template <class V>
struct HasTranspose<V, std::void_t<decltype(V::transpose(std::declval<typename V::reg (&)[V::width]>()))>>
    : std::true_type {};

// Channel tile: acc[j] holds the W output channels of `wt` ([taps][W], packed) at position j of a run of NP <= W
// positions along an output row, whose input starts at `xrow`; per tap, one weight vector times the broadcast
// input at each position. The transpose turns the positions into the lanes of each channel's row for the store.
template <class V, int NP>
void channel_tile(int taps, const float* wt, const float* xrow, const int* off, const float* bias, float* y,
                  long ldy) {
  using reg = typename V::reg;
  constexpr int W = V::width;
  reg acc[W];
  const reg start = bias ? V::load(bias) : V::zero();
  EZ_UNROLL
  for (int j = 0; j < NP; ++j) acc[j] = start;
  for (int p = 0; p < taps; ++p) {
    const reg wv = V::load(wt + static_cast<long>(p) * W);
    const float* xp = xrow + off[p];
    EZ_UNROLL
    for (int j = 0; j < NP; ++j) acc[j] = V::fmadd(V::set1(xp[j]), wv, acc[j]);
  }
  EZ_UNROLL
  for (int j = NP; j < W; ++j) acc[j] = V::zero();
  V::transpose(acc);
  EZ_UNROLL
  for (int c = 0; c < W; ++c) {
    if (NP == W) {
      V::store(y + c * ldy, acc[c]);
    } else {
      V::store_n(y + c * ldy, acc[c], NP);
    }
  }
}

using ChannelFn = void (*)(int, const float*, const float*, const int*, const float*, float*, long);

template <class V, int... I>
constexpr std::array<ChannelFn, sizeof...(I)> channel_table(std::integer_sequence<int, I...>) {
  return {{&channel_tile<V, I + 1>...}};
}

// The channel tile for np positions (1..W).
template <class V>
ChannelFn channel_fn(int np) {
  static constexpr auto table = channel_table<V>(std::make_integer_sequence<int, V::width>{});
  return table[np - 1];
}

// Forward by channel tiles (c_out a multiple of W): each output row is cut into runs of nearly equal length, at
// most W positions each, so that a short last run does not leave a tile with too few accumulators to hide the
// latency of the fused multiply-add.
template <class V>
void conv_fwd_channels(const Conv2dShape& s, const float* x, const float* w, const float* bias, float* y) {
  constexpr int W = V::width;
  const int oh = s.out_h(), ow = s.out_w(), taps = s.c_in * s.k * s.k, ohw = oh * ow;
  const int hp = oh + s.k - 1, wp = ow + s.k - 1;
  const ConvFwdScratch sz = conv_fwd_scratch(s, W);  // a superset of what this path takes
  const long img = sz.img;
  ScratchBuffer<int> off(sz.taps);
  tap_offsets(s.c_in, s.k, hp, wp, off.data());
  ScratchBuffer<float> wt(sz.wpack);  // [channel block][tap][W]
  for (int co = 0; co < s.c_out; ++co)
    for (int p = 0; p < taps; ++p)
      wt[(static_cast<long>(co / W) * taps + p) * W + co % W] = w[static_cast<long>(co) * taps + p];
  const int runs = ceil_div(ow, W), run_len = ow / runs, longer = ow % runs;  // the first `longer` runs get one more
  ScratchBuffer<float> xpad(sz.xpad);  // zero-filled: each slot's padding stays zero, samples copy their image only
  parallel_for(sz.team, s.n, [&](std::int64_t n, int slot) {
    float* xp = xpad.data() + slot * img;
    pad_image(x + static_cast<long>(n) * s.c_in * s.h * s.w, s.c_in, s.h, s.w, s.pad, hp, wp, xp, true);
    float* yn = y + static_cast<long>(n) * s.c_out * ohw;
    for (int co = 0; co < s.c_out; co += W) {
      const float* wb = wt.data() + static_cast<long>(co) * taps;
      for (int oy = 0; oy < oh; ++oy) {
        for (int r = 0, ox = 0; r < runs; ++r) {
          const int np = run_len + (r < longer ? 1 : 0);
          channel_fn<V>(np)(taps, wb, xp + oy * wp + ox, off.data(), bias ? bias + co : nullptr,
                            yn + static_cast<long>(co) * ohw + oy * ow + ox, ohw);
          ox += np;
        }
      }
    }
  });
}

template <class V>
void conv_fwd(const Conv2dShape& s, const float* x, const float* w, const float* bias, float* y) {
  constexpr int W = V::width, MR = V::tile_rows, NV = V::tile_vecs;
  const int oh = s.out_h(), ow = s.out_w();
  if (s.n <= 0 || s.c_out <= 0 || oh <= 0 || ow <= 0) return;
  if constexpr (HasTranspose<V>::value) {
    if (s.c_out % W == 0 && ow % W != 0) return conv_fwd_channels<V>(s, x, w, bias, y);
  }
  const int taps = s.c_in * s.k * s.k, ohw = oh * ow;
  const int hp = oh + s.k - 1, wp = ow + s.k - 1;
  // A slot's last vector may read up to W - 1 floats past the image: the slack keeps them inside (and finite).
  const ConvFwdScratch sz = conv_fwd_scratch(s, W);
  const long img = sz.img;
  ScratchBuffer<int> off(sz.taps);
  tap_offsets(s.c_in, s.k, hp, wp, off.data());
  // Slots: W-wide pieces of output rows, each a vector of the tile; the last piece of a row is partial.
  const int row_slots = ceil_div(ow, W), slots = static_cast<int>(sz.slots);
  ScratchBuffer<int> slot_in(slots), slot_out(slots), slot_lanes(slots);
  for (int i = 0; i < slots; ++i) {
    const int oy = i / row_slots, ox = (i % row_slots) * W;
    slot_in[i] = oy * wp + ox;
    slot_out[i] = oy * ow + ox;
    slot_lanes[i] = std::min(W, ow - ox);
  }
  ScratchBuffer<float> wpack(sz.wpack);
  const GemmArgs weights{false, false, s.c_out, 0, taps, w, taps, nullptr, 0, nullptr, 0, Init::zero, nullptr};
  pack_a(weights, 0, s.c_out, 0, taps, MR, wpack.data());
  const TableOff step{off.data()};
  const int team = sz.team;
  ScratchBuffer<float> xpad(sz.xpad);  // zero-filled: each slot's padding stays zero, samples copy their image only
  parallel_for(team, s.n, [&](std::int64_t n, int slot) {
    float* xp = xpad.data() + slot * img;
    pad_image(x + static_cast<long>(n) * s.c_in * s.h * s.w, s.c_in, s.h, s.w, s.pad, hp, wp, xp, true);
    float* yn = y + static_cast<long>(n) * s.c_out * ohw;
    for (int s0 = 0; s0 < slots; s0 += NV) {
      const int nv = std::min(NV, slots - s0);
      const float* bv[NV];
      for (int v = 0; v < nv; ++v) bv[v] = xp + slot_in[s0 + v];
      for (int co = 0; co < s.c_out; co += MR) {
        const int mr = std::min(MR, s.c_out - co);
        const TileOut out{yn + static_cast<long>(co) * ohw, ohw, slot_out.data() + s0, slot_lanes.data() + s0,
                          bias ? Init::bias_row : Init::zero, bias ? bias + co : nullptr};
        outer_fn<V, TableOff>(mr, nv)(taps, wpack.data() + static_cast<long>(co) * taps, mr, bv, step, out);
      }
    }
  });
}

// dx is the stride-1 convolution of dy, padded by k - 1 - pad, with w flipped in space and transposed in channels.
template <class V>
void conv_bwd_data(const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  const int oh = s.out_h(), ow = s.out_w(), kk = s.k * s.k;
  if (oh <= 0 || ow <= 0) {
    std::fill(dx, dx + static_cast<long>(s.n) * s.c_in * s.h * s.w, 0.f);
    return;
  }
  ScratchBuffer<float> wt(static_cast<std::size_t>(s.c_in) * s.c_out * kk);  // sized as conv_bwd_data_bytes
  for (int co = 0; co < s.c_out; ++co) {
    for (int ci = 0; ci < s.c_in; ++ci) {
      const float* src = w + (static_cast<long>(co) * s.c_in + ci) * kk;
      float* dst = wt.data() + (static_cast<long>(ci) * s.c_out + co) * kk;
      for (int t = 0; t < kk; ++t) dst[kk - 1 - t] = src[t];
    }
  }
  conv_fwd<V>(conv_bwd_data_problem(s), dy, wt.data(), nullptr, dx);
}

// dw[co][tap] = sum over samples and output positions of dy * x at the tap. Both are padded to rows of the
// padded input's width, dy with zeros past ow, so one sample's reduction is a single contiguous dot product of
// oh rows (the zero columns add nothing for finite x: (k - 1) / ow extra work, against per-row overheads).
template <class V>
void conv_bwd_weight(const Conv2dShape& s, const float* x, const float* dy, bool accumulate, float* dw,
                     float* dbias) {
  constexpr int W = V::width, DR = V::dot_rows, DC = V::dot_cols;
  const int oh = s.out_h(), ow = s.out_w(), taps = s.c_in * s.k * s.k;
  const ConvBwdWeightScratch sz = conv_bwd_weight_scratch(s, dbias != nullptr);
  const long wsize = sz.wsize, outs = sz.outs;
  if (s.n <= 0 || oh <= 0 || ow <= 0) {
    if (!accumulate) std::fill(dw, dw + wsize, 0.f);
    if (!accumulate && dbias) std::fill(dbias, dbias + s.c_out, 0.f);
    return;
  }
  const int wr = ow + s.k - 1, hp = oh + s.k - 1, len = oh * wr;
  const long img = sz.img, grad = sz.grad;
  ScratchBuffer<int> off(taps);
  tap_offsets(s.c_in, s.k, hp, wr, off.data());
  const int chunk = sz.chunk, chunks = sz.chunks;
  ScratchBuffer<float> xpad(chunk * img), dypad(chunk * grad), partial(chunks * outs);
  const int row_tiles = ceil_div(s.c_out, DR), col_tiles = ceil_div(taps, DC);
  const int tiles = row_tiles * col_tiles, tasks = tiles + (dbias ? row_tiles : 0);
  const int team = team_for(2.0 * s.n * s.c_out * oh * ow * taps);
  for (int c = 0; c < chunks; ++c) {
    const int n0 = c * chunk, cn = std::min(chunk, s.n - n0);
    parallel_for(team, cn, [&](std::int64_t i) {
      const long n = n0 + i;
      pad_image(x + n * s.c_in * s.h * s.w, s.c_in, s.h, s.w, s.pad, hp, wr, xpad.data() + i * img);
      pad_image(dy + n * s.c_out * oh * ow, s.c_out, oh, ow, 0, oh, wr, dypad.data() + i * grad);
    });
    float* part = partial.data() + c * outs;
    const DotSegs segs{cn, 1, len, grad, 0, img, 0};
    parallel_for(team, tasks, [&](std::int64_t task) {
      const int t = static_cast<int>(task);
      const int co = (t < tiles ? t / col_tiles : t - tiles) * DR, mr = std::min(DR, s.c_out - co);
      if (t < tiles) {
        const int p0 = (t % col_tiles) * DC, np = std::min(DC, taps - p0);
        const float* ar[DR];
        const float* br[DC];
        for (int r = 0; r < mr; ++r) ar[r] = dypad.data() + static_cast<long>(co + r) * len;
        for (int j = 0; j < np; ++j) br[j] = xpad.data() + off[p0 + j];
        dot_fn<V>(mr, np)(ar, br, segs, {part + co * taps + p0, taps, Init::zero, nullptr});
        return;
      }
      for (int r = 0; r < mr; ++r) {
        typename V::reg acc = V::zero();
        for (int i = 0; i < cn; ++i) {
          const float* g = dypad.data() + i * grad + static_cast<long>(co + r) * len;
          for (int q = 0; q < len; q += W) acc = V::add(acc, len - q >= W ? V::load(g + q) : V::load_n(g + q, len - q));
        }
        part[wsize + co + r] = V::reduce_add(acc);
      }
    });
  }
  // The chunks' partial sums, added in chunk order, in blocks of outputs.
  constexpr long kSumBlock = 1024;
  parallel_for(team, (outs + kSumBlock - 1) / kSumBlock, [&](std::int64_t block) {
    for (long e = block * kSumBlock; e < std::min(outs, (block + 1) * kSumBlock); ++e) {
      float total = partial[e];
      for (int c = 1; c < chunks; ++c) total += partial[c * outs + e];
      float& dst = e < wsize ? dw[e] : dbias[e - wsize];
      dst = accumulate ? dst + total : total;
    }
  });
}

}  // namespace
}  // namespace ez
