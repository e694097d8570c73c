// int8 2-D convolution for AVX-VNNI (vpdpbusd on ymm): the shared body (conv2d_i8_body.h) on the s8x8_vnni microkernel.
#include "kernels/kernels.h"
#include "simd/i8_x86.h"
#include "kernels/conv2d/conv2d_i8_body.h"

namespace ez {

void conv2d_fwd_i8_avx_vnni(const Conv2dShape& s, const std::int8_t* x, const std::int8_t* w, std::int32_t* y) {
  conv_fwd_i8<s8x8_vnni>(s, x, w, y);
}

void conv2d_bwd_data_i8_avx_vnni(const Conv2dShape& s, const std::int8_t* dy, const std::int8_t* w, std::int32_t* dx) {
  conv_bwd_data_i8<s8x8_vnni>(s, dy, w, dx);
}

void conv2d_bwd_weight_i8_avx_vnni(const Conv2dShape& s, const std::int8_t* x, const std::int8_t* dy,
                                   std::int32_t* dw) {
  conv_bwd_weight_i8<s8x8_vnni>(s, x, dy, dw);
}

}  // namespace ez
