// Sequential model: buffer management and the forward / backward sweeps.
#include "model/sequential.h"

#include <stdexcept>

namespace ez {

void Sequential::add(const std::string& name, std::shared_ptr<Layer> layer) {
  const auto guard = lock();
  if (!layer) throw std::invalid_argument("Sequential.add: layer is null");
  for (const auto& n : names_)
    if (n == name) throw std::invalid_argument("Sequential: duplicate module name '" + name + "'");
  if (name.empty() || name.find('.') != std::string::npos)
    throw std::invalid_argument("Sequential: module name must be non-empty and without '.', got '" + name + "'");
  if (!layer->params().empty()) param_modules_.push_back(layers_.size());
  names_.push_back(name);
  layers_.push_back(std::move(layer));
  input_shape_.clear();  // buffers no longer match the chain
  acts_.clear();
  release_backward();
}

std::size_t Sequential::first_module(int p) const {
  if (p < 0 || p > num_param_layers())
    throw std::invalid_argument("parameter layer index " + std::to_string(p) + " is out of range [0, " +
                                std::to_string(num_param_layers()) + "]");
  return p == num_param_layers() ? layers_.size() : (p == 0 ? 0 : param_modules_[p]);
}

std::vector<NamedParam> Sequential::named_parameters() {
  std::vector<NamedParam> out;
  int p = -1;
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    if (!layers_[i]->params().empty()) ++p;
    for (auto& prm : layers_[i]->params()) out.push_back({names_[i] + "." + prm.name, &prm, p});
  }
  return out;
}

std::int64_t Sequential::num_params() const {
  std::int64_t n = 0;
  for (const auto& l : layers_) n += l->num_params();
  return n;
}

void Sequential::init_parameters(std::uint64_t seed) {
  // Each module draws from its own seed so that inserting a layer does not shift the others' values.
  for (std::size_t i = 0; i < layers_.size(); ++i) layers_[i]->initialize(seed * 1000003u + i);
  init_seed_ = seed;
}

Shape Sequential::output_shape(const Shape& input) const {
  if (layers_.empty()) throw std::invalid_argument("Sequential has no modules");
  Shape s = input;
  for (const auto& l : layers_) s = l->output_shape(s);
  return s;
}

const Tensor& Sequential::forward(const Tensor& x) {
  const auto guard = lock();
  if (x.shape() != input_shape_ || acts_.size() != layers_.size()) {
    output_shape(x.shape());  // validate before freeing anything
    const std::size_t first = bwd_first_;
    const bool had_backward = !errs_.empty();
    release_backward();
    acts_.clear();
    Shape s = x.shape();
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      const Shape out = layers_[i]->output_shape(s);
      // The model input belongs to the caller: an aliasing first module would write into it (in-place ReLU)
      // or keep a view of it past this call, so it gets its own buffer instead.
      if (layers_[i]->aliases_input() && i > 0)
        acts_.push_back(acts_[i - 1].reshaped(out));
      else
        acts_.emplace_back(out, DType::f32, MemCategory::activations);
      s = out;
    }
    input_shape_ = x.shape();
    if (had_backward) prepare_backward(first);
  }
  for (std::size_t i = 0; i < layers_.size(); ++i) layers_[i]->forward(i == 0 ? x : acts_[i - 1], acts_[i]);
  return acts_.back();
}

const Tensor& Sequential::output() const {
  if (acts_.empty()) throw std::logic_error("Sequential.output: no forward pass yet");
  return acts_.back();
}

void Sequential::prepare_backward(std::size_t first) {
  const auto guard = lock();
  if (first > layers_.size()) throw std::invalid_argument("prepare_backward: module index out of range");
  if (acts_.size() != layers_.size()) throw std::logic_error("prepare_backward needs a forward pass first");
  release_backward();
  bwd_first_ = first;
  errs_.resize(layers_.size());
  for (std::size_t i = layers_.size(); i-- > first;) {
    // An aliasing module's input error shares its output error's storage, as its activation does.
    if (i + 1 < layers_.size() && layers_[i + 1]->aliases_input())
      errs_[i] = errs_[i + 1].reshaped(acts_[i].shape());
    else
      errs_[i] = Tensor(acts_[i].shape(), DType::f32, MemCategory::errors);
    for (auto& prm : layers_[i]->params())
      prm.grad = Tensor(prm.value.shape(), DType::f32, MemCategory::gradients);
  }
}

Tensor& Sequential::output_error() {
  if (errs_.empty() || bwd_first_ >= layers_.size())
    throw std::logic_error("output_error: no backward part prepared (prepare_backward)");
  return errs_.back();
}

void Sequential::backward(const Tensor& x, bool accumulate) {
  const auto guard = lock();
  if (errs_.empty() || bwd_first_ >= layers_.size())
    throw std::logic_error("backward: no backward part prepared (prepare_backward)");
  if (x.shape() != input_shape_) throw std::invalid_argument("backward: input differs from the forward pass's");
  for (std::size_t i = layers_.size(); i-- > bwd_first_;) {
    const Tensor& in = i == 0 ? x : acts_[i - 1];
    layers_[i]->backward_weight(in, errs_[i], accumulate);
    if (i > bwd_first_) layers_[i]->backward_data(in, acts_[i], errs_[i], errs_[i - 1]);
  }
}

void Sequential::release_backward() {
  const auto guard = lock();
  errs_.clear();
  for (auto& l : layers_)
    for (auto& prm : l->params()) prm.grad = Tensor();
}

}  // namespace ez
