// Requantization for avx512: the shared body (requant_i8_body.h) on 16 int32 lanes.
// GCC 12 reports the _mm512_undefined_* inside its own intrinsics as uninitialized once they are inlined into the
// vector loops (a false positive, as simd/rng_avx512.h notes): silenced for this AVX-512 file.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "kernels/requant/requant_i8_body.h"
#include "simd/i32_lanes_x86.h"

namespace ez {

std::uint32_t max_abs_i32_avx512(std::size_t n, const std::int32_t* x) { return max_abs_body<i32x16_lanes>(n, x); }

void round_shift_i8_avx512(std::size_t n, const std::int32_t* x, int s, Rounding mode, const DrawStream& draws,
                         std::int8_t* y) {
  round_shift_body<i32x16_lanes>(n, x, s, mode, draws, y);
}

}  // namespace ez
