// Run-time kernel choice: detect CPU features once, build the table, let ELASTICZO_ISA or set_isa() override.
// This file is compiled without ISA flags, so nothing here can execute an instruction the CPU lacks.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <stdexcept>

#include "kernels/kernels.h"

#if defined(__aarch64__)
#include <sys/auxv.h>
#include <asm/hwcap.h>
#endif

namespace ez {

#if defined(__x86_64__) || defined(_M_X64)
#define EZ_IMPL(name) name##_fn name##_avx2;
#include "kernels/avx2.inc"
#undef EZ_IMPL
#define EZ_IMPL(name) name##_fn name##_avx512;
#include "kernels/avx512.inc"
#undef EZ_IMPL
#endif
#if defined(__aarch64__)
#define EZ_IMPL(name) name##_fn name##_neon;
#include "kernels/neon.inc"
#undef EZ_IMPL
#define EZ_IMPL(name) name##_fn name##_neon_dotprod;
#include "kernels/neon_dotprod.inc"
#undef EZ_IMPL
#endif

namespace {

struct Features {
  bool avx2 = false, avx512 = false, neon = false, dotprod = false;
};

Features detect() {
  Features f;
#if defined(__x86_64__) || defined(_M_X64)
  __builtin_cpu_init();
  // libgcc's checks include the OS (XGETBV) support for the wider registers.
  f.avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  f.avx512 = f.avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
#elif defined(__aarch64__)
  // getauxval, not /proc/cpuinfo: under qemu-user the latter describes the x86 host.
  const unsigned long hwcap = getauxval(AT_HWCAP);
  f.neon = (hwcap & HWCAP_ASIMD) != 0;
  f.dotprod = f.neon && (hwcap & HWCAP_ASIMDDP) != 0;
#endif
  return f;
}

const Features& features() {
  static const Features f = detect();
  return f;
}

std::mutex g_mutex;
std::unique_ptr<KernelTable> g_table;

std::string default_isa() {
  const char* env = std::getenv("ELASTICZO_ISA");
  if (env != nullptr && *env != '\0' && std::string(env) != "auto") return env;
  return available_isas().back();
}

}  // namespace

std::vector<std::string> available_isas() {
  std::vector<std::string> isas{"ref"};
  const Features& f = features();
  if (f.avx2) isas.push_back("avx2");
  if (f.avx512) isas.push_back("avx512");
  if (f.neon) isas.push_back("neon");
  if (f.dotprod) isas.push_back("neon_dotprod");
  return isas;
}

std::vector<std::string> cpu_features() {
  const Features& f = features();
  std::vector<std::string> out;
  if (f.avx2) out.push_back("avx2+fma");
  if (f.avx512) out.push_back("avx512f/bw/dq/vl");
  if (f.neon) out.push_back("asimd");
  if (f.dotprod) out.push_back("asimddp");
  return out;
}

KernelTable make_kernel_table(const std::string& isa) {
  bool known = false;
  for (const auto& a : available_isas()) known = known || a == isa;
  if (!known) {
    std::string avail;
    for (const auto& a : available_isas()) avail += (avail.empty() ? "" : ", ") + a;
    throw std::invalid_argument("ISA '" + isa + "' is not available on this CPU (available: " + avail + ")");
  }
  KernelTable t;
  t.isa = isa;
  // Each level starts from the one below it, so a kernel without a faster version keeps the best it has.
#if defined(__x86_64__) || defined(_M_X64)
  if (isa == "avx2" || isa == "avx512") {
#define EZ_IMPL(name) t.name = {&name##_avx2, "avx2"};
#include "kernels/avx2.inc"
#undef EZ_IMPL
  }
  if (isa == "avx512") {
#define EZ_IMPL(name) t.name = {&name##_avx512, "avx512"};
#include "kernels/avx512.inc"
#undef EZ_IMPL
  }
#endif
#if defined(__aarch64__)
  if (isa == "neon" || isa == "neon_dotprod") {
#define EZ_IMPL(name) t.name = {&name##_neon, "neon"};
#include "kernels/neon.inc"
#undef EZ_IMPL
  }
  if (isa == "neon_dotprod") {
#define EZ_IMPL(name) t.name = {&name##_neon_dotprod, "neon_dotprod"};
#include "kernels/neon_dotprod.inc"
#undef EZ_IMPL
  }
#endif
  return t;
}

std::vector<std::pair<std::string, std::string>> KernelTable::entries() const {
  std::vector<std::pair<std::string, std::string>> out;
#define EZ_KERNEL(name, sig) out.emplace_back(#name, name.isa);
#include "kernels/kernels.inc"
#undef EZ_KERNEL
  return out;
}

const KernelTable& kernels() {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (!g_table) g_table = std::make_unique<KernelTable>(make_kernel_table(default_isa()));
  return *g_table;
}

void set_isa(const std::string& isa) {
  KernelTable t = make_kernel_table(isa == "auto" ? available_isas().back() : isa);
  std::lock_guard<std::mutex> lock(g_mutex);
  // The old table is replaced, never freed while in use: callers hold a reference only for one call.
  g_table = std::make_unique<KernelTable>(std::move(t));
}

}  // namespace ez
