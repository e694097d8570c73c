// Layer interface: forward, backward_data (error to the input) and backward_weight (parameter gradients) are
// separate, so the zeroth-order path runs forward only and never touches backward code or buffers.
#pragma once
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/checked.h"
#include "core/tensor.h"
#include "int8/rounding.h"
#include "kernels/shapes.h"

namespace ez {

// What a buffer is for; the planner derives when a step uses it from this and the module's position.
enum class BufferRole : std::uint8_t {
  output,              // the module's output (an activation), written by its forward
  output_error,        // dL/d(output), for modules trained by backprop
  param_grad,          // dL/d(parameter)
  accumulator,         // wide integer output of an integer layer, alive during its forward (INT8)
  error_accumulator,   // wide integer error of an integer layer's input, alive during its backward (INT8)
  workspace_forward,   // kernels' temporary space during this module's forward
  workspace_backward,  // ... during its backward (data and weight)
};
const char* buffer_role_name(BufferRole r);

// One buffer a layer needs for a given input shape. Workspace is given as bytes: shape {bytes}, dtype s8.
struct BufferSpec {
  std::string name;  // "output", "output_error", "weight.grad", "workspace.forward", ...
  BufferRole role;
  DType dtype;
  Shape shape;
  MemCategory category;
  bool alias_input = false;  // shares its input's storage (views, in-place ReLU; their errors likewise)
  // May share its input's storage when nothing reads the input afterwards (a pointwise op that can run in place
  // and whose backward needs only its output); the lifetime policy then does.
  bool may_alias_input = false;
};

struct Param {
  std::string name;  // "weight" or "bias"
  Tensor value;      // category parameters
  Tensor grad;       // category gradients; allocated only while the layer is trained by backprop (INT8: int32 G)
  Tensor grad_rounded;  // INT8 only: the int8 step g that NITI's update rounds G to (SPEC §4: 5 bytes per weight)
  // Where the ZO perturbation of this tensor comes from (key, stream and offset of its elements; r and the zero
  // threshold for INT8 only). During a ZO pass the forward computes with perturbed weights generated aside, so
  // `value` itself is never written by the passes and the weights before a step are always at hand:
  //   ElasticZO-INT8: zo_sign +1 or -1, the operand clip(value + zo_sign * zeta) (int8/zo_int8.h);
  //   FP32: zo_scale != 0, the operand value + zo_scale * z (the passes +-eps, the clean pass -lr g), built by
  //   Fp32Operand (layers/fp32_operand.h). 0 in both: no pass under way, the stored values.
  SparsePerturbation zo{};
  int zo_sign = 0;
  float zo_scale = 0.0f;
};

// What a layer computes in: FP32, or NITI's integers (int8 mantissas with a per-tensor power-of-two exponent,
// int32 accumulators). A model's layers all share one precision (Sequential::add checks it).
enum class Precision : std::uint8_t { fp32, int8 };
Precision parse_precision(const std::string& name);  // "fp32" or "int8"
const char* precision_name(Precision p);

// Held while a layer's parameters or gradient slots are used: it keeps the mutex alive even if the layer moves to
// another lock meanwhile.
struct LayerGuard {
  std::shared_ptr<std::recursive_mutex> mutex;
  std::unique_lock<std::recursive_mutex> lock;
};

// enable_shared_from_this lets the bindings hand a Sequential's layer back to Python as a shared owner even after
// its original Python wrapper is gone (pybind11 then rebuilds the holder from the object).
//
// Threads: a layer's parameters and gradient slots are guarded by one recursive mutex, its own until it joins a
// Sequential, then that model's (Sequential::add), so using a layer from one thread while another trains its model
// takes turns with the model's steps instead of racing them. A layer with parameters belongs to one model at most.
class Layer : public std::enable_shared_from_this<Layer> {
 public:
  explicit Layer(Precision precision = Precision::fp32) : precision_(precision) {}
  virtual ~Layer() = default;
  Precision precision() const { return precision_; }
  // INT8 layers only: the planned int32 buffers they declared with BufferRole::accumulator / error_accumulator
  // (Sequential binds them after planning, and unbinds them with an undefined tensor). A layer used outside a
  // model allocates its own per call.
  virtual void bind_accumulator(BufferRole /*role*/, const Tensor& /*buffer*/) {}
  // The lock of this layer's state (its model's once it belongs to one); take it for any use of params().
  LayerGuard lock() const;
  // Makes `model_mutex` guard this layer from now on (waits until no one holds the current one); false, and
  // nothing changed, if the layer already uses a model's lock.
  bool share_lock(const std::shared_ptr<std::recursive_mutex>& model_mutex);
  virtual std::string kind() const = 0;  // "conv2d", "linear", "relu", ...
  virtual std::string repr() const = 0;  // "Conv2d(1, 6, kernel_size=5, padding=2)"
  // Output shape for an input shape (batch first); std::invalid_argument if the input does not fit.
  virtual Shape output_shape(const Shape& in) const = 0;
  // The output shares the input's storage: Flatten is a view, an in-place ReLU overwrites its input.
  virtual bool aliases_input() const { return false; }
  // Over its input's storage, its output is the input's bytes as they are (Flatten): it writes nothing there,
  // where an in-place ReLU writes over its input.
  virtual bool is_view() const { return false; }
  // Every buffer this layer needs for input shape `in` (batch first), beyond its parameters: its output, and with
  // `backprop` its output's error and its parameters' gradients, plus the workspace its kernels take. Throws like
  // output_shape for an input that does not fit. Sequential plans and allocates exactly these.
  virtual std::vector<BufferSpec> buffers(const Shape& in, bool backprop) const;

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
  // Set by Sequential for its first module: an INT8 model's first layer quantizes the float model input, and
  // declares the scratch for it (buffers()).
  void set_model_input(bool first) { model_input_ = first; }
  // INT8 layers: how they round their requantized output and the error they propagate (set by Sequential from the
  // model's rounding policy, the step key and this module's index; a layer used on its own keeps the default).
  void set_rounding(const LayerRounding& r) { rounding_ = r; }
  const LayerRounding& rounding() const { return rounding_; }

