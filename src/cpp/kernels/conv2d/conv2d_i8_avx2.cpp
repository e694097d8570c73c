// int8 2-D convolution for AVX2 (int16 pairs, vpmaddwd): the shared body (conv2d_i8_body.h) on the s16x8 microkernel,
// or for a non-negative input (every layer's input after a ReLU, so all but the first forward) on u8x8
// (vpmaddubsw). Both are exact integer sums: the result is the reference's either way.
#include "kernels/kernels.h"
#include "simd/i8_x86.h"
#include "kernels/conv2d/conv2d_i8_body.h"

namespace ez {

void conv2d_fwd_i8_avx2(const Conv2dShape& s, const std::int8_t* x, const std::int8_t* w, std::int32_t* y) {
  if (all_nonnegative_i8(x, static_cast<long>(s.n) * s.c_in * s.h * s.w))
    conv_fwd_i8<u8x8>(s, x, w, y);
  else
    conv_fwd_i8<s16x8>(s, x, w, y);
}

void conv2d_bwd_data_i8_avx2(const Conv2dShape& s, const std::int8_t* dy, const std::int8_t* w, std::int32_t* dx) {
  conv_bwd_data_i8<s16x8>(s, dy, w, dx);
}

void conv2d_bwd_weight_i8_avx2(const Conv2dShape& s, const std::int8_t* x, const std::int8_t* dy, std::int32_t* dw) {
  conv_bwd_weight_i8<s16x8>(s, x, dy, dw);
}

}  // namespace ez
