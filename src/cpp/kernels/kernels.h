// Kernel tables: one function pointer per kernel in kernels.inc, each filled with the best implementation whose CPU
// features this machine has and the table's ISA level allows. Tables are built once and live for the process.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "int8/rounding.h"
#include "kernels/shapes.h"

namespace ez {

#define EZ_KERNEL(name, compare, sig) using name##_fn = sig; name##_fn name##_ref;
#include "kernels/kernels.inc"
#undef EZ_KERNEL

// CPU features an implementation may need (kernels.inc states them per implementation), as bits of a mask.
enum CpuFeature : std::uint32_t {
  kFeatAvx2 = 1u << 0, kFeatFma = 1u << 1, kFeatAvx512f = 1u << 2, kFeatAvx512bw = 1u << 3,
  kFeatAvx512dq = 1u << 4, kFeatAvx512vl = 1u << 5, kFeatAvx512vnni = 1u << 6, kFeatAvxVnni = 1u << 7,
  kFeatAsimd = 1u << 8, kFeatAsimdDotprod = 1u << 9,
};
using CpuFeatures = std::uint32_t;
// The feature sets the implementations of kernels.inc are compiled for (cmake/ElasticzoCore.cmake's flags).
constexpr CpuFeatures kAvx2Fma = kFeatAvx2 | kFeatFma;
constexpr CpuFeatures kAvx512 = kAvx2Fma | kFeatAvx512f | kFeatAvx512bw | kFeatAvx512dq | kFeatAvx512vl;
constexpr CpuFeatures kAsimd = kFeatAsimd;
constexpr CpuFeatures kAsimdDotprod = kFeatAsimd | kFeatAsimdDotprod;

template <class F>
struct Kernel {
  F* fn = nullptr;
  const char* isa = "ref";  // which implementation was chosen, for build_info()
  template <class... Args>
  decltype(auto) operator()(Args&&... args) const { return fn(static_cast<Args&&>(args)...); }
};

struct KernelTable {
  std::string isa;  // the ISA level this table was built for
#define EZ_KERNEL(name, compare, sig) Kernel<name##_fn> name{&name##_ref, "ref"};
#include "kernels/kernels.inc"
#undef EZ_KERNEL
  // (kernel name, implementation ISA) for every entry, in kernels.inc order.
  std::vector<std::pair<std::string, std::string>> entries() const;
};

// One optimized implementation listed in kernels.inc for this architecture.
struct KernelVariant {
  std::string kernel, isa;
  CpuFeatures needs;
  bool runnable;                  // this CPU reports every feature in `needs`
  void (*install)(KernelTable&);  // points the table's entry for `kernel` at this implementation
};
// Every optimized implementation compiled for this architecture, in kernels.inc order (tests and benchmarks walk it).
const std::vector<KernelVariant>& kernel_variants();
// A reference table with only `v`'s kernel replaced by `v` (throws std::invalid_argument if it cannot run here).
KernelTable table_with(const KernelVariant& v);

// ISA levels this CPU can run, best last: "ref" always, then e.g. "avx2", "avx512" or "neon", "neon_dotprod".
std::vector<std::string> available_isas();
// The table of one ISA level (std::invalid_argument if this CPU cannot run it). The reference lives as long as the
// process: a step may keep calling through it while another thread switches levels.
const KernelTable& kernel_table(const std::string& isa);
// A copy of kernel_table(isa), for callers that modify it.
KernelTable make_kernel_table(const std::string& isa);
// The active table: the best level, or ELASTICZO_ISA from the environment, or the last set_isa().
const KernelTable& kernels();
void set_isa(const std::string& isa);  // "auto" restores the best level

// CPU feature flags as detected (cpuid / getauxval), for build_info().
std::vector<std::string> cpu_features();
// Names of the features in a mask, e.g. "avx2+fma".
std::string feature_names(CpuFeatures f);

}  // namespace ez
