// numpy <-> Tensor at the boundary: inputs must already be C-contiguous with the right dtype (a silent copy
// would hide a caller's mistake and lose in-place updates), finite, and non-empty; errors name the argument.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "core/tensor.h"

namespace ez::py_bind {

// Borrows a float32 array as a Tensor (no copy); the caller keeps `obj` alive during the call. Bindings take
// py::object rather than py::array so that a list or None reaches this check and gets its message.
Tensor borrow_f32(const pybind11::handle& obj, const std::string& name, bool check_finite = true);
// Borrows an int32 label vector.
Tensor borrow_s32(const pybind11::handle& obj, const std::string& name);
// A new numpy array with the tensor's shape, and a Tensor writing into it.
pybind11::array_t<float> new_f32(const Shape& shape, Tensor& view);
// A numpy copy of a tensor.
pybind11::array_t<float> to_numpy(const Tensor& t);
// Copies a numpy array into an existing tensor of the same shape (parameters, optimizer state).
void copy_into(const pybind11::handle& obj, Tensor& dst, const std::string& name);

}  // namespace ez::py_bind
