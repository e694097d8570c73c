// Conv2d layer over the dispatched conv kernels.
#include "layers/conv2d.h"

#include <cmath>
#include <stdexcept>

#include "kernels/kernels.h"
#include "kernels/workspace.h"

namespace ez {

Conv2d::Conv2d(int in_channels, int out_channels, int kernel_size, int padding, bool bias)
    : in_(in_channels), out_(out_channels), k_(kernel_size), pad_(padding), bias_(bias) {
  if (in_ < 1 || out_ < 1 || k_ < 1 || pad_ < 0)
    throw std::invalid_argument("Conv2d needs channels >= 1, kernel_size >= 1 and padding >= 0, got " + repr());
  params_.push_back({"weight", Tensor({out_, in_, k_, k_}, DType::f32, MemCategory::parameters), Tensor()});
  if (bias_) params_.push_back({"bias", Tensor({out_}, DType::f32, MemCategory::parameters), Tensor()});
}

std::string Conv2d::repr() const {
  return "Conv2d(" + std::to_string(in_) + ", " + std::to_string(out_) + ", kernel_size=" + std::to_string(k_) +
         ", padding=" + std::to_string(pad_) + (bias_ ? "" : ", bias=False") + ")";
}

Conv2dShape Conv2d::problem(const Shape& in) const {
  expect_rank(*this, in, 4, "(N, C, H, W)");
  expect_dim(*this, in, 1, in_, "input channels");
  Conv2dShape s{checked_int(in[0], "batch"), in_, checked_int(in[2], "height"), checked_int(in[3], "width"),
                out_, k_, pad_};
  if (s.out_h() < 1 || s.out_w() < 1)
    throw std::invalid_argument(repr() + ": input " + shape_str(in) + " is smaller than the kernel");
  return s;
}

Shape Conv2d::output_shape(const Shape& in) const {
  const Conv2dShape s = problem(in);
  return {s.n, out_, s.out_h(), s.out_w()};
}

std::vector<BufferSpec> Conv2d::buffers(const Shape& in, bool backprop) const {
  const Conv2dShape s = problem(in);
  return with_workspace(Layer::buffers(in, backprop), conv2d_fwd_workspace(s),
                        backprop ? conv2d_bwd_workspace(s, bias_) : 0);
}

void Conv2d::forward(const Tensor& x, Tensor& y) const {
  kernels().conv2d_fwd_f32(problem(x.shape()), x.f32(), params_[0].value.f32(),
                           bias_ ? params_[1].value.f32() : nullptr, y.f32());
}

void Conv2d::backward_data(const Tensor& x, const Tensor& /*y*/, const Tensor& dy, Tensor& dx) const {
  kernels().conv2d_bwd_data_f32(problem(x.shape()), dy.f32(), params_[0].value.f32(), dx.f32());
}

void Conv2d::backward_weight(const Tensor& x, const Tensor& dy, bool accumulate) {
  kernels().conv2d_bwd_weight_f32(problem(x.shape()), x.f32(), dy.f32(), accumulate, params_[0].grad.f32(),
                                  bias_ ? params_[1].grad.f32() : nullptr);
}

void Conv2d::init_parameters(std::uint64_t seed) {
  const float bound = 1.0f / std::sqrt(static_cast<float>(in_ * k_ * k_));
  for (std::size_t i = 0; i < params_.size(); ++i)
    init_uniform(params_[i].value, bound, seed, static_cast<std::uint32_t>(i));
}

}  // namespace ez
