// SGD through the dispatched axpy kernel; Adam as a plain loop (it touches only the small backprop part).
#include "train/optimizer.h"

#include <cmath>
#include <stdexcept>

#include "kernels/kernels.h"

namespace ez {

OptimizerKind parse_optimizer(const std::string& name) {
  if (name == "sgd") return OptimizerKind::sgd;
  if (name == "adam") return OptimizerKind::adam;
  throw std::invalid_argument("unknown optimizer '" + name + "' (expected 'sgd' or 'adam')");
}

void Optimizer::attach(const std::vector<Param*>& params) {
  params_ = params;
  m_.clear();
  v_.clear();
  t_ = 0;
  if (kind_ != OptimizerKind::adam) return;
  for (Param* p : params_) {
    m_.emplace_back(p->value.shape(), DType::f32, MemCategory::optimizer);
    v_.emplace_back(p->value.shape(), DType::f32, MemCategory::optimizer);
  }
}

void Optimizer::step(float lr) {
  if (kind_ == OptimizerKind::sgd) {
    for (Param* p : params_)
      kernels().axpy_f32(static_cast<std::size_t>(p->value.numel()), -lr, p->grad.f32(), p->value.f32());
    return;
  }
  ++t_;
  const float c1 = 1.0f - std::pow(adam_.beta1, static_cast<float>(t_));
  const float c2 = 1.0f - std::pow(adam_.beta2, static_cast<float>(t_));
  for (std::size_t k = 0; k < params_.size(); ++k) {
    float* w = params_[k]->value.f32();
    const float* g = params_[k]->grad.f32();
    float* m = m_[k].f32();
    float* v = v_[k].f32();
    for (std::int64_t i = 0; i < params_[k]->value.numel(); ++i) {
      m[i] = adam_.beta1 * m[i] + (1.0f - adam_.beta1) * g[i];
      v[i] = adam_.beta2 * v[i] + (1.0f - adam_.beta2) * g[i] * g[i];
      w[i] -= lr * (m[i] / c1) / (std::sqrt(v[i] / c2) + adam_.eps);
    }
  }
}

}  // namespace ez
