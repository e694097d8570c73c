// avx512 seed-regenerated Gaussian axpy: the lane-generic kernel of rng/gaussian_axpy_lanes.h on RngOpsAvx512.
// Exact: the same bits as zo_axpy_gaussian_f32_ref for any n, offset and thread count.
#include "kernels/kernels.h"
#include "rng/gaussian_axpy_lanes.h"
#include "simd/rng_avx512.h"

namespace ez {

void zo_axpy_gaussian_f32_avx512(std::size_t n, float scale, PhiloxKey key, std::uint32_t stream, std::uint64_t offset,
                                 const float* theta, float* out) {
  zo_axpy_gaussian_lanes<RngOpsAvx512>(n, scale, key, stream, offset, theta, out);
}

}  // namespace ez
