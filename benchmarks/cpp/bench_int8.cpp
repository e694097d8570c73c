// int8 kernels beside their FP32 counterparts: for every kernel `<op>_i8` of kernels.inc that has an `<op>_f32`
// (the list is expanded, not written here), GOPS (one multiply-add = 2 operations, as a FLOP pair) next to the FP32
// GFLOP/s on the same layer shapes (workloads.h: LeNet-5 at batch 64, PointNet at batch 8), per SIMD ISA level (the
// level's table picks the int8 implementation by its features: AVX-VNNI or AVX-512 VNNI, SDOT), at 1 and 2 threads,
// with the ratio int8 / FP32 in operations per second. Both sides of a ratio are timed in the same run, alternating
// in rounds, best time of each; the machine's load average is printed first and last (on a busy machine trust the
// 1-thread columns and the ratios).
// Usage: bench_int8 [--quick]   (--quick: the conv forwards of LeNet-5 only, for a short check)
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench_timing.h"
#include "core/parallel.h"
#include "kernels/kernels.h"
#include "workloads.h"

namespace {

using ez::bench::best_time;

void print_load(const char* when) {
  double load[3] = {0, 0, 0};
  if (getloadavg(load, 3) == 3) std::printf("load average %s: %.2f %.2f %.2f\n", when, load[0], load[1], load[2]);
}

// The FP32 op on the same layer as an int8 one (the FP32 kernel's speed does not depend on the input's signs).
const Op* peer(const std::vector<KernelOps>& all, const std::string& kernel, const std::string& layer) {
  for (const KernelOps& k : all)
    if (k.kernel == kernel)
      for (const Op& op : k.ops)
        if (op.name == layer && op.input.empty()) return &op;
  return nullptr;
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

void compare(const std::string& title, const Net& net, bool quick) {
  const std::vector<KernelOps> all = all_workloads(net);
  for (const std::string& level : ez::available_isas()) {
    if (level == "ref") continue;  // the references run at well under 1 GOPS: not a speed figure
    const KernelTable& t = ez::kernel_table(level);
    std::printf("\n%s, level %s: int8 GOPS, FP32 GFLOP/s, ratio\n%-58s %8s %8s %6s %8s %8s %6s\n", title.c_str(),
                level.c_str(), "", "i8/1", "f32/1", "x", "i8/2", "f32/2", "x");
    for (const KernelOps& k : all) {
      if (!ends_with(k.kernel, "_i8") || (quick && k.kernel != "conv2d_fwd_i8")) continue;
      const std::string f32_kernel = k.kernel.substr(0, k.kernel.size() - 3) + "_f32";
      std::string impl;
      for (const auto& [name, isa] : t.entries())
        if (name == k.kernel) impl = isa;
      for (const Op& op : k.ops) {
        const Op* f32 = peer(all, f32_kernel, op.name);
        if (f32 == nullptr) continue;  // no FP32 counterpart (requantization, the perturbation)
        const std::string row = k.kernel + " (" + impl + ") " + op.name + (op.input.empty() ? "" : ", " + op.input);
        std::printf("%-58s", row.c_str());
        for (int threads : {1, 2}) {
          ez::set_num_threads(threads);
          double ti = 1e30, tf = 1e30;
          for (int round = 0; round < 3; ++round) {  // alternate, so both see the same machine
            ti = std::min(ti, best_time([&] { op.call(t); }, 0.04, 400));
            tf = std::min(tf, best_time([&] { f32->call(t); }, 0.04, 400));
          }
          std::printf(" %8.1f %8.1f %6.2f", op.work / ti / 1e9, f32->work / tf / 1e9, tf / ti);
        }
        std::printf("\n");
        std::fflush(stdout);
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  print_load("at start");
  const int saved = ez::num_threads();
  compare("LeNet-5, batch 64", lenet(64), quick);
  if (!quick) compare("PointNet, batch 8", pointnet(8), quick);
  ez::set_num_threads(saved);
  print_load("at end");
  return 0;
}
