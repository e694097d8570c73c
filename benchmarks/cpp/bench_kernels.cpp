// Every kernel of kernels.inc (the list is expanded, not written here) on the LeNet-5 and PointNet shapes, per ISA
// table at 1 and 2 threads (workloads.h): GFLOP/s for the dense kernels (gemm/conv2d/linear; GOPS for the int8 ones;
// against this machine's FP32 peak measured two ways: an FMA-throughput register loop per ISA, and our own GEMM on a
// large square problem), elements per second for the others. Runs in a few minutes.
// The reference kernels are timed once per op, only at each network's smallest batch and only for ops of at most
// 1e8 flops (they run at 0.1-2 GFLOP/s); larger ones print "-". `bench_kernels pointnet` prints the peaks and the
// PointNet batch-32 table only (a few seconds; what benchmarks/pointnet_vs_torch.py's FLOP bound refers to). On a
// machine busy elsewhere, a 2-thread team waits for its descheduled thread at every parallel region: trust the
// 1-thread columns there.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench_timing.h"
#include "core/parallel.h"
#include "kernels/kernels.h"
#include "workloads.h"

#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

namespace {

using ez::bench::best_time;
using ez::bench::Clock;
using ez::bench::seconds_since;

// FMA-throughput loops: 12 independent accumulator chains hide the FMA latency on two pipes. Each returns the
// flops it did; the asm barrier keeps the accumulators in registers and the loop from being folded. A run lasts
// a few milliseconds, so the best of many runs is one that no other process interrupted.
constexpr long kFmaIters = 1000000;
#if defined(__x86_64__)
#define EZ_FMA_LOOP(reg, set1, fmadd, lanes)                                                               \
  reg a0 = set1(1.f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0,        \
      a10 = a0, a11 = a0;                                                                                  \
  const reg m = set1(0.999f), c = set1(1e-3f);                                                             \
  for (long i = 0; i < kFmaIters; ++i) {                                                                   \
    a0 = fmadd(a0, m, c); a1 = fmadd(a1, m, c); a2 = fmadd(a2, m, c); a3 = fmadd(a3, m, c);                \
    a4 = fmadd(a4, m, c); a5 = fmadd(a5, m, c); a6 = fmadd(a6, m, c); a7 = fmadd(a7, m, c);                \
    a8 = fmadd(a8, m, c); a9 = fmadd(a9, m, c); a10 = fmadd(a10, m, c); a11 = fmadd(a11, m, c);            \
    __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5), "+v"(a6), "+v"(a7),   \
                     "+v"(a8), "+v"(a9), "+v"(a10), "+v"(a11));                                            \
  }                                                                                                        \
  return 2.0 * 12 * lanes * kFmaIters;

__attribute__((target("avx2,fma"))) double fma_loop_avx2() {
  EZ_FMA_LOOP(__m256, _mm256_set1_ps, _mm256_fmadd_ps, 8)
}
__attribute__((target("avx512f"))) double fma_loop_avx512() {
  EZ_FMA_LOOP(__m512, _mm512_set1_ps, _mm512_fmadd_ps, 16)
}
#elif defined(__aarch64__)
double fma_loop_neon() {
  float32x4_t a[12];
  for (auto& v : a) v = vdupq_n_f32(1.f);
  const float32x4_t m = vdupq_n_f32(0.999f), c = vdupq_n_f32(1e-3f);
  for (long i = 0; i < kFmaIters; ++i) {
    for (auto& v : a) v = vfmaq_f32(c, v, m);
    __asm__ volatile("" : "+w"(a[0]), "+w"(a[1]), "+w"(a[2]), "+w"(a[3]), "+w"(a[4]), "+w"(a[5]), "+w"(a[6]),
                     "+w"(a[7]), "+w"(a[8]), "+w"(a[9]), "+w"(a[10]), "+w"(a[11]));
  }
  return 2.0 * 12 * 4 * kFmaIters;
}
#endif

