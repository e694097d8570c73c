// out[i] = theta[i] + scale * z(key, stream, offset + i) over SIMD lanes (out may be theta), written once for every
// ISA: `Ops` (simd/rng_*.h) gives the lane types of rng/gaussian.h plus kBlocks (Philox blocks per vector), iota,
// counter loads, the 4 x kBlocks transpose into element order and unaligned float loads and stores. Work is cut into
// groups of 4 kBlocks elements aligned in the index space and chunks of groups fixed by the size; every element is a
// pure function of its index, so any thread count, chunking or offset gives the reference's bits.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/parallel.h"
#include "rng/gaussian.h"

namespace ez {
namespace {

// z of the 4 kBlocks elements from element 4 block[g] on, in element order (kBlocks per vector), for G groups.
template <class Ops, int G>
inline void gaussian_groups(PhiloxKey key, std::uint32_t stream, const std::uint64_t (&block)[G],
                            typename Ops::F (&z)[G][4]) {
  using U = typename Ops::U;
  constexpr std::uint32_t kLast = Ops::kBlocks - 1;
  U c[G][4];
  for (int g = 0; g < G; ++g) {
    const auto lo = static_cast<std::uint32_t>(block[g]), hi = static_cast<std::uint32_t>(block[g] >> 32);
    if (lo <= 0xffffffffu - kLast) {
      c[g][0] = Ops::add(Ops::splat_u(lo), Ops::iota());
      c[g][1] = Ops::splat_u(hi);
    } else {  // the low counter word wraps inside this group
      std::uint32_t lo_w[Ops::kBlocks], hi_w[Ops::kBlocks];
      for (std::uint32_t l = 0; l <= kLast; ++l) {
        lo_w[l] = static_cast<std::uint32_t>(block[g] + l);
        hi_w[l] = static_cast<std::uint32_t>((block[g] + l) >> 32);
      }
      c[g][0] = Ops::load_u(lo_w);
      c[g][1] = Ops::load_u(hi_w);
    }
    c[g][2] = Ops::splat_u(stream);
    c[g][3] = Ops::splat_u(0);
  }
  philox4x32_10_lanes<Ops, G>(c, key);
  box_muller4<Ops, G>(c, z);
  for (int g = 0; g < G; ++g) Ops::transpose4(z[g]);
}

template <class Ops>
void zo_axpy_gaussian_lanes(std::size_t n, float scale, PhiloxKey key, std::uint32_t stream, std::uint64_t offset,
                            const float* theta, float* out) {
  using F = typename Ops::F;
  constexpr std::uint64_t kGroup = 4 * Ops::kBlocks;
  constexpr std::int64_t kChunkGroups = 4096 / kGroup;  // 4096 elements: ~2 us of work, worth a thread
  // Two groups generated side by side: their independent Philox and Box-Muller chains interleave and hide each
  // other's latency. fc1's 94,080 values on 1 thread (AMD EPYC, chrt): AVX-512 0.94 -> 0.81 ns per value, AVX2
  // 1.45 -> 1.19; three groups 0.79 / 1.25, four 0.85 / 1.19.
  constexpr int kPair = 2;
  if (n == 0) return;
  const std::uint64_t first = offset / kGroup, end = offset + n;
  const auto groups = static_cast<std::int64_t>((end + kGroup - 1) / kGroup - first);
  const std::int64_t chunks = (groups + kChunkGroups - 1) / kChunkGroups;
  parallel_for(chunks, [&](std::int64_t chunk) {
    const std::int64_t g_end = chunk + 1 == chunks ? groups : (chunk + 1) * kChunkGroups;
    const F s = Ops::splat_f(scale);
    // out = theta + scale z over the group from element `base` on.
    const auto emit = [&](std::uint64_t base, const F (&z)[4]) {
      if (base >= offset && base + kGroup <= end) {
        const float* t = theta + (base - offset);
        float* o = out + (base - offset);
        for (int q = 0; q < 4; ++q)
          Ops::storeu_f(o + q * Ops::kBlocks, Ops::add(Ops::loadu_f(t + q * Ops::kBlocks), Ops::mul(s, z[q])));
      } else {  // first or last group, partly outside [offset, offset + n)
        float zs[kGroup];
        for (int q = 0; q < 4; ++q) Ops::storeu_f(zs + q * Ops::kBlocks, z[q]);
        const std::uint64_t lo = base > offset ? base : offset, hi = base + kGroup < end ? base + kGroup : end;
        for (std::uint64_t e = lo; e < hi; ++e) out[e - offset] = theta[e - offset] + scale * zs[e - base];
      }
    };
    std::int64_t g = chunk * kChunkGroups;
    for (; g + kPair <= g_end; g += kPair) {
      std::uint64_t base[kPair], block[kPair];
      for (int k = 0; k < kPair; ++k) {
        base[k] = (first + static_cast<std::uint64_t>(g + k)) * kGroup;
        block[k] = base[k] / 4;
      }
      F z[kPair][4];
      gaussian_groups<Ops, kPair>(key, stream, block, z);
      for (int k = 0; k < kPair; ++k) emit(base[k], z[k]);
    }
    for (; g < g_end; ++g) {
      const std::uint64_t base = (first + static_cast<std::uint64_t>(g)) * kGroup;
      const std::uint64_t block[1] = {base / 4};
      F z[1][4];
      gaussian_groups<Ops, 1>(key, stream, block, z);
      emit(base, z[0]);
    }
  });
}

}  // namespace
}  // namespace ez
