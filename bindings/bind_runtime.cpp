// Runtime controls: version, ISA choice, threads, memory tracker.
#include <pybind11/stl.h>

#include "core/parallel.h"
#include "kernels/kernels.h"
#include "memory/tracker.h"
#include "register.h"

namespace py = pybind11;

namespace ez::py_bind {

namespace {
py::dict memory_stats() {
  const MemoryStats s = MemoryTracker::instance().stats();
  py::dict current, peak;
  for (std::size_t i = 0; i < kMemCategories; ++i) {
    const char* name = category_name(static_cast<MemCategory>(i));
    current[name] = s.current[i];
    peak[name] = s.peak[i];
  }
  py::dict out;
  out["current"] = current;
  out["peak"] = peak;
  out["total_current"] = s.total_current;
  out["total_peak"] = s.total_peak;
  return out;
}

py::dict kernel_info() {
  py::dict out;
  for (const auto& [name, isa] : kernels().entries()) out[py::str(name)] = isa;
  return out;
}
}  // namespace

void register_runtime(py::module_& m) {
  m.attr("__version__") = ELASTICZO_VERSION;
  m.def("available_isas", &available_isas, "ISA levels this CPU can run, best last ('ref' always first).");
  m.def("active_isa", [] { return kernels().isa; }, "The ISA level of the kernels in use.");
  m.def("set_isa", &set_isa, py::arg("isa"),
        "Choose the kernels: 'ref', 'avx2', 'avx512', 'neon', 'neon_dotprod' or 'auto' (the best).");
  m.def("kernel_info", &kernel_info, "Kernel name -> implementation in use.");
  m.def("cpu_features", &cpu_features);
  m.def("num_threads", &num_threads);
  m.def("set_num_threads", &set_num_threads, py::arg("n"));
  m.def("thread_pool_enabled", &thread_pool_enabled, "False in a build without threads (ELASTICZO_THREADS=OFF).");
  m.def("memory_stats", &memory_stats, "Current and peak bytes per category (parameters, activations, ...).");
  m.def("reset_peak_memory", [] { MemoryTracker::instance().reset_peak(); });
}

}  // namespace ez::py_bind
