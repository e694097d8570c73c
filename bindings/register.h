// Each bind_*.cpp registers one part of the API on the module; module.cpp only calls them.
#pragma once
#include <pybind11/pybind11.h>

namespace ez::py_bind {
void register_runtime(pybind11::module_& m);
void register_model(pybind11::module_& m);
void register_train(pybind11::module_& m);
void register_rng(pybind11::module_& m);
void register_int8(pybind11::module_& m);
void register_zo_int8(pybind11::module_& m);
}  // namespace ez::py_bind
