// Reference seed-regenerated Gaussian axpy: theta[i] += scale * z_i, z from Philox4x32-10 via Box-Muller.
// Block b of the stream gives z[4b..4b+3]: (u0,u1) -> z0,z1 and (u2,u3) -> z2,z3.
#include <cmath>

#include "kernels/kernels.h"
#include "rng/philox.h"

namespace ez {

namespace {
// 24 random bits -> (0, 1]: never 0, so log() is finite.
inline float to_unit(std::uint32_t v) { return (static_cast<float>(v >> 8) + 1.0f) * (1.0f / 16777216.0f); }
}  // namespace

void zo_axpy_gaussian_f32_ref(std::size_t n, float scale, PhiloxKey key, std::uint32_t stream, std::uint64_t offset,
                              float* theta) {
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t idx = offset + i;
    const PhiloxCounter r = philox_block(key, stream, idx / 4);
    const unsigned lane = static_cast<unsigned>(idx % 4);
    const unsigned pair = lane / 2;
    const float radius = std::sqrt(-2.0f * std::log(to_unit(r[2 * pair])));
    const float angle = 6.28318530717958647692f * to_unit(r[2 * pair + 1]);
    const float z = radius * (lane % 2 == 0 ? std::cos(angle) : std::sin(angle));
    theta[i] += scale * z;
  }
}

}  // namespace ez
