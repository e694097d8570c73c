// Reference int8 2-D convolution (stride 1, zero padding, no bias) into int32: the shared reference loops.
#include "kernels/conv2d/conv2d_ref_body.h"
#include "kernels/kernels.h"

namespace ez {

void conv2d_fwd_i8_ref(const Conv2dShape& s, const std::int8_t* x, const std::int8_t* w, std::int32_t* y) {
  conv_fwd_ref<std::int8_t, std::int32_t>(s, x, w, nullptr, y);
}

void conv2d_bwd_data_i8_ref(const Conv2dShape& s, const std::int8_t* dy, const std::int8_t* w, std::int32_t* dx) {
  conv_bwd_data_ref<std::int8_t, std::int32_t>(s, dy, w, dx);
}

void conv2d_bwd_weight_i8_ref(const Conv2dShape& s, const std::int8_t* x, const std::int8_t* dy, std::int32_t* dw) {
  conv_bwd_weight_ref<std::int8_t, std::int32_t>(s, x, dy, false, dw);
}

}  // namespace ez
