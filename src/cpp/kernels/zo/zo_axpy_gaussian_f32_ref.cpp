// Reference seed-regenerated Gaussian axpy: out[i] = theta[i] + scale * z(key, stream, offset + i), z as in
// rng/gaussian.h (Philox4x32-10 + Box-Muller; element -> block/lane mapping documented there). The product is rounded
// before the add, with no FMA, in every ISA's version: all of them give the same bits.
#include "kernels/kernels.h"
#include "rng/gaussian.h"

namespace ez {

void zo_axpy_gaussian_f32_ref(std::size_t n, float scale, PhiloxKey key, std::uint32_t stream, std::uint64_t offset,
                              const float* theta, float* out) {
  std::size_t i = 0;
  while (i < n) {
    const std::uint64_t idx = offset + i;
    const std::array<float, 4> z = gaussian_block(key, stream, idx / 4);
    for (unsigned lane = static_cast<unsigned>(idx % 4); lane < 4 && i < n; ++lane, ++i)
      out[i] = theta[i] + scale * z[lane];
  }
}

}  // namespace ez
