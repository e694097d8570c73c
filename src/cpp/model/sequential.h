// Sequential model: a chain of named modules with their activation and error buffers.
// A "parameter layer" is a module with parameters (conv, linear); the ReLU/pool/flatten modules after it belong to
// it (SPEC §1), so parameter layer p spans modules [first_module(p), first_module(p+1)).
// Buffers follow the paper's memory model: one activation per module output for the whole step (views and
// in-place ReLUs share their input's buffer, except the caller's model input); errors and gradients only for the
// part trained by backprop.
#pragma once
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "layers/layer.h"

namespace ez {

struct NamedParam {
  std::string name;  // "<module>.<param>", e.g. "conv1.weight"
  Param* param;
  int param_layer;   // index of the parameter layer that owns it
};

class Sequential {
 public:
  void add(const std::string& name, std::shared_ptr<Layer> layer);
  std::size_t size() const { return layers_.size(); }
  Layer& layer(std::size_t i) { return *layers_.at(i); }
  const std::string& name(std::size_t i) const { return names_.at(i); }

  int num_param_layers() const { return static_cast<int>(param_modules_.size()); }
  // Module index where parameter layer p starts; p == num_param_layers() gives size() (nothing left).
  std::size_t first_module(int p) const;
  // Module index of parameter layer p itself.
  std::size_t param_module(int p) const { return param_modules_.at(static_cast<std::size_t>(p)); }
  std::vector<NamedParam> named_parameters();
  std::int64_t num_params() const;
  void init_parameters(std::uint64_t seed);
  // The seed of the last init_parameters, if any (each layer also keeps the seed derived from it).
  std::optional<std::uint64_t> init_seed() const { return init_seed_; }

  Shape output_shape(const Shape& input) const;  // validates the whole chain
  // Runs every module on x; activations are (re)allocated only when x's shape changes. Returns the output.
  const Tensor& forward(const Tensor& x);
  const Tensor& activation(std::size_t i) const { return acts_.at(i); }
  const Tensor& output() const;

  // Gets error buffers for the outputs of modules >= first and gradients for their parameters.
  // Everything below `first` keeps none: that part is trained by forward passes only.
  void prepare_backward(std::size_t first);
  // The error of the model output (dL/dlogits), filled by the loss before backward().
  Tensor& output_error();
  // Backprop from output_error() down to module `first` (as given to prepare_backward): gradients of every
  // parameter there are written (or added, with accumulate); no error is computed for module first's input.
  void backward(const Tensor& x, bool accumulate);
  bool backward_ready() const { return !errs_.empty(); }
  std::size_t backward_start() const { return bwd_first_; }
  // Frees errors and gradients (e.g. between training and evaluation).
  void release_backward();

  // Held by every call that touches the buffers, and by a trainer for a whole step: two Python threads sharing
  // a model (the GIL is released during compute) then take turns instead of freeing each other's buffers.
  std::unique_lock<std::recursive_mutex> lock() { return std::unique_lock<std::recursive_mutex>(mutex_); }

 private:
  std::recursive_mutex mutex_;
  std::vector<std::string> names_;
  std::vector<std::shared_ptr<Layer>> layers_;
  std::vector<std::size_t> param_modules_;
  Shape input_shape_;
  std::vector<Tensor> acts_;
  std::vector<Tensor> errs_;  // errs_[i] = dL/d(output of module i), defined for i >= bwd_first_
  std::size_t bwd_first_ = 0;
  std::optional<std::uint64_t> init_seed_;
};

}  // namespace ez