// GFLOP/s of the FMA loop of `isa` on `threads` threads of the pool (0 for ref, which has none).
double fma_peak(const std::string& isa, int threads) {
  double (*loop)() = nullptr;
#if defined(__x86_64__)
  if (isa == "avx2") loop = fma_loop_avx2;
  if (isa == "avx512") loop = fma_loop_avx512;
#elif defined(__aarch64__)
  if (isa == "neon" || isa == "neon_dotprod") loop = fma_loop_neon;
#endif
  if (loop == nullptr) return 0.0;
  double best = 0.0;
  for (int rep = 0; rep < 40; ++rep) {
    std::vector<double> flops(static_cast<std::size_t>(threads));
    const auto t0 = Clock::now();
    ez::parallel_for(threads, threads, [&](std::int64_t t) { flops[static_cast<std::size_t>(t)] = loop(); });
    double total = 0.0;
    for (double f : flops) total += f;
    best = std::max(best, total / seconds_since(t0) / 1e9);
  }
  return best;
}

struct Column {
  std::string isa;
  int threads;
  KernelTable table;
};

// Prints one table (rows: kernel and shape, columns: ISA/threads): GFLOP/s for kernels that sum products,
// Gelem/s (elements per second) for the others. Returns the figures by ("<kernel> <shape>", column).
std::map<std::pair<std::string, int>, double> print_table(const std::string& title, const Net& net,
                                                          const std::vector<Column>& cols, bool with_ref) {
  std::printf("\n%s (GFLOP/s or int8 GOPS, or Gelem/s where marked)\n%-48s", title.c_str(), "");
  for (const auto& c : cols) {
    if (with_ref || c.isa != "ref") std::printf(" %12s", (c.isa + "/" + std::to_string(c.threads)).c_str());
  }
  std::printf("\n");
  std::map<std::pair<std::string, int>, double> out;
  for (const KernelOps& k : all_workloads(net)) {
    for (const Op& op : k.ops) {
      const std::string shape = op.name + (op.input.empty() ? "" : ", " + op.input);
      const std::string row = k.kernel + " " + shape + (op.flops ? "" : " [elem]");
      std::printf("%-48s", row.c_str());
      for (std::size_t i = 0; i < cols.size(); ++i) {
        const Column& c = cols[i];
        if (!with_ref && c.isa == "ref") continue;
        if (c.isa == "ref" && op.work > 1e8) {
          std::printf(" %12s", "-");
          continue;
        }
        ez::set_num_threads(c.threads);
        const double t = best_time([&] { op.call(c.table); }, c.isa == "ref" ? 0.0 : 0.03);
        out[{k.kernel + " " + shape, static_cast<int>(i)}] = op.work / t / 1e9;
        std::printf(" %12.2f", op.work / t / 1e9);
      }
      std::printf("\n");
      std::fflush(stdout);
    }
  }
  return out;
}

