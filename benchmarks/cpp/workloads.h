// The workloads of every kernel of kernels.inc on the LeNet-5 and PointNet shapes, for the kernel benchmarks
// (bench_kernels, bench_int8): workloads_<name>(net) per kernel, so a kernels.inc entry without its workloads does
// not compile, and all_workloads(net) expands the list. Included by one translation unit per benchmark executable.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "kernels/kernels.h"
#include "rng/philox.h"

namespace {

using ez::KernelTable;

std::vector<float> random_buf(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

// One timed kernel call: what it is, its work (flops, or elements for kernels that do no arithmetic to speak of),
// and the call on a given table.
struct Op {
  std::string name;  // the layer (shape) it works on: kernels of the same op in two dtypes share it
  double work;
  std::function<void(const KernelTable&)> call;
  bool flops = false;  // work counts flops (kernels that sum products), else elements
  std::string input;   // what is special about the input, if anything ("input >= 0")
};

// The shapes of one network at one batch; each kernel of kernels.inc takes the ones it works on.
struct Net {
  std::vector<std::pair<std::string, ez::Conv2dShape>> convs;
  std::vector<std::pair<std::string, ez::LinearShape>> linears;
  std::vector<std::pair<std::string, ez::Pool2dShape>> pools;
  std::vector<std::pair<std::string, ez::PointPoolShape>> point_pools;
  std::vector<std::pair<std::string, std::size_t>> activations;  // ReLU sizes
  int point_layers = 0;  // the first linears that are per-point (PointNet), the last of them before the max-pool
  std::size_t params;
  int batch, classes;
};

using Buf = std::shared_ptr<std::vector<float>>;
Buf buf(std::size_t n, unsigned seed) { return std::make_shared<std::vector<float>>(random_buf(n, seed)); }

std::size_t in_size(const ez::Conv2dShape& s) { return static_cast<std::size_t>(s.n) * s.c_in * s.h * s.w; }
std::size_t out_size(const ez::Conv2dShape& s) {
  return static_cast<std::size_t>(s.n) * s.c_out * s.out_h() * s.out_w();
}
std::size_t taps(const ez::Conv2dShape& s) { return static_cast<std::size_t>(s.c_in) * s.k * s.k; }

// The workloads of each kernel on a network: a kernels.inc entry without its workloads_<name> does not compile.
std::vector<Op> workloads_gemm_f32(const Net& net) {
  std::vector<Op> ops;  // the linear layers' forward products
  for (const auto& [name, s] : net.linears) {
    auto a = buf(static_cast<std::size_t>(s.rows) * s.in, 1), b = buf(static_cast<std::size_t>(s.out) * s.in, 2);
    auto c = buf(static_cast<std::size_t>(s.rows) * s.out, 3);
    ops.push_back({name, 2.0 * s.rows * s.in * s.out, [=](const KernelTable& t) {
                     t.gemm_f32(false, true, s.rows, s.out, s.in, a->data(), s.in, b->data(), s.in, false, c->data(),
                                s.out);
                   }, true});
  }
  return ops;
}

std::vector<Op> workloads_conv2d_fwd_f32(const Net& net) {
  std::vector<Op> ops;
  for (const auto& [name, s] : net.convs) {
    auto x = buf(in_size(s), 1), w = buf(s.c_out * taps(s) + s.c_out, 2), y = buf(out_size(s), 3);
    ops.push_back({name, 2.0 * out_size(s) * taps(s), [=](const KernelTable& t) {
                     t.conv2d_fwd_f32(s, x->data(), w->data(), w->data() + s.c_out * taps(s), y->data());
                   }, true});
  }
  return ops;
}
std::vector<Op> workloads_conv2d_bwd_data_f32(const Net& net) {
  std::vector<Op> ops;
  for (const auto& [name, s] : net.convs) {
    auto dy = buf(out_size(s), 1), w = buf(s.c_out * taps(s), 2), dx = buf(in_size(s), 3);
    ops.push_back({name, 2.0 * out_size(s) * taps(s),
                   [=](const KernelTable& t) { t.conv2d_bwd_data_f32(s, dy->data(), w->data(), dx->data()); }, true});
  }
  return ops;
}
std::vector<Op> workloads_conv2d_bwd_weight_f32(const Net& net) {
  std::vector<Op> ops;
  for (const auto& [name, s] : net.convs) {
    auto x = buf(in_size(s), 1), dy = buf(out_size(s), 2), dw = buf(s.c_out * taps(s) + s.c_out, 3);
    ops.push_back({name, 2.0 * out_size(s) * taps(s), [=](const KernelTable& t) {
                     t.conv2d_bwd_weight_f32(s, x->data(), dy->data(), false, dw->data(),
                                             dw->data() + s.c_out * taps(s));
                   }, true});
  }
  return ops;
}

std::vector<Op> workloads_linear_fwd_f32(const Net& net) {
  std::vector<Op> ops;
  for (const auto& [name, s] : net.linears) {
    auto x = buf(static_cast<std::size_t>(s.rows) * s.in, 1), w = buf(static_cast<std::size_t>(s.out) * (s.in + 1), 2);
    auto y = buf(static_cast<std::size_t>(s.rows) * s.out, 3);
    ops.push_back({name, 2.0 * s.rows * s.in * s.out, [=](const KernelTable& t) {
                     t.linear_fwd_f32(s, x->data(), w->data(), w->data() + s.out * s.in, y->data());
                   }, true});
  }
  return ops;
}
std::vector<Op> workloads_linear_bwd_data_f32(const Net& net) {
  std::vector<Op> ops;
  for (const auto& [name, s] : net.linears) {
    auto dy = buf(static_cast<std::size_t>(s.rows) * s.out, 1), w = buf(static_cast<std::size_t>(s.out) * s.in, 2);
    auto dx = buf(static_cast<std::size_t>(s.rows) * s.in, 3);
    ops.push_back({name, 2.0 * s.rows * s.in * s.out,
                   [=](const KernelTable& t) { t.linear_bwd_data_f32(s, dy->data(), w->data(), dx->data()); }, true});
  }
  return ops;
}
std::vector<Op> workloads_linear_bwd_weight_f32(const Net& net) {
  std::vector<Op> ops;
  for (const auto& [name, s] : net.linears) {
    auto x = buf(static_cast<std::size_t>(s.rows) * s.in, 1), dy = buf(static_cast<std::size_t>(s.rows) * s.out, 2);
    auto dw = buf(static_cast<std::size_t>(s.out) * (s.in + 1), 3);
    ops.push_back({name, 2.0 * s.rows * s.in * s.out, [=](const KernelTable& t) {
                     t.linear_bwd_weight_f32(s, x->data(), dy->data(), false, dw->data(), dw->data() + s.out * s.in);
                   }, true});
  }
  return ops;
}

std::vector<Op> workloads_relu_fwd_f32(const Net& net) {
  std::vector<Op> ops;
  for (const auto& [name, n] : net.activations) {
    auto x = buf(n, 1), y = buf(n, 2);
    ops.push_back({name, static_cast<double>(n), [=, n = n](const KernelTable& t) {
                     t.relu_fwd_f32(n, x->data(), y->data());
                   }});
  }
  return ops;
}
std::vector<Op> workloads_relu_bwd_f32(const Net& net) {
  std::vector<Op> ops;
  for (const auto& [name, n] : net.activations) {
    auto y = buf(n, 1), dy = buf(n, 2), dx = buf(n, 3);
    ops.push_back({name, static_cast<double>(n), [=, n = n](const KernelTable& t) {
                     t.relu_bwd_f32(n, y->data(), dy->data(), dx->data());
                   }});
  }
  return ops;
}

template <class Shape>
std::size_t pool_in(const Shape& s);
template <>
std::size_t pool_in(const ez::Pool2dShape& s) { return static_cast<std::size_t>(s.n) * s.c * s.h * s.w; }
template <>
std::size_t pool_in(const ez::PointPoolShape& s) { return static_cast<std::size_t>(s.n) * s.points * s.c; }
std::size_t pool_out(const ez::Pool2dShape& s) { return static_cast<std::size_t>(s.n) * s.c * s.out_h() * s.out_w(); }
std::size_t pool_out(const ez::PointPoolShape& s) { return static_cast<std::size_t>(s.n) * s.c; }

// Forward or backward of a pooling kernel over its input elements; backward gets a real forward output.
template <class Shape, class Fwd, class Bwd>
std::vector<Op> pool_workloads(const std::vector<std::pair<std::string, Shape>>& shapes, bool backward,
                               Fwd KernelTable::*fwd, Bwd KernelTable::*bwd) {
  std::vector<Op> ops;
  for (const auto& [name, s] : shapes) {
    auto x = buf(pool_in(s), 1), y = buf(pool_out(s), 2), dy = buf(pool_out(s), 3), dx = buf(pool_in(s), 4);
    (ez::kernel_table("ref").*fwd)(s, x->data(), y->data());
    if (backward)
      ops.push_back({name, static_cast<double>(pool_in(s)), [=, s = s](const KernelTable& t) {
                       (t.*bwd)(s, x->data(), y->data(), dy->data(), dx->data());
                     }});
    else
      ops.push_back({name, static_cast<double>(pool_in(s)),
                     [=, s = s](const KernelTable& t) { (t.*fwd)(s, x->data(), y->data()); }});
  }
  return ops;
}
std::vector<Op> workloads_maxpool2d_fwd_f32(const Net& net) {
  return pool_workloads(net.pools, false, &KernelTable::maxpool2d_fwd_f32, &KernelTable::maxpool2d_bwd_f32);
}
std::vector<Op> workloads_maxpool2d_relu_fwd_f32(const Net& net) {
  return pool_workloads(net.pools, false, &KernelTable::maxpool2d_relu_fwd_f32, &KernelTable::maxpool2d_bwd_f32);
}
std::vector<Op> workloads_maxpool2d_bwd_f32(const Net& net) {
  return pool_workloads(net.pools, true, &KernelTable::maxpool2d_fwd_f32, &KernelTable::maxpool2d_bwd_f32);
}
// int8 mantissas of the pooled layers (LeNet's pool1, pool2), as the INT8 forward pools them.
std::vector<Op> workloads_maxpool2d_fwd_i8(const Net& net) {
  std::vector<Op> ops;
  for (const auto& [name, s] : net.pools) {
    auto x = std::make_shared<std::vector<std::int8_t>>(pool_in(s));
    auto y = std::make_shared<std::vector<std::int8_t>>(pool_out(s));
    for (std::size_t i = 0; i < x->size(); ++i) (*x)[i] = static_cast<std::int8_t>((i * 37) % 255 - 127);
    ops.push_back({name, static_cast<double>(pool_in(s)),
                   [=, s = s](const KernelTable& t) { t.maxpool2d_fwd_i8(s, x->data(), y->data()); }});
  }
  return ops;
}
std::vector<Op> workloads_point_maxpool_fwd_f32(const Net& net) {
  return pool_workloads(net.point_pools, false, &KernelTable::point_maxpool_fwd_f32,
                        &KernelTable::point_maxpool_bwd_f32);
}
std::vector<Op> workloads_point_maxpool_bwd_f32(const Net& net) {
  return pool_workloads(net.point_pools, true, &KernelTable::point_maxpool_fwd_f32,
                        &KernelTable::point_maxpool_bwd_f32);
}

// The last per-point layer with its ReLU and the max over the points in one pass (flops of the layer's GEMM), to
// set against linear_fwd_f32 + relu_fwd_f32 + point_maxpool_fwd_f32 on the same shape.
std::vector<Op> workloads_point_linear_relu_max_f32(const Net& net) {
  std::vector<Op> ops;
  for (const auto& [name, p] : net.point_pools) {
    const ez::LinearShape s = net.linears[net.point_layers - 1].second;
    auto x = buf(static_cast<std::size_t>(s.rows) * s.in, 1), w = buf(static_cast<std::size_t>(s.out) * (s.in + 1), 2);
    auto y = buf(static_cast<std::size_t>(p.n) * s.out, 3);
    ops.push_back({net.linears[net.point_layers - 1].first + " + relu + " + name, 2.0 * s.rows * s.in * s.out,
                   [=, points = p.points](const KernelTable& t) {
                     t.point_linear_relu_max_f32(s, points, x->data(), w->data(), w->data() + s.out * s.in, y->data());
                   }, true});
  }
  return ops;
}

std::vector<Op> workloads_softmax_xent_f32(const Net& net) {
  const int rows = net.batch, classes = net.classes;
  auto logits = buf(static_cast<std::size_t>(rows) * classes, 1), grad = buf(logits->size(), 2);
  auto labels = std::make_shared<std::vector<std::int32_t>>(rows);
  for (int r = 0; r < rows; ++r) (*labels)[r] = r % classes;
  return {{"logits " + std::to_string(rows) + "x" + std::to_string(classes), static_cast<double>(logits->size()),
           [=](const KernelTable& t) {
             t.softmax_xent_f32(rows, classes, logits->data(), labels->data(), 1.0f, grad->data());
           }}};
}

// The SGD step and the ZO perturbation run over all parameters.
std::vector<Op> workloads_axpy_f32(const Net& net) {
  auto x = buf(net.params, 1), y = buf(net.params, 2);
  const std::size_t n = net.params;
  return {{"all parameters", static_cast<double>(n), [=](const KernelTable& t) { t.axpy_f32(n, -0.01f, x->data(), y->data()); }}};
}
std::vector<Op> workloads_zo_axpy_gaussian_f32(const Net& net) {
  auto theta = buf(net.params, 1), out = buf(net.params, 2);  // a ZO pass's operand, built aside
  const std::size_t n = net.params;
  return {{"all parameters", static_cast<double>(n), [=](const KernelTable& t) {
             t.zo_axpy_gaussian_f32(n, 1e-3f, ez::step_key(1, 2), 0, 0, theta->data(), out->data());
           }}};
}

// The model input of one step, which an INT8 model quantizes (its first layer's input).
std::size_t model_input(const Net& net) {
  if (!net.convs.empty()) return in_size(net.convs.front().second);
  const ez::LinearShape& s = net.linears.front().second;
  return static_cast<std::size_t>(s.rows) * s.in;
}
std::vector<Op> workloads_max_abs_bits_f32(const Net& net) {
  const std::size_t n = model_input(net);
  auto x = buf(n, 7);
  return {{"input " + std::to_string(n), static_cast<double>(n),
           [=](const KernelTable& t) { t.max_abs_bits_f32(n, x->data()); }}};
}
std::vector<Op> workloads_quantize_f32_i8(const Net& net) {
  const std::size_t n = model_input(net);
  auto x = buf(n, 8);
  auto v = std::make_shared<std::vector<std::int8_t>>(n);
  return {{"input " + std::to_string(n), static_cast<double>(n),
           [=](const KernelTable& t) { t.quantize_f32_i8(n, x->data(), 7, v->data()); }}};
}

// The INT8 perturbation (r 3, p_zero 0.33) of all parameters into a second buffer, as the + and - passes do.
std::vector<Op> workloads_zo_perturb_i8(const Net& net) {
  auto w = std::make_shared<std::vector<std::int8_t>>(net.params, 5);
  auto out = std::make_shared<std::vector<std::int8_t>>(net.params);
  const std::size_t n = net.params;
  const ez::SparsePerturbation p{ez::step_key(1, 2), 0, 0, 3, 21627};
  return {{"all parameters", static_cast<double>(n), [=](const KernelTable& t) {
             t.zo_perturb_i8(n, p, 1, 0, w->data(), out->data());
           }}};
}

// ---- integer kernels (NITI): int8 operands and int32 accumulators on the same shapes ----

using BufI8 = std::shared_ptr<std::vector<std::int8_t>>;
using BufI32 = std::shared_ptr<std::vector<std::int32_t>>;
// Mantissas in [-127, 127]; `non_negative`: |v|, as every input after a ReLU (the AVX2 conv forward then takes its
// vpmaddubsw path).
BufI8 buf_i8(std::size_t n, unsigned seed, bool non_negative = false) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> dist(-127, 127);
  auto v = std::make_shared<std::vector<std::int8_t>>(n);
  for (auto& x : *v) {
    const int d = dist(gen);
    x = static_cast<std::int8_t>(non_negative && d < 0 ? -d : d);
  }
  return v;
}
BufI32 buf_i32(std::size_t n) { return std::make_shared<std::vector<std::int32_t>>(n); }

std::vector<Op> workloads_gemm_i8(const Net& net) {
  std::vector<Op> ops;  // the linear layers' forward products
  for (const auto& [name, s] : net.linears) {
    auto a = buf_i8(static_cast<std::size_t>(s.rows) * s.in, 1), b = buf_i8(static_cast<std::size_t>(s.out) * s.in, 2);
    auto c = buf_i32(static_cast<std::size_t>(s.rows) * s.out);
    ops.push_back({name, 2.0 * s.rows * s.in * s.out, [=](const KernelTable& t) {
                     t.gemm_i8(false, true, s.rows, s.out, s.in, a->data(), s.in, b->data(), s.in, false, c->data(),
                               s.out);
                   }, true});
  }
  return ops;
}

// The conv forward twice: on a signed input (a model's first layer) and on a non-negative one (every later layer).
std::vector<Op> workloads_conv2d_fwd_i8(const Net& net) {
  std::vector<Op> ops;
  for (const auto& [name, s] : net.convs)
    for (const bool non_negative : {false, true}) {
      auto x = buf_i8(in_size(s), 1, non_negative), w = buf_i8(s.c_out * taps(s), 2);
      auto y = buf_i32(out_size(s));
      ops.push_back({name, 2.0 * out_size(s) * taps(s), [=](const KernelTable& t) {
                       t.conv2d_fwd_i8(s, x->data(), w->data(), y->data());
                     }, true, non_negative ? "input >= 0" : ""});
    }
  return ops;
}
std::vector<Op> workloads_conv2d_bwd_data_i8(const Net& net) {
  std::vector<Op> ops;
  for (const auto& [name, s] : net.convs) {
    auto dy = buf_i8(out_size(s), 1), w = buf_i8(s.c_out * taps(s), 2);
    auto dx = buf_i32(in_size(s));
    ops.push_back({name, 2.0 * out_size(s) * taps(s),
                   [=](const KernelTable& t) { t.conv2d_bwd_data_i8(s, dy->data(), w->data(), dx->data()); }, true});
  }
  return ops;
}
std::vector<Op> workloads_conv2d_bwd_weight_i8(const Net& net) {
  std::vector<Op> ops;
  for (const auto& [name, s] : net.convs) {
    auto x = buf_i8(in_size(s), 1), dy = buf_i8(out_size(s), 2);
    auto dw = buf_i32(s.c_out * taps(s));
    ops.push_back({name, 2.0 * out_size(s) * taps(s),
                   [=](const KernelTable& t) { t.conv2d_bwd_weight_i8(s, x->data(), dy->data(), dw->data()); },
                   true});
  }
  return ops;
}

std::vector<Op> workloads_linear_fwd_i8(const Net& net) {
  std::vector<Op> ops;
  for (const auto& [name, s] : net.linears) {
    auto x = buf_i8(static_cast<std::size_t>(s.rows) * s.in, 1), w = buf_i8(static_cast<std::size_t>(s.out) * s.in, 2);
    auto y = buf_i32(static_cast<std::size_t>(s.rows) * s.out);
    ops.push_back({name, 2.0 * s.rows * s.in * s.out,
                   [=](const KernelTable& t) { t.linear_fwd_i8(s, x->data(), w->data(), y->data()); }, true});
  }
  return ops;
}
std::vector<Op> workloads_linear_bwd_data_i8(const Net& net) {
  std::vector<Op> ops;
  for (const auto& [name, s] : net.linears) {
    auto dy = buf_i8(static_cast<std::size_t>(s.rows) * s.out, 1);
    auto w = buf_i8(static_cast<std::size_t>(s.out) * s.in, 2);
    auto dx = buf_i32(static_cast<std::size_t>(s.rows) * s.in);
    ops.push_back({name, 2.0 * s.rows * s.in * s.out,
                   [=](const KernelTable& t) { t.linear_bwd_data_i8(s, dy->data(), w->data(), dx->data()); }, true});
  }
  return ops;
}
std::vector<Op> workloads_linear_bwd_weight_i8(const Net& net) {
  std::vector<Op> ops;
  for (const auto& [name, s] : net.linears) {
    auto x = buf_i8(static_cast<std::size_t>(s.rows) * s.in, 1);
    auto dy = buf_i8(static_cast<std::size_t>(s.rows) * s.out, 2);
    auto dw = buf_i32(static_cast<std::size_t>(s.out) * s.in);
    ops.push_back({name, 2.0 * s.rows * s.in * s.out,
                   [=](const KernelTable& t) { t.linear_bwd_weight_i8(s, x->data(), dy->data(), dw->data()); },
                   true});
  }
  return ops;
}

// Requantization runs over every conv/linear layer's int32 accumulator (its output).
std::vector<std::pair<std::string, std::size_t>> accumulators(const Net& net) {
  std::vector<std::pair<std::string, std::size_t>> out;
  for (const auto& [name, s] : net.convs) out.emplace_back(name + " output", out_size(s));
  for (const auto& [name, s] : net.linears)
    out.emplace_back(name + " output", static_cast<std::size_t>(s.rows) * s.out);
  return out;
}
BufI32 accumulator_values(std::size_t n) {
  std::mt19937 gen(3);
  std::uniform_int_distribution<std::int32_t> d(-(1 << 20), 1 << 20);
  auto v = buf_i32(n);
  for (auto& x : *v) x = d(gen);
  return v;
}
std::vector<Op> workloads_max_abs_i32(const Net& net) {
  std::vector<Op> ops;
  for (const auto& [name, n] : accumulators(net)) {
    auto acc = accumulator_values(n);
    ops.push_back({name, static_cast<double>(n), [=, n = n](const KernelTable& t) { t.max_abs_i32(n, acc->data()); }});
  }
  return ops;
}
// Activations are rounded by NITI's pseudo-stochastic scheme (the layers' default).
std::vector<Op> workloads_round_shift_i8(const Net& net) {
  std::vector<Op> ops;
  for (const auto& [name, n] : accumulators(net)) {
    auto acc = accumulator_values(n);
    auto y = std::make_shared<std::vector<std::int8_t>>(n);
    ops.push_back({name, static_cast<double>(n), [=, n = n](const KernelTable& t) {
                     t.round_shift_i8(n, acc->data(), 14, ez::Rounding::pseudo_stochastic, ez::DrawStream{}, y->data());
                   }});
  }
  return ops;
}

struct KernelOps {
  std::string kernel;
  std::vector<Op> ops;
};

// Every kernel of kernels.inc on a network, in kernels.inc order.
std::vector<KernelOps> all_workloads(const Net& net) {
  std::vector<KernelOps> out;
#define EZ_KERNEL(name, compare, sig) out.push_back({#name, workloads_##name(net)});
#include "kernels/kernels.inc"
#undef EZ_KERNEL
  return out;
}

Net lenet(int batch) {
  Net n;
  n.convs = {{"conv1 1->6 28x28", {batch, 1, 28, 28, 6, 5, 2}}, {"conv2 6->16 14x14", {batch, 6, 14, 14, 16, 5, 2}}};
  n.linears = {{"fc1 784->120", {batch, 784, 120}}, {"fc2 120->84", {batch, 120, 84}}, {"fc3 84->10", {batch, 84, 10}}};
  n.pools = {{"pool1 6x28x28", {batch, 6, 28, 28, 2}}, {"pool2 16x14x14", {batch, 16, 14, 14, 2}}};
  const std::size_t b = batch;
  n.activations = {{"relu1 6x28x28", b * 6 * 784}, {"relu2 16x14x14", b * 16 * 196}, {"relu3 120", b * 120}};
  n.params = 107786;
  n.batch = batch;
  n.classes = 10;
  return n;
}

Net pointnet(int batch) {
  Net n;
  const int rows = batch * 1024;
  const int widths[] = {3, 64, 64, 64, 128, 1024};
  for (int l = 0; l + 1 < 6; ++l)
    n.linears.push_back({"pt" + std::to_string(l + 1) + " " + std::to_string(widths[l]) + "->" +
                             std::to_string(widths[l + 1]),
                         {rows, widths[l], widths[l + 1]}});
  n.linears.push_back({"head1 1024->512", {batch, 1024, 512}});
  n.linears.push_back({"head2 512->256", {batch, 512, 256}});
  n.linears.push_back({"head3 256->40", {batch, 256, 40}});
  n.point_layers = 5;
  n.point_pools = {{"maxpool 1024x1024", {batch, 1024, 1024}}};
  n.activations = {{"mlp_relu5 1024x1024", static_cast<std::size_t>(rows) * 1024}};
  n.params = 815400;
  n.batch = batch;
  n.classes = 40;
  return n;
}

}  // namespace
