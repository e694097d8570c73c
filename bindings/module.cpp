// elasticzo._core: the pybind11 module. Registration lives in the bind_*.cpp files.
#include "register.h"

PYBIND11_MODULE(_core, m) {
  m.doc() = "elasticzo C++ core";
  ez::py_bind::register_runtime(m);
  ez::py_bind::register_model(m);
  ez::py_bind::register_train(m);
  ez::py_bind::register_rng(m);
  ez::py_bind::register_int8(m);
  ez::py_bind::register_zo_int8(m);
}
