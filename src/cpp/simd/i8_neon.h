// int8 GEMM microkernel types (gemm_i8_body.h) and int32 lanes (requant_i8_body.h) for aarch64, for *_neon /
// *_neon_dotprod files only (anonymous namespace).
//   s8x4_mlal: ARMv8.0 (Cortex-A53/A72). Groups of 8 k: SMULL + SMLAL put two products in each int16 lane
//              (2 * 127^2 < 2^15: no overflow), SADALP adds pairs into int32; a final ADDP folds each lane's
//              two partial sums.
//   s8x4_sdot: ARMv8.2 dot product (Cortex-A76): SDOT adds 4 products into each int32 lane.
#pragma once
#include <arm_neon.h>

#include <cstdint>
#include <cstring>

namespace ez {
namespace {

// 4 int32 outputs: partial loads and stores of the first n lanes without touching memory past them.
struct i32x4_io {
  using reg = int32x4_t;
  static reg add(reg a, reg b) { return vaddq_s32(a, b); }
  static reg set1(std::int32_t v) { return vdupq_n_s32(v); }
  static reg load(const std::int32_t* p) { return vld1q_s32(p); }
  static void store(std::int32_t* p, reg v) { vst1q_s32(p, v); }
  static reg load_n(const std::int32_t* p, int n) {
    if (n == 4) return vld1q_s32(p);
    std::int32_t tmp[4] = {};
    std::memcpy(tmp, p, sizeof(std::int32_t) * n);
    return vld1q_s32(tmp);
  }
  static void store_n(std::int32_t* p, reg v, int n) {
    if (n == 4) {
      vst1q_s32(p, v);
      return;
    }
    std::int32_t tmp[4];
    vst1q_s32(tmp, v);
    std::memcpy(p, tmp, sizeof(std::int32_t) * n);
  }
};

// A group of kg bytes of one A row, replicated to every 4-byte lane: word w of the group in register w.
inline int8x16_t bcast_word(const std::int8_t* a) {
  std::int32_t w;
  std::memcpy(&w, a, 4);
  return vreinterpretq_s8_s32(vdupq_n_s32(w));
}

// Packs `lanes` columns of kg B rows into dst[b_index(lane, t)], zeros past `lanes`.
template <class M>
inline void pack_rows_scalar(const std::int8_t* const* rows, int lanes, std::int8_t* dst) {
  for (int l = 0; l < M::width; ++l)
    for (int t = 0; t < M::kg; ++t) dst[M::b_index(l, t)] = l < lanes ? rows[t][l] : std::int8_t{0};
}

struct s8x4_mlal : i32x4_io {
  using elem = std::int8_t;
  struct acc {
    int32x4_t lo, hi;  // lanes 0-1 and 2-3, two partial sums each
  };
  struct areg {
    int8x16_t g0, g1;  // k 0-3 and 4-7 of the group, broadcast
  };
  struct breg {
    int8x16_t g0, g1;  // [lane][4] for k 0-3, then for k 4-7
  };
  static constexpr int width = 4, kg = 8;
  static constexpr bool b_offset = false, channel_lanes = false;
  static constexpr int tile_rows = 4, tile_vecs = 2;  // 16 accumulator registers

  static int b_index(int lane, int t) { return (t / 4) * 16 + lane * 4 + t % 4; }
  static elem b_elem(std::int8_t v) { return v; }
  static void pack_rows(const std::int8_t* const* rows, int lanes, elem* dst) {
    pack_rows_scalar<s8x4_mlal>(rows, lanes, dst);
  }
  static acc zero_acc() { return {vdupq_n_s32(0), vdupq_n_s32(0)}; }
  static areg bcast_a(const elem* a) { return {bcast_word(a), bcast_word(a + 4)}; }
  static breg load_b(const elem* b) { return {vld1q_s8(b), vld1q_s8(b + 16)}; }
  static acc dot(acc c, const areg& a, const breg& b) {
    int16x8_t lo = vmull_s8(vget_low_s8(a.g0), vget_low_s8(b.g0));
    lo = vmlal_s8(lo, vget_low_s8(a.g1), vget_low_s8(b.g1));
    int16x8_t hi = vmull_high_s8(a.g0, b.g0);
    hi = vmlal_high_s8(hi, a.g1, b.g1);
    return {vpadalq_s16(c.lo, lo), vpadalq_s16(c.hi, hi)};
  }
  static reg finish(const acc& c) { return vpaddq_s32(c.lo, c.hi); }
};

#if defined(__ARM_FEATURE_DOTPROD)
struct s8x4_sdot : i32x4_io {
  using elem = std::int8_t;
  using acc = int32x4_t;
  using areg = int8x16_t;
  using breg = int8x16_t;
  static constexpr int width = 4, kg = 4;
  static constexpr bool b_offset = false, channel_lanes = false;
  static constexpr int tile_rows = 8, tile_vecs = 3;  // 24 of 32 registers accumulate

