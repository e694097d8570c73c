// Integer kernel table (kernels_i8.inc): every implementation this CPU can run, by ISA level, for the tests,
// the benchmark and the integer layers.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "int8/rounding.h"
#include "kernels/shapes.h"

namespace ez {

#define EZ_KERNEL(name, sig) using name##_fn = sig; name##_fn name##_ref;
#include "kernels/kernels_i8.inc"
#undef EZ_KERNEL

struct I8KernelTable {
  std::string isa = "ref";  // "avx2", "avx_vnni", "avx512_vnni", "neon", "neon_dotprod"
#define EZ_KERNEL(name, sig) name##_fn* name = &name##_ref;
#include "kernels/kernels_i8.inc"
#undef EZ_KERNEL
};

// Every integer kernel level this CPU (and this build) supports, "ref" first, best last.
std::vector<I8KernelTable> i8_kernel_tables();
// The best of them at or below the active FP32 level (kernels().isa: ELASTICZO_ISA, set_isa).
const I8KernelTable& i8_kernels();

}  // namespace ez
