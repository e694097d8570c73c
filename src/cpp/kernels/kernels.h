// Kernel table: one function pointer per kernel in kernels.inc, filled once from the CPU's features.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/shapes.h"

namespace ez {

#define EZ_KERNEL(name, sig) using name##_fn = sig; name##_fn name##_ref;
#include "kernels/kernels.inc"
#undef EZ_KERNEL

template <class F>
struct Kernel {
  F* fn = nullptr;
  const char* isa = "ref";  // which implementation was chosen, for build_info()
  template <class... Args>
  decltype(auto) operator()(Args&&... args) const { return fn(static_cast<Args&&>(args)...); }
};

struct KernelTable {
  std::string isa;  // the ISA level this table was built for
#define EZ_KERNEL(name, sig) Kernel<name##_fn> name{&name##_ref, "ref"};
#include "kernels/kernels.inc"
#undef EZ_KERNEL
  // (kernel name, implementation ISA) for every entry, in kernels.inc order.
  std::vector<std::pair<std::string, std::string>> entries() const;
};

// ISA levels this CPU can run, best last: "ref" always, then e.g. "avx2", "avx512" or "neon", "neon_dotprod".
std::vector<std::string> available_isas();
// The table for one ISA level (throws std::invalid_argument if this CPU cannot run it).
KernelTable make_kernel_table(const std::string& isa);
// The active table: the best level, or ELASTICZO_ISA from the environment, or the last set_isa().
const KernelTable& kernels();
void set_isa(const std::string& isa);  // "auto" restores the best level

// CPU feature flags as detected (cpuid / getauxval), for build_info().
std::vector<std::string> cpu_features();

}  // namespace ez
