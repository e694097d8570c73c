// Integer kernel levels this CPU can run (kernels_i8.h). Compiled without ISA flags: it only detects features.
// Each level starts from the one below it, so a kernel without a faster version keeps the best it has.
#include <cstdlib>
#include <string>

#include "kernels/kernels.h"
#include "kernels/kernels_i8.h"

#if defined(__aarch64__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

namespace ez {

#if defined(__x86_64__)
#define EZ_IMPL(name, isa) name##_fn name##_##isa;
#include "kernels/x86_i8.inc"
#undef EZ_IMPL
#endif
#if defined(__aarch64__)
#define EZ_IMPL(name, isa) name##_fn name##_##isa;
#include "kernels/arm_i8.inc"
#undef EZ_IMPL
#endif

namespace {

// Fills `t` with every kernel of level `level` (and keeps the others).
void fill(I8KernelTable& t, const std::string& level) {
  t.isa = level;
#define EZ_IMPL(name, isa) \
  if (level == #isa) t.name = &name##_##isa;
#if defined(__x86_64__)
#include "kernels/x86_i8.inc"
#endif
#if defined(__aarch64__)
#include "kernels/arm_i8.inc"
#endif
#undef EZ_IMPL
}

std::vector<I8KernelTable> detect() {
  std::vector<I8KernelTable> levels(1);  // ref
  // A level takes the kernels of each '+'-separated part in turn; its name is the last part.
  auto add = [&levels](const std::string& parts) {
    I8KernelTable t = levels.back();
    for (std::size_t i = 0, j; i <= parts.size(); i = j + 1) {
      j = parts.find('+', i);
      if (j == std::string::npos) j = parts.size();
      fill(t, parts.substr(i, j - i));
    }
    levels.push_back(t);
  };
#if defined(__x86_64__)
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2");
  const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512vl");
  if (avx2) add("avx2");
#ifdef EZ_HAVE_AVXVNNI
  if (avx2 && __builtin_cpu_supports("avxvnni")) add("avx_vnni");
#endif
  // AVX-512 VNNI takes the AVX-512 requantization as well ("avx512").
  if (avx512 && __builtin_cpu_supports("avx512vnni")) add("avx512+avx512_vnni");
#elif defined(__aarch64__)
  // getauxval, not /proc/cpuinfo: under qemu-user the latter describes the host.
  const unsigned long hwcap = getauxval(AT_HWCAP);
  if (hwcap & HWCAP_ASIMD) add("neon");
  if ((hwcap & HWCAP_ASIMD) && (hwcap & HWCAP_ASIMDDP)) add("neon_dotprod");
#endif
  return levels;
}

const std::vector<I8KernelTable>& all_levels() {
  static const std::vector<I8KernelTable>* all = new std::vector<I8KernelTable>(detect());  // never freed
  return *all;
}

// How far up its architecture's chain a level is: ref 0; avx2 (and AVX-VNNI on ymm) and neon 1; AVX-512 and
// SDOT 2. FP32 and integer levels compare by it.
int rank(const std::string& isa) {
  if (isa == "ref") return 0;
  if (isa == "avx512" || isa == "avx512_vnni" || isa == "neon_dotprod") return 2;
  return 1;
}

}  // namespace

std::vector<I8KernelTable> i8_kernel_tables() { return all_levels(); }

const I8KernelTable& i8_kernels() {
  // The best integer level at or below the active FP32 level, so ELASTICZO_ISA and set_isa() choose the integer
  // kernels too (and the tests can run a model on every path).
  const int want = rank(kernels().isa);
  const std::vector<I8KernelTable>& all = all_levels();
  for (std::size_t i = all.size(); i-- > 1;)
    if (rank(all[i].isa) <= want) return all[i];
  return all.front();
}

}  // namespace ez
