// Optimizers for the backprop-trained parameters: vanilla SGD (the paper's) or Adam (an option; the paper uses it
// only for pretraining). Adam's moments are allocated only for the parameters it updates.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "layers/layer.h"

namespace ez {

enum class OptimizerKind { sgd, adam };
OptimizerKind parse_optimizer(const std::string& name);

struct AdamConfig {
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
};

class Optimizer {
 public:
  Optimizer(OptimizerKind kind, AdamConfig adam) : kind_(kind), adam_(adam) {}
  OptimizerKind kind() const { return kind_; }
  // Binds the optimizer to the parameters it updates; Adam's state starts at zero.
  void attach(const std::vector<Param*>& params);
  void step(float lr);
  // Adam state for checkpoints: moments in attach() order, and the number of steps taken.
  std::vector<Tensor>& first_moments() { return m_; }
  std::vector<Tensor>& second_moments() { return v_; }
  std::int64_t steps() const { return t_; }
  void set_steps(std::int64_t t) { t_ = t; }

 private:
  OptimizerKind kind_;
  AdamConfig adam_;
  std::vector<Param*> params_;
  std::vector<Tensor> m_, v_;
  std::int64_t t_ = 0;
};

}  // namespace ez
