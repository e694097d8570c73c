// Reference int8 fully connected layer into int32, y = x W^T with W[out][in], written out without the GEMM.
#include "core/parallel.h"
#include "kernels/kernels.h"

namespace ez {

void linear_fwd_i8_ref(const LinearShape& s, const std::int8_t* x, const std::int8_t* w, std::int32_t* y) {
  parallel_for(s.rows, [&](std::int64_t task) {
    const int r = static_cast<int>(task);
    for (int o = 0; o < s.out; ++o) {
      std::int32_t acc = 0;
      for (int i = 0; i < s.in; ++i) acc += x[static_cast<long>(r) * s.in + i] * w[static_cast<long>(o) * s.in + i];
      y[static_cast<long>(r) * s.out + o] = acc;
    }
  });
}

void linear_bwd_data_i8_ref(const LinearShape& s, const std::int8_t* dy, const std::int8_t* w, std::int32_t* dx) {
  parallel_for(s.rows, [&](std::int64_t task) {
    const int r = static_cast<int>(task);
    for (int i = 0; i < s.in; ++i) {
      std::int32_t acc = 0;
      for (int o = 0; o < s.out; ++o) acc += dy[static_cast<long>(r) * s.out + o] * w[static_cast<long>(o) * s.in + i];
      dx[static_cast<long>(r) * s.in + i] = acc;
    }
  });
}

void linear_bwd_weight_i8_ref(const LinearShape& s, const std::int8_t* x, const std::int8_t* dy, std::int32_t* dw) {
  parallel_for(s.out, [&](std::int64_t task) {
    const int o = static_cast<int>(task);
    for (int i = 0; i < s.in; ++i) {
      std::int32_t acc = 0;
      for (int r = 0; r < s.rows; ++r) acc += dy[static_cast<long>(r) * s.out + o] * x[static_cast<long>(r) * s.in + i];
      dw[static_cast<long>(o) * s.in + i] = acc;
    }
  });
}

}  // namespace ez
