// numpy boundary checks.
#include "arrays.h"

#include <cmath>
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
  if (check_finite)
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

py::array_t<float> new_f32(const Shape& shape, Tensor& view) {
  std::vector<py::ssize_t> dims(shape.begin(), shape.end());
  py::array_t<float> out(dims);
  view = Tensor::borrow(out.mutable_data(), shape, DType::f32);
  return out;
}

py::array_t<float> to_numpy(const Tensor& t) {
  Tensor view;
  py::array_t<float> out = new_f32(t.shape(), view);
  std::memcpy(view.raw(), t.raw(), t.nbytes());
  return out;
}

void copy_into(const py::handle& obj, Tensor& dst, const std::string& name) {
  const Tensor src = borrow_f32(obj, name);
  if (src.shape() != dst.shape())
    throw py::value_error(name + " has shape " + shape_str(src.shape()) + ", expected " + shape_str(dst.shape()));
  std::memcpy(dst.raw(), src.raw(), dst.nbytes());
}

}  // namespace ez::py_bind
