// Parameter-free layers over the dispatched pointwise and pooling kernels.
#include "layers/shape_ops.h"

#include <cstring>
#include <stdexcept>

#include "kernels/kernels.h"
#include "kernels/pool/pool_ref_body.h"

namespace ez {

namespace {
void expect_nonempty(const Layer& layer, const Shape& in) {
  bool empty = in.empty();
  for (auto d : in) empty = empty || d <= 0;
  if (empty)
    throw std::invalid_argument(layer.repr() + " got an empty input of shape " + shape_str(in));
}
// Aliasing layers (in place / views) get dx sharing dy's storage; copy only if a caller passed separate buffers.
void copy_if_distinct(const Tensor& from, Tensor& to) {
  if (from.raw() != to.raw()) std::memcpy(to.raw(), from.raw(), from.nbytes());
  if (to.dtype() == DType::s8) to.set_exponent(from.exponent());
}
}  // namespace

Shape ReLU::output_shape(const Shape& in) const {
  expect_nonempty(*this, in);
  shape_numel(in);  // std::overflow_error if the element count does not fit
  return in;
}

// relu_fwd may write over its input and relu_bwd reads only the output: the planner may run it in place.
std::vector<BufferSpec> ReLU::buffers(const Shape& in, bool backprop) const {
  std::vector<BufferSpec> specs = Layer::buffers(in, backprop);
  specs.front().may_alias_input = !inplace_;
  return specs;
}

void ReLU::forward(const Tensor& x, Tensor& y) const {
  if (precision_ == Precision::int8) {
    const std::int8_t* xv = x.s8();
    std::int8_t* yv = y.s8();
    const int e = x.exponent();
    // The count is read once: int8 stores may alias anything (char aliasing), so the compiler would recompute
    // numel() (a checked product of the shape) at every element.
    const std::int64_t n = x.numel();
    for (std::int64_t i = 0; i < n; ++i) yv[i] = xv[i] > 0 ? xv[i] : std::int8_t{0};
    return y.set_exponent(e);
  }
  kernels().relu_fwd_f32(static_cast<std::size_t>(x.numel()), x.f32(), y.f32());
}

void ReLU::backward_data(const Tensor& /*x*/, const Tensor& y, const Tensor& dy, Tensor& dx) const {
  if (precision_ == Precision::int8) {  // the error passes where the output (= the input) was > 0
    const std::int8_t *yv = y.s8(), *dyv = dy.s8();
    std::int8_t* dxv = dx.s8();
    const int e = dy.exponent();
    const std::int64_t n = y.numel();  // once: see forward
    for (std::int64_t i = 0; i < n; ++i) dxv[i] = yv[i] > 0 ? dyv[i] : std::int8_t{0};
    return dx.set_exponent(e);
  }
  kernels().relu_bwd_f32(static_cast<std::size_t>(y.numel()), y.f32(), dy.f32(), dx.f32());
}

MaxPool2d::MaxPool2d(std::int64_t kernel_size, Precision precision) : Layer(precision), k_(kernel_size) {
  layer_arg(repr(), "kernel_size", k_, 1);
}

Pool2dShape MaxPool2d::problem(const Shape& in) const {
  expect_rank(*this, in, 4, "(N, C, H, W)");
  kernel_elements(*this, "input", {in[0], in[1], in[2], in[3]});
  const auto i = [](std::int64_t v) { return static_cast<int>(v); };  // factors of a checked count: they fit
  Pool2dShape s{i(in[0]), i(in[1]), i(in[2]), i(in[3]), i(k_)};
  if (s.out_h() < 1 || s.out_w() < 1)
    throw std::invalid_argument(repr() + ": input " + shape_str(in) + " is smaller than the window");
  return s;
}

Shape MaxPool2d::output_shape(const Shape& in) const {
  const Pool2dShape s = problem(in);
  return {s.n, s.c, s.out_h(), s.out_w()};
}

void MaxPool2d::forward(const Tensor& x, Tensor& y) const {
  if (precision_ == Precision::int8) {
    kernels().maxpool2d_fwd_i8(problem(x.shape()), x.s8(), y.s8());
    return y.set_exponent(x.exponent());
  }
  kernels().maxpool2d_fwd_f32(problem(x.shape()), x.f32(), y.f32());
}

void MaxPool2d::forward_of_relu(const Tensor& x, Tensor& y) const {
  if (precision_ != Precision::fp32) throw std::logic_error(repr() + ".forward_of_relu: FP32 only");
  kernels().maxpool2d_relu_fwd_f32(problem(x.shape()), x.f32(), y.f32());
}

void MaxPool2d::backward_data(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor& dx) const {
  if (precision_ == Precision::int8) {
    maxpool2d_bwd_ref(problem(x.shape()), x.s8(), y.s8(), dy.s8(), dx.s8());
    return dx.set_exponent(dy.exponent());
  }
  kernels().maxpool2d_bwd_f32(problem(x.shape()), x.f32(), y.f32(), dy.f32(), dx.f32());
}

Shape Flatten::output_shape(const Shape& in) const {
  if (in.size() < 2) throw std::invalid_argument("Flatten expects (N, ...) with at least 2 dims, got " + shape_str(in));
  expect_nonempty(*this, in);
  return {in[0], shape_numel(in) / in[0]};
}

void Flatten::forward(const Tensor& x, Tensor& y) const { copy_if_distinct(x, y); }

void Flatten::backward_data(const Tensor& /*x*/, const Tensor& /*y*/, const Tensor& dy, Tensor& dx) const {
  copy_if_distinct(dy, dx);
}

PointPoolShape PointMaxPool::problem(const Shape& in) const {
  expect_rank(*this, in, 3, "(N, points, features)");
  kernel_elements(*this, "input", {in[0], in[1], in[2]});
  const auto i = [](std::int64_t v) { return static_cast<int>(v); };  // factors of a checked count: they fit
  return {i(in[0]), i(in[1]), i(in[2])};
}

Shape PointMaxPool::output_shape(const Shape& in) const {
  const PointPoolShape s = problem(in);
  return {s.n, s.c};
}

void PointMaxPool::forward(const Tensor& x, Tensor& y) const {
  if (precision_ == Precision::int8) {
    point_maxpool_fwd_ref(problem(x.shape()), x.s8(), y.s8());
    return y.set_exponent(x.exponent());
  }
  kernels().point_maxpool_fwd_f32(problem(x.shape()), x.f32(), y.f32());
}

void PointMaxPool::backward_data(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor& dx) const {
  if (precision_ == Precision::int8) {
    point_maxpool_bwd_ref(problem(x.shape()), x.s8(), y.s8(), dy.s8(), dx.s8());
    return dx.set_exponent(dy.exponent());
  }
  kernels().point_maxpool_bwd_f32(problem(x.shape()), x.f32(), y.f32(), dy.f32(), dx.f32());
}

}  // namespace ez
