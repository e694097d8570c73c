// The INT8 numeric policy: ElasticZO-INT8 (Algorithm 2, SPEC §5-6) over NITI (shared/docs/NITI.md).
//  - ZO part: the passes run at clip(theta +- zeta), zeta the sparse int8 perturbation of the step key
//    (int8/zo_int8.h), generated aside into each layer's weight operand (layers/int8_layer.h, Int8Weights): the
//    stored weights are never written by the passes, so the restore is exact, clipping or not. The ternary gradient
//    g = sign(l+ - l-) comes from the floating-point cross-entropy of the dequantized logits (the paper's INT8) or
//    from integer arithmetic only (INT8*); the update theta <- clip(theta - g * R(zeta)) rounds zeta to b_zo bits.
//  - Backprop part: integer backprop with NITI's weight update, whose gradient bit-width mu plays the learning rate
//    (the paper's schedule: 5, 4 from epoch 20, 3 from epoch 50); its gradient is the sum of the two passes'.
#pragma once
#include <cstdint>
#include <vector>

#include "train/zo_policy.h"

namespace ez {

// ElasticZO-INT8's settings (the trainer sets p_zero per epoch from the paper's schedule).
struct Int8ZoConfig {
  int range = 16;            // r: |zeta| <= r (the paper's value was lost; benchmarks/sweep_int8.py chose 16: the
                             // update stays about one unit, b_zo = 1, while the passes' loss difference outgrows
                             // the int8 rounding noise)
  double p_zero = 0.33;      // fraction of zeta zeroed
  int update_bits = 1;       // b_zo: g * zeta rounded to this many bits (the paper: 1)
  bool integer_sign = false;  // g from integer arithmetic only (INT8*) instead of the dequantized loss (INT8)
  int log2_frac_bits = 8;    // INT8*: fractional bits of the integer loss (0: the paper's floor(log2), which agreed
                             // with the floating-point sign on 78-87% of LeNet-5 steps; 8: 99.5-100%)
};

class Int8Niti final : public ZoPolicy {
 public:
  void attach(std::vector<Param*> bp_params) { params_ = std::move(bp_params); }
  void set_gradient_bits(int mu);  // mu in [0, 7]
  int gradient_bits() const { return mu_; }
  void set_zo(const Int8ZoConfig& c);  // std::invalid_argument for a value out of range
  const Int8ZoConfig& zo() const { return zo_; }
  // The rounding of the weight gradients (NITI's update) and of the loss gradient; the model's layers round the
  // activations and errors (Sequential::set_rounding).
  void set_rounding(const RoundingPolicy& p) { rounding_ = p; }
  // Steps whose integer sign (INT8*) agreed with the floating-point one, of the steps counted (both computed
  // only when the gradient is integer; the floating-point sign is then computed for this statistic alone); of
  // those, the steps whose integer sign was 0 (undecided: the integer losses tie, no update) and the ties proper,
  // undecided steps whose floating-point sign is not 0. The paper's "correct about 95% of the time" counts the
  // steps the integer sign decides.
  std::uint64_t sign_agreements = 0, sign_steps = 0, sign_ties = 0, sign_undecided = 0;

  void start_step(PhiloxKey key) override { key_ = key; }
  void to_plus(const std::vector<ZoSlice>& s, PhiloxKey key) override { point(s, key, +1); }
  void to_minus(const std::vector<ZoSlice>& s, PhiloxKey key) override { point(s, key, -1); }
  // The reported loss is the floating-point cross-entropy of the dequantized logits v * 2^e (NITI computes none);
  // the error written to the model is NITI's integer cross-entropy gradient (int8, exponent 0), rounded with the
  // loss-gradient scheme (a stochastic one draws from the step key), so a step is a pure function of (weights,
  // batch, seed, step). The minus
  // pass also takes the ternary gradient.
  float loss(Sequential& model, const Tensor& labels, float grad_scale) override;
  float projected_grad(float loss_plus, float loss_minus) const override;
  void update(const std::vector<ZoSlice>& s, PhiloxKey key, float g) override;
  void restore(const std::vector<ZoSlice>& s, PhiloxKey key, ZoPoint at, float g) override;
  void update_backprop() override;

 private:
  // Every ZO weight's forward operand becomes clip(w + sign * zeta(key)); sign 0 brings back the stored weights.
  void point(const std::vector<ZoSlice>& s, PhiloxKey key, int sign);
  void move(const std::vector<ZoSlice>& s, PhiloxKey key, int sign);  // w <- clip(w + sign * R(zeta)) in place
  std::vector<Param*> params_;
  int mu_ = 5;
  Int8ZoConfig zo_;
  RoundingPolicy rounding_;
  PhiloxKey key_{0, 0};
  int pass_ = 0;  // +1 / -1 during the ZO passes
  std::vector<std::int8_t> plus_logits_;  // the + pass's output, for the sign (batch x classes bytes)
  int plus_exponent_ = 0;
  double plus_loss_ = 0.0;
  int sign_ = 0;
};

}  // namespace ez
