// Philox4x32-10 (Salmon et al., SC'11, the Random123 constants): a counter-based generator, so the perturbation
// z is a pure function of (key, stream, index) and is never stored; any thread, chunk or SIMD lane can make
// its own part of the stream.
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

}  // namespace ez
