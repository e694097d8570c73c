// ElasticZO-INT8's rules (int8/zo_int8.h) from Python: the sparse perturbation through the active kernels (so tests
// can compare every ISA with a NumPy transcription), the schedule, the update's shift and both ternary gradients.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "arrays.h"
#include "int8/zo_int8.h"
#include "kernels/kernels.h"
#include "register.h"

namespace py = pybind11;

namespace ez::py_bind {

namespace {

// int8 logits (rows, classes) and int32 labels (rows,), each label in [0, classes) (checked by the rules).
struct Logits {
  Tensor v;
  int rows, classes;
};

Logits logits_arg(const py::handle& obj, const std::string& name, const Tensor& labels) {
  Tensor v = borrow_s8(obj, name);
  if (v.ndim() != 2 || labels.ndim() != 1 || labels.dim(0) != v.dim(0))
    throw py::value_error(name + " must be (rows, classes) and labels (rows,), got " + shape_str(v.shape()) +
                          " and " + shape_str(labels.shape()));
  return {v, static_cast<int>(v.dim(0)), static_cast<int>(v.dim(1))};
}

}  // namespace

void register_zo_int8(py::module_& m) {
  m.def(
      "int8_zo_perturb",
      [](const py::object& w, const std::pair<std::uint32_t, std::uint32_t>& key, std::uint32_t stream,
         std::uint64_t offset, int r, double p_zero, int sign, int shift) {
        const Tensor wt = borrow_s8(w, "w");
        zo_check_perturbation(r, p_zero);
        if (sign != 1 && sign != -1) throw py::value_error("sign must be 1 or -1, got " + std::to_string(sign));
        if (shift < 0 || shift > 7) throw py::value_error("shift must lie in [0, 7], got " + std::to_string(shift));
        py::array_t<std::int8_t> out(std::vector<py::ssize_t>(wt.shape().begin(), wt.shape().end()));
        const SparsePerturbation p{{key.first, key.second}, stream, offset, r, zo_zero_threshold(p_zero)};
        kernels().zo_perturb_i8(static_cast<std::size_t>(wt.numel()), p, sign, shift, wt.s8(), out.mutable_data());
        return out;
      },
      py::arg("w"), py::arg("key"), py::arg("stream"), py::arg("offset"), py::arg("r"), py::arg("p_zero"),
      py::arg("sign") = 1, py::arg("shift") = 0,
      "clip(w + sign * R_shift(zeta), +-127) through the active kernels; zeta of element i is drawn from Philox word "
      "offset + i of (key, stream), |zeta| <= r, a fraction p_zero zeroed.");
  m.def("int8_zo_update_shift", &zo_update_shift, py::arg("r"), py::arg("b_zo"),
        "The ZO update's shift: range_bits(r) - b_zo, at least 0.");
  m.def("int8_zo_p_zero_for_epoch", &zo_p_zero_for_epoch, py::arg("epoch"),
        "The paper's sparsity schedule: 0.33, then 0.5 from epoch 20, then 0.9 from epoch 50 (epochs from 0).");
  m.def("int8_zo_zero_threshold", &zo_zero_threshold, py::arg("p_zero"),
        "round(p_zero * 2^16): a word's high half below it zeroes the element.");
  m.def(
      "int8_xent_dequantized",
      [](const py::object& logits, int exponent, const py::object& labels) {
        const Tensor y = borrow_s32(labels, "labels");
        const Logits l = logits_arg(logits, "logits", y);
        return xent_dequantized(l.rows, l.classes, l.v.s8(), exponent, y.s32());
      },
      py::arg("logits"), py::arg("exponent"), py::arg("labels"),
      "The mean FP32 cross-entropy of the logits logits * 2^exponent.");
  m.def(
      "int8_xent_log2",
      [](const py::object& logits, int exponent, const py::object& labels, int frac_bits) {
        const Tensor y = borrow_s32(labels, "labels");
        const Logits l = logits_arg(logits, "logits", y);
        return int_xent_log2(l.rows, l.classes, l.v.s8(), exponent, y.s32(), frac_bits);
      },
      py::arg("logits"), py::arg("exponent"), py::arg("labels"), py::arg("frac_bits") = 0,
      "Integer-only: sum over rows of log2 S (S = sum_j 2^alpha_j) with frac_bits fractional bits.");
  m.def(
      "int8_zo_sign",
      [](const py::object& plus, int e_plus, const py::object& minus, int e_minus, const py::object& labels,
         const std::string& method, int frac_bits) {
        const Tensor y = borrow_s32(labels, "labels");
        const Logits p = logits_arg(plus, "plus", y), q = logits_arg(minus, "minus", y);
        if (p.classes != q.classes) throw py::value_error("plus and minus must have the same shape");
        if (method == "fp32") return zo_sign_fp32(p.rows, p.classes, p.v.s8(), e_plus, q.v.s8(), e_minus, y.s32());
        if (method == "int")
          return zo_sign_int(p.rows, p.classes, p.v.s8(), e_plus, q.v.s8(), e_minus, y.s32(), frac_bits);
        throw py::value_error("method must be 'fp32' or 'int', got '" + method + "'");
      },
      py::arg("plus"), py::arg("e_plus"), py::arg("minus"), py::arg("e_minus"), py::arg("labels"),
      py::arg("method") = "fp32", py::arg("frac_bits") = 0,
      "The ternary ZO gradient sign(l+ - l-) from the two passes' int8 logits: 'fp32' (dequantized cross-entropy) "
      "or 'int' (integer only).");
}

}  // namespace ez::py_bind
