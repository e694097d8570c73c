// The FP32 weight operand of a Conv2d / Linear forward: the stored values, or during a ZO pass (Param::zo_scale != 0)
// theta + zo_scale * z, built aside in one pass by the zo_axpy_gaussian_f32 kernel (reading theta, writing the
// operand) into workspace the layer declared (the elements regenerate z from their own index, so any slice of a
// tensor is built alone). The stored weights are never written by a pass: the weights before a step are restored
// exactly by construction, and the update theta += -lr g z is applied once, in place by the same kernel, giving the
// very values the clean pass computed with.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "kernels/shapes.h"
#include "layers/layer.h"
#include "memory/tracker.h"

namespace ez {

class Fp32Operand {
 public:
  // Elements [begin, begin + count) of p.value.
  Fp32Operand(const Param& p, std::size_t begin, std::size_t count);
  const float* data() const { return data_; }

 private:
  std::optional<ScratchBuffer<float>> perturbed_;
  const float* data_;
};

inline bool zo_pass(const Param& p) { return p.zo_scale != 0.0f; }

// A Linear forward during a ZO pass builds its perturbed weights in chunks of output features when the whole copy
// would be large next to the layer's own input and output (fc1 of LeNet-5 at batch 32: 376 KB of weights against
// 115 KB of activations): each chunk's outputs go through a small buffer, so the workspace stays near kZoChunkFloats.
inline constexpr long kZoChunkFloats = 16384;
inline int zo_chunk_outputs(const LinearShape& s) {
  const long whole = static_cast<long>(s.out) * s.in;
  if (whole <= kZoChunkFloats || whole <= static_cast<long>(s.rows) * (s.in + s.out)) return s.out;
  return static_cast<int>(std::max(1L, kZoChunkFloats / s.in));
}

// Forward workspace of a layer during a ZO pass: its perturbed copies (whole, or a chunk of outputs and their
// output buffer) and its kernel's own workspace (kernels/workspace.h).
std::size_t zo_conv2d_forward_workspace(const Conv2dShape& s, bool bias);
std::size_t zo_linear_forward_workspace(const LinearShape& s, bool bias);

}  // namespace ez
