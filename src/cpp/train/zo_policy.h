// The numeric policy of an ElasticZO step: what one precision does (FP32 Gaussian SPSA now, the INT8 engine's
// integer perturbation and ternary gradient next), behind what every precision shares (the step skeleton in
// elasticzo.cpp: partition, seed streams, step key, phases, and the restore that always happens).
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/shapes.h"
#include "layers/layer.h"
#include "model/sequential.h"

namespace ez {

// Where a ZO tensor draws its perturbation: the stream of its parameter layer, at an offset past the layer's
// earlier tensors (weight, then bias). Fixed by the skeleton at construction.
struct ZoSlice {
  Param* param;
  std::uint32_t stream;
  std::uint64_t offset;
};

// Where the ZO weights are during a step. The skeleton moves them center -> plus -> minus -> updated, and if anything
// throws on the way it asks the policy to bring them back to center from wherever they are.
enum class ZoPoint { center, plus, minus, updated };

class ZoPolicy {
 public:
  virtual ~ZoPolicy() = default;
  // The key of the step about to run (its perturbation, and any draws the policy makes during the step).
  virtual void start_step(PhiloxKey /*key*/) {}
  // Moves the ZO weights (`slices`) along the perturbation of `key`: center -> plus, then plus -> minus.
  virtual void to_plus(const std::vector<ZoSlice>& slices, PhiloxKey key) = 0;
  virtual void to_minus(const std::vector<ZoSlice>& slices, PhiloxKey key) = 0;
  // The loss of the model's current output; when grad_scale != 0 it also writes grad_scale * dL/dlogits into the
  // model's output error (the backprop part's gradient of this pass).
  virtual float loss(Sequential& model, const Tensor& labels, float grad_scale) = 0;
  // The projected gradient from the two losses (finite, checked by the skeleton).
  virtual float projected_grad(float loss_plus, float loss_minus) const = 0;
  // From minus: the ZO update (back to the center and the step in one move). The weights a clean third pass then
  // computes with are the updated ones.
  virtual void update(const std::vector<ZoSlice>& slices, PhiloxKey key, float projected_grad) = 0;
  // The step is complete: the update becomes permanent (a policy that applied it in place already has nothing to
  // do; one that keeps it aside until now writes it).
  virtual void commit(const std::vector<ZoSlice>& /*slices*/, PhiloxKey /*key*/) {}
  // From `at` back to the weights before the step (the inverse of the moves made so far).
  virtual void restore(const std::vector<ZoSlice>& slices, PhiloxKey key, ZoPoint at, float projected_grad) = 0;
  // The backprop part's update from the gradients the passes left in its parameters.
  virtual void update_backprop() = 0;
};

}  // namespace ez
