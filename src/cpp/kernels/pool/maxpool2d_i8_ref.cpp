// Reference k x k max-pooling of int8 mantissas with stride k (kernels/pool/pool_ref_body.h, shared with FP32).
#include "kernels/kernels.h"
#include "kernels/pool/pool_ref_body.h"

namespace ez {

void maxpool2d_fwd_i8_ref(const Pool2dShape& s, const std::int8_t* x, std::int8_t* y) { maxpool2d_fwd_ref(s, x, y); }

}  // namespace ez
