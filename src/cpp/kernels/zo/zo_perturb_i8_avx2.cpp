// avx2 sparse int8 perturbation: the lane-generic kernel of rng/zo_perturb_i8_lanes.h on 8 Philox blocks (32
// elements) per vector. Exact: the same bytes as zo_perturb_i8_ref for any n, offset and thread count.
#include "kernels/kernels.h"
#include "rng/zo_perturb_i8_lanes.h"
#include "simd/rng_avx2.h"

namespace ez {
namespace {

struct ZoOpsAvx2 : RngOpsAvx2 {
  static U mullo(U a, U b) { return _mm256_mullo_epi32(a, b); }
  static U cmpgt(U a, U b) { return _mm256_cmpgt_epi32(a, b); }  // signed, all-ones lanes
  static void store_u(std::uint32_t* p, U v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }
  // out = max(w +sat bytes, -127): the saturating add stays within [-128, 127], and the max takes -128 to -127.
  static void add_clip_bytes(const std::int8_t* w, U bytes, std::int8_t* out) {
    const __m256i s = _mm256_adds_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w)), bytes);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm256_max_epi8(s, _mm256_set1_epi8(-127)));
  }
};

}  // namespace

void zo_perturb_i8_avx2(std::size_t n, const SparsePerturbation& p, int sign, int shift, const std::int8_t* w,
                        std::int8_t* out) {
  zo_perturb_i8_lanes<ZoOpsAvx2>(n, p, sign, shift, w, out);
}

}  // namespace ez
