// Run-time kernel choice: detect CPU features once, build one table per ISA level once, and switch between them with
// an atomic pointer (ELASTICZO_ISA at startup, set_isa() later). Tables are never freed, so a step running on another
// thread can finish its calls through the table it started with.
// This file is compiled without ISA flags, so nothing here can execute an instruction the CPU lacks.
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <stdexcept>

#include "kernels/kernels.h"

#if defined(__aarch64__)
#include <sys/auxv.h>
#include <asm/hwcap.h>
#endif

namespace ez {

// Implementations compiled for this architecture: EZ_IMPL(name, isa, arch, ...) expands through EZ_ON_<arch>.
#if defined(__x86_64__) || defined(_M_X64)
#define EZ_ON_x86(...) __VA_ARGS__
#define EZ_ON_arm(...)
#elif defined(__aarch64__)
#define EZ_ON_x86(...)
#define EZ_ON_arm(...) __VA_ARGS__
#else
#define EZ_ON_x86(...)
#define EZ_ON_arm(...)
#endif
// The *_avx_vnni.cpp files are built only where the compiler knows -mavxvnni (cmake/ElasticzoCore.cmake).
#ifdef EZ_HAVE_AVXVNNI
#define EZ_ON_x86_avxvnni EZ_ON_x86
#else
#define EZ_ON_x86_avxvnni(...)
#endif

#define EZ_KERNEL(name, compare, sig)
#define EZ_IMPL(name, isa, arch, features) EZ_ON_##arch(name##_fn name##_##isa;)
#include "kernels/kernels.inc"
#undef EZ_IMPL
#undef EZ_KERNEL

namespace {

CpuFeatures detect() {
  CpuFeatures f = 0;
#if defined(__x86_64__) || defined(_M_X64)
  __builtin_cpu_init();
  // libgcc's checks include the OS (XGETBV) support for the wider registers.
  // (__builtin_cpu_supports takes only string literals.)
#define EZ_DETECT(feature, bit) \
  if (__builtin_cpu_supports(feature)) f |= bit;
  EZ_DETECT("avx2", kFeatAvx2)
  EZ_DETECT("fma", kFeatFma)
  EZ_DETECT("avx512f", kFeatAvx512f)
  EZ_DETECT("avx512bw", kFeatAvx512bw)
  EZ_DETECT("avx512dq", kFeatAvx512dq)
  EZ_DETECT("avx512vl", kFeatAvx512vl)
  EZ_DETECT("avx512vnni", kFeatAvx512vnni)
  EZ_DETECT("avxvnni", kFeatAvxVnni)
#undef EZ_DETECT
#elif defined(__aarch64__)
  // getauxval, not /proc/cpuinfo: under qemu-user the latter describes the x86 host.
  const unsigned long hwcap = getauxval(AT_HWCAP);
  if (hwcap & HWCAP_ASIMD) f |= kFeatAsimd;
  if (hwcap & HWCAP_ASIMDDP) f |= kFeatAsimdDotprod;
#endif
  return f;
}

CpuFeatures cpu() {
  static const CpuFeatures f = detect();
  return f;
}

// An ISA level: what the CPU must have for the level to exist, and which features its table may use. A level
// allows more than it requires, so an AVX-VNNI kernel joins the avx2 table on a CPU that has AVX-VNNI.
struct IsaLevel {
  const char* name;
  CpuFeatures needs, allows;
};

const IsaLevel kLevels[] = {
    {"ref", 0, 0},
#if defined(__x86_64__) || defined(_M_X64)
    {"avx2", kAvx2Fma, kAvx2Fma | kFeatAvxVnni},
    {"avx512", kAvx512, kAvx512 | kFeatAvx512vnni | kFeatAvxVnni},
#elif defined(__aarch64__)
    {"neon", kAsimd, kAsimd},
    {"neon_dotprod", kAsimdDotprod, kAsimdDotprod},
#endif
};

bool has_all(CpuFeatures have, CpuFeatures need) { return (have & need) == need; }

std::vector<KernelVariant> list_variants() {
  std::vector<KernelVariant> out;
#define EZ_IMPL(name, isa, arch, features)                                                         \
  EZ_ON_##arch(out.push_back({#name, #isa, features, has_all(cpu(), features),                     \
                              [](KernelTable& t) { t.name = {&name##_##isa, #isa}; }});)
#define EZ_KERNEL(name, compare, sig)
#include "kernels/kernels.inc"
#undef EZ_KERNEL
#undef EZ_IMPL
  return out;
}

KernelTable build_table(const IsaLevel& level) {
  KernelTable t;
  t.isa = level.name;
  const CpuFeatures usable = cpu() & level.allows;
  // Implementations are listed best last, so a later runnable one replaces an earlier one.
  for (const KernelVariant& v : kernel_variants())
    if (has_all(usable, v.needs)) v.install(t);
  return t;
}

// One table per available level, built on first use and never destroyed (not even at exit, where a detached
// thread could still be calling a kernel).
const std::vector<KernelTable>& tables() {
  static const std::vector<KernelTable>* all = [] {
    auto* v = new std::vector<KernelTable>;
    for (const IsaLevel& level : kLevels)
      if (has_all(cpu(), level.needs)) v->push_back(build_table(level));
    return v;
  }();
  return *all;
}

std::atomic<const KernelTable*> g_active{nullptr};
std::mutex g_init;

std::string default_isa() {
  const char* env = std::getenv("ELASTICZO_ISA");
  if (env != nullptr && *env != '\0' && std::string(env) != "auto") return env;
  return available_isas().back();
}

}  // namespace

const std::vector<KernelVariant>& kernel_variants() {
  static const std::vector<KernelVariant> all = list_variants();
  return all;
}

KernelTable table_with(const KernelVariant& v) {
  if (!v.runnable)
    throw std::invalid_argument(v.kernel + "_" + v.isa + " needs " + feature_names(v.needs) +
                                ", which this CPU does not report");
  KernelTable t = kernel_table("ref");
  t.isa = v.isa;
  v.install(t);
  return t;
}

std::vector<std::string> available_isas() {
  std::vector<std::string> isas;
  for (const KernelTable& t : tables()) isas.push_back(t.isa);
  return isas;
}

std::string feature_names(CpuFeatures f) {
  static const char* const names[] = {"avx2",     "fma",        "avx512f", "avx512bw", "avx512dq",
                                      "avx512vl", "avx512vnni", "avxvnni", "asimd",    "asimddp"};
  std::string out;
  for (int bit = 0; bit < 10; ++bit)
    if (f & (1u << bit)) out += (out.empty() ? "" : "+") + std::string(names[bit]);
  return out.empty() ? "nothing" : out;
}

std::vector<std::string> cpu_features() {
  std::vector<std::string> out;
  for (int bit = 0; bit < 10; ++bit)
    if (cpu() & (1u << bit)) out.push_back(feature_names(1u << bit));
  return out;
}

const KernelTable& kernel_table(const std::string& isa) {
  for (const KernelTable& t : tables())
    if (t.isa == isa) return t;
  std::string avail;
  for (const auto& a : available_isas()) avail += (avail.empty() ? "" : ", ") + a;
  throw std::invalid_argument("ISA '" + isa + "' is not available on this CPU (available: " + avail + ")");
}

KernelTable make_kernel_table(const std::string& isa) { return kernel_table(isa); }

std::vector<std::pair<std::string, std::string>> KernelTable::entries() const {
  std::vector<std::pair<std::string, std::string>> out;
#define EZ_KERNEL(name, compare, sig) out.emplace_back(#name, name.isa);
#include "kernels/kernels.inc"
#undef EZ_KERNEL
  return out;
}

const KernelTable& kernels() {
  const KernelTable* t = g_active.load(std::memory_order_acquire);
  if (t != nullptr) return *t;
  std::lock_guard<std::mutex> lock(g_init);  // the first lookup reads ELASTICZO_ISA exactly once
  t = g_active.load(std::memory_order_acquire);
  if (t == nullptr) {
    t = &kernel_table(default_isa());
    g_active.store(t, std::memory_order_release);
  }
  return *t;
}

void set_isa(const std::string& isa) {
  const KernelTable& t = kernel_table(isa == "auto" ? available_isas().back() : isa);
  std::lock_guard<std::mutex> lock(g_init);
  g_active.store(&t, std::memory_order_release);
}

}  // namespace ez
