// A memory plan: every buffer a Sequential needs for one training step of a given input shape and backprop part,
// with when one pass of the step first and last uses it, and where each allocation policy puts it.
// A step runs one or more passes over the same ops (ZO: the + and - passes; backprop: each pass's backward), and
// no buffer but the gradients carries data from one pass to the next, so lifetimes are op indices within a pass:
//   forward of module 0 .. n-1, the loss, backward of module n-1 .. bp_first.
// Policies: `static` gives every buffer its own memory for the whole step (the paper's model, SPEC §4);
// `lifetime` packs each category into one arena where buffers whose lifetimes do not overlap share bytes, and
// gives an INT8 layer's forward accumulator a chunk of samples instead of the batch (the layer rounds chunk by chunk),
// and drops the outputs a fused forward never writes (MemoryPlan::fused).
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "layers/layer.h"

namespace ez {

enum class MemoryPolicy : std::uint8_t { static_, lifetime };
MemoryPolicy parse_memory_policy(const std::string& name);  // "static" or "lifetime"
const char* memory_policy_name(MemoryPolicy p);

// A forward fusion: modules i .. i + fusion_modules(kind) - 1 run as one kernel that reads module i's input and
// writes only the last module's output (the same bits as the modules apart: kernels.inc). Sequential decides where
// (Sequential::fusion_at), the plan records it, the forward follows the plan.
enum class Fusion : std::uint8_t {
  none,
  relu_pool,   // FP32 ReLU + MaxPool2d: the pooling of relu(x) (MaxPool2d::forward_of_relu)
  point_pool,  // FP32 per-point Linear + ReLU + PointMaxPool (Linear::forward_relu_max)
};
inline constexpr std::size_t kFusionKinds = 3;
std::size_t fusion_modules(Fusion f);  // 1 for none
const char* fusion_name(Fusion f);     // "none", "relu_pool", "point_pool"

struct PlannedBuffer {
  std::string name;  // "<module>.<spec name>", e.g. "conv1.output", "fc3.weight.grad"
  BufferRole role;
  std::size_t module;
  DType dtype;
  Shape shape;
  MemCategory category;
  std::size_t bytes;
  int first_op, last_op;  // within a pass; gradients span the whole step (kWholeStep)
  int shares = -1;        // index of the buffer whose storage this one uses (views, in-place), or -1
  std::size_t offset = 0; // position in its category's arena under the lifetime policy
};

struct MemoryPlan {
  MemoryPolicy policy = MemoryPolicy::static_;
  Shape input_shape;
  std::size_t bp_first = 0;        // first module trained by backprop (n: none)
  std::vector<std::string> ops;    // one pass: "forward conv1", ..., "loss", "backward fc3", ...
  // fused[i]: the fusion the forward starts at module i (none also inside a fusion); under the lifetime policy the
  // plan has no buffer for the outputs the fusion never writes (all its modules' but the last one's).
  std::vector<Fusion> fused;
  std::vector<PlannedBuffer> buffers;
  std::array<std::size_t, kMemCategories> bytes{};  // what allocating the plan under its policy takes
  std::size_t total() const;
};

// Plans the buffers of `layers` (module names alongside) for input shape `input`, backprop from module
// `bp_first` on, with the forward fusions `fused` (empty: none; else one per module, none overlapping another or
// reaching bp_first or past the last module). Pure: allocates nothing; throws std::invalid_argument if the input
// does not fit the chain or the fusions do not fit the modules.
MemoryPlan plan_memory(const std::vector<std::shared_ptr<Layer>>& layers, const std::vector<std::string>& names,
                       const Shape& input, std::size_t bp_first, MemoryPolicy policy, std::vector<Fusion> fused = {});

}  // namespace ez
