// Layers and Sequential. Each layer's forward/backward is callable on its own (tests compare them with PyTorch);
// training goes through Sequential and the trainer, which keep their buffers in C++. Every method that reads or
// writes parameters or buffers holds the layer's (= its model's) lock, so it takes turns with training steps run
// by other threads (README, "Threads").
#include <pybind11/stl.h>

#include <cmath>
#include <cstring>
#include <optional>
#include <random>

#include "arrays.h"
#include "ints.h"
#include "kernels/kernels.h"
#include "locks.h"
#include "layers/conv2d.h"
#include "layers/linear.h"
#include "layers/shape_ops.h"
#include "model/sequential.h"
#include "int8/rules.h"
#include "register.h"

namespace py = pybind11;

namespace ez::py_bind {

namespace {

// The standalone calls take and give float32 arrays; an INT8 layer's tensors are mantissas with an exponent that
// only its model carries from one layer to the next.
void refuse_int8(const Layer& layer) {
  if (layer.precision() == Precision::int8)
    throw py::value_error(layer.repr() + ": an int8 layer runs inside a Sequential (model.forward, training), not "
                          "on its own");
}

// An INT8 model's logits as float32 values v * 2^e (exact: |v| <= 127).
py::array model_output(const Tensor& out) {
  if (out.dtype() != DType::s8) return to_numpy(out);
  Tensor view;
  py::array_t<float> values = new_f32(out.shape(), view);
  const std::int8_t* v = out.s8();
  float* f = view.f32();
  for (std::int64_t i = 0; i < out.numel(); ++i) f[i] = std::ldexp(static_cast<float>(v[i]), out.exponent());
  return values;
}

py::array_t<float> layer_forward(Layer& layer, const py::object& x_arr) {
  refuse_int8(layer);
  const LayerGuard guard = lock_without_gil(layer);
  const Tensor x = borrow_f32(x_arr, "x");
  const Shape out_shape = layer.output_shape(x.shape());
  Tensor y;
  py::array_t<float> out = new_f32(out_shape, y);
  if (layer.aliases_input()) {
    std::memcpy(y.raw(), x.raw(), x.nbytes());  // a standalone call never overwrites the caller's input
    py::gil_scoped_release release;             // safe: x_arr and out are held by this frame, the layer locked
    layer.forward(y, y);
  } else {
    py::gil_scoped_release release;
    layer.forward(x, y);
  }
  return out;
}

py::array_t<float> layer_backward_data(Layer& layer, const py::object& x_arr, const py::object& y_arr,
                                       const py::object& dy_arr) {
  refuse_int8(layer);
  const LayerGuard guard = lock_without_gil(layer);
  const Tensor x = borrow_f32(x_arr, "x"), y = borrow_f32(y_arr, "y"), dy = borrow_f32(dy_arr, "dy");
  const Shape out_shape = layer.output_shape(x.shape());
  if (y.shape() != out_shape || dy.shape() != out_shape)
    throw py::value_error("y and dy must have the output shape " + shape_str(out_shape) + ", got " +
                          shape_str(y.shape()) + " and " + shape_str(dy.shape()));
  Tensor dx;
  py::array_t<float> out = new_f32(x.shape(), dx);
  py::gil_scoped_release release;
  layer.backward_data(x, layer.aliases_input() ? y.reshaped(x.shape()) : y, dy, dx);
  return out;
}

py::dict layer_backward_weight(Layer& layer, const py::object& x_arr, const py::object& dy_arr) {
  refuse_int8(layer);
  // The layer's gradient slots point at this call's arrays until it returns: its model's step, which uses them,
  // must not run meanwhile (issue 14: use-after-free when a step ran in another thread).
  const LayerGuard guard = lock_without_gil(layer);
  const Tensor x = borrow_f32(x_arr, "x"), dy = borrow_f32(dy_arr, "dy");
  const Shape out_shape = layer.output_shape(x.shape());
  if (dy.shape() != out_shape)
    throw py::value_error("dy must have the output shape " + shape_str(out_shape) + ", got " + shape_str(dy.shape()));
  // The layer writes into new arrays lent as its gradient buffers; its own buffers come back even if it throws.
  struct RestoreGrads {
    Layer& layer;
    std::vector<Tensor> saved;
    ~RestoreGrads() {
      for (std::size_t i = 0; i < saved.size(); ++i) layer.params()[i].grad = saved[i];
    }
  } restore{layer, {}};
  py::dict grads;
  for (auto& p : layer.params()) {
    restore.saved.push_back(p.grad);
    grads[py::str(p.name)] = new_f32(p.value.shape(), p.grad);
  }
  {
    py::gil_scoped_release release;  // safe: the arrays are held by this frame, the layer locked
    layer.backward_weight(x, dy, false);
  }
  return grads;
}

// Mean softmax cross-entropy of logits (N, classes) against int32 labels (N,), and its gradient.
py::tuple softmax_cross_entropy(const py::object& logits_arr, const py::object& labels_arr) {
  const Tensor logits = borrow_f32(logits_arr, "logits"), labels = borrow_s32(labels_arr, "labels");
  if (logits.ndim() != 2)
    throw py::value_error("logits must have shape (N, classes), got " + shape_str(logits.shape()));
  checked_product({logits.dim(0), logits.dim(1)}, kMaxKernelElements, [] { return std::string("logits"); });
  const int rows = static_cast<int>(logits.dim(0)), classes = static_cast<int>(logits.dim(1));  // fit: checked
  if (labels.ndim() != 1 || labels.dim(0) != rows)
    throw py::value_error("labels must have shape (" + std::to_string(rows) + ",), got " + shape_str(labels.shape()));
  for (int i = 0; i < rows; ++i)
    if (labels.s32()[i] < 0 || labels.s32()[i] >= classes)
      throw py::value_error("label " + std::to_string(labels.s32()[i]) + " at index " + std::to_string(i) +
                            " is outside [0, " + std::to_string(classes) + ")");
  Tensor grad;
  py::array_t<float> dlogits = new_f32(logits.shape(), grad);
  float loss = 0.0f;
  {
    py::gil_scoped_release release;  // safe: the arrays are held by this frame
    loss = kernels().softmax_xent_f32(rows, classes, logits.f32(), labels.s32(), 1.0f, grad.f32());
  }
  return py::make_tuple(loss, dlogits);
}

// A seed from the operating system's entropy (std::random_device), 63 bits so it fits an int64 in JSON and
// checkpoints. Layers and models built without a seed draw one and keep it, so the run can be rebuilt.
std::uint64_t fresh_seed() {
  std::random_device entropy;
  return ((static_cast<std::uint64_t>(entropy()) << 32) | entropy()) >> 1;
}

// A parameter layer built from Python starts initialized, from `seed` or from a fresh one.
template <class L>
std::shared_ptr<L> initialized(std::shared_ptr<L> layer, std::optional<std::uint64_t> seed) {
  layer->initialize(seed ? *seed : fresh_seed());
  return layer;
}

py::dict category_bytes(const std::array<std::size_t, kMemCategories>& bytes, std::size_t total) {
  py::dict d;
  for (std::size_t c = 0; c < kMemCategories; ++c) d[category_name(static_cast<MemCategory>(c))] = bytes[c];
  d["total"] = total;
  return d;
}

py::dict plan_dict(const MemoryPlan& plan) {
  py::list buffers;
  for (const PlannedBuffer& b : plan.buffers) {
    py::dict d;
    d["name"] = b.name;
    d["role"] = buffer_role_name(b.role);
    d["module"] = b.module;
    d["dtype"] = dtype_name(b.dtype);
    d["shape"] = b.shape;
    d["category"] = category_name(b.category);
    d["bytes"] = b.bytes;
    d["first_op"] = b.first_op;  // -1: the whole step
    d["last_op"] = b.last_op;
    d["shares"] = b.shares >= 0 ? py::object(py::str(plan.buffers[b.shares].name)) : py::object(py::none());
    d["offset"] = b.offset;
    buffers.append(d);
  }
  py::dict out;
  out["policy"] = memory_policy_name(plan.policy);
  out["input_shape"] = plan.input_shape;
  out["backprop_from_module"] = plan.bp_first;
  out["ops"] = plan.ops;
  py::list starts, fusions;  // modules whose forward runs with the next one or two as one kernel, and how
  for (std::size_t i = 0; i < plan.fused.size(); ++i) {
    if (plan.fused[i] == Fusion::none) continue;
    starts.append(i);
    py::dict f;
    f["module"] = i;
    f["kind"] = fusion_name(plan.fused[i]);
    f["modules"] = fusion_modules(plan.fused[i]);
    fusions.append(f);
  }
  out["fused_from_module"] = starts;
  out["fusions"] = fusions;
  out["buffers"] = buffers;
  out["bytes"] = category_bytes(plan.bytes, plan.total());
  return out;
}

// The model's switch of one fusion kind as a Python property, read and set under the model's lock.
auto fusion_switch_getter(Fusion kind) {
  return [kind](const Sequential& s) {
    const auto guard = lock_without_gil(s);
    return s.fusion_enabled(kind);
  };
}
auto fusion_switch_setter(Fusion kind) {
  return [kind](Sequential& s, bool on) {
    const auto guard = lock_without_gil(s);
    s.set_fusion_enabled(kind, on);
  };
}

py::dict owner_stats(std::uint64_t owner) {
  const MemoryStats s = MemoryTracker::instance().stats(owner);
  py::dict out;
  out["current"] = category_bytes(s.current, s.total_current);
  out["peak"] = category_bytes(s.peak, s.total_peak);
  return out;
}

Param& find_param(Sequential& m, const std::string& name) {
  for (auto& np : m.named_parameters())
    if (np.name == name) return *np.param;
  throw py::key_error("no parameter named '" + name + "'");
}

}  // namespace

void register_model(py::module_& m) {
  py::class_<Layer, std::shared_ptr<Layer>>(m, "Layer")
      .def_property_readonly("kind", &Layer::kind)
      .def_property_readonly("aliases_input", &Layer::aliases_input,
                             "Whether the output shares the input's storage (a view, an in-place ReLU).")
      .def("__repr__", &Layer::repr)
      .def("output_shape", [](const Layer& l, const Shape& in) { return l.output_shape(in); }, py::arg("input_shape"))
      .def("forward", &layer_forward, py::arg("x"), "Output for input x (a new array).")
      .def("backward_data", &layer_backward_data, py::arg("x"), py::arg("y"), py::arg("dy"),
           "dL/dx from this layer's input x, output y and the output error dy.")
      .def("backward_weight", &layer_backward_weight, py::arg("x"), py::arg("dy"),
           "dL/dparam for each parameter, as a dict of new arrays.")
      .def_property_readonly("num_params", &Layer::num_params)
      .def_property_readonly("precision", [](const Layer& l) { return precision_name(l.precision()); },
                             "'fp32' or 'int8' (NITI's integer layer).")
      .def_property_readonly("seed", [](const Layer& l) {
        const LayerGuard guard = lock_without_gil(l);
        return l.init_seed();
      }, "Seed the parameters were initialized from (None for a layer without parameters).")
      .def("parameters", [](const Layer& l) {
        const LayerGuard guard = lock_without_gil(l);
        py::dict d;
        for (const auto& p : l.params()) add_to_state(d, p.name, p.value);
        return d;
      }, "Copies of the parameters in their dtype; an int8 one is followed by '<name>.exponent'.")
      .def("set_parameter", [](Layer& l, const std::string& name, const py::object& a, const py::object& exponent) {
        const LayerGuard guard = lock_without_gil(l);
        for (auto& p : l.params())
          if (p.name == name) return copy_into(a, p.value, name, exponent);
        throw py::key_error(l.repr() + " has no parameter '" + name + "'");
      }, py::arg("name"), py::arg("value"), py::arg("exponent") = py::none(),
         "Copies `value` (the parameter's dtype and shape) in; an int8 parameter also takes its exponent.");

  // bias=None: a bias for fp32 layers, none for int8 ones (NITI has none; asking for one is an error).
  const auto precision_of = [](const std::string& p) { return parse_precision(p); };
  const auto bias_of = [](const std::optional<bool>& bias, const std::string& p) {
    return bias.value_or(parse_precision(p) == Precision::fp32);
  };
  py::class_<Conv2d, Layer, std::shared_ptr<Conv2d>>(m, "Conv2d")
      .def(py::init([=](std::int64_t in, std::int64_t out, std::int64_t kernel, std::int64_t padding,
                        std::optional<bool> bias, const py::object& seed, const std::string& precision) {
             return initialized(std::make_shared<Conv2d>(in, out, kernel, padding, bias_of(bias, precision),
                                                         precision_of(precision)),
                                seed_arg(seed));
           }),
           py::arg("in_channels"), py::arg("out_channels"), py::arg("kernel_size"), py::arg("padding") = 0,
           py::arg("bias") = py::none(), py::kw_only(), py::arg("seed") = py::none(), py::arg("precision") = "fp32",
           "Parameters initialized from `seed`, or from a fresh random seed (see .seed) when None. precision "
           "'int8': NITI's integer layer (int8 weight with an exponent, no bias).");
  py::class_<Linear, Layer, std::shared_ptr<Linear>>(m, "Linear")
      .def(py::init([=](std::int64_t in, std::int64_t out, std::optional<bool> bias, const py::object& seed,
                        const std::string& precision) {
             return initialized(
                 std::make_shared<Linear>(in, out, bias_of(bias, precision), false, precision_of(precision)),
                 seed_arg(seed));
           }),
           py::arg("in_features"), py::arg("out_features"), py::arg("bias") = py::none(), py::kw_only(),
           py::arg("seed") = py::none(), py::arg("precision") = "fp32",
           "Parameters initialized from `seed`, or from a fresh random seed (see .seed) when None. precision "
           "'int8': NITI's integer layer (int8 weight with an exponent, no bias).");
  m.def("PointLinear", [=](std::int64_t in, std::int64_t out, std::optional<bool> bias, const py::object& seed,
                           const std::string& precision) {
          return initialized(
              std::make_shared<Linear>(in, out, bias_of(bias, precision), true, precision_of(precision)),
              seed_arg(seed));
        },
        py::arg("in_features"), py::arg("out_features"), py::arg("bias") = py::none(), py::kw_only(),
        py::arg("seed") = py::none(), py::arg("precision") = "fp32",
        "Linear applied to every point of x[N, points, in_features] (PointNet's shared MLP); parameters as Linear.");
  m.def("fresh_seed", &fresh_seed, "A 63-bit seed from the operating system's entropy.");
  m.def("check_seed", [](const py::object& seed) { return unsigned_arg(seed, "seed", 64); }, py::arg("seed"),
        "`seed` as an int; ValueError unless an integer in [0, 2^64) (the rule of every seed the core takes).");
  py::class_<ReLU, Layer, std::shared_ptr<ReLU>>(m, "ReLU")
      .def(py::init([=](bool inplace, const std::string& p) { return std::make_shared<ReLU>(inplace, precision_of(p)); }),
           py::arg("inplace") = false, py::kw_only(), py::arg("precision") = "fp32");
  py::class_<MaxPool2d, Layer, std::shared_ptr<MaxPool2d>>(m, "MaxPool2d")
      .def(py::init([=](std::int64_t k, const std::string& p) { return std::make_shared<MaxPool2d>(k, precision_of(p)); }),
           py::arg("kernel_size"), py::kw_only(), py::arg("precision") = "fp32");
  py::class_<Flatten, Layer, std::shared_ptr<Flatten>>(m, "Flatten")
      .def(py::init([=](const std::string& p) { return std::make_shared<Flatten>(precision_of(p)); }), py::kw_only(),
           py::arg("precision") = "fp32");
  py::class_<PointMaxPool, Layer, std::shared_ptr<PointMaxPool>>(m, "PointMaxPool")
      .def(py::init([=](const std::string& p) { return std::make_shared<PointMaxPool>(precision_of(p)); }),
           py::kw_only(), py::arg("precision") = "fp32");

  m.def("softmax_cross_entropy", &softmax_cross_entropy, py::arg("logits"), py::arg("labels"),
        "(mean loss, dL/dlogits) of softmax cross-entropy; labels are int32 in [0, classes).");

  py::class_<Sequential, std::shared_ptr<Sequential>>(m, "Sequential")
      .def(py::init<>())
      .def("add", [](Sequential& s, const std::string& name, std::shared_ptr<Layer> layer) {
        py::gil_scoped_release release;  // add() waits for the model's and the layer's locks; no Python object used
        s.add(name, std::move(layer));
      }, py::arg("name"), py::arg("layer"),
         "Appends a module. A layer with parameters can belong to one model only; it then shares the model's lock.")
      .def("__len__", [](const Sequential& s) {
        const auto guard = lock_without_gil(s);
        return s.size();
      })
      .def("__getitem__", [](Sequential& s, py::ssize_t i) {
        const auto guard = lock_without_gil(s);
        const auto n = static_cast<py::ssize_t>(s.size());
        if (i < -n || i >= n)
          throw py::index_error("module index " + std::to_string(i) + " is out of range for " + std::to_string(n) +
                                " modules");
        const auto k = static_cast<std::size_t>(i < 0 ? i + n : i);
        return std::make_pair(s.name(k), s.layer(k).shared_from_this());
      }, py::arg("index"), "(name, layer) of module `index`.")
      .def_property_readonly("num_param_layers", [](const Sequential& s) {
        const auto guard = lock_without_gil(s);
        return s.num_param_layers();
      })
      .def_property_readonly("num_params", [](const Sequential& s) {
        const auto guard = lock_without_gil(s);
        return s.num_params();
      })
      .def("param_layer_names", [](Sequential& s) {
        const auto guard = lock_without_gil(s);
        std::vector<std::string> names;
        for (int p = 0; p < s.num_param_layers(); ++p) names.push_back(s.name(s.param_module(p)));
        return names;
      }, "Module name of each parameter layer, in order.")
      .def("init_parameters", [](Sequential& s, const py::object& seed_obj) {
        const std::uint64_t seed = unsigned_arg(seed_obj, "seed", 64);
        py::gil_scoped_release release;  // takes the model's lock; touches no Python object
        s.init_parameters(seed);
      }, py::arg("seed"), "PyTorch-style uniform initialization from a seed, identical on every platform.")
      .def_property_readonly("seed", [](const Sequential& s) {
        const auto guard = lock_without_gil(s);
        return s.init_seed();
      }, "Seed of the last init_parameters (None if the layers kept their own).")
      .def("output_shape", [](const Sequential& s, const Shape& in) {
        py::gil_scoped_release release;  // takes the model's lock; touches no Python object
        return s.output_shape(in);
      }, py::arg("input_shape"))
      .def("forward", [](Sequential& s, const py::object& x_arr) {
        // Held until the output is copied: another thread's forward or step would reallocate or overwrite it.
        const auto guard = lock_without_gil(s);
        const Tensor x = borrow_f32(x_arr, "x");
        s.output_shape(x.shape());
        {
          py::gil_scoped_release release;  // safe: x_arr is held by this frame, the model locked
          s.forward(x);
        }
        return model_output(s.output());
      }, py::arg("x"), "Model output for input x (a new float32 array; an int8 model's logits as v * 2^e).")
      .def_property_readonly("precision", [](const Sequential& s) {
        const auto guard = lock_without_gil(s);
        return precision_name(s.precision());
      }, "'fp32' or 'int8': what every module computes in.")
      .def_property("rounding",
                    [](const Sequential& s) {
                      const auto guard = lock_without_gil(s);
                      return rounding_schemes(s.rounding());
                    },
                    [](Sequential& s, const std::map<std::string, std::string>& schemes) {
                      const RoundingPolicy policy = rounding_policy(schemes);
                      const auto guard = lock_without_gil(s);
                      s.set_rounding(policy);
                    },
                    "INT8: {tensor class: rounding scheme} ('nearest', 'stochastic', 'pseudo_stochastic') for "
                    "'activations', 'errors', 'weight_grads', 'loss_grad'; the layers use the first two (a "
                    "stochastic scheme draws from a fixed key outside training), a trainer sets all four. Setting "
                    "it replaces the named classes and resets the others to NITI's first commit.")
      .def_property("memory_plan",
                    [](const Sequential& s) {
                      const auto guard = lock_without_gil(s);
                      return std::string(memory_policy_name(s.memory_policy()));
                    },
                    [](Sequential& s, const std::string& p) {
                      const MemoryPolicy policy = parse_memory_policy(p);
                      const auto guard = lock_without_gil(s);
                      s.set_memory_policy(policy);
                    },
                    "Allocation policy of the planned buffers: 'static' (each buffer its own memory for the whole "
                    "step, the paper's model) or 'lifetime' (buffers whose lifetimes do not overlap share memory).")
      .def_property("fuse_point_pool", fusion_switch_getter(Fusion::point_pool),
                    fusion_switch_setter(Fusion::point_pool),
                    "Whether a per-point Linear, its ReLU and a PointMaxPool that no backward goes through (ZO "
                    "passes, evaluation) run as one kernel that never writes the per-point output (default True). "
                    "The same bits either way.")
      .def_property("fuse_relu_pool", fusion_switch_getter(Fusion::relu_pool), fusion_switch_setter(Fusion::relu_pool),
                    "Whether an FP32 ReLU and the MaxPool2d after it that no backward goes through (ZO passes, "
                    "evaluation) run as one pooling of the ReLU's input, without writing the ReLU's output (default "
                    "True). The same bits either way.")
      .def("plan", [](Sequential& s, const Shape& input_shape, int zo_layers, const std::string& policy) {
        const auto guard = lock_without_gil(s);
        return plan_dict(s.plan_for(input_shape, s.first_module(zo_layers), parse_memory_policy(policy)));
      }, py::arg("input_shape"), py::arg("zo_layers"), py::arg("policy"),
         "The memory plan (every buffer, its bytes, category and lifetime in one pass of the step; the forward "
         "fusions, by start module and kind) for a training step with the first zo_layers parameter layers trained "
         "by ZO; allocates nothing.")
      .def("current_plan", [](const Sequential& s) -> py::object {
        const auto guard = lock_without_gil(s);  // a step on another thread may plan again meanwhile
        const MemoryPlan* p = s.current_plan();
        return p ? py::object(plan_dict(*p)) : py::none();
      }, "The plan the model's buffers are allocated from (None before the first pass).")
      .def("memory_stats", [](const Sequential& s) { return owner_stats(s.memory_owner()); },
           "Current and peak bytes per category of this model's memory: its parameters, planned buffers, and "
           "what trainers and kernels allocate for it.")
      .def("reset_peak_memory", [](const Sequential& s) { MemoryTracker::instance().reset_peak(s.memory_owner()); })
      .def("release_buffers", [](Sequential& s) {
        const auto guard = lock_without_gil(s);
        s.release_buffers();
      },
           "Frees every planned buffer (activations, errors, gradients, workspace); the next pass plans again.")
      .def("memory_records", [](const Sequential& s) {
        py::list out;
        for (const BufferRecord& r : MemoryTracker::instance().records(s.memory_owner())) {
          py::dict d;
          d["name"] = r.name;
          d["category"] = category_name(r.category);
          d["bytes"] = r.bytes;
          d["first_op"] = r.first_op;
          d["last_op"] = r.last_op;
          out.append(d);
        }
        return out;
      }, "The tracker's record of every live allocation of this model (name, category, bytes, lifetime).")
      .def("parameter_names", [](Sequential& s) {
        const auto guard = lock_without_gil(s);
        std::vector<std::string> names;
        for (auto& np : s.named_parameters()) names.push_back(np.name);
        return names;
      })
      .def("state_dict", [](Sequential& s) {
        // Under the model's lock, which a trainer holds for a whole step: never mid-step weights (theta +- eps z).
        const auto guard = lock_without_gil(s);
        py::dict d;
        for (auto& np : s.named_parameters()) add_to_state(d, np.name, np.param->value);
        return d;
      }, "Copies of all parameters by name, in their dtype; an int8 one is followed by '<name>.exponent'.")
      .def("parameter", [](Sequential& s, const std::string& name) {
        const auto guard = lock_without_gil(s);
        return to_numpy(find_param(s, name).value);
      }, py::arg("name"))
      .def("set_parameter", [](Sequential& s, const std::string& name, const py::object& a, const py::object& exponent) {
        const auto guard = lock_without_gil(s);
        copy_into(a, find_param(s, name).value, name, exponent);
      }, py::arg("name"), py::arg("value"), py::arg("exponent") = py::none(),
         "Copies `value` (the parameter's dtype and shape) in; an int8 parameter also takes its exponent.");
}

}  // namespace ez::py_bind
