// 2x2 max-pooling of int8 for x86 (the AVX2 level and above): the shared body (maxpool2d_i8_body.h) on 16-byte
// SSE4.1 vectors; LeNet's pooled rows (14 and 7 outputs) fill at most two of them. Exact.
#include <immintrin.h>

#include "kernels/pool/maxpool2d_i8_body.h"

namespace ez {
namespace {

struct i8x16_pool {
  // The vertical max of the two rows, then each 16-bit lane (an even and an odd byte) sign-extends both bytes and
  // keeps the larger; packing with signed saturation is exact on values in [-128, 127]. The 8 maxima, in order, are
  // the low 8 bytes of the result.
  static std::uint64_t pool8(const std::int8_t* r0, const std::int8_t* r1) {
    const __m128i v = _mm_max_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r0)),
                                   _mm_loadu_si128(reinterpret_cast<const __m128i*>(r1)));
    const __m128i even = _mm_srai_epi16(_mm_slli_epi16(v, 8), 8), odd = _mm_srai_epi16(v, 8);
    const __m128i m = _mm_max_epi16(even, odd);
    return static_cast<std::uint64_t>(_mm_cvtsi128_si64(_mm_packs_epi16(m, m)));
  }
  static void store8(std::int8_t* y, std::uint64_t v) { std::memcpy(y, &v, 8); }
};

}  // namespace

void maxpool2d_fwd_i8_avx2(const Pool2dShape& s, const std::int8_t* x, std::int8_t* y) {
  maxpool2d_fwd_i8_body<i8x16_pool>(s, x, y);
}

}  // namespace ez
