// Parameter-free layers: ReLU (optionally in place), MaxPool2d, Flatten (a view), and PointMaxPool
// (PointNet's global max over points). At Precision::int8 they work on int8 mantissas and keep the exponent (NITI).
#pragma once
#include "layers/layer.h"

namespace ez {

class ReLU final : public Layer {
 public:
  explicit ReLU(bool inplace, Precision precision = Precision::fp32) : Layer(precision), inplace_(inplace) {}
  std::string kind() const override { return "relu"; }
  std::string repr() const override { return repr_call("ReLU", inplace_ ? "inplace=True" : ""); }
  Shape output_shape(const Shape& in) const override;
  bool aliases_input() const override { return inplace_; }
  std::vector<BufferSpec> buffers(const Shape& in, bool backprop) const override;
  void forward(const Tensor& x, Tensor& y) const override;
  void backward_data(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor& dx) const override;

 private:
  bool inplace_;
};

class MaxPool2d final : public Layer {
 public:
  explicit MaxPool2d(std::int64_t kernel_size, Precision precision = Precision::fp32);
  std::string kind() const override { return "maxpool2d"; }
  std::string repr() const override { return repr_call("MaxPool2d", std::to_string(k_)); }
  Shape output_shape(const Shape& in) const override;
  void forward(const Tensor& x, Tensor& y) const override;
  // FP32: y = forward(relu(x)), x left as it is: a ReLU before this pooling whose output nothing reads.
  void forward_of_relu(const Tensor& x, Tensor& y) const;
  void backward_data(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor& dx) const override;

 private:
  Pool2dShape problem(const Shape& in) const;
  std::int64_t k_;  // checked at construction to fit an int
};

class Flatten final : public Layer {
 public:
  explicit Flatten(Precision precision = Precision::fp32) : Layer(precision) {}
  std::string kind() const override { return "flatten"; }
  std::string repr() const override { return repr_call("Flatten", ""); }
  Shape output_shape(const Shape& in) const override;
  bool aliases_input() const override { return true; }
  bool is_view() const override { return true; }
  void forward(const Tensor& x, Tensor& y) const override;
  void backward_data(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor& dx) const override;
};

class PointMaxPool final : public Layer {
 public:
  explicit PointMaxPool(Precision precision = Precision::fp32) : Layer(precision) {}
  std::string kind() const override { return "point_maxpool"; }
  std::string repr() const override { return repr_call("PointMaxPool", ""); }
  Shape output_shape(const Shape& in) const override;
  void forward(const Tensor& x, Tensor& y) const override;
  void backward_data(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor& dx) const override;

 private:
  PointPoolShape problem(const Shape& in) const;
};

}  // namespace ez
