// numpy boundary checks.
#include "arrays.h"

#include <cmath>
#include <cstdint>
#include <cstring>

namespace py = pybind11;

namespace ez::py_bind {

namespace {
Shape shape_of(const py::array& arr) {
  Shape s;
  for (py::ssize_t i = 0; i < arr.ndim(); ++i) s.push_back(arr.shape(i));
  return s;
}

void check_layout(const py::array& arr, const std::string& name) {
  if (!(arr.flags() & py::array::c_style))
    throw py::value_error(name + " must be C-contiguous (got a strided view of shape " + shape_str(shape_of(arr)) +
                          "); pass np.ascontiguousarray(" + name + ")");
  if (arr.size() == 0) throw py::value_error(name + " is empty (shape " + shape_str(shape_of(arr)) + ")");
  // A buffer at an odd byte offset (np.frombuffer(..., offset=1)) is legal numpy but not a valid float* in C++.
  if (!(arr.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_))
    throw py::value_error(name + " is not aligned to its element size; pass " + name + ".copy()");
}

// An exponent given from Python: an int (or a 0-d integer array) that fits in int32; bools and floats are refused.
int exponent_of(const py::object& obj, const std::string& name) {
  const std::string what = name + "'s exponent";
  if (py::isinstance<py::bool_>(obj)) throw py::type_error(what + " must be an int, got a bool");
  py::object index;
  try {
    index = py::module_::import("operator").attr("index")(obj);
  } catch (py::error_already_set&) {
    throw py::type_error(what + " must be an int, got " + std::string(py::str(py::type::handle_of(obj).attr("__name__"))));
  }
  long long v = 0;
  try {
    v = index.cast<long long>();
  } catch (py::cast_error&) {
    v = INT64_MAX;  // beyond long long: reported as out of range below
  }
  if (v < INT32_MIN || v > INT32_MAX) throw py::value_error(what + " " + std::to_string(v) + " does not fit in int32");
  return static_cast<int>(v);
}

// Whether no value is a NaN or an infinity (all exponent bits set). Branch-free, so it vectorizes: it runs on every
// training batch, where the early-exit loop that finds the index for the message took ~20 us per LeNet-5 batch.
bool all_finite(const float* p, py::ssize_t n) {
  std::uint32_t special = 0;
  for (py::ssize_t i = 0; i < n; ++i) {
    std::uint32_t bits;
    std::memcpy(&bits, p + i, sizeof bits);
    special |= static_cast<std::uint32_t>((bits & 0x7f800000u) == 0x7f800000u);
  }
  return special == 0;
}

py::array as_array(const py::handle& obj, const std::string& name, const char* dtype) {
  if (!py::isinstance<py::array>(obj)) {
    const py::handle type = py::type::handle_of(obj);
    const std::string module = py::str(type.attr("__module__")), qualname = py::str(type.attr("__qualname__"));
    throw py::type_error(name + (dtype[0] == 'i' ? " must be an " : " must be a ") + dtype + " array, got " +
                         (module == "builtins" ? qualname : module + "." + qualname) + "; convert with np.asarray(" +
                         name + ", dtype=np." + dtype + ")");
  }
  return py::reinterpret_borrow<py::array>(obj);
}
}  // namespace

Tensor borrow_f32(const py::handle& obj, const std::string& name, bool check_finite) {
  const py::array arr = as_array(obj, name, "float32");
  if (!py::isinstance<py::array_t<float>>(arr) || arr.dtype().kind() != 'f' || arr.itemsize() != 4)
    throw py::type_error(name + " must be a float32 array, got " + std::string(py::str(arr.dtype())) +
                         "; convert with " + name + ".astype(np.float32)");
  check_layout(arr, name);
  const float* p = static_cast<const float*>(arr.data());
  if (check_finite && !all_finite(p, arr.size()))
    for (py::ssize_t i = 0; i < arr.size(); ++i)
      if (!std::isfinite(p[i]))
        throw py::value_error(name + " contains a non-finite value (" + std::to_string(p[i]) + ") at flat index " +
                              std::to_string(i));
  return Tensor::borrow(const_cast<float*>(p), shape_of(arr), DType::f32);
}

Tensor borrow_s32(const py::handle& obj, const std::string& name) {
  const py::array arr = as_array(obj, name, "int32");
  if (arr.dtype().kind() != 'i' || arr.itemsize() != 4)
    throw py::type_error(name + " must be an int32 array, got " + std::string(py::str(arr.dtype())) +
                         "; convert with " + name + ".astype(np.int32)");
  check_layout(arr, name);
  return Tensor::borrow(const_cast<void*>(arr.data()), shape_of(arr), DType::s32);
}

Tensor borrow_s8(const py::handle& obj, const std::string& name) {
  const py::array arr = as_array(obj, name, "int8");
  if (arr.dtype().kind() != 'i' || arr.itemsize() != 1)
    throw py::type_error(name + " must be an int8 array, got " + std::string(py::str(arr.dtype())) +
                         "; convert with " + name + ".astype(np.int8)");
  check_layout(arr, name);
  const auto* p = static_cast<const std::int8_t*>(arr.data());
  for (py::ssize_t i = 0; i < arr.size(); ++i)
    if (p[i] == -128)  // NITI's mantissas are symmetric: -128 has no +128 to negate into
      throw py::value_error(name + " holds -128 at flat index " + std::to_string(i) +
                            "; int8 mantissas must lie in [-127, 127]");
  return Tensor::borrow(const_cast<std::int8_t*>(p), shape_of(arr), DType::s8);
}

py::array_t<float> new_f32(const Shape& shape, Tensor& view) {
  std::vector<py::ssize_t> dims(shape.begin(), shape.end());
  py::array_t<float> out(dims);
  view = Tensor::borrow(out.mutable_data(), shape, DType::f32);
  return out;
}

py::array to_numpy(const Tensor& t) {
  const std::vector<py::ssize_t> dims(t.shape().begin(), t.shape().end());
  py::array out;
  switch (t.dtype()) {
    case DType::f32: out = py::array_t<float>(dims); break;
    case DType::s8: out = py::array_t<std::int8_t>(dims); break;
    case DType::s32: out = py::array_t<std::int32_t>(dims); break;
  }
  std::memcpy(out.mutable_data(), t.raw(), t.nbytes());
  return out;
}

void copy_into(const py::handle& obj, Tensor& dst, const std::string& name, const py::object& exponent) {
  const bool int8 = dst.dtype() == DType::s8;
  if (int8 && exponent.is_none())
    throw py::value_error(name + " is an int8 tensor: give its exponent (value = mantissa * 2**exponent) too");
  if (!int8 && !exponent.is_none())
    throw py::value_error(name + " is " + dtype_name(dst.dtype()) + " and has no exponent");
  const Tensor src = dst.dtype() == DType::f32 ? borrow_f32(obj, name)
                     : int8                    ? borrow_s8(obj, name)
                                               : borrow_s32(obj, name);
  if (src.shape() != dst.shape())
    throw py::value_error(name + " has shape " + shape_str(src.shape()) + ", expected " + shape_str(dst.shape()));
  const int e = int8 ? exponent_of(exponent, name) : 0;
  std::memcpy(dst.raw(), src.raw(), dst.nbytes());
  if (int8) dst.set_exponent(e);
}

void add_to_state(py::dict& out, const std::string& name, const Tensor& t) {
  out[py::str(name)] = to_numpy(t);
  if (t.dtype() == DType::s8) {
    py::array_t<std::int32_t> e(std::vector<py::ssize_t>{});  // a 0-d array, so a state dict holds arrays only
    *e.mutable_data() = t.exponent();
    out[py::str(name + ".exponent")] = e;
  }
}

}  // namespace ez::py_bind
