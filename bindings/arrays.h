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
// Borrows an int8 array of NITI mantissas (every value in [-127, 127]).
Tensor borrow_s8(const pybind11::handle& obj, const std::string& name);
// A new numpy array with the tensor's shape, and a Tensor writing into it.
pybind11::array_t<float> new_f32(const Shape& shape, Tensor& view);
// A numpy copy of a tensor, in the tensor's own dtype (float32, int8 or int32).
pybind11::array to_numpy(const Tensor& t);
// Copies a numpy array of the tensor's dtype and shape into it (parameters, optimizer state); an int8 tensor also
// takes its exponent, which must then be given (and must not be for the other dtypes).
void copy_into(const pybind11::handle& obj, Tensor& dst, const std::string& name,
               const pybind11::object& exponent = pybind11::none());
// The tensors of a Param list as {name: array}, each int8 one followed by {name + ".exponent": int32 scalar}.
void add_to_state(pybind11::dict& out, const std::string& name, const Tensor& t);

}  // namespace ez::py_bind
