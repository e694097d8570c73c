// The INT8 numeric policy (NITI, shared/docs/NITI.md): integer backprop with NITI's weight update, whose gradient
// bit-width mu plays the learning rate (the paper's schedule: 5, 4 from epoch 20, 3 from epoch 50). This issue
// trains the backprop part only (Full BP); ElasticZO-INT8's integer perturbation and ternary ZO gradient (issue 12)
// fill the ZO half of the interface, which the trainer does not call until then (it refuses zo_layers > 0).
#pragma once
#include <vector>

#include "train/zo_policy.h"

namespace ez {

class Int8Niti final : public ZoPolicy {
 public:
  void attach(std::vector<Param*> bp_params) { params_ = std::move(bp_params); }
  void set_gradient_bits(int mu);  // mu in [0, 7]
  int gradient_bits() const { return mu_; }

  void start_step(PhiloxKey key) override { key_ = key; }
  void to_plus(const std::vector<ZoSlice>& s, PhiloxKey key) override;
  void to_minus(const std::vector<ZoSlice>& s, PhiloxKey key) override;
  // The reported loss is the FP32 cross-entropy of the dequantized logits v * 2^e (NITI computes none); the
  // error written to the model is NITI's integer cross-entropy gradient (int8, exponent 0), its stochastic
  // rounding drawing from the step key, so a step is a pure function of (weights, batch, seed, step).
  float loss(Sequential& model, const Tensor& labels, float grad_scale) override;
  float projected_grad(float loss_plus, float loss_minus) const override;
  void update(const std::vector<ZoSlice>& s, PhiloxKey key, float g) override;
  void restore(const std::vector<ZoSlice>& s, PhiloxKey key, ZoPoint at, float g) override;
  void update_backprop() override;

 private:
  std::vector<Param*> params_;
  int mu_ = 5;
  PhiloxKey key_{0, 0};
};

}  // namespace ez
