// Python integers at the boundary: pybind11's own conversion to an unsigned C++ type rejects a negative or too
// large value with a TypeError that lists signatures; these name the argument and its range instead.
#pragma once
#include <pybind11/pybind11.h>

#include <cstdint>
#include <optional>

namespace ez::py_bind {

// An integer (Python or numpy, anything with __index__) in [0, 2^bits), else ValueError naming the argument.
std::uint64_t unsigned_arg(const pybind11::handle& h, const char* name, int bits);
// A seed: None, or an integer in [0, 2^64).
std::optional<std::uint64_t> seed_arg(const pybind11::handle& h);

}  // namespace ez::py_bind
