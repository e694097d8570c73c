// Reference k x k max-pooling with stride k (kernels/pool/pool_ref_body.h).
#include "kernels/kernels.h"
#include "kernels/pool/pool_ref_body.h"

namespace ez {

void maxpool2d_fwd_f32_ref(const Pool2dShape& s, const float* x, float* y) { maxpool2d_fwd_ref(s, x, y); }

void maxpool2d_relu_fwd_f32_ref(const Pool2dShape& s, const float* x, float* y) {
  maxpool2d_fwd_ref<float, true>(s, x, y);
}

void maxpool2d_bwd_f32_ref(const Pool2dShape& s, const float* x, const float* y, const float* dy, float* dx) {
  maxpool2d_bwd_ref(s, x, y, dy, dx);
}

}  // namespace ez
