// Run-time kernel dispatch: the ISA list follows the CPU (cpuid / getauxval), ELASTICZO_ISA and set_isa choose the
// table, and unknown or unavailable ISAs are refused. ELASTICZO_EXPECT_DOTPROD=0/1 (set by scripts/arm/test-cpp.sh
// for qemu's cortex-a53 / cortex-a76) pins what the emulated CPU must report.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "kernels/kernels.h"
#include "rng/philox.h"

#if defined(__aarch64__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

namespace ez {
namespace {

bool has(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

TEST(Dispatch, RefIsAlwaysAvailableAndFirst) {
  const auto isas = available_isas();
  ASSERT_FALSE(isas.empty());
  EXPECT_EQ(isas.front(), "ref");
  for (const auto& [name, isa] : make_kernel_table("ref").entries()) EXPECT_EQ(isa, "ref") << name;
}

#if defined(__aarch64__)
TEST(Dispatch, ArmOffersNeonAlwaysAndDotprodExactlyWhenHwcapSaysSo) {
  const auto isas = available_isas();
  // getauxval, like dispatch.cpp: under qemu-user /proc/cpuinfo describes the x86 host.
  const bool hw_dotprod = (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
  EXPECT_TRUE(has(isas, "neon")) << "available: " << joined(isas);  // ASIMD is part of ARMv8.0-A
  EXPECT_EQ(has(isas, "neon_dotprod"), hw_dotprod) << "available: " << joined(isas);
  EXPECT_FALSE(has(isas, "avx2") || has(isas, "avx512")) << "available: " << joined(isas);
  if (const char* expect = std::getenv("ELASTICZO_EXPECT_DOTPROD")) {
    const std::string e = expect;
    ASSERT_TRUE(e == "0" || e == "1") << "ELASTICZO_EXPECT_DOTPROD must be 0 or 1, not '" << e << "'";
    const char* cpu = std::getenv("QEMU_CPU");
    EXPECT_EQ(hw_dotprod, e == "1") << "QEMU_CPU=" << (cpu ? cpu : "(unset)") << " available: " << joined(isas);
  }
}
#endif

#if defined(__x86_64__)
TEST(Dispatch, X86OffersWhatCpuidReports) {
  const auto isas = available_isas();
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  EXPECT_EQ(has(isas, "avx2"), avx2) << "available: " << joined(isas);
  if (has(isas, "avx512")) EXPECT_TRUE(avx2 && __builtin_cpu_supports("avx512f")) << "available: " << joined(isas);
  EXPECT_FALSE(has(isas, "neon") || has(isas, "neon_dotprod")) << "available: " << joined(isas);
}
#endif

// Each kernel of a level's table is the last implementation in kernels.inc whose features the CPU has and the level
// allows (the levels allow what their name says: avx2 never takes an AVX-512 kernel, neon never an SDOT one).
const KernelVariant* expected_variant(const std::string& kernel, const std::string& level) {
  const CpuFeatures allowed = level == "avx2"     ? kAvx2Fma | kFeatAvxVnni
                              : level == "avx512" ? kAvx512 | kFeatAvx512vnni | kFeatAvxVnni
                              : level == "neon"   ? kAsimd
                              : level == "neon_dotprod" ? kAsimdDotprod
                                                        : 0;
  const KernelVariant* best = nullptr;
  for (const KernelVariant& v : kernel_variants())
    if (v.kernel == kernel && v.runnable && (v.needs & allowed) == v.needs) best = &v;
  return best;
}

TEST(Dispatch, EachTableTakesTheLastImplementationItsFeaturesAllow) {
  for (const auto& level : available_isas()) {
    const KernelTable& t = kernel_table(level);
    EXPECT_EQ(t.isa, level);
    for (const auto& [name, isa] : t.entries()) {
      const KernelVariant* want = expected_variant(name, level);
      EXPECT_EQ(isa, want ? want->isa : "ref") << "table " << level << ": " << name;
    }
  }
}

// The dense kernels have an implementation for every SIMD level, so no SIMD table falls back to the reference.
TEST(Dispatch, SimdTablesUseSimdDenseKernels) {
  for (const auto& level : available_isas()) {
    if (level == "ref") continue;
    for (const auto& [name, isa] : kernel_table(level).entries())
      if (name.rfind("gemm_", 0) == 0 || name.rfind("conv2d_", 0) == 0 || name.rfind("linear_", 0) == 0)
        EXPECT_NE(isa, "ref") << name << " has no " << level << " implementation";
  }
}

// The integer dot-product kernels are picked by their own feature: vpdpbusd where the CPU has AVX-512 VNNI (this
// project's CI machine), SDOT exactly where it has the dot-product extension (qemu's Cortex-A76, not its A53).
TEST(Dispatch, IntegerDotProductKernelsFollowTheirFeature) {
  const std::string best = available_isas().back();
  const KernelTable& t = kernel_table(best);
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (best == "avx512") EXPECT_EQ(t.gemm_i8.isa == std::string("avx512_vnni"), __builtin_cpu_supports("avx512vnni") != 0);
  if (best != "ref") EXPECT_STRNE(t.conv2d_fwd_i8.isa, "ref");
#elif defined(__aarch64__)
  const bool dotprod = (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
  EXPECT_EQ(std::string(t.conv2d_fwd_i8.isa), dotprod ? "neon_dotprod" : "neon");
  EXPECT_STREQ(kernel_table("neon").linear_fwd_i8.isa, "neon");  // the ARMv8.0 level never takes SDOT
#endif
  for (const auto& [name, isa] : t.entries())
    if (name.size() > 3 && name.compare(name.size() - 3, 3, "_i8") == 0 && best != "ref") EXPECT_NE(isa, "ref") << name;
}

TEST(Dispatch, EveryVariantNamesItsFeatures) {
  for (const KernelVariant& v : kernel_variants()) {
    EXPECT_NE(v.needs, 0u) << v.kernel << "_" << v.isa;
    EXPECT_NE(feature_names(v.needs), "nothing");
  }
}

// A step running on one thread keeps calling through the table it looked up while another thread switches the ISA:
// tables are built once and never freed, so under AddressSanitizer this is clean (it was a use-after-free).
TEST(Dispatch, SetIsaWhileAnotherThreadCallsKernelsIsSafe) {
  std::atomic<bool> stop{false};
  std::vector<float> theta(4096, 0.0f);
  std::thread worker([&] {
    while (!stop.load()) {
      const KernelTable& t = kernels();
      for (int i = 0; i < 8; ++i)
        t.zo_axpy_gaussian_f32(theta.size(), 1e-3f, step_key(1, i), 0, 0, theta.data(), theta.data());
    }
  });
  const auto isas = available_isas();
  for (int round = 0; round < 2000; ++round) set_isa(isas[round % isas.size()]);
  stop = true;
  worker.join();
  set_isa("auto");
  EXPECT_EQ(kernels().isa, isas.back());
}

TEST(Dispatch, SetIsaChoosesTheTableAndAutoRestoresTheBest) {
  for (const auto& isa : available_isas()) {
    set_isa(isa);
    EXPECT_EQ(kernels().isa, isa);
  }
  set_isa("auto");
  EXPECT_EQ(kernels().isa, available_isas().back());
}

TEST(Dispatch, UnknownOrUnavailableIsaThrowsAndKeepsTheTable) {
  set_isa("ref");
  EXPECT_THROW(make_kernel_table("sse9"), std::invalid_argument);
  EXPECT_THROW(set_isa("sse9"), std::invalid_argument);
  EXPECT_THROW(set_isa(""), std::invalid_argument);
#if defined(__aarch64__)
  EXPECT_THROW(set_isa("avx2"), std::invalid_argument);
#else
  EXPECT_THROW(set_isa("neon"), std::invalid_argument);
#endif
  EXPECT_EQ(kernels().isa, "ref");
  set_isa("auto");
}

// ELASTICZO_ISA is read when the first kernel is looked up, so each case runs in a new process: "threadsafe" death
// tests start the test binary again (under qemu through binfmt_misc, with QEMU_CPU from the environment).
int startup_isa_is(const char* env, const std::string& expected) {
  setenv("ELASTICZO_ISA", env, 1);
  return kernels().isa == expected ? 0 : 1;
}

int startup_throws_invalid_argument(const char* env) {
  setenv("ELASTICZO_ISA", env, 1);
  try {
    kernels();
  } catch (const std::invalid_argument&) {
    return 0;
  }
  return 1;
}

TEST(Dispatch, EnvironmentChoosesTheStartupTable) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  for (const auto& isa : available_isas())
    EXPECT_EXIT(std::exit(startup_isa_is(isa.c_str(), isa)), testing::ExitedWithCode(0), "") << isa;
  EXPECT_EXIT(std::exit(startup_isa_is("auto", available_isas().back())), testing::ExitedWithCode(0), "");
  EXPECT_EXIT(std::exit(startup_throws_invalid_argument("sse9")), testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace ez
