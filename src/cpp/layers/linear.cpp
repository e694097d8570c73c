// Linear and per-point Linear layers over the dispatched linear kernels.
#include "layers/linear.h"

#include <cmath>
#include <stdexcept>

#include "kernels/kernels.h"
#include "kernels/workspace.h"

namespace ez {

Linear::Linear(std::int64_t in_features, std::int64_t out_features, bool bias, bool per_point)
    : in_(in_features), out_(out_features), bias_(bias), per_point_(per_point) {
  layer_arg(repr(), "in_features", in_, 1);
  layer_arg(repr(), "out_features", out_, 1);
  kernel_elements(*this, "weight", {out_, in_});
  params_.push_back({"weight", Tensor({out_, in_}, DType::f32, MemCategory::parameters), Tensor()});
  if (bias_) params_.push_back({"bias", Tensor({out_}, DType::f32, MemCategory::parameters), Tensor()});
}

std::string Linear::repr() const {
  return std::string(per_point_ ? "PointLinear(" : "Linear(") + std::to_string(in_) + ", " + std::to_string(out_) +
         (bias_ ? "" : ", bias=False") + ")";
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
  return with_workspace(Layer::buffers(in, backprop), linear_fwd_workspace(s), backprop ? linear_bwd_workspace(s) : 0);
}

void Linear::forward(const Tensor& x, Tensor& y) const {
  kernels().linear_fwd_f32(problem(x.shape()), x.f32(), params_[0].value.f32(),
                           bias_ ? params_[1].value.f32() : nullptr, y.f32());
}

void Linear::backward_data(const Tensor& x, const Tensor& /*y*/, const Tensor& dy, Tensor& dx) const {
  kernels().linear_bwd_data_f32(problem(x.shape()), dy.f32(), params_[0].value.f32(), dx.f32());
}

void Linear::backward_weight(const Tensor& x, const Tensor& dy, bool accumulate) {
  kernels().linear_bwd_weight_f32(problem(x.shape()), x.f32(), dy.f32(), accumulate, params_[0].grad.f32(),
                                  bias_ ? params_[1].grad.f32() : nullptr);
}

void Linear::init_parameters(std::uint64_t seed) {
  const float bound = 1.0f / std::sqrt(static_cast<float>(in_));
  for (std::size_t i = 0; i < params_.size(); ++i)
    init_uniform(params_[i].value, bound, seed, static_cast<std::uint32_t>(i));
}

}  // namespace ez
