// Linear: y = x W^T + b with W[out][in]. The per-point variant (PointNet's shared MLP) applies the same layer to
// every point of x[N][points][in], i.e. a Linear over N*points rows. At Precision::int8 (NITI): int8 weight with one
// exponent, no bias (layers/int8_layer.h).
#pragma once
#include "layers/int8_layer.h"
#include "layers/layer.h"

namespace ez {

class Linear final : public Layer {
 public:
  Linear(std::int64_t in_features, std::int64_t out_features, bool bias, bool per_point,
         Precision precision = Precision::fp32);
  std::string kind() const override { return per_point_ ? "point_linear" : "linear"; }
  std::string repr() const override;
  Shape output_shape(const Shape& in) const override;
  std::vector<BufferSpec> buffers(const Shape& in, bool backprop) const override;
  void forward(const Tensor& x, Tensor& y) const override;
  void backward_data(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor& dx) const override;
  void backward_weight(const Tensor& x, const Tensor& dy, bool accumulate) override;
  void init_parameters(std::uint64_t seed) override;
  void bind_accumulator(BufferRole role, const Tensor& t) override { acc_.bind(role, t); }
  // An FP32 per-point layer, a ReLU and the max over the points in one pass (kernels.inc: point_linear_relu_max_f32):
  // y (N, out) = max over the points of ReLU(this layer's output), which is never written. The weights are those of
  // forward (perturbed aside in a ZO pass, layers/fp32_operand.h). y must not share memory with x (the kernel
  // writes y while it reads x; a plan gives the pooled output its own bytes from this forward on).
  void forward_relu_max(const Tensor& x, Tensor& y) const;
  // Whether forward_relu_max applies to input `in` in every pass: an FP32 per-point layer whose ZO pass builds its
  // perturbed weights whole (not by blocks, as for very few rows: the layers then run apart).
  bool fuses_relu_max(const Shape& in) const;

 private:
  LinearShape problem(const Shape& in) const;
  Int8Accumulators acc_;
  std::int64_t in_, out_;  // checked at construction to fit an int
  bool bias_, per_point_;
};

}  // namespace ez
