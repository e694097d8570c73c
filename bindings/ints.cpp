#include "ints.h"

#include <string>

namespace py = pybind11;

namespace ez::py_bind {

std::uint64_t unsigned_arg(const py::handle& h, const char* name, int bits) {
  PyObject* index = PyNumber_Index(h.ptr());
  if (index == nullptr) {
    PyErr_Clear();
    throw py::value_error(std::string(name) + " must be an integer, got " + py::repr(h).cast<std::string>());
  }
  const auto v = py::reinterpret_steal<py::int_>(index);
  const py::int_ limit = py::reinterpret_steal<py::int_>(PyLong_FromUnsignedLongLong(
      bits == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << bits) - 1));
  if (v < py::int_(0) || v > limit)
    throw py::value_error(std::string(name) + " must lie in [0, 2^" + std::to_string(bits) + "), got " +
                          py::str(v).cast<std::string>());
  return v.cast<std::uint64_t>();
}

std::optional<std::uint64_t> seed_arg(const py::handle& h) {
  if (h.is_none()) return std::nullopt;
  return unsigned_arg(h, "seed", 64);
}

}  // namespace ez::py_bind
