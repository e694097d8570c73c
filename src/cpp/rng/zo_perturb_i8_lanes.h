// out[i] = clip(w[i] + sign * R_s(zeta(offset + i)), +-127) over SIMD lanes, written once for every ISA (the kernel
// zo_perturb_i8 of kernels.inc; the scalar definitions are int8/zo_int8.h's). `Ops` extends an RngOps (simd/rng_*.h,
// kBlocks Philox blocks per vector) with 32-bit integer multiply, signed compare and the int8 step
// `add_clip_bytes`. One Philox lane gives the words of four consecutive elements, so the four zeta vectors, each
// masked to a byte and shifted into place, form the group's 4 kBlocks bytes in element order: no transpose.
// Work is cut into groups aligned in the index space and chunks fixed by the size, as rng/gaussian_axpy_lanes.h,
// so any thread count or offset gives the reference's bytes.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/parallel.h"
#include "int8/zo_int8.h"
#include "rng/gaussian.h"

namespace ez {
namespace {

template <class Ops, int N>
inline typename Ops::U shr_lanes(typename Ops::U a) {
  if constexpr (N == 0) return a;  // NEON's immediate shifts start at 1
  else return Ops::template shr<N>(a);
}

// zeta of the words w (zo_zeta_of_word), then R_S of it (zo_round), negated when `negate`, as signed 32-bit lanes.
template <class Ops, int S>
inline typename Ops::U rounded_zeta(typename Ops::U w, typename Ops::U two_r1, typename Ops::U r,
                                    typename Ops::U threshold_m1, bool negate) {
  using U = typename Ops::U;
  const U zero = Ops::splat_u(0);
  const U u = Ops::template shr<16>(Ops::mullo(Ops::band(w, Ops::splat_u(0xffffu)), two_r1));
  const U keep = Ops::cmpgt(Ops::template shr<16>(w), threshold_m1);  // (w >> 16) >= threshold
  U z = Ops::band(Ops::sub(u, r), keep);
  if constexpr (S > 0) {
    const U neg = Ops::cmpgt(zero, z);
    const U mag = Ops::sub(Ops::bxor(z, neg), neg);
    const U rem = Ops::band(mag, Ops::splat_u((1u << S) - 1u));
    const U hi = shr_lanes<Ops, S / 2>(rem);
    const U lo = Ops::template shl<(S & 1)>(Ops::band(rem, Ops::splat_u((1u << (S / 2)) - 1u)));
    const U q = Ops::sub(shr_lanes<Ops, S>(mag), Ops::cmpgt(hi, lo));  // + 1 where hi > lo
    z = Ops::sub(Ops::bxor(q, neg), neg);
  }
  return negate ? Ops::sub(zero, z) : z;
}

template <class Ops, int S>
void zo_perturb_i8_shift(std::size_t n, const SparsePerturbation& p, bool negate, const std::int8_t* w,
                         std::int8_t* out) {
  using U = typename Ops::U;
  constexpr std::uint64_t kGroup = 4 * Ops::kBlocks;
  constexpr std::int64_t kChunkGroups = 16384 / kGroup;  // ~4 us of work per task
  if (n == 0) return;
  const std::uint64_t first = p.offset / kGroup, end = p.offset + n;
  const auto groups = static_cast<std::int64_t>((end + kGroup - 1) / kGroup - first);
  const std::int64_t chunks = (groups + kChunkGroups - 1) / kChunkGroups;
  parallel_for(chunks, [&](std::int64_t chunk) {
    const std::int64_t g_end = chunk + 1 == chunks ? groups : (chunk + 1) * kChunkGroups;
    const U two_r1 = Ops::splat_u(static_cast<std::uint32_t>(2 * p.r + 1)), r = Ops::splat_u(p.r);
    const U threshold_m1 = Ops::splat_u(p.zero_threshold - 1u);  // -1 (all kept) compares as signed
    const PhiloxRoundKeys keys(p.key);
    for (std::int64_t g = chunk * kChunkGroups; g < g_end; ++g) {
      const std::uint64_t base = (first + static_cast<std::uint64_t>(g)) * kGroup, block = base / 4;
      U c[4];
      const auto lo = static_cast<std::uint32_t>(block), hi = static_cast<std::uint32_t>(block >> 32);
      if (lo <= 0xffffffffu - (Ops::kBlocks - 1)) {
        c[0] = Ops::add(Ops::splat_u(lo), Ops::iota());
        c[1] = Ops::splat_u(hi);
      } else {  // the low counter word wraps inside this group
        std::uint32_t lo_w[Ops::kBlocks], hi_w[Ops::kBlocks];
        for (std::uint32_t l = 0; l < Ops::kBlocks; ++l) {
          lo_w[l] = static_cast<std::uint32_t>(block + l);
          hi_w[l] = static_cast<std::uint32_t>((block + l) >> 32);
        }
        c[0] = Ops::load_u(lo_w);
        c[1] = Ops::load_u(hi_w);
      }
      c[2] = Ops::splat_u(p.stream);
      c[3] = Ops::splat_u(0);
      philox4x32_10_lanes<Ops>(c, keys);
      U bytes = Ops::band(rounded_zeta<Ops, S>(c[0], two_r1, r, threshold_m1, negate), Ops::splat_u(0xffu));
      bytes = Ops::bxor(bytes, Ops::template shl<8>(Ops::band(rounded_zeta<Ops, S>(c[1], two_r1, r, threshold_m1,
                                                                                    negate), Ops::splat_u(0xffu))));
      bytes = Ops::bxor(bytes, Ops::template shl<16>(Ops::band(rounded_zeta<Ops, S>(c[2], two_r1, r, threshold_m1,
                                                                                     negate), Ops::splat_u(0xffu))));
      bytes = Ops::bxor(bytes, Ops::template shl<24>(rounded_zeta<Ops, S>(c[3], two_r1, r, threshold_m1, negate)));
      if (base >= p.offset && base + kGroup <= end) {
        Ops::add_clip_bytes(w + (base - p.offset), bytes, out + (base - p.offset));
      } else {  // first or last group, partly outside [offset, offset + n)
        std::uint32_t words[Ops::kBlocks];
        Ops::store_u(words, bytes);
        const auto* zs = reinterpret_cast<const std::int8_t*>(words);
        const std::uint64_t from = base > p.offset ? base : p.offset, to = base + kGroup < end ? base + kGroup : end;
        for (std::uint64_t e = from; e < to; ++e) out[e - p.offset] = zo_apply(w[e - p.offset], 1, zs[e - base]);
      }
    }
  });
}

// The kernel: the shift picks a compile-time instance (immediate shifts), sign only whether to negate.
template <class Ops>
void zo_perturb_i8_lanes(std::size_t n, const SparsePerturbation& p, int sign, int shift, const std::int8_t* w,
                         std::int8_t* out) {
  const bool negate = sign < 0;
  switch (shift) {
    case 0: return zo_perturb_i8_shift<Ops, 0>(n, p, negate, w, out);
    case 1: return zo_perturb_i8_shift<Ops, 1>(n, p, negate, w, out);
    case 2: return zo_perturb_i8_shift<Ops, 2>(n, p, negate, w, out);
    case 3: return zo_perturb_i8_shift<Ops, 3>(n, p, negate, w, out);
    case 4: return zo_perturb_i8_shift<Ops, 4>(n, p, negate, w, out);
    case 5: return zo_perturb_i8_shift<Ops, 5>(n, p, negate, w, out);
    case 6: return zo_perturb_i8_shift<Ops, 6>(n, p, negate, w, out);
    default: return zo_perturb_i8_shift<Ops, 7>(n, p, negate, w, out);
  }
}

}  // namespace
}  // namespace ez
