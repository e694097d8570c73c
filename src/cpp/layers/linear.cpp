// Linear and per-point Linear layers over the dispatched linear kernels.
#include "layers/linear.h"

#include <cmath>
#include <stdexcept>

#include "kernels/kernels.h"
#include "kernels/workspace.h"

namespace ez {

Linear::Linear(std::int64_t in_features, std::int64_t out_features, bool bias, bool per_point, Precision precision)
    : Layer(precision), in_(in_features), out_(out_features), bias_(bias), per_point_(per_point) {
  if (precision == Precision::int8) check_int8_layer(repr(), bias_);
  layer_arg(repr(), "in_features", in_, 1);
  layer_arg(repr(), "out_features", out_, 1);
  kernel_elements(*this, "weight", {out_, in_});
  params_.push_back({"weight", Tensor({out_, in_}, value_dtype(), MemCategory::parameters), {}, {}});
  if (bias_) params_.push_back({"bias", Tensor({out_}, DType::f32, MemCategory::parameters), {}, {}});
}

std::string Linear::repr() const {
  const bool say_no_bias = !bias_ && precision_ == Precision::fp32;  // INT8 layers never have one
  return repr_call(per_point_ ? "PointLinear" : "Linear",
                   std::to_string(in_) + ", " + std::to_string(out_) + (say_no_bias ? ", bias=False" : ""));
}

LinearShape Linear::problem(const Shape& in) const {
  if (per_point_) {
    expect_rank(*this, in, 3, "(N, points, features)");
    expect_dim(*this, in, 2, in_, "input features");
  } else {
    expect_rank(*this, in, 2, "(N, features)");
    expect_dim(*this, in, 1, in_, "input features");
  }
  const std::int64_t rows = per_point_ ? kernel_elements(*this, "batch x points", {in[0], in[1]}) : in[0];
  kernel_elements(*this, "input", {rows, in_});
  kernel_elements(*this, "output", {rows, out_});
  return {static_cast<int>(rows), static_cast<int>(in_), static_cast<int>(out_)};  // each fits: checked above
}

Shape Linear::output_shape(const Shape& in) const {
  problem(in);
  Shape out = in;
  out.back() = out_;
  return out;
}

std::vector<BufferSpec> Linear::buffers(const Shape& in, bool backprop) const {
  const LinearShape s = problem(in);
  // INT8: the integer kernels size their scratch themselves (taken outside the plan, counted as workspace).
  if (precision_ == Precision::int8) return int8_accumulator_specs(Layer::buffers(in, backprop), in, output_shape(in),
                                                                   backprop);
  return with_workspace(Layer::buffers(in, backprop), linear_fwd_workspace(s), backprop ? linear_bwd_workspace(s) : 0);
}

void Linear::forward_int8(const LinearShape& s, const Tensor& x, Tensor& y) const {
  const Int8Input xq(x);
  Tensor acc = Int8Accumulators::use(acc_.forward, y.shape(), MemCategory::accumulators);
  const Int8Weights w(params_[0]);  // ElasticZO-INT8's passes: clip(w +- zeta), the stored weights untouched
  kernels().linear_fwd_i8(s, xq.data(), w.data(), acc.s32());
  requantize_into(acc, kNitiRounding.activations, xq.exponent() + w.exponent(), y);
}

void Linear::forward(const Tensor& x, Tensor& y) const {
  if (precision_ == Precision::int8) return forward_int8(problem(x.shape()), x, y);
  kernels().linear_fwd_f32(problem(x.shape()), x.f32(), params_[0].value.f32(),
                           bias_ ? params_[1].value.f32() : nullptr, y.f32());
}

void Linear::backward_data(const Tensor& x, const Tensor& /*y*/, const Tensor& dy, Tensor& dx) const {
  if (precision_ == Precision::int8) {
    Tensor acc = Int8Accumulators::use(acc_.backward, x.shape(), MemCategory::errors);
    const Tensor& w = params_[0].value;
    kernels().linear_bwd_data_i8(problem(x.shape()), dy.s8(), w.s8(), acc.s32());
    return requantize_into(acc, kNitiRounding.errors, dy.exponent() + w.exponent(), dx);
  }
  kernels().linear_bwd_data_f32(problem(x.shape()), dy.f32(), params_[0].value.f32(), dx.f32());
}

void Linear::backward_weight(const Tensor& x, const Tensor& dy, bool accumulate) {
  if (precision_ == Precision::int8) {
    const Int8Input xq(x);  // the first layer quantizes its input again: the same per-batch result
    return int8_weight_grad(params_[0], accumulate, [&](std::int32_t* dw) {
      kernels().linear_bwd_weight_i8(problem(x.shape()), xq.data(), dy.s8(), dw);
    });
  }
  kernels().linear_bwd_weight_f32(problem(x.shape()), x.f32(), dy.f32(), accumulate, params_[0].grad.f32(),
                                  bias_ ? params_[1].grad.f32() : nullptr);
}

void Linear::init_parameters(std::uint64_t seed) {
  if (precision_ == Precision::int8)
    return niti_init(params_[0].value, static_cast<int>(in_), static_cast<int>(out_), seed);
  const float bound = 1.0f / std::sqrt(static_cast<float>(in_));
  for (std::size_t i = 0; i < params_.size(); ++i)
    init_uniform(params_[i].value, bound, seed, static_cast<std::uint32_t>(i));
}

}  // namespace ez
