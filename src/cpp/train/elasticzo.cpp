// ElasticZO step skeleton. The backprop part's gradient is the mean of the gradients of the + and - passes, taken right
// after each pass, so only one set of activations ever exists: memory = Full ZO + BP gradients + BP errors (Eq. 5).
#include "train/elasticzo.h"

#include <cmath>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>

#include "rng/philox.h"

namespace ez {

ElasticZO::ElasticZO(std::shared_ptr<Sequential> model, const ElasticZOConfig& config)
    : model_(std::move(model)),
      cfg_(config),
      opt_(config.optimizer, config.adam),
      fp32_({config.eps, config.lr_zo, config.lr_bp, config.grad_clip}, opt_) {
  if (!model_) throw std::invalid_argument("ElasticZO: model is null");
  const auto guard = model_->lock();
  precision_ = model_->precision();
  policy_ = precision_ == Precision::int8 ? static_cast<ZoPolicy*>(&int8_) : &fp32_;
  if (precision_ == Precision::int8) {
    int8_.set_zo(cfg_.int8_zo);
    int8_.set_rounding(cfg_.rounding);
    model_->set_rounding(cfg_.rounding);  // the model evaluates with the rounding it is trained with
  }
  if (precision_ == Precision::int8 && cfg_.optimizer != OptimizerKind::sgd)
    throw std::invalid_argument("an int8 model is updated by NITI's integer rule: optimizer must be 'sgd'");
  const int layers = model_->num_param_layers();
  if (cfg_.zo_layers < 0 || cfg_.zo_layers > layers)
    throw std::invalid_argument("zo_layers must be in [0, " + std::to_string(layers) + "] for this model, got " +
                                std::to_string(cfg_.zo_layers));
  if (cfg_.zo_layers > 0 && !(cfg_.eps > 0.0f && std::isfinite(cfg_.eps)))
    throw std::invalid_argument("eps must be a positive finite number, got " + std::to_string(cfg_.eps));
  if (!(cfg_.grad_clip >= 0.0f)) throw std::invalid_argument("grad_clip must be >= 0 (0 disables clipping)");
  set_learning_rates(cfg_.lr_zo, cfg_.lr_bp);
  bp_first_ = model_->first_module(cfg_.zo_layers);
  modules_ = model_->size();
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
  int8_.attach(bp_params);
}

void ElasticZO::set_gradient_bits(int mu) { int8_.set_gradient_bits(mu); }

void ElasticZO::change_zo(const std::function<void(Int8ZoConfig&)>& change) {
  Int8ZoConfig c = int8_.zo();
  change(c);
  int8_.set_zo(c);  // checks the values before anything is kept
  cfg_.int8_zo = c;
}

void ElasticZO::set_zo_p_zero(double p_zero) { change_zo([&](Int8ZoConfig& c) { c.p_zero = p_zero; }); }

void ElasticZO::set_zo_range(int range) { change_zo([&](Int8ZoConfig& c) { c.range = range; }); }

void ElasticZO::set_sign_agreement(std::uint64_t agreements, std::uint64_t steps) {
  if (agreements > steps)
    throw std::invalid_argument("sign agreements (" + std::to_string(agreements) + ") cannot exceed the steps (" +
                                std::to_string(steps) + ")");
  int8_.sign_agreements = agreements;
  int8_.sign_steps = steps;
}

void ElasticZO::set_sign_ties(std::uint64_t ties, std::uint64_t undecided) {
  if (ties > undecided)
    throw std::invalid_argument("sign ties (" + std::to_string(ties) + ") cannot exceed the undecided steps (" +
                                std::to_string(undecided) + ")");
  int8_.sign_ties = ties;
  int8_.sign_undecided = undecided;
}

void ElasticZO::set_learning_rates(float lr_zo, float lr_bp) {
  if (!(lr_zo >= 0.0f && std::isfinite(lr_zo)) || !(lr_bp >= 0.0f && std::isfinite(lr_bp)))
    throw std::invalid_argument("learning rates must be finite and >= 0");
  cfg_.lr_zo = lr_zo;
  cfg_.lr_bp = lr_bp;
  fp32_.set_learning_rates(lr_zo, lr_bp);
}

void ElasticZO::apply_zo_update(std::uint64_t step, float coefficient) {
  const auto guard = model_->lock();
  if (!std::isfinite(coefficient))
    throw std::invalid_argument("ZO update coefficient of step " + std::to_string(step) + " is not finite");
  // INT8: the coefficient is the ternary gradient g itself (the update g * zeta rounded to b_zo bits, with the
  // p_zero in effect), the same move a training step makes.
  if (precision_ == Precision::int8 && coefficient != -1.0f && coefficient != 0.0f && coefficient != 1.0f)
    throw std::invalid_argument("an int8 ZO update replays a ternary gradient (-1, 0 or +1), got " +
                                std::to_string(coefficient) + " at step " + std::to_string(step));
  ScopedPhase timer(times_, Phase::zo_update);
  if (precision_ == Precision::int8)
    int8_.update(zo_slices_, step_key(cfg_.seed, step), coefficient);
  else
    fp32_.apply(zo_slices_, step_key(cfg_.seed, step), coefficient);
}

namespace {

std::runtime_error not_finite(const char* what, std::uint64_t step, const char* advice) {
  return std::runtime_error(std::string(what) + " is not finite at step " + std::to_string(step) + " (diverged: " +
                            advice + ")");
}

// An INT8 model's layers draw their stochastic rounding from the step key during the step, and from {0, 0} after it
// however it ends (Sequential::set_rounding).
struct StepDraws {
  Sequential& model;
  const RoundingPolicy& policy;
  StepDraws(Sequential& m, const RoundingPolicy& p, PhiloxKey key) : model(m), policy(p) { model.set_rounding(p, key); }
  ~StepDraws() { model.set_rounding(policy); }
};

// Brings the ZO weights back to the center if the step leaves before completing (an exception): the restore
// always happens. `at` follows the weights through the step; a completed step sets it back to center.
struct ZoExcursion {
  ZoPolicy& policy;
  const std::vector<ZoSlice>& slices;
  PhiloxKey key;
  PhaseTimes& times;
  ZoPoint at = ZoPoint::center;
  float projected_grad = 0.0f;
  ~ZoExcursion() {
    if (at == ZoPoint::center) return;
    ScopedPhase timer(times, Phase::zo_update);
    policy.restore(slices, key, at, projected_grad);
  }
};

}  // namespace

void ElasticZO::forward(const Tensor& x) {
  ScopedPhase timer(times_, Phase::forward);
  model_->forward(x);
}

void ElasticZO::backward(const Tensor& x, bool accumulate) {
  ScopedPhase timer(times_, Phase::backward);
  model_->backward(x, accumulate);
}

float ElasticZO::loss(const Tensor& labels, float grad_scale) {
  ScopedPhase timer(times_, Phase::loss);
  return policy_->loss(*model_, labels, grad_scale);
}

StepStats ElasticZO::step(const Tensor& x, const Tensor& labels) {
  const auto guard = model_->lock();
  if (model_->size() != modules_)
    throw std::logic_error("the model has " + std::to_string(model_->size()) + " modules, " +
                           std::to_string(modules_) +
                           " when this trainer was built; a layer added since would not be trained: build a new "
                           "trainer for the new model");
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
  const MemoryOwnerScope scope(model_->memory_owner());  // kernel scratch outside the plan counts as the model's
  model_->prepare(x.shape(), bp_first_);

  StepStats st{};
  const std::uint64_t step = steps_;
  ZoExcursion zo{*policy_, zo_slices_, step_key(cfg_.seed, step), times_};
  policy_->start_step(zo.key);
  std::optional<StepDraws> draws;
  if (precision_ == Precision::int8) draws.emplace(*model_, cfg_.rounding, zo.key);
  if (!has_zo) {
    forward(x);
    st.loss = st.loss_plus = st.loss_minus = loss(labels, 1.0f);
    if (!std::isfinite(st.loss)) throw not_finite("loss", step, "lower the learning rates");
    backward(x, false);
  } else {
    // With a backprop part, its gradient is the mean of the two passes' (each pass adds half), unless a clean
    // third pass gives it.
    const bool bp_from_passes = has_bp && !cfg_.clean_bp_pass;
    const float pass_grad_scale = bp_from_passes ? 0.5f : 0.0f;
    // One pass: move to `point`, forward, loss, and the backprop part's half of the gradient.
    auto pass = [&](ZoPoint point) {
      {
        ScopedPhase timer(times_, Phase::zo_perturb);
        if (point == ZoPoint::plus)
          policy_->to_plus(zo_slices_, zo.key);
        else
          policy_->to_minus(zo_slices_, zo.key);
        zo.at = point;
      }
      forward(x);
      const float l = loss(labels, pass_grad_scale);
      if (!std::isfinite(l)) throw not_finite("loss", step, "lower the learning rates or eps");
      if (bp_from_passes) backward(x, point == ZoPoint::minus);
      return l;
    };
    st.loss_plus = pass(ZoPoint::plus);
    st.loss_minus = pass(ZoPoint::minus);
    st.projected_grad = policy_->projected_grad(st.loss_plus, st.loss_minus);
    if (!std::isfinite(st.projected_grad))
      throw not_finite("projected gradient", step, "set grad_clip or raise eps");
    st.loss = 0.5f * (st.loss_plus + st.loss_minus);
    {
      ScopedPhase timer(times_, Phase::zo_update);
      policy_->update(zo_slices_, zo.key, st.projected_grad);
      zo.at = ZoPoint::updated;
      zo.projected_grad = st.projected_grad;
    }
    if (has_bp && cfg_.clean_bp_pass) {
      forward(x);
      if (!std::isfinite(loss(labels, 1.0f)))
        throw not_finite("loss of the clean pass", step, "lower the learning rates");
      backward(x, false);
    }
  }
  if (has_bp) {
    ScopedPhase timer(times_, Phase::optimizer);
    policy_->update_backprop();
  }
  if (has_zo) {
    ScopedPhase timer(times_, Phase::zo_update);
    policy_->commit(zo_slices_, zo.key);
  }
  zo.at = ZoPoint::center;  // the step is complete: its weights stay
  ++steps_;
  return st;
}

}  // namespace ez
