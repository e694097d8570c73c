// NITI's integer rules (int8/rules.h) from Python, for tests against a NumPy transcription of NITI.md and for
// experiments. Arrays must already have the exact dtype and be C-contiguous (TypeError/ValueError otherwise).
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "int8/rules.h"
#include "kernels/kernels.h"
#include "register.h"

namespace py = pybind11;

namespace ez::py_bind {

namespace {

using Key = std::pair<std::uint32_t, std::uint32_t>;

// A C-contiguous numpy array of exactly dtype T, else TypeError (dtype) or ValueError (layout) naming `name`.
template <class T>
py::array_t<T> exact(const py::handle& obj, const char* name) {
  if (!py::isinstance<py::array>(obj) || !py::reinterpret_borrow<py::array>(obj).dtype().equal(py::dtype::of<T>())) {
    const std::string got =
        py::isinstance<py::array>(obj) ? " of " + py::str(obj.attr("dtype")).cast<std::string>() : "";
    throw py::type_error(std::string(name) + " must be a numpy array of " +
                         py::str(py::dtype::of<T>()).cast<std::string>() + ", got " +
                         py::repr(py::type::of(obj)).cast<std::string>() + got);
  }
  auto arr = py::reinterpret_borrow<py::array_t<T>>(obj);
  if (!(arr.flags() & py::array::c_style)) throw py::value_error(std::string(name) + " must be C-contiguous");
  return arr;
}

std::size_t count(const py::array& a) { return static_cast<std::size_t>(a.size()); }

DrawStream draws(const Key& key, std::uint32_t stream, std::uint64_t offset) {
  return {{key.first, key.second}, stream, offset};
}

WeightInit parse_init(const std::string& name) {
  if (name == "xavier_normal") return WeightInit::xavier_normal;
  if (name == "xavier_uniform") return WeightInit::xavier_uniform;
  throw py::value_error("unknown init '" + name + "' (xavier_normal, xavier_uniform)");
}

}  // namespace

void register_int8(py::module_& m) {
  m.def(
      "int8_range",
      [](const py::object& x) {
        const auto a = exact<std::int32_t>(x, "x");
        return range_i32(count(a), a.data());
      },
      py::arg("x"), "NITI's range of an int32 tensor: the bit length of max|x| (0 for all zeros).");
  m.def(
      "int8_round_shift",
      [](const py::object& x, int s, const std::string& mode, const Key& key, std::uint32_t stream,
         std::uint64_t offset) {
        const auto a = exact<std::int32_t>(x, "x");
        if (s < 0 || s > 32) throw py::value_error("s must lie in [0, 32], got " + std::to_string(s));
        py::array_t<std::int8_t> y(std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()));
        round_shift_i8_ref(count(a), a.data(), s, parse_rounding(mode), draws(key, stream, offset), y.mutable_data());
        return y;
      },
      py::arg("x"), py::arg("s"), py::arg("mode"), py::arg("key") = Key{0, 0}, py::arg("stream") = 0u,
      py::arg("offset") = 0u,
      "round(x / 2^s) on sign and magnitude with mode 'nearest', 'stochastic' (draw i = Philox word offset + i of "
      "(key, stream)) or 'pseudo_stochastic', clipped to [-127, 127].");
  m.def(
      "int8_requantize",
      [](const py::object& acc, const std::string& mode, const Key& key, std::uint32_t stream, std::uint64_t offset) {
        const auto a = exact<std::int32_t>(acc, "acc");
        py::array_t<std::int8_t> y(std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()));
        const int s = requantize_i8(count(a), a.data(), parse_rounding(mode), draws(key, stream, offset),
                                    y.mutable_data());
        return py::make_tuple(y, s);
      },
      py::arg("acc"), py::arg("mode"), py::arg("key") = Key{0, 0}, py::arg("stream") = 0u, py::arg("offset") = 0u,
      "int32 accumulators to (int8 mantissas, shift s >= 0 to add to the exponent).");
  m.def(
      "int8_quantize_input",
      [](const py::object& x) {
        const auto a = exact<float>(x, "x");
        py::array_t<std::int8_t> v(std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()));
        const int e = quantize_input(count(a), a.data(), v.mutable_data());
        return py::make_tuple(v, e);
      },
      py::arg("x"), "A float32 batch to (int8 mantissas, exponent), NITI's input quantization.");
  m.def(
      "int8_init_weights",
      [](int fan_in, int fan_out, std::size_t n, const std::string& init, const Key& key, std::uint32_t stream) {
        py::array_t<std::int8_t> w(static_cast<py::ssize_t>(n));
        const int e = niti_init_weights(fan_in, fan_out, n, parse_init(init), {key.first, key.second}, stream,
                                        w.mutable_data());
        return py::make_tuple(w, e);
      },
      py::arg("fan_in"), py::arg("fan_out"), py::arg("n"), py::arg("init"), py::arg("key"), py::arg("stream"),
      "NITI's weight initialization: (int8 mantissas, exponent) from Xavier 'xavier_normal' or 'xavier_uniform'.");
  m.def(
      "int8_weight_update",
      [](const py::object& w, const py::object& grad, int mu, const std::string& mode, const Key& key,
         std::uint32_t stream, std::uint64_t offset) {
        auto wa = exact<std::int8_t>(w, "w");
        const auto g = exact<std::int32_t>(grad, "grad");
        if (count(wa) != count(g))
          throw py::value_error("w has " + std::to_string(count(wa)) + " elements, grad " + std::to_string(count(g)));
        if (!wa.writeable()) throw py::value_error("w must be writeable (it is updated in place)");
        return niti_weight_update(count(g), g.data(), mu, parse_rounding(mode), draws(key, stream, offset),
                                  wa.mutable_data());
      },
      py::arg("w"), py::arg("grad"), py::arg("mu"), py::arg("mode") = "pseudo_stochastic", py::arg("key") = Key{0, 0},
      py::arg("stream") = 0u, py::arg("offset") = 0u,
      "NITI's update of int8 weights in place with gradient bit-width mu; returns the shift s = range(grad) - mu.");
  m.def("int8_mu_for_epoch", &niti_mu_for_epoch, py::arg("epoch"),
        "The paper's mu schedule: 5, then 4 from epoch 20, then 3 from epoch 50 (epochs from 0).");
  m.def(
      "int8_xent_grad",
      [](const py::object& logits, int exponent, const py::object& labels, const std::string& mode, const Key& key,
         std::uint32_t stream, std::uint64_t offset) {
        const auto v = exact<std::int8_t>(logits, "logits");
        const auto y = exact<std::int32_t>(labels, "labels");
        if (v.ndim() != 2 || y.ndim() != 1 || y.shape(0) != v.shape(0))
          throw py::value_error("logits must be (rows, classes) and labels (rows,)");
        py::array_t<std::int8_t> g({v.shape(0), v.shape(1)});
        int_xent_grad(static_cast<int>(v.shape(0)), static_cast<int>(v.shape(1)), v.data(), exponent, y.data(),
                      parse_rounding(mode), draws(key, stream, offset), g.mutable_data());
        return g;
      },
      py::arg("logits"), py::arg("exponent"), py::arg("labels"), py::arg("mode") = "stochastic",
      py::arg("key") = Key{0, 0}, py::arg("stream") = 0u, py::arg("offset") = 0u,
      "NITI's integer cross-entropy gradient (exponent 0) of int8 logits with the given exponent.");
}

}  // namespace ez::py_bind