 protected:
  // The value dtype of this layer's outputs and errors: f32, or int8 mantissas.
  DType value_dtype() const { return precision_ == Precision::int8 ? DType::s8 : DType::f32; }
  // "Name(args)" with ", precision='int8'" appended for an INT8 layer: the repr Python can rebuild it from.
  std::string repr_call(const std::string& name, const std::string& args) const;
  std::vector<Param> params_;
  Precision precision_;
  bool model_input_ = false;
  LayerRounding rounding_;

 private:
  std::optional<std::uint64_t> init_seed_;
  std::shared_ptr<std::recursive_mutex> mutex_ = std::make_shared<std::recursive_mutex>();  // atomic access only
  std::mutex share_mutex_;  // serializes share_lock(), the only writer of mutex_ and shared_
  bool shared_ = false;
};

// Checks shared by the layers; messages name the layer and both shapes.
void expect_rank(const Layer& layer, const Shape& in, std::size_t rank, const char* layout);
void expect_dim(const Layer& layer, const Shape& in, std::size_t axis, std::int64_t want, const char* what);
// Elements of a buffer that a kernel of `layer` indexes with int (an input, output, weight or one sample's padded
// scratch image): std::overflow_error naming the layer and the sizes if the count exceeds kMaxKernelElements.
std::int64_t kernel_elements(const Layer& layer, const char* what, std::initializer_list<std::int64_t> dims);
// A constructor argument in [min, INT_MAX]: std::invalid_argument (below) or std::overflow_error (above), both
// naming the layer as `repr` describes it and the argument.
int layer_arg(const std::string& repr, const char* name, std::int64_t v, std::int64_t min);
void init_uniform(Tensor& t, float bound, std::uint64_t seed, std::uint32_t stream);
// The default buffers plus the kernels' workspace for forward and backward (0: none, as without backprop).
std::vector<BufferSpec> with_workspace(std::vector<BufferSpec> specs, std::size_t forward, std::size_t backward);

}  // namespace ez
