// Taking a model's or layer's lock from Python: always wait for it with the GIL released.
#pragma once
#include <pybind11/pybind11.h>

namespace ez::py_bind {

// Waits for obj.lock() with the GIL released and returns holding both. A thread holding such a lock may wait for
// the GIL (to build arrays) because no thread ever waits for one of these locks while it holds the GIL: every
// binding that takes a lock goes through here.
template <class T>
auto lock_without_gil(const T& obj) {
  pybind11::gil_scoped_release release;
  return obj.lock();
}

}  // namespace ez::py_bind
