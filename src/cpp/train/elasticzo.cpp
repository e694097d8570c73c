// ElasticZO step. The backprop part's gradient is the mean of the gradients of the + and - passes, taken right
// after each pass, so only one set of activations ever exists: memory = Full ZO + BP gradients + BP errors (Eq. 5).
#include "train/elasticzo.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "kernels/kernels.h"
#include "rng/philox.h"

namespace ez {

ElasticZO::ElasticZO(std::shared_ptr<Sequential> model, const ElasticZOConfig& config)
    : model_(std::move(model)), cfg_(config), opt_(config.optimizer, config.adam) {
  if (!model_) throw std::invalid_argument("ElasticZO: model is null");
  const int layers = model_->num_param_layers();
  if (cfg_.zo_layers < 0 || cfg_.zo_layers > layers)
    throw std::invalid_argument("zo_layers must be in [0, " + std::to_string(layers) + "] for this model, got " +
                                std::to_string(cfg_.zo_layers));
  if (cfg_.zo_layers > 0 && !(cfg_.eps > 0.0f && std::isfinite(cfg_.eps)))
    throw std::invalid_argument("eps must be a positive finite number, got " + std::to_string(cfg_.eps));
  if (!(cfg_.grad_clip >= 0.0f)) throw std::invalid_argument("grad_clip must be >= 0 (0 disables clipping)");
  set_learning_rates(cfg_.lr_zo, cfg_.lr_bp);
  bp_first_ = model_->first_module(cfg_.zo_layers);
  std::vector<Param*> bp_params;
  std::uint64_t offset = 0;
  for (const NamedParam& np : model_->named_parameters()) {
    if (np.param_layer >= cfg_.zo_layers) {
      bp_params.push_back(np.param);
      continue;
    }
    // One stream per parameter layer; its weight and bias share the index space.
    if (!zo_slices_.empty() && zo_slices_.back().stream != static_cast<std::uint32_t>(np.param_layer)) offset = 0;
    zo_slices_.push_back({np.param, static_cast<std::uint32_t>(np.param_layer), offset});
    offset += static_cast<std::uint64_t>(np.param->value.numel());
  }
  const MemoryOwnerScope scope(model_->memory_owner());
  opt_.attach(bp_params);
}

void ElasticZO::set_learning_rates(float lr_zo, float lr_bp) {
  if (!(lr_zo >= 0.0f && std::isfinite(lr_zo)) || !(lr_bp >= 0.0f && std::isfinite(lr_bp)))
    throw std::invalid_argument("learning rates must be finite and >= 0");
  cfg_.lr_zo = lr_zo;
  cfg_.lr_bp = lr_bp;
}

void ElasticZO::perturb(float scale, PhiloxKey key, Phase phase) {
  ScopedPhase timer(times_, phase);
  for (const ZoSlice& z : zo_slices_) {
    Tensor& t = z.param->value;
    kernels().zo_axpy_gaussian_f32(static_cast<std::size_t>(t.numel()), scale, key, z.stream, z.offset, t.f32());
  }
}

float ElasticZO::loss(const Tensor& labels, float grad_scale) {
  ScopedPhase timer(times_, Phase::loss);
  const Tensor& out = model_->output();
  const int rows = static_cast<int>(out.dim(0));
  const int classes = static_cast<int>(out.numel() / out.dim(0));
  float* grad = grad_scale != 0.0f ? model_->output_error().f32() : nullptr;
  return kernels().softmax_xent_f32(rows, classes, out.f32(), labels.s32(), grad_scale, grad);
}

StepStats ElasticZO::step(const Tensor& x, const Tensor& labels) {
  const auto guard = model_->lock();
  const Shape out_shape = model_->output_shape(x.shape());
  if (out_shape.size() != 2)
    throw std::invalid_argument("ElasticZO needs a model whose output is (N, classes), got " + shape_str(out_shape));
  if (labels.dtype() != DType::s32 || labels.ndim() != 1 || labels.dim(0) != x.dim(0))
    throw std::invalid_argument("labels must be int32 of shape (" + std::to_string(x.dim(0)) + ",), got " +
                                dtype_name(labels.dtype()) + " " + shape_str(labels.shape()));
  for (std::int64_t i = 0; i < labels.numel(); ++i)
    if (labels.s32()[i] < 0 || labels.s32()[i] >= out_shape[1])
      throw std::invalid_argument("label " + std::to_string(labels.s32()[i]) + " at index " + std::to_string(i) +
                                  " is outside [0, " + std::to_string(out_shape[1]) + ")");

  const bool has_zo = cfg_.zo_layers > 0;
  const bool has_bp = bp_first_ < model_->size();
  auto forward = [&] {
    ScopedPhase timer(times_, Phase::forward);
    model_->forward(x);
  };
  auto backward = [&](bool accumulate) {
    ScopedPhase timer(times_, Phase::backward);
    model_->backward(x, accumulate);
  };
  const MemoryOwnerScope scope(model_->memory_owner());  // kernel scratch outside the plan counts as the model's
  model_->prepare(x.shape(), bp_first_);

  StepStats st{};
  if (!has_zo) {
    forward();
    st.loss = st.loss_plus = st.loss_minus = loss(labels, 1.0f);
    backward(false);
  } else {
    const std::uint64_t step = steps_;
    const bool bp_from_passes = has_bp && !cfg_.clean_bp_pass;
    const PhiloxKey key = step_key(cfg_.seed, step);
    perturb(cfg_.eps, key, Phase::zo_perturb);
    forward();
    st.loss_plus = loss(labels, bp_from_passes ? 0.5f : 0.0f);
    if (bp_from_passes) backward(false);
    perturb(-2.0f * cfg_.eps, key, Phase::zo_perturb);
    forward();
    st.loss_minus = loss(labels, bp_from_passes ? 0.5f : 0.0f);
    if (bp_from_passes) backward(true);
    if (!std::isfinite(st.loss_plus) || !std::isfinite(st.loss_minus))
      throw std::runtime_error("loss is not finite at step " + std::to_string(step) +
                               " (diverged: lower the learning rates or eps)");
    float g = (st.loss_plus - st.loss_minus) / (2.0f * cfg_.eps);
    if (cfg_.grad_clip > 0.0f) g = std::clamp(g, -cfg_.grad_clip, cfg_.grad_clip);
    st.projected_grad = g;
    st.loss = 0.5f * (st.loss_plus + st.loss_minus);
    // Restore (+eps) and update (-lr g) in one pass over the same regenerated z.
    perturb(cfg_.eps - cfg_.lr_zo * g, key, Phase::zo_update);
    if (has_bp && cfg_.clean_bp_pass) {
      forward();
      loss(labels, 1.0f);
      backward(false);
    }
  }
  if (!std::isfinite(st.loss))
    throw std::runtime_error("loss is not finite at step " + std::to_string(steps_) +
                             " (diverged: lower the learning rates)");
  if (has_bp) {
    ScopedPhase timer(times_, Phase::optimizer);
    opt_.step(cfg_.lr_bp);
  }
  ++steps_;
  return st;
}

}  // namespace ez
