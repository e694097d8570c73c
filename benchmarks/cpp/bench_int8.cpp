// int8 kernels (kernels_i8.inc) beside the FP32 ones: GOPS (one multiply-add = 2 operations, as a FLOP pair) of
// every integer level next to the GFLOP/s of the FP32 level of the same vector ISA, on the LeNet-5 conv2 shape
// (batch 64) and the PointNet per-point layers, at 1 and 2 threads, with the ratio int8 / FP32 in ops per second.
// Both sides of a ratio are timed in the same run, alternating in rounds, best time of each; the machine's load
// average is printed first and last (on a busy machine trust the 1-thread columns and the ratios).
// Usage: bench_int8 [--quick]   (--quick: the conv2 forward only, for a short check)
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench_timing.h"
#include "core/parallel.h"
#include "kernels/kernels.h"
#include "kernels/kernels_i8.h"

namespace {

using ez::bench::best_time;

void print_load(const char* when) {
  double load[3] = {0, 0, 0};
  if (getloadavg(load, 3) == 3) std::printf("load average %s: %.2f %.2f %.2f\n", when, load[0], load[1], load[2]);
}

template <class T>
std::shared_ptr<std::vector<T>> random_vec(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  auto v = std::make_shared<std::vector<T>>(n);
  if constexpr (std::is_same_v<T, float>) {
    std::uniform_real_distribution<float> d(-1.f, 1.f);
    for (auto& x : *v) x = d(gen);
  } else {
    std::uniform_int_distribution<int> d(-127, 127);
    for (auto& x : *v) x = static_cast<T>(d(gen));
  }
  return v;
}

// One op in both precisions: its operation count and the call on an FP32 and on an int8 table.
struct Op {
  std::string name;
  double ops;
  std::function<void(const ez::KernelTable&)> f32;
  std::function<void(const ez::I8KernelTable&)> i8;
};

void add_conv(std::vector<Op>& ops, const std::string& name, const ez::Conv2dShape& s, bool all) {
  const std::size_t in = static_cast<std::size_t>(s.n) * s.c_in * s.h * s.w;
  const std::size_t out = static_cast<std::size_t>(s.n) * s.c_out * s.out_h() * s.out_w();
  const std::size_t taps = static_cast<std::size_t>(s.c_in) * s.k * s.k, wn = s.c_out * taps;
  auto xf = random_vec<float>(in, 1), wf = random_vec<float>(wn, 2), yf = random_vec<float>(out, 3);
  auto xi = random_vec<std::int8_t>(in, 1), wi = random_vec<std::int8_t>(wn, 2), yi = random_vec<std::int8_t>(out, 3);
  auto acc = std::make_shared<std::vector<std::int32_t>>(std::max(in, out));
  auto dwf = std::make_shared<std::vector<float>>(wn);
  const double n_ops = 2.0 * out * taps;
  ops.push_back({name + " fwd", n_ops,
                 [=](const ez::KernelTable& t) {
                   t.conv2d_fwd_f32(s, xf->data(), wf->data(), nullptr, yf->data());
                 },
                 [=](const ez::I8KernelTable& t) { t.conv2d_fwd_i8(s, xi->data(), wi->data(), acc->data()); }});
  // The input as a model's inner conv sees it: after a ReLU (and a max-pool), every value >= 0 (AVX2 then takes
  // vpmaddubsw). The FP32 kernel's speed does not depend on signs; it gets the same values.
  auto xi_pos = std::make_shared<std::vector<std::int8_t>>(*xi);
  auto xf_pos = std::make_shared<std::vector<float>>(*xf);
  for (auto& v : *xi_pos) v = static_cast<std::int8_t>(v < 0 ? -v : v);
  for (auto& v : *xf_pos) v = v < 0.f ? -v : v;
  ops.push_back({name + " fwd, input >= 0", n_ops,
                 [=](const ez::KernelTable& t) {
                   t.conv2d_fwd_f32(s, xf_pos->data(), wf->data(), nullptr, yf->data());
                 },
                 [=](const ez::I8KernelTable& t) { t.conv2d_fwd_i8(s, xi_pos->data(), wi->data(), acc->data()); }});
  if (!all) return;
  ops.push_back({name + " bwd_data", n_ops,
                 [=](const ez::KernelTable& t) {
                   t.conv2d_bwd_data_f32(s, yf->data(), wf->data(), xf->data());
                 },
                 [=](const ez::I8KernelTable& t) { t.conv2d_bwd_data_i8(s, yi->data(), wi->data(), acc->data()); }});
  ops.push_back({name + " bwd_weight", n_ops,
                 [=](const ez::KernelTable& t) {
                   t.conv2d_bwd_weight_f32(s, xf->data(), yf->data(), false, dwf->data(), nullptr);
                 },
                 [=](const ez::I8KernelTable& t) { t.conv2d_bwd_weight_i8(s, xi->data(), yi->data(), acc->data()); }});
}

void add_linear(std::vector<Op>& ops, const std::string& name, const ez::LinearShape& s) {
  const std::size_t in = static_cast<std::size_t>(s.rows) * s.in, out = static_cast<std::size_t>(s.rows) * s.out;
  const std::size_t wn = static_cast<std::size_t>(s.in) * s.out;
  auto xf = random_vec<float>(in, 1), wf = random_vec<float>(wn, 2), yf = random_vec<float>(out, 3);
  auto xi = random_vec<std::int8_t>(in, 1), wi = random_vec<std::int8_t>(wn, 2), yi = random_vec<std::int8_t>(out, 3);
  auto acc = std::make_shared<std::vector<std::int32_t>>(std::max({in, out, wn}));
  auto dwf = std::make_shared<std::vector<float>>(wn);
  const double n_ops = 2.0 * s.rows * s.in * s.out;
  ops.push_back({name + " fwd", n_ops,
                 [=](const ez::KernelTable& t) {
                   t.linear_fwd_f32(s, xf->data(), wf->data(), nullptr, yf->data());
                 },
                 [=](const ez::I8KernelTable& t) { t.linear_fwd_i8(s, xi->data(), wi->data(), acc->data()); }});
  ops.push_back({name + " bwd_data", n_ops,
                 [=](const ez::KernelTable& t) {
                   t.linear_bwd_data_f32(s, yf->data(), wf->data(), xf->data());
                 },
                 [=](const ez::I8KernelTable& t) { t.linear_bwd_data_i8(s, yi->data(), wi->data(), acc->data()); }});
  ops.push_back({name + " bwd_weight", n_ops,
                 [=](const ez::KernelTable& t) {
                   t.linear_bwd_weight_f32(s, xf->data(), yf->data(), false, dwf->data(), nullptr);
                 },
                 [=](const ez::I8KernelTable& t) { t.linear_bwd_weight_i8(s, xi->data(), yi->data(), acc->data()); }});
}

// The FP32 level with the same vectors as an integer level.
std::string fp32_peer(const std::string& i8) {
  if (i8 == "avx_vnni") return "avx2";
  if (i8 == "avx512_vnni") return "avx512";
  return i8;
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  print_load("at start");
  std::vector<Op> ops;
  add_conv(ops, "LeNet-5 conv2 6->16 14x14 b64", {64, 6, 14, 14, 16, 5, 2}, !quick);
  if (!quick) {
    const int widths[] = {3, 64, 64, 64, 128, 1024};
    for (int l = 0; l + 1 < 6; ++l)
      add_linear(ops, "PointNet pt" + std::to_string(l + 1) + " " + std::to_string(widths[l]) + "->" +
                          std::to_string(widths[l + 1]) + " b8",
                 {8 * 1024, widths[l], widths[l + 1]});
  }
  const auto fp32_isas = ez::available_isas();
  const int saved = ez::num_threads();
  for (const auto& lvl : ez::i8_kernel_tables()) {
    if (lvl.isa == "ref") continue;  // the reference runs at well under 1 GOPS: not a speed figure
    const std::string peer = fp32_peer(lvl.isa);
    if (std::find(fp32_isas.begin(), fp32_isas.end(), peer) == fp32_isas.end()) continue;
    const ez::KernelTable f32 = ez::make_kernel_table(peer);
    std::printf("\nint8 %s vs FP32 %s: int8 GOPS, FP32 GFLOP/s, ratio\n%-40s %8s %8s %6s %8s %8s %6s\n",
                lvl.isa.c_str(), peer.c_str(), "", "i8/1", "f32/1", "x", "i8/2", "f32/2", "x");
    for (const Op& op : ops) {
      std::printf("%-40s", op.name.c_str());
      for (int threads : {1, 2}) {
        ez::set_num_threads(threads);
        double ti = 1e30, tf = 1e30;
        for (int round = 0; round < 3; ++round) {  // alternate, so both see the same machine
          ti = std::min(ti, best_time([&] { op.i8(lvl); }, 0.04, 400));
          tf = std::min(tf, best_time([&] { op.f32(f32); }, 0.04, 400));
        }
        std::printf(" %8.1f %8.1f %6.2f", op.ops / ti / 1e9, op.ops / tf / 1e9, tf / ti);
      }
      std::printf("\n");
      std::fflush(stdout);
    }
  }
  ez::set_num_threads(saved);
  print_load("at end");
  return 0;
}
