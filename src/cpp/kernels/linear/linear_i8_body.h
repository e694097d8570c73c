// int8 fully connected layer into int32 on the int8 GEMM driver (gemm_i8_body.h): y = x W^T, dx = dy W,
// dW = dy^T x, with W[out][in]. ISA files only.
#pragma once
#include "kernels/gemm/gemm_i8_body.h"
#include "kernels/shapes.h"

namespace ez {
namespace {

template <class M>
void linear_fwd_i8(const LinearShape& s, const std::int8_t* x, const std::int8_t* w, std::int32_t* y) {
  gemm_i8_run<M>(false, true, s.rows, s.out, s.in, x, s.in, w, s.in, false, y, s.out);
}

template <class M>
void linear_bwd_data_i8(const LinearShape& s, const std::int8_t* dy, const std::int8_t* w, std::int32_t* dx) {
  gemm_i8_run<M>(false, false, s.rows, s.in, s.out, dy, s.out, w, s.in, false, dx, s.in);
}

template <class M>
void linear_bwd_weight_i8(const LinearShape& s, const std::int8_t* x, const std::int8_t* dy, std::int32_t* dw) {
  gemm_i8_run<M>(true, false, s.out, s.in, s.rows, dy, s.out, x, s.in, false, dw, s.in);
}

}  // namespace
}  // namespace ez
