// The FP32 numeric policy: Gaussian SPSA (SPEC §3). The passes compute with theta + eps z and theta - eps z built
// aside per layer (Param::zo_scale, layers/fp32_operand.h): the stored theta is never written by a pass, so restoring
// it after a failed step is exact by construction. g is the central difference (clipped); the update theta += -lr g z
// is kept aside too (a clean third pass computes with it) and written in place once, when the step completes. z is
// regenerated from the step key by the dispatched kernel, never stored. The backprop part takes SGD or Adam steps.
#pragma once
#include "train/optimizer.h"
#include "train/phase_timer.h"
#include "train/zo_policy.h"

namespace ez {

struct Fp32SpsaConfig {
  float eps, lr_zo, lr_bp, grad_clip;
};

class Fp32Spsa final : public ZoPolicy {
 public:
  Fp32Spsa(const Fp32SpsaConfig& config, Optimizer& optimizer) : cfg_(config), opt_(optimizer) {}
  void set_learning_rates(float lr_zo, float lr_bp) { cfg_.lr_zo = lr_zo, cfg_.lr_bp = lr_bp; }

  void to_plus(const std::vector<ZoSlice>& s, PhiloxKey key) override { aside(s, cfg_.eps, key); }
  void to_minus(const std::vector<ZoSlice>& s, PhiloxKey key) override { aside(s, -cfg_.eps, key); }
  float loss(Sequential& model, const Tensor& labels, float grad_scale) override;
  float projected_grad(float loss_plus, float loss_minus) const override;
  void update(const std::vector<ZoSlice>& s, PhiloxKey key, float g) override { aside(s, -cfg_.lr_zo * g, key); }
  void commit(const std::vector<ZoSlice>& s, PhiloxKey key) override;
  // Wherever the step stopped, the stored weights are those before it: only the operand set aside is dropped.
  void restore(const std::vector<ZoSlice>& s, PhiloxKey key, ZoPoint /*at*/, float /*g*/) override {
    aside(s, 0.0f, key);
  }
  void update_backprop() override { opt_.step(cfg_.lr_bp); }
  // theta[ZO] += coefficient * z(key) from the center: a ZO update given as one number (-lr g), so that replicas
  // applying the same (key, coefficient) pairs in the same order hold the same bits (federated training).
  void apply(const std::vector<ZoSlice>& s, PhiloxKey key, float coefficient) { perturb(s, coefficient, key); }

 private:
  static void perturb(const std::vector<ZoSlice>& slices, float scale, PhiloxKey key);
  // The ZO layers' forwards compute with theta + scale * z(key) from now on (0: with theta).
  static void aside(const std::vector<ZoSlice>& slices, float scale, PhiloxKey key);
  Fp32SpsaConfig cfg_;
  Optimizer& opt_;
};

}  // namespace ez
