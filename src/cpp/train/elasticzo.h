// ElasticZO (Algorithm 1, SPEC §3): parameter layers [0, C) are trained by zeroth-order SPSA with a perturbation
// regenerated from a per-step key, never stored; layers [C, L) by backprop. C = L is Full ZO, C = 0 Full BP.
// One step() is one minibatch, entirely in C++. The step is a skeleton shared by every precision (partition, seed
// streams, step key, phases, the restore that always happens) over a numeric policy (train/zo_policy.h), chosen by
// the model's precision: FP32 Gaussian SPSA, or INT8 NITI backprop (Full BP until ElasticZO-INT8 lands).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>

#include "model/sequential.h"
#include "train/fp32_spsa.h"
#include "train/int8_niti.h"
#include "train/optimizer.h"
#include "train/phase_timer.h"
#include "train/zo_policy.h"

namespace ez {

// The trainer's defaults, in one place: the Python trainer takes its own defaults from here (default_config() in the
// bindings), and the per-model tuned values of elasticzo/hparams.py override them. The numbers are LeNet-5's tuned
// ZO-Feat-Cls1 values (the partition the paper recommends).
struct ElasticZOConfig {
  int zo_layers = 0;         // C
  float eps = 1e-3f;         // perturbation scale
  float lr_zo = 5e-4f;       // ZO learning rate
  float lr_bp = 0.05f;       // backprop learning rate
  float grad_clip = 3.0f;    // clip the projected gradient g to [-c, c]; 0 disables
  bool clean_bp_pass = false;  // backprop from a third, unperturbed forward pass instead of the mean of +/- passes
  OptimizerKind optimizer = OptimizerKind::sgd;
  AdamConfig adam;
  std::uint64_t seed = 0;    // with the step number, determines every perturbation
  Int8ZoConfig int8_zo;      // ElasticZO-INT8 (an int8 model with a ZO part)
  RoundingPolicy rounding;   // INT8: NITI's rounding per tensor class (default: its first commit)
};

struct StepStats {
  float loss;            // (l+ + l-)/2 with a ZO part, else the clean loss
  float loss_plus, loss_minus;
  float projected_grad;  // g after clipping (0 without a ZO part)
};

class ElasticZO {
 public:
  ElasticZO(std::shared_ptr<Sequential> model, const ElasticZOConfig& config);
  // x: model input (batch first); labels: int32 [batch], each in [0, classes). If the step throws (a non-finite
  // loss, a bad input), the ZO weights are those before it, bit for bit (FP32 and INT8 passes compute with
  // perturbed weights built aside, the update is written when the step completes) and the backprop part is not
  // updated.
  StepStats step(const Tensor& x, const Tensor& labels);

  // theta[ZO] += coefficient * z(step): the ZO update of step `step` given by its coefficient (-lr_zo g, computed
  // by whoever averaged g), applied to the weights as they are. The same (step, coefficient) sequence applied to the
  // same weights gives the same bits on every replica, thread count and ISA (the z kernel is exact).
  void apply_zo_update(std::uint64_t step, float coefficient);
  const ElasticZOConfig& config() const { return cfg_; }
  void set_learning_rates(float lr_zo, float lr_bp);
  // INT8: NITI's gradient bit-width mu, its learning rate (the trainer follows niti_mu_for_epoch).
  void set_gradient_bits(int mu);
  int gradient_bits() const { return int8_.gradient_bits(); }
  // ElasticZO-INT8: the fraction of the perturbation zeroed (the trainer follows the paper's schedule per epoch),
  // and how often the integer sign agreed with the floating-point one (agreements, steps), settable for a resume.
  void set_zo_p_zero(double p_zero);
  double zo_p_zero() const { return int8_.zo().p_zero; }
  // ElasticZO-INT8: the perturbation range r (|zeta| <= r), settable between steps (a per-phase schedule).
  void set_zo_range(int range);
  int zo_range() const { return int8_.zo().range; }
  std::pair<std::uint64_t, std::uint64_t> sign_agreement() const { return {int8_.sign_agreements, int8_.sign_steps}; }
  void set_sign_agreement(std::uint64_t agreements, std::uint64_t steps);
  // Of those steps, (ties: integer sign 0 while the floating-point one is not, undecided: integer sign 0).
  std::pair<std::uint64_t, std::uint64_t> sign_ties() const { return {int8_.sign_ties, int8_.sign_undecided}; }
  void set_sign_ties(std::uint64_t ties, std::uint64_t undecided);
  Precision precision() const { return precision_; }
  std::uint64_t steps_done() const { return steps_; }
  void set_steps_done(std::uint64_t n) { steps_ = n; }  // resume: the next step draws the same z as before
  Optimizer& optimizer() { return opt_; }
  // The trainer's state (learning rates, step count, optimizer moments, times) changes during step(), which holds
  // the model's lock: other threads take the same lock to read or change it.
  std::unique_lock<std::recursive_mutex> lock() const { return model_->lock(); }
  const PhaseTimes& times() const { return times_; }
  void clear_times() { times_.clear(); }

 private:
  void zo_passes(const Tensor& x, const Tensor& labels, StepStats& st);
  void change_zo(const std::function<void(Int8ZoConfig&)>& change);  // one ElasticZO-INT8 setting, checked
  void forward(const Tensor& x);
  void backward(const Tensor& x, bool accumulate);
  float loss(const Tensor& labels, float grad_scale);
  std::shared_ptr<Sequential> model_;
  ElasticZOConfig cfg_;
  Optimizer opt_;
  Precision precision_;
  Fp32Spsa fp32_;
  Int8Niti int8_;
  ZoPolicy* policy_;  // fp32_ or int8_
  std::vector<ZoSlice> zo_slices_;  // the ZO part and its seed streams, fixed at construction
  std::size_t bp_first_;  // first module of the backprop part (size() when C = L)
  // The model's module count at construction: the partition, seed streams and optimizer state are built from it,
  // so a step after model.add() would train a model this trainer was not built for.
  std::size_t modules_;
  std::uint64_t steps_ = 0;
  PhaseTimes times_;
};

}  // namespace ez
