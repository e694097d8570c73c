// Conv2d layer over the dispatched conv kernels.
#include "layers/conv2d.h"

#include <cmath>
#include <optional>
#include <stdexcept>

#include "kernels/kernels.h"
#include "kernels/workspace.h"
#include "layers/fp32_operand.h"

namespace ez {

Conv2d::Conv2d(std::int64_t in_channels, std::int64_t out_channels, std::int64_t kernel_size, std::int64_t padding,
               bool bias, Precision precision)
    : Layer(precision), in_(in_channels), out_(out_channels), k_(kernel_size), pad_(padding), bias_(bias) {
  if (precision == Precision::int8) check_int8_layer(repr(), bias_);
  layer_arg(repr(), "in_channels", in_, 1);
  layer_arg(repr(), "out_channels", out_, 1);
  layer_arg(repr(), "kernel_size", k_, 1);
  layer_arg(repr(), "padding", pad_, 0);
  kernel_elements(*this, "weight", {out_, in_, k_, k_});
  params_.push_back({"weight", Tensor({out_, in_, k_, k_}, value_dtype(), MemCategory::parameters), {}, {}});
  if (bias_) params_.push_back({"bias", Tensor({out_}, DType::f32, MemCategory::parameters), {}, {}});
}

std::string Conv2d::repr() const {
  // INT8 layers never have a bias: their repr does not say bias=False (Python's default for them).
  const bool say_no_bias = !bias_ && precision_ == Precision::fp32;
  return repr_call("Conv2d", std::to_string(in_) + ", " + std::to_string(out_) + ", kernel_size=" +
                                 std::to_string(k_) + ", padding=" + std::to_string(pad_) +
                                 (say_no_bias ? ", bias=False" : ""));
}

Conv2dShape Conv2d::problem(const Shape& in) const {
  expect_rank(*this, in, 4, "(N, C, H, W)");
  expect_dim(*this, in, 1, in_, "input channels");
  const std::int64_t n = in[0], h = in[2], w = in[3];
  kernel_elements(*this, "input", {n, in_, h, w});
  const auto padded = [&](std::int64_t size, std::int64_t border, std::int64_t times) {
    return checked_sum({size, border * times}, kMaxKernelElements, [&] { return repr() + ": padded input"; });
  };
  const std::int64_t hp = padded(h, pad_, 2), wp = padded(w, pad_, 2);  // pad_ <= INT_MAX: 2 * pad_ fits
  if (hp < k_ || wp < k_)
    throw std::invalid_argument(repr() + ": input " + shape_str(in) + " is smaller than the kernel");
  const std::int64_t oh = hp - k_ + 1, ow = wp - k_ + 1;
  kernel_elements(*this, "output", {n, out_, oh, ow});
  // One sample's zero-padded scratch images: forward and backward weight pad the input by `padding`, backward
  // data pads the output error by kernel_size - 1 - padding on each side (as wide as the input plus k - 1).
  kernel_elements(*this, "padded input image", {in_, hp, wp});
  kernel_elements(*this, "padded output error image", {out_, padded(h, k_ - 1, 1), padded(w, k_ - 1, 1)});
  kernel_elements(*this, "padded output error rows", {out_, oh, wp});
  // Every size is now known to fit an int (each is a factor of a checked count, or padding <= INT_MAX).
  const auto i = [](std::int64_t v) { return static_cast<int>(v); };
  return {i(n), i(in_), i(h), i(w), i(out_), i(k_), i(pad_)};
}

Shape Conv2d::output_shape(const Shape& in) const {
  const Conv2dShape s = problem(in);
  return {s.n, out_, s.out_h(), s.out_w()};
}

std::vector<BufferSpec> Conv2d::buffers(const Shape& in, bool backprop) const {
  const Conv2dShape s = problem(in);
  if (precision_ == Precision::int8)
    return int8_layer_buffers(Layer::buffers(in, backprop), in, output_shape(in), params_[0].value.numel(),
                              model_input_, backprop, conv2d_fwd_i8_workspace(s), conv2d_bwd_data_i8_workspace(s),
                              conv2d_bwd_weight_i8_workspace(s) + (backprop ? weight_grad_blocks_workspace(
                                                                                  s.n, grad_block(s), params_[0].value.numel())
                                                                            : 0));
  // Outside the backprop part (a ZO layer, or a forward-only plan) a forward may be a ZO pass: perturbed copies.
  return with_workspace(Layer::buffers(in, backprop),
                        backprop ? conv2d_fwd_workspace(s) : zo_conv2d_forward_workspace(s, bias_),
                        backprop ? conv2d_bwd_workspace(s, bias_) : 0);
}

void Conv2d::forward(const Tensor& x, Tensor& y) const {
  const Conv2dShape s = problem(x.shape());
  if (precision_ == Precision::int8)
    return int8_forward(x, params_[0], acc_, rounding(), y,
                        [&](const std::int8_t* xq, const std::int8_t* w, std::int64_t first, std::int64_t rows,
                            std::int32_t* acc) {
                          Conv2dShape part = s;
                          part.n = static_cast<int>(rows);
                          kernels().conv2d_fwd_i8(part, xq + first * s.c_in * s.h * s.w, w, acc);
                        });
  const Fp32Operand w(params_[0], 0, static_cast<std::size_t>(params_[0].value.numel()));
  std::optional<Fp32Operand> b;
  if (bias_) b.emplace(params_[1], 0, static_cast<std::size_t>(out_));
  kernels().conv2d_fwd_f32(s, x.f32(), w.data(), b ? b->data() : nullptr, y.f32());
}

void Conv2d::backward_data(const Tensor& x, const Tensor& /*y*/, const Tensor& dy, Tensor& dx) const {
  const Conv2dShape s = problem(x.shape());
  if (precision_ == Precision::int8)
    return int8_backward_data(dy, params_[0].value, acc_.backward, rounding(), dx,
                              [&](const std::int8_t* e, const std::int8_t* w, std::int32_t* acc) {
                                kernels().conv2d_bwd_data_i8(s, e, w, acc);
                              });
  kernels().conv2d_bwd_data_f32(s, dy.f32(), params_[0].value.f32(), dx.f32());
}

void Conv2d::backward_weight(const Tensor& x, const Tensor& dy, bool accumulate) {
  if (precision_ == Precision::int8) {
    const Int8Input xq(x);  // the first layer quantizes its input again: the same per-batch result
    const Conv2dShape s = problem(x.shape());
    const std::int64_t in_size = std::int64_t{s.c_in} * s.h * s.w, out_size = std::int64_t{s.c_out} * s.out_h() * s.out_w();
    return int8_weight_grad(params_[0], accumulate, s.n, grad_block(s),
                            [&](std::int64_t first, std::int64_t samples, std::int32_t* dw) {
                              Conv2dShape part = s;
                              part.n = static_cast<int>(samples);
                              kernels().conv2d_bwd_weight_i8(part, xq.data() + first * in_size,
                                                             dy.s8() + first * out_size, dw);
                            });
  }
  kernels().conv2d_bwd_weight_f32(problem(x.shape()), x.f32(), dy.f32(), accumulate, params_[0].grad.f32(),
                                  bias_ ? params_[1].grad.f32() : nullptr);
}

std::int64_t Conv2d::grad_block(const Conv2dShape& s) const {
  return weight_grad_block(repr(), s.n, std::int64_t{s.out_h()} * s.out_w());  // each weight meets every output position
}

void Conv2d::init_parameters(std::uint64_t seed) {
  if (precision_ == Precision::int8)
    return niti_init(params_[0].value, static_cast<int>(in_ * k_ * k_), static_cast<int>(out_ * k_ * k_), seed);
  const float bound = 1.0f / std::sqrt(static_cast<float>(in_ * k_ * k_));
  for (std::size_t i = 0; i < params_.size(); ++i)
    init_uniform(params_[i].value, bound, seed, static_cast<std::uint32_t>(i));
}

}  // namespace ez
