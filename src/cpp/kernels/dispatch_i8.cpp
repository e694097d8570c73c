// Integer kernel levels this CPU can run (kernels_i8.h). Compiled without ISA flags: it only detects features.
// Each level starts from the one below it, so a kernel without a faster version keeps the best it has.
#include <cstdlib>
#include <string>

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

}  // namespace

std::vector<I8KernelTable> i8_kernel_tables() {
  static const std::vector<I8KernelTable> levels = detect();
  return levels;
}

const I8KernelTable& i8_kernels() {
  static const I8KernelTable best = [] {
    const auto levels = i8_kernel_tables();
    const char* env = std::getenv("ELASTICZO_ISA");
    return env != nullptr && std::string(env) == "ref" ? levels.front() : levels.back();
  }();
  return best;
}

}  // namespace ez
