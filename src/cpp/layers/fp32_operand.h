// The FP32 weight operand of a Conv2d / Linear forward: the stored values, or during a ZO pass (Param::zo_scale != 0)
// theta + zo_scale * z, built aside in one pass by the zo_axpy_gaussian_f32 kernel (reading theta, writing the
// operand) into workspace the layer declared (the elements regenerate z from their own index, so any slice of a
// tensor is built alone). The stored weights are never written by a pass: the weights before a step are restored
// exactly by construction, and the update theta += -lr g z is applied once, in place by the same kernel, giving the
// very values the clean pass computed with.
#pragma once
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

// A Linear forward during a ZO pass meets its perturbed weights whole when the copy is small next to the layer's own
// input and output; otherwise (fc1 of LeNet-5 at batch 32 or 64: 376 KB of weights against 100-200 KB of
// activations) in blocks of output features, each built into a small slot of workspace and computed for every row.
// When the kernel for a block needs no workspace of its own (the dot tiles that few rows and a long reduction take),
// the blocks are the tasks of one parallel job, each thread with its slot; otherwise one after another.
inline constexpr long kZoChunkFloats = 16384;  // larger weights may go by blocks
inline constexpr long kZoBlockFloats = 8192;   // a parallel block's perturbed weights: 32 KB, near an L1 data cache
struct ZoLinearBlocks {
  int width;     // output features per block; the layer's out: one whole copy
  int team;      // threads of the parallel job (one slot each); 0: blocks one after another
  long slot;     // floats per slot: the block's weights, bias and outputs, each piece aligned
};
ZoLinearBlocks zo_linear_blocks(const LinearShape& s, bool bias);
// y = x (W + s z)^T + (b + s z) through the blocks above (zo_pass(w) and zo_linear_blocks(s).width < s.out).
void zo_linear_forward_blocks(const LinearShape& s, const float* x, const Param& w, const Param* b, float* y);

// Forward workspace of a layer during a ZO pass: its perturbed copies (whole, or the blocks' slots) and its kernel's
// own workspace (kernels/workspace.h).
std::size_t zo_conv2d_forward_workspace(const Conv2dShape& s, bool bias);
std::size_t zo_linear_forward_workspace(const LinearShape& s, bool bias);
// The same for a per-point Linear fused with its ReLU and the max-pool (Linear::forward_relu_max), whose weights
// are built whole (a pass that would build them by blocks runs the layers apart).
std::size_t zo_point_linear_max_workspace(const LinearShape& s, int points, bool bias);

}  // namespace ez
