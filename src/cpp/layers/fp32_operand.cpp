// FP32 perturbed weight operands (layers/fp32_operand.h).
#include "layers/fp32_operand.h"

#include "kernels/kernels.h"
#include "kernels/workspace.h"

namespace ez {

Fp32Operand::Fp32Operand(const Param& p, std::size_t begin, std::size_t count) : data_(p.value.f32() + begin) {
  if (!zo_pass(p)) return;
  perturbed_.emplace(count, false);  // every element is written by the kernel
  kernels().zo_axpy_gaussian_f32(count, p.zo_scale, p.zo.key, p.zo.stream, p.zo.offset + begin, data_,
                                 perturbed_->data());
  data_ = perturbed_->data();
}

std::size_t zo_conv2d_forward_workspace(const Conv2dShape& s, bool bias) {
  const std::size_t w = static_cast<std::size_t>(s.c_out) * s.c_in * s.k * s.k;
  return aligned_bytes(w * sizeof(float)) + (bias ? aligned_bytes(s.c_out * sizeof(float)) : 0) +
         conv2d_fwd_workspace(s);
}

std::size_t zo_linear_forward_workspace(const LinearShape& s, bool bias) {
  const int chunk = zo_chunk_outputs(s);
  const auto copies = [&](int outputs) {
    return aligned_bytes(static_cast<std::size_t>(outputs) * s.in * sizeof(float)) +
           (bias ? aligned_bytes(outputs * sizeof(float)) : 0);
  };
  if (chunk >= s.out) return copies(s.out) + linear_fwd_workspace(s);
  // The chunks' outputs, then per chunk its copies and the kernel's workspace (the last chunk may be narrower).
  const int last = s.out - (s.out - 1) / chunk * chunk;
  return aligned_bytes(static_cast<std::size_t>(s.rows) * chunk * sizeof(float)) + copies(chunk) +
         std::max(linear_fwd_workspace({s.rows, s.in, chunk}), linear_fwd_workspace({s.rows, s.in, last}));
}

}  // namespace ez
