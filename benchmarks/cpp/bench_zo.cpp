// ZO perturbation cost: ns per element of zo_axpy_gaussian_f32 for every available ISA, on 1 thread and on all,
// at n = 61,706 (LeNet-5 conv1 + conv2 + fc1 weights, the ZO part of ZO-Feat-Cls1) or the size given as argv[1].
// The 1-thread figure is CPU time, so that other processes on a shared machine do not inflate it; the all-threads
// figure is wall time.
#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/parallel.h"
#include "kernels/kernels.h"
#include "rng/philox.h"

namespace {

double cpu_ns() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

double wall_ns() {
  return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Best of 7 runs of enough calls to take ~50 ms each, in ns per element.
double ns_per_element(const ez::KernelTable& t, std::vector<float>& theta, double (*clock)()) {
  const ez::PhiloxKey key = ez::step_key(1, 1);
  const auto run = [&](int calls) {
    const double t0 = clock();
    for (int c = 0; c < calls; ++c)
      t.zo_axpy_gaussian_f32(theta.size(), c % 2 ? 1e-3f : -1e-3f, key, 0, 0, theta.data(), theta.data());
    return clock() - t0;
  };
  int calls = 1;
  while (run(calls) < 5e7 && calls < (1 << 20)) calls *= 2;
  double best = 1e300;
  for (int rep = 0; rep < 7; ++rep) best = std::min(best, run(calls));
  return best / calls / static_cast<double>(theta.size());
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 61706;
  std::vector<float> theta(n, 0.5f);
  const int all = ez::num_threads();
  std::printf("zo_axpy_gaussian_f32, n = %zu: ns/element (us/call)\n%-8s %18s %18s\n", n, "isa", "1 thread, cpu",
              (std::to_string(all) + " threads, wall").c_str());
  for (const std::string& isa : ez::available_isas()) {
    const ez::KernelTable t = ez::make_kernel_table(isa);
    ez::set_num_threads(1);
    const double one = ns_per_element(t, theta, cpu_ns);
    ez::set_num_threads(all);
    const double many = ns_per_element(t, theta, wall_ns);
    std::printf("%-8s %8.3f (%7.1f) %8.3f (%7.1f)\n", isa.c_str(), one, one * n / 1e3, many, many * n / 1e3);
  }
  return 0;
}
