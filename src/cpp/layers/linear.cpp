// Linear and per-point Linear layers over the dispatched linear kernels.
#include "layers/linear.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <stdexcept>

#include "kernels/kernels.h"
#include "kernels/workspace.h"
#include "layers/fp32_operand.h"

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
  if (precision_ == Precision::int8)
    return int8_layer_buffers(Layer::buffers(in, backprop), in, output_shape(in), params_[0].value.numel(),
                              model_input_, backprop, linear_fwd_i8_workspace(s), linear_bwd_data_i8_workspace(s),
                              linear_bwd_weight_i8_workspace(s) + (backprop ? weight_grad_blocks_workspace(
                                                                                  s.rows, weight_grad_block(repr(), s.rows, 1),
                                                                                  params_[0].value.numel())
                                                                            : 0));
  if (backprop)
    return with_workspace(Layer::buffers(in, backprop), linear_fwd_workspace(s), linear_bwd_workspace(s));
  // Outside the backprop part (a ZO layer, or a forward-only plan) a forward may be a ZO pass (perturbed copies)
  // and a per-point layer may run fused with its ReLU and the max-pool (forward_relu_max).
  std::size_t fwd = std::max(linear_fwd_workspace(s), zo_linear_forward_workspace(s, bias_));
  if (per_point_) fwd = std::max(fwd, zo_point_linear_max_workspace(s, static_cast<int>(in[1]), bias_));
  return with_workspace(Layer::buffers(in, backprop), fwd, 0);
}

namespace {
// The whole weight and bias operands: the stored values, or built aside in a ZO pass.
template <class F>
void with_fp32_operands(const std::vector<Param>& params, bool bias, F&& f) {
  const Fp32Operand w(params[0], 0, static_cast<std::size_t>(params[0].value.numel()));
  std::optional<Fp32Operand> b;
  if (bias) b.emplace(params[1], 0, static_cast<std::size_t>(params[1].value.numel()));
  f(w.data(), b ? b->data() : nullptr);
}
}  // namespace

void Linear::forward(const Tensor& x, Tensor& y) const {
  const LinearShape s = problem(x.shape());
  if (precision_ == Precision::int8)
    return int8_forward(x, params_[0], acc_, rounding(), y,
                        [&](const std::int8_t* xq, const std::int8_t* w, std::int64_t first, std::int64_t rows,
                            std::int32_t* acc) {
                          const std::int64_t per_sample = s.rows / y.dim(0);  // kernel rows (points) per sample
                          const LinearShape part{static_cast<int>(rows * per_sample), s.in, s.out};
                          kernels().linear_fwd_i8(part, xq + first * per_sample * s.in, w, acc);
                        });
  if (zo_pass(params_[0]) && zo_linear_blocks(s, bias_).width < s.out)  // a ZO pass through a large weight
    return zo_linear_forward_blocks(s, x.f32(), params_[0], bias_ ? &params_[1] : nullptr, y.f32());
  with_fp32_operands(params_, bias_, [&](const float* w, const float* b) {
    kernels().linear_fwd_f32(s, x.f32(), w, b, y.f32());
  });
}

bool Linear::fuses_relu_max(const Shape& in) const {
  if (!per_point_ || precision_ != Precision::fp32 || in.size() != 3 || in[1] < 1) return false;
  return zo_linear_blocks(problem(in), bias_).width >= out_;
}

void Linear::forward_relu_max(const Tensor& x, Tensor& y) const {
  if (!fuses_relu_max(x.shape())) throw std::logic_error(repr() + ": forward_relu_max does not apply to this input");
  const LinearShape s = problem(x.shape());
  const int points = static_cast<int>(x.shape()[1]);
  if (y.numel() != static_cast<std::int64_t>(s.rows / points) * s.out)
    throw std::logic_error(repr() + ": forward_relu_max output does not fit the input");
  const auto* x0 = static_cast<const char*>(x.raw());
  const auto* y0 = static_cast<const char*>(y.raw());
  if (x0 < y0 + y.nbytes() && y0 < x0 + x.nbytes())
    throw std::logic_error(repr() + ": forward_relu_max output shares memory with its input");
  with_fp32_operands(params_, bias_, [&](const float* w, const float* b) {
    kernels().point_linear_relu_max_f32(s, points, x.f32(), w, b, y.f32());
  });
}

void Linear::backward_data(const Tensor& x, const Tensor& /*y*/, const Tensor& dy, Tensor& dx) const {
  const LinearShape s = problem(x.shape());
  if (precision_ == Precision::int8)
    return int8_backward_data(dy, params_[0].value, acc_.backward, rounding(), dx,
                              [&](const std::int8_t* e, const std::int8_t* w, std::int32_t* acc) {
                                kernels().linear_bwd_data_i8(s, e, w, acc);
                              });
  kernels().linear_bwd_data_f32(s, dy.f32(), params_[0].value.f32(), dx.f32());
}

void Linear::backward_weight(const Tensor& x, const Tensor& dy, bool accumulate) {
  if (precision_ == Precision::int8) {
    const Int8Input xq(x);  // the first layer quantizes its input again: the same per-batch result
    const LinearShape s = problem(x.shape());
    return int8_weight_grad(params_[0], accumulate, s.rows, weight_grad_block(repr(), s.rows, 1),
                            [&](std::int64_t first, std::int64_t rows, std::int32_t* dw) {
                              const LinearShape part{static_cast<int>(rows), s.in, s.out};
                              kernels().linear_bwd_weight_i8(part, xq.data() + first * s.in, dy.s8() + first * s.out,
                                                             dw);
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