// The LeNet-5 forward (conv, ReLU, max-pool, linear layers) at one batch, in microseconds per call.
double lenet_forward_us(const KernelTable& t, int batch) {
  const ez::Conv2dShape c1{batch, 1, 28, 28, 6, 5, 2}, c2{batch, 6, 14, 14, 16, 5, 2};
  const ez::Pool2dShape p1{batch, 6, 28, 28, 2}, p2{batch, 16, 14, 14, 2};
  const std::vector<float> x = random_buf(static_cast<std::size_t>(batch) * 784, 7);
  const std::vector<float> w = random_buf(107786, 8);  // all parameters, layer after layer
  std::vector<float> a1(batch * 6 * 784), p1o(batch * 6 * 196), a2(batch * 16 * 196), p2o(batch * 784);
  std::vector<float> f1(batch * 120), f2(batch * 84), f3(batch * 10);
  const float* wp = w.data();
  const float *w1 = wp, *b1 = w1 + 150, *w2 = b1 + 6, *b2 = w2 + 2400, *w3 = b2 + 16, *b3 = w3 + 94080;
  const float *w4 = b3 + 120, *b4 = w4 + 10080, *w5 = b4 + 84, *b5 = w5 + 840;
  auto forward = [&] {
    t.conv2d_fwd_f32(c1, x.data(), w1, b1, a1.data());
    t.relu_fwd_f32(a1.size(), a1.data(), a1.data());
    t.maxpool2d_fwd_f32(p1, a1.data(), p1o.data());
    t.conv2d_fwd_f32(c2, p1o.data(), w2, b2, a2.data());
    t.relu_fwd_f32(a2.size(), a2.data(), a2.data());
    t.maxpool2d_fwd_f32(p2, a2.data(), p2o.data());
    t.linear_fwd_f32(ez::LinearShape{batch, 784, 120}, p2o.data(), w3, b3, f1.data());
    t.relu_fwd_f32(f1.size(), f1.data(), f1.data());
    t.linear_fwd_f32(ez::LinearShape{batch, 120, 84}, f1.data(), w4, b4, f2.data());
    t.relu_fwd_f32(f2.size(), f2.data(), f2.data());
    t.linear_fwd_f32(ez::LinearShape{batch, 84, 10}, f2.data(), w5, b5, f3.data());
  };
  return best_time(forward, 0.2) * 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  const bool pointnet_only = argc > 1 && std::string(argv[1]) == "pointnet";
  std::vector<Column> cols;
  for (const auto& isa : ez::available_isas()) {
    for (int threads : {1, 2}) cols.push_back({isa, threads, ez::kernel_table(isa)});
  }
  const int saved_threads = ez::num_threads();

  // Peak (a): FMA loop; peak (b): our GEMM on a 512^3 square problem (a few milliseconds, so again the best of
  // many runs is an uninterrupted one).
  std::printf("FP32 peak (GFLOP/s)          %12s %12s\n", "FMA loop", "GEMM 512^3");
  const int big = 512;
  const std::vector<float> ga = random_buf(static_cast<std::size_t>(big) * big, 9);
  const std::vector<float> gb = random_buf(static_cast<std::size_t>(big) * big, 10);
  std::vector<float> gc(static_cast<std::size_t>(big) * big);
  std::vector<double> fma(cols.size()), gemm(cols.size());
  for (std::size_t i = 0; i < cols.size(); ++i) {
    if (cols[i].isa == "ref") continue;
    ez::set_num_threads(cols[i].threads);
    fma[i] = fma_peak(cols[i].isa, cols[i].threads);
    const double t = best_time(
        [&] { cols[i].table.gemm_f32(false, false, big, big, big, ga.data(), big, gb.data(), big, false, gc.data(), big); },
        0.5);
    gemm[i] = 2.0 * big * big * big / t / 1e9;
    std::printf("%-28s %12.1f %12.1f\n", (cols[i].isa + "/" + std::to_string(cols[i].threads)).c_str(), fma[i],
                gemm[i]);
  }

  if (pointnet_only) {
    print_table("PointNet kernels, batch 32", pointnet(32), cols, false);
    ez::set_num_threads(saved_threads);
    return 0;
  }
  std::map<std::pair<std::string, int>, double> lenet64;
  for (int batch : {32, 64, 256}) {
    auto figures = print_table("LeNet-5 kernels, batch " + std::to_string(batch), lenet(batch), cols, batch == 32);
    if (batch == 64) lenet64 = figures;
  }
  for (int batch : {8, 32}) {
    print_table("PointNet kernels, batch " + std::to_string(batch), pointnet(batch), cols, batch == 8);
  }

  std::printf("\nconv2 6->16 14x14, batch 64: GFLOP/s (%% of the FMA-loop peak, %% of the GEMM peak)\n%-12s", "");
  const char* conv2_ops[] = {"conv2d_fwd_f32", "conv2d_bwd_data_f32", "conv2d_bwd_weight_f32"};
  for (const char* op : conv2_ops) std::printf(" %24s", op);
  std::printf("\n");
  for (std::size_t i = 0; i < cols.size(); ++i) {
    if (cols[i].isa == "ref") continue;
    std::printf("%-12s", (cols[i].isa + "/" + std::to_string(cols[i].threads)).c_str());
    for (const char* op : conv2_ops) {
      const double g = lenet64[{std::string(op) + " conv2 6->16 14x14", static_cast<int>(i)}];
      std::printf(" %8.1f (%5.1f%%, %5.1f%%)", g, 100.0 * g / fma[i], 100.0 * g / gemm[i]);
    }
    std::printf("\n");
  }

  std::printf("\nLeNet-5 forward (conv, ReLU, max-pool, fc), batch 64, microseconds\n");
  for (const auto& c : cols) {
    ez::set_num_threads(c.threads);
    std::printf("%-28s %12.1f\n", (c.isa + "/" + std::to_string(c.threads)).c_str(), lenet_forward_us(c.table, 64));
  }
  ez::set_num_threads(saved_threads);
  return 0;
}
