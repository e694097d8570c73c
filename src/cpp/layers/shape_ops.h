// Parameter-free layers: ReLU (optionally in place), MaxPool2d, Flatten (a view), and PointMaxPool
// (PointNet's global max over points).
#pragma once
#include "layers/layer.h"

namespace ez {

class ReLU final : public Layer {
 public:
  explicit ReLU(bool inplace) : inplace_(inplace) {}
  std::string kind() const override { return "relu"; }
  std::string repr() const override { return inplace_ ? "ReLU(inplace=True)" : "ReLU()"; }
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
  explicit MaxPool2d(std::int64_t kernel_size);
  std::string kind() const override { return "maxpool2d"; }
  std::string repr() const override { return "MaxPool2d(" + std::to_string(k_) + ")"; }
  Shape output_shape(const Shape& in) const override;
  void forward(const Tensor& x, Tensor& y) const override;
  void backward_data(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor& dx) const override;

 private:
  Pool2dShape problem(const Shape& in) const;
  std::int64_t k_;  // checked at construction to fit an int
};

class Flatten final : public Layer {
 public:
  std::string kind() const override { return "flatten"; }
  std::string repr() const override { return "Flatten()"; }
  Shape output_shape(const Shape& in) const override;
  bool aliases_input() const override { return true; }
  void forward(const Tensor& x, Tensor& y) const override;
  void backward_data(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor& dx) const override;
};

class PointMaxPool final : public Layer {
 public:
  std::string kind() const override { return "point_maxpool"; }
  std::string repr() const override { return "PointMaxPool()"; }
  Shape output_shape(const Shape& in) const override;
  void forward(const Tensor& x, Tensor& y) const override;
  void backward_data(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor& dx) const override;

 private:
  PointPoolShape problem(const Shape& in) const;
};

}  // namespace ez
