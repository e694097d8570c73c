// Philox4x32-10 and Philox4x64-10 (Salmon et al., SC'11, the Random123 constants): counter-based generators, so
// the perturbation z is a pure function of (key, stream, index) and is never stored; any thread, chunk or SIMD
// lane makes its own part of the stream. 4x64 (numpy.random.Philox) only derives the per-step 4x32 key.
#pragma once
#include <array>
#include <cstdint>

#include "kernels/shapes.h"

namespace ez {

using PhiloxCounter = std::array<std::uint32_t, 4>;

inline PhiloxCounter philox4x32_10(PhiloxCounter ctr, PhiloxKey key) {
  constexpr std::uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  constexpr std::uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    const std::uint64_t p0 = static_cast<std::uint64_t>(kMul0) * ctr[0];
    const std::uint64_t p1 = static_cast<std::uint64_t>(kMul1) * ctr[2];
    ctr = {static_cast<std::uint32_t>(p1 >> 32) ^ ctr[1] ^ key.k0, static_cast<std::uint32_t>(p1),
           static_cast<std::uint32_t>(p0 >> 32) ^ ctr[3] ^ key.k1, static_cast<std::uint32_t>(p0)};
    key.k0 += kWeyl0;
    key.k1 += kWeyl1;
  }
  return ctr;
}

// The block of 4 outputs holding element `index` of stream `stream`: counter = (index / 4 as 64 bits, stream, 0).
inline PhiloxCounter philox_block(PhiloxKey key, std::uint32_t stream, std::uint64_t block) {
  return philox4x32_10({static_cast<std::uint32_t>(block), static_cast<std::uint32_t>(block >> 32), stream, 0u}, key);
}

using Philox64Counter = std::array<std::uint64_t, 4>;
using Philox64Key = std::array<std::uint64_t, 2>;

// The raw block function. numpy.random.Philox(key=k, counter=c) increments its counter before each block, so its
// random_raw() starts with philox4x64_10(c + 1, k).
inline Philox64Counter philox4x64_10(Philox64Counter ctr, Philox64Key key) {
  constexpr std::uint64_t kMul0 = 0xD2E7470EE14C6C93ull, kMul1 = 0xCA5A826395121157ull;
  constexpr std::uint64_t kWeyl0 = 0x9E3779B97F4A7C15ull, kWeyl1 = 0xBB67AE8584CAA73Bull;
  for (int round = 0; round < 10; ++round) {
    const unsigned __int128 p0 = static_cast<unsigned __int128>(kMul0) * ctr[0];
    const unsigned __int128 p1 = static_cast<unsigned __int128>(kMul1) * ctr[2];
    ctr = {static_cast<std::uint64_t>(p1 >> 64) ^ ctr[1] ^ key[0], static_cast<std::uint64_t>(p1),
           static_cast<std::uint64_t>(p0 >> 64) ^ ctr[3] ^ key[1], static_cast<std::uint64_t>(p0)};
    key[0] += kWeyl0;
    key[1] += kWeyl1;
  }
  return ctr;
}

// The Philox4x32 key of training step `step` of the run seeded with `run_seed`:
//   w = philox4x64_10(counter = (step, 0, 0, 0), key = (run_seed, 0))[0],  key = {k0 = low 32 bits of w, k1 = high}.
// Steps never share a key, and a run can be replayed from any step without replaying the ones before it.
inline PhiloxKey step_key(std::uint64_t run_seed, std::uint64_t step) {
  const std::uint64_t w = philox4x64_10({step, 0, 0, 0}, {run_seed, 0})[0];
  return {static_cast<std::uint32_t>(w), static_cast<std::uint32_t>(w >> 32)};
}

}  // namespace ez
