// Conv2d: stride 1, zero padding, optional bias; NCHW input, weight [out][in][k][k].
#pragma once
#include "layers/layer.h"

namespace ez {

class Conv2d final : public Layer {
 public:
  Conv2d(int in_channels, int out_channels, int kernel_size, int padding, bool bias);
  std::string kind() const override { return "conv2d"; }
  std::string repr() const override;
  Shape output_shape(const Shape& in) const override;
  std::vector<BufferSpec> buffers(const Shape& in, bool backprop) const override;
  void forward(const Tensor& x, Tensor& y) const override;
  void backward_data(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor& dx) const override;
  void backward_weight(const Tensor& x, const Tensor& dy, bool accumulate) override;
  void init_parameters(std::uint64_t seed) override;

 private:
  Conv2dShape problem(const Shape& in) const;
  int in_, out_, k_, pad_;
  bool bias_;
};

}  // namespace ez
