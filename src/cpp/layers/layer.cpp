// Shared layer helpers: shape checks and the platform-independent uniform initialization.
#include "layers/layer.h"

#include <climits>
#include <stdexcept>

#include "rng/philox.h"

namespace ez {

const char* buffer_role_name(BufferRole r) {
  switch (r) {
    case BufferRole::output: return "output";
    case BufferRole::output_error: return "output_error";
    case BufferRole::param_grad: return "param_grad";
    case BufferRole::accumulator: return "accumulator";
    case BufferRole::error_accumulator: return "error_accumulator";
    case BufferRole::workspace_forward: return "workspace_forward";
    case BufferRole::workspace_backward: return "workspace_backward";
  }
  return "?";
}

Precision parse_precision(const std::string& name) {
  if (name == "fp32") return Precision::fp32;
  if (name == "int8") return Precision::int8;
  throw std::invalid_argument("unknown precision '" + name + "' (expected 'fp32' or 'int8')");
}

const char* precision_name(Precision p) { return p == Precision::int8 ? "int8" : "fp32"; }

std::string Layer::repr_call(const std::string& name, const std::string& args) const {
  if (precision_ != Precision::int8) return name + "(" + args + ")";
  return name + "(" + args + (args.empty() ? "" : ", ") + "precision='int8')";
}

std::vector<BufferSpec> Layer::buffers(const Shape& in, bool backprop) const {
  const Shape out = output_shape(in);
  std::vector<BufferSpec> specs{{"output", BufferRole::output, value_dtype(), out, MemCategory::activations,
                                 aliases_input()}};
  if (!backprop) return specs;
  specs.push_back({"output_error", BufferRole::output_error, value_dtype(), out, MemCategory::errors,
                   aliases_input()});
  for (const auto& p : params_) {
    // INT8: the int32 gradient G and the int8 step NITI's update rounds it to.
    const bool int8 = precision_ == Precision::int8;
    specs.push_back({p.name + ".grad", BufferRole::param_grad, int8 ? DType::s32 : p.value.dtype(),
                     p.value.shape(), MemCategory::gradients, false});
    if (int8)
      specs.push_back({p.name + ".grad_rounded", BufferRole::param_grad, DType::s8, p.value.shape(),
                       MemCategory::gradients, false});
  }
  return specs;
}

std::vector<BufferSpec> with_workspace(std::vector<BufferSpec> specs, std::size_t forward, std::size_t backward) {
  if (forward > 0)
    specs.push_back({"workspace.forward", BufferRole::workspace_forward, DType::s8,
                     {static_cast<std::int64_t>(forward)}, MemCategory::workspace});
  if (backward > 0)
    specs.push_back({"workspace.backward", BufferRole::workspace_backward, DType::s8,
                     {static_cast<std::int64_t>(backward)}, MemCategory::workspace});
  return specs;
}

LayerGuard Layer::lock() const {
  // The mutex can be replaced (share_lock) between reading it and locking it: then retry with the new one.
  for (;;) {
    std::shared_ptr<std::recursive_mutex> m = std::atomic_load(&mutex_);
    std::unique_lock<std::recursive_mutex> l(*m);
    if (std::atomic_load(&mutex_) == m) return {std::move(m), std::move(l)};
  }
}

bool Layer::share_lock(const std::shared_ptr<std::recursive_mutex>& model_mutex) {
  const std::lock_guard<std::mutex> once(share_mutex_);
  if (shared_) return false;  // checked before waiting on anything: never waits for another model's lock
  // Still the layer's own mutex: wait for calls in progress on the layer alone, which take no other lock.
  const std::shared_ptr<std::recursive_mutex> own = std::atomic_load(&mutex_);
  const std::lock_guard<std::recursive_mutex> idle(*own);
  std::atomic_store(&mutex_, model_mutex);
  shared_ = true;
  return true;
}

std::int64_t Layer::num_params() const {
  std::int64_t n = 0;
  for (const auto& p : params_) n += p.value.numel();
  return n;
}

void expect_rank(const Layer& layer, const Shape& in, std::size_t rank, const char* layout) {
  if (in.size() != rank)
    throw std::invalid_argument(layer.repr() + " expects a " + std::to_string(rank) + "-d input " + layout +
                                ", got shape " + shape_str(in));
  for (auto d : in)
    if (d <= 0) throw std::invalid_argument(layer.repr() + " got an empty input of shape " + shape_str(in));
}

void expect_dim(const Layer& layer, const Shape& in, std::size_t axis, std::int64_t want, const char* what) {
  if (in.at(axis) != want)
    throw std::invalid_argument(layer.repr() + " expects " + std::to_string(want) + " " + what + " (axis " +
                                std::to_string(axis) + "), got shape " + shape_str(in));
}

std::int64_t kernel_elements(const Layer& layer, const char* what, std::initializer_list<std::int64_t> dims) {
  return checked_product(dims, kMaxKernelElements, [&] { return layer.repr() + ": " + what; });
}

int layer_arg(const std::string& repr, const char* name, std::int64_t v, std::int64_t min) {
  if (v < min)
    throw std::invalid_argument(repr + ": " + name + " must be >= " + std::to_string(min) + ", got " +
                                std::to_string(v));
  if (v > INT_MAX)
    throw std::overflow_error(repr + ": " + name + " is too large: " + std::to_string(v) + " exceeds " +
                              std::to_string(INT_MAX));
  return static_cast<int>(v);
}

void init_uniform(Tensor& t, float bound, std::uint64_t seed, std::uint32_t stream) {
  const PhiloxKey key{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)};
  float* p = t.f32();
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    const PhiloxCounter r = philox_block(key, stream, static_cast<std::uint64_t>(i) / 4);
    const float u = static_cast<float>(r[i % 4] >> 8) * (1.0f / 16777216.0f);  // 24 bits -> [0, 1)
    p[i] = bound * (2.0f * u - 1.0f);
  }
}

}  // namespace ez