  static int b_index(int lane, int t) { return lane * 4 + t; }
  static elem b_elem(std::int8_t v) { return v; }
  static void pack_rows(const std::int8_t* const* rows, int lanes, elem* dst) {
    pack_rows_scalar<s8x4_sdot>(rows, lanes, dst);
  }
  static acc zero_acc() { return vdupq_n_s32(0); }
  static areg bcast_a(const elem* a) { return bcast_word(a); }
  static breg load_b(const elem* b) { return vld1q_s8(b); }
  static acc dot(acc c, areg a, breg b) { return vdotq_s32(c, b, a); }
  static reg finish(acc c) { return c; }
};
#endif

// int32 lanes for the vectorized requantization.
struct i32x4_lanes {
  using reg = int32x4_t;
  static constexpr int width = 4;
  static reg load(const std::int32_t* p) { return vld1q_s32(p); }
  static reg set1(std::int32_t v) { return vdupq_n_s32(v); }
  static reg abs(reg v) { return vabsq_s32(v); }  // INT32_MIN stays 0x80000000 = 2^31 unsigned
  static reg max_u(reg a, reg b) {
    return vreinterpretq_s32_u32(vmaxq_u32(vreinterpretq_u32_s32(a), vreinterpretq_u32_s32(b)));
  }
  static std::uint32_t reduce_max_u(reg v) { return vmaxvq_u32(vreinterpretq_u32_s32(v)); }
  static reg srl(reg v, int s) { return vreinterpretq_s32_u32(vshlq_u32(vreinterpretq_u32_s32(v), vdupq_n_s32(-s))); }
  static reg sll(reg v, int s) { return vshlq_s32(v, vdupq_n_s32(s)); }
  static reg band(reg a, reg b) { return vandq_s32(a, b); }
  static reg add(reg a, reg b) { return vaddq_s32(a, b); }
  static reg sub(reg a, reg b) { return vsubq_s32(a, b); }
  static reg cmpgt(reg a, reg b) { return vreinterpretq_s32_u32(vcgtq_s32(a, b)); }
  static reg min_s(reg a, reg b) { return vminq_s32(a, b); }
  static reg copy_sign(reg m, reg x) {
    const reg neg = vshrq_n_s32(x, 31);  // all ones where x < 0
    return vsubq_s32(veorq_s32(m, neg), neg);
  }
  static void store_i8(std::int8_t* p, reg v) {
    const int16x4_t h = vmovn_s32(v);
    std::int8_t tmp[8];
    vst1_s8(tmp, vmovn_s16(vcombine_s16(h, h)));
    std::memcpy(p, tmp, 4);
  }
  // Four vectors as 16 bytes clipped to [-127, 127]: saturating narrows, then a byte max takes -128 to -127.
  static void store4_i8(std::int8_t* p, const reg (&v)[4]) {
    const int8x8_t lo = vqmovn_s16(vcombine_s16(vqmovn_s32(v[0]), vqmovn_s32(v[1])));
    const int8x8_t hi = vqmovn_s16(vcombine_s16(vqmovn_s32(v[2]), vqmovn_s32(v[3])));
    vst1q_s8(p, vmaxq_s8(vcombine_s8(lo, hi), vdupq_n_s8(-127)));
  }
};

}  // namespace
}  // namespace ez
