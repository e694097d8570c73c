// int8 fully connected layer for AVX-512 VNNI (vpdpbusd on zmm): the shared body (linear_i8_body.h) on the s8x16_vnni
// microkernel.
#include "kernels/kernels.h"
#include "simd/i8_x86.h"
#include "kernels/linear/linear_i8_body.h"

namespace ez {

void linear_fwd_i8_avx512_vnni(const LinearShape& s, const std::int8_t* x, const std::int8_t* w, std::int32_t* y) {
  linear_fwd_i8<s8x16_vnni>(s, x, w, y);
}

void linear_bwd_data_i8_avx512_vnni(const LinearShape& s, const std::int8_t* dy, const std::int8_t* w,
                                    std::int32_t* dx) {
  linear_bwd_data_i8<s8x16_vnni>(s, dy, w, dx);
}

void linear_bwd_weight_i8_avx512_vnni(const LinearShape& s, const std::int8_t* x, const std::int8_t* dy,
                                      std::int32_t* dw) {
  linear_bwd_weight_i8<s8x16_vnni>(s, x, dy, dw);
}

}  // namespace ez
