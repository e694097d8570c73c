// ElasticZO (Algorithm 1, SPEC §3): parameter layers [0, C) are trained by zeroth-order SPSA with a perturbation
// regenerated from a per-step key, never stored; layers [C, L) by backprop. C = L is Full ZO, C = 0 Full BP.
// One step() is one minibatch, entirely in C++.
#pragma once
#include <cstdint>
#include <memory>

#include "model/sequential.h"
#include "train/optimizer.h"
#include "train/phase_timer.h"

namespace ez {

struct ElasticZOConfig {
  int zo_layers = 0;         // C
  float eps = 1e-3f;         // perturbation scale
  float lr_zo = 1e-3f;       // ZO learning rate
  float lr_bp = 1e-2f;       // backprop learning rate
  float grad_clip = 0.0f;    // clip the projected gradient g to [-c, c]; 0 disables
  bool clean_bp_pass = false;  // backprop from a third, unperturbed forward pass instead of the mean of +/- passes
  OptimizerKind optimizer = OptimizerKind::sgd;
  AdamConfig adam;
  std::uint64_t seed = 0;    // with the step number, determines every perturbation
};

struct StepStats {
  float loss;            // (l+ + l-)/2 with a ZO part, else the clean loss
  float loss_plus, loss_minus;
  float projected_grad;  // g after clipping (0 without a ZO part)
};

class ElasticZO {
 public:
  ElasticZO(std::shared_ptr<Sequential> model, const ElasticZOConfig& config);
  // x: model input (batch first); labels: int32 [batch], each in [0, classes).
  StepStats step(const Tensor& x, const Tensor& labels);

  const ElasticZOConfig& config() const { return cfg_; }
  void set_learning_rates(float lr_zo, float lr_bp);
  std::uint64_t steps_done() const { return steps_; }
  void set_steps_done(std::uint64_t n) { steps_ = n; }  // resume: the next step draws the same z as before
  Optimizer& optimizer() { return opt_; }
  const PhaseTimes& times() const { return times_; }
  void clear_times() { times_.clear(); }

 private:
  // Where each ZO tensor draws its z: the stream of its parameter layer, at an offset past the layer's earlier
  // tensors (weight, then bias). Fixed at construction, so a step walks it without allocating.
  struct ZoSlice {
    Param* param;
    std::uint32_t stream;
    std::uint64_t offset;
  };
  void perturb(float scale, PhiloxKey key, Phase phase);
  float loss(const Tensor& labels, float grad_scale);
  std::shared_ptr<Sequential> model_;
  ElasticZOConfig cfg_;
  Optimizer opt_;
  std::vector<ZoSlice> zo_slices_;
  std::size_t bp_first_;  // first module of the backprop part (size() when C = L)
  std::uint64_t steps_ = 0;
  PhaseTimes times_;
};

}  // namespace ez
