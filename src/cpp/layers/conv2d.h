// Conv2d: stride 1, zero padding, optional bias; NCHW input, weight [out][in][k][k]. At Precision::int8 (NITI) the
// weight is int8 mantissas with one exponent, no bias; layers/int8_layer.h says how it computes.
#pragma once
#include "layers/int8_layer.h"
#include "layers/layer.h"

namespace ez {

class Conv2d final : public Layer {
 public:
  // Sizes are taken as int64 so that any value a caller passes reaches the range checks and their message.
  Conv2d(std::int64_t in_channels, std::int64_t out_channels, std::int64_t kernel_size, std::int64_t padding,
         bool bias, Precision precision = Precision::fp32);
  std::string kind() const override { return "conv2d"; }
  std::string repr() const override;
  Shape output_shape(const Shape& in) const override;
  std::vector<BufferSpec> buffers(const Shape& in, bool backprop) const override;
  void forward(const Tensor& x, Tensor& y) const override;
  void backward_data(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor& dx) const override;
  void backward_weight(const Tensor& x, const Tensor& dy, bool accumulate) override;
  void init_parameters(std::uint64_t seed) override;
  void bind_accumulator(BufferRole role, const Tensor& t) override { acc_.bind(role, t); }

 private:
  Conv2dShape problem(const Shape& in) const;
  // Samples per block of the int8 weight gradient (int8_weight_grad), so that no int32 sum can overflow.
  std::int64_t grad_block(const Conv2dShape& s) const;
  Int8Accumulators acc_;
  std::int64_t in_, out_, k_, pad_;  // checked at construction to fit an int
  bool bias_;
};

}  // namespace ez
