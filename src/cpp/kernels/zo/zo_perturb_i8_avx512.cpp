// avx512 sparse int8 perturbation: the lane-generic kernel of rng/zo_perturb_i8_lanes.h on 16 Philox blocks (64
// elements) per vector. Exact: the same bytes as zo_perturb_i8_ref for any n, offset and thread count.
#include "kernels/kernels.h"
#include "rng/zo_perturb_i8_lanes.h"
#include "simd/rng_avx512.h"

namespace ez {
namespace {

struct ZoOpsAvx512 : RngOpsAvx512 {
  static U mullo(U a, U b) { return _mm512_mullo_epi32(a, b); }
  static U cmpgt(U a, U b) { return _mm512_movm_epi32(_mm512_cmpgt_epi32_mask(a, b)); }  // signed, all-ones lanes
  static void store_u(std::uint32_t* p, U v) { _mm512_storeu_si512(p, v); }
  // out = max(w +sat bytes, -127): the saturating add stays within [-128, 127], and the max takes -128 to -127.
  static void add_clip_bytes(const std::int8_t* w, U bytes, std::int8_t* out) {
    const __m512i s = _mm512_adds_epi8(_mm512_loadu_si512(w), bytes);
    _mm512_storeu_si512(out, _mm512_max_epi8(s, _mm512_set1_epi8(-127)));
  }
};

}  // namespace

void zo_perturb_i8_avx512(std::size_t n, const SparsePerturbation& p, int sign, int shift, const std::int8_t* w,
                          std::int8_t* out) {
  zo_perturb_i8_lanes<ZoOpsAvx512>(n, p, sign, shift, w, out);
}

}  // namespace ez
