// The counter-based generator from Python: raw Philox4x32-10 / 4x64-10 blocks (to compare with numpy and
// randomgen), the per-step key, and the normals z(key, stream, offset + i) made by the active kernels.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <utility>

#include "ints.h"
#include "kernels/kernels.h"
#include "register.h"
#include "rng/philox.h"

namespace py = pybind11;

namespace ez::py_bind {

namespace {

std::pair<std::uint64_t, std::uint64_t> key_arg(const py::tuple& key, const char* name, int bits) {
  if (key.size() != 2) throw py::value_error(std::string(name) + " must be a pair (k0, k1)");
  return {unsigned_arg(key[0], name, bits), unsigned_arg(key[1], name, bits)};
}

// One output block per row of an (n, 4) C-contiguous array of counters of dtype T (ValueError otherwise: a
// silent conversion would hide a caller's mistake).
template <class T, class Block>
py::array_t<T> map_blocks(const py::array& counters, Block block) {
  const py::dtype want = py::dtype::of<T>();
  if (!counters.dtype().equal(want) || counters.ndim() != 2 || counters.shape(1) != 4 ||
      !(counters.flags() & py::array::c_style))
    throw py::value_error("counters must be a C-contiguous (n, 4) array of " + py::str(want).cast<std::string>() +
                          ", got " + py::repr(counters.attr("dtype")).cast<std::string>() + " with shape " +
                          py::str(counters.attr("shape")).cast<std::string>());
  const auto n = static_cast<std::size_t>(counters.shape(0));
  py::array_t<T> out({static_cast<py::ssize_t>(n), py::ssize_t{4}});
  const T* in = static_cast<const T*>(counters.data());
  T* o = out.mutable_data();
  for (std::size_t i = 0; i < n; ++i) {
    const auto r = block({in[4 * i], in[4 * i + 1], in[4 * i + 2], in[4 * i + 3]});
    for (int j = 0; j < 4; ++j) o[4 * i + j] = r[j];
  }
  return out;
}

}  // namespace

void register_rng(py::module_& m) {
  m.def(
      "philox4x32",
      [](const py::array& counters, const py::tuple& key) {
        const auto [k0, k1] = key_arg(key, "key", 32);
        const PhiloxKey k{static_cast<std::uint32_t>(k0), static_cast<std::uint32_t>(k1)};
        return map_blocks<std::uint32_t>(counters, [k](PhiloxCounter c) { return philox4x32_10(c, k); });
      },
      py::arg("counters"), py::arg("key"),
      "Raw Philox4x32-10: one output block of 4 uint32 words per row of the (n, 4) uint32 counters.");
  m.def(
      "philox4x64",
      [](const py::array& counters, const py::tuple& key) {
        const auto [k0, k1] = key_arg(key, "key", 64);
        return map_blocks<std::uint64_t>(counters, [k0 = k0, k1 = k1](Philox64Counter c) {
          return philox4x64_10(c, {k0, k1});
        });
      },
      py::arg("counters"), py::arg("key"),
      "Raw Philox4x64-10 (numpy.random.Philox's block function): one block per row of the (n, 4) uint64 counters.");
  m.def(
      "step_key",
      [](const py::object& run_seed, const py::object& step) {
        const PhiloxKey k = step_key(unsigned_arg(run_seed, "run_seed", 64), unsigned_arg(step, "step", 64));
        return py::make_tuple(k.k0, k.k1);
      },
      py::arg("run_seed"), py::arg("step"),
      "The Philox4x32 key (k0, k1) of a training step: the first word of Philox4x64-10 at counter (step, 0, 0, 0) "
      "under key (run_seed, 0), low half k0.");
  m.def(
      "gaussian",
      [](const py::object& n, const py::tuple& key, const py::object& stream, const py::object& offset) {
        const std::uint64_t count = unsigned_arg(n, "n", 48);
        const auto [k0, k1] = key_arg(key, "key", 32);
        const PhiloxKey k{static_cast<std::uint32_t>(k0), static_cast<std::uint32_t>(k1)};
        const auto s = static_cast<std::uint32_t>(unsigned_arg(stream, "stream", 32));
        const std::uint64_t first = unsigned_arg(offset, "offset", 64);
        py::array_t<float> z(static_cast<py::ssize_t>(count));
        float* p = z.mutable_data();
        for (std::uint64_t i = 0; i < count; ++i) p[i] = 0.0f;
        const KernelTable& t = kernels();
        {
          // The kernel touches only `z`, which no other Python code can see yet.
          py::gil_scoped_release release;
          t.zo_axpy_gaussian_f32(static_cast<std::size_t>(count), 1.0f, k, s, first, p, p);
        }
        return z;
      },
      py::arg("n"), py::arg("key"), py::arg("stream"), py::arg("offset") = py::int_(0),
      "Standard normals z(key, stream, offset + i), i < n, from the active kernels (bit-identical on every ISA).");
}

}  // namespace ez::py_bind
