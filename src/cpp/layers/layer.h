// Layer interface: forward, backward_data (error to the input) and backward_weight (parameter gradients) are
// separate, so the zeroth-order path runs forward only and never touches backward code or buffers.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "kernels/shapes.h"

namespace ez {

struct Param {
  std::string name;  // "weight" or "bias"
  Tensor value;      // category parameters
  Tensor grad;       // category gradients; allocated only while the layer is trained by backprop
};

// enable_shared_from_this lets the bindings hand a Sequential's layer back to Python as a shared owner even after
// its original Python wrapper is gone (pybind11 then rebuilds the holder from the object).
class Layer : public std::enable_shared_from_this<Layer> {
 public:
  virtual ~Layer() = default;
  virtual std::string kind() const = 0;  // "conv2d", "linear", "relu", ...
  virtual std::string repr() const = 0;  // "Conv2d(1, 6, kernel_size=5, padding=2)"
  // Output shape for an input shape (batch first); std::invalid_argument if the input does not fit.
  virtual Shape output_shape(const Shape& in) const = 0;
  // The output shares the input's storage: Flatten is a view, an in-place ReLU overwrites its input.
  virtual bool aliases_input() const { return false; }

  virtual void forward(const Tensor& x, Tensor& y) const = 0;
  // dx = dL/dx from dy = dL/dy; x and y are this layer's input and output of the same pass.
  virtual void backward_data(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor& dx) const = 0;
  // grad (+)= dL/dtheta for every parameter; layers without parameters have nothing to do.
  virtual void backward_weight(const Tensor& /*x*/, const Tensor& /*dy*/, bool /*accumulate*/) {}

  std::vector<Param>& params() { return params_; }
  const std::vector<Param>& params() const { return params_; }
  std::int64_t num_params() const;
  // PyTorch's default initialization: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases, drawn from
  // Philox with the given seed so that it is the same on every platform.
  virtual void init_parameters(std::uint64_t /*seed*/) {}
  // init_parameters(seed), remembering the seed: a layer initialized from a fresh random seed can be rebuilt.
  void initialize(std::uint64_t seed) {
    init_parameters(seed);
    init_seed_ = seed;
  }
  std::optional<std::uint64_t> init_seed() const { return init_seed_; }

 protected:
  std::vector<Param> params_;

 private:
  std::optional<std::uint64_t> init_seed_;
};

// Checks shared by the layers; messages name the layer and both shapes.
void expect_rank(const Layer& layer, const Shape& in, std::size_t rank, const char* layout);
void expect_dim(const Layer& layer, const Shape& in, std::size_t axis, std::int64_t want, const char* what);
int checked_int(std::int64_t v, const char* what);
void init_uniform(Tensor& t, float bound, std::uint64_t seed, std::uint32_t stream);

}  // namespace ez
