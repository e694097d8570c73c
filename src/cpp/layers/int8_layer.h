// The integer (NITI) side shared by Conv2d and Linear at Precision::int8 (shared/docs/NITI.md): int8 x int8 -> int32
// accumulation by the dispatched *_i8 kernels, then requantization (s = range - 7, rounding on sign and magnitude,
// e_out = e_in + e_w + s). The model's first layer quantizes its float input per batch.
#pragma once
#include <functional>
#include <optional>

#include "int8/rules.h"
#include "layers/layer.h"
#include "memory/tracker.h"

namespace ez {

// The rounding of each tensor class: NITI's first commit (the LeNet/MNIST code the paper builds on). Activations,
// errors and weight gradients use draw-free schemes there, so the layers need no random draws; only the loss
// gradient (stochastic) draws, from the step key (train/int8_niti.cpp).
inline constexpr RoundingPolicy kNitiRounding{};

// The int8 mantissas of a layer input: x itself, or a float x (the model input reaching its first layer)
// quantized per batch into scratch memory (NITI: b = range of the batch, e = b - 7).
class Int8Input {
 public:
  explicit Int8Input(const Tensor& x);
  const std::int8_t* data() const { return data_; }
  int exponent() const { return exponent_; }

 private:
  std::optional<ScratchBuffer<std::int8_t>> quantized_;
  const std::int8_t* data_;
  int exponent_;
};

// The int8 weight operand of a forward: the stored mantissas, or during an ElasticZO-INT8 pass clip(w + sign * zeta)
// generated aside by the zo_perturb_i8 kernel into scratch memory (the size of this one layer's weights, alive for
// its kernel call). The stored weights are never written by the passes, so bringing them back after the passes is
// exact by construction, clipping or not.
class Int8Weights {
 public:
  explicit Int8Weights(const Param& p);
  const std::int8_t* data() const { return data_; }
  int exponent() const { return exponent_; }

 private:
  std::optional<ScratchBuffer<std::int8_t>> perturbed_;
  const std::int8_t* data_;
  int exponent_;
};

// The int32 buffers a layer declares with BufferRole::accumulator (its forward's sums) and error_accumulator (the
// error it propagates, before requantization). Planned and bound by Sequential; a layer used on its own (no plan)
// gets a buffer of its own per call.
struct Int8Accumulators {
  Tensor forward, backward;
  // The batch shift of the last forward: the first guess of a chunked forward (int8_forward). A hint only (any
  // value gives the same outputs), so a const forward may update it.
  mutable int forward_shift = 0;
  void bind(BufferRole role, const Tensor& t) { (role == BufferRole::accumulator ? forward : backward) = t; }
  static Tensor use(const Tensor& bound, const Shape& shape, MemCategory category);
};

// The buffers of an INT8 Conv2d / Linear beyond the default ones: the int32 output accumulator, with backprop the
// int32 error of its input (the planner drops it for the first backprop layer, which propagates none), and the
// workspace of its kernels (`*_kernel` bytes) plus the scratch of the helpers below, so that a planned step lends it
// all: forward, the quantized model input (the model's first layer only) and, outside the backprop part (a ZO
// layer), the perturbed weights of an ElasticZO-INT8 pass; backward, the larger of backward data's kernel and
// backward weight's quantized input, one pass's int32 gradient (accumulated two-pass steps) and kernel.
std::vector<BufferSpec> int8_layer_buffers(std::vector<BufferSpec> specs, const Shape& in, const Shape& out,
                                           std::int64_t weight_elems, bool model_input, bool backprop,
                                           std::size_t fwd_kernel, std::size_t bwd_data_kernel,
                                           std::size_t bwd_weight_kernel);

// Computes the int32 sums of output rows [first, first + rows) (the leading dimension: samples) into `acc`.
using Int8RowsKernel = std::function<void(std::int64_t first, std::int64_t rows, std::int32_t* acc)>;

// The requantization of an INT8 Conv2d / Linear forward: y = the sums requantized with NITI's activation rounding, s = max(0,
// range - 7) over the whole batch, y's exponent = base_exponent + s. `acc.forward` is the planned accumulator:
// the whole output (the static plan, SPEC §4's model: one pass, then the max, then the rounding) or a chunk of
// its leading rows (the lifetime plan: no buffer of the batch's int32 sums). Chunked, each chunk's sums are rounded
// as soon as they are computed, with a guess of the batch's shift: the larger of the last forward's and the one
// the running max already implies (a lower bound); the chunks rounded with another shift than the batch's are
// computed again. The outputs are the same bits either way.
void int8_requantize_rows(const Int8RowsKernel& kernel, const Int8Accumulators& acc, int base_exponent, Tensor& y);


// y = acc requantized with `mode` (s = max(0, range(acc) - 7)); y's exponent = base_exponent + s.
void requantize_into(const Tensor& acc, Rounding mode, int base_exponent, Tensor& y);

// NITI's weight update of one parameter from its int32 gradient G (p.grad): g = G rounded to mu bits (into
// p.grad_rounded, with the weight-gradient rounding), w <- clip(w - g, +-127). Bit-identical to
// niti_weight_update (int8/rules.h), vectorized through the requantization kernels.
void niti_update_param(Param& p, int mu);

// INT8 layers hold int8 weights with an exponent and no bias (NITI); std::invalid_argument naming the layer
// for a bias.
void check_int8_layer(const std::string& repr, bool bias);

// y += x elementwise, saturating at the int32 limits.
void add_saturating_i32(std::size_t n, const std::int32_t* x, std::int32_t* y);

// The forward of an int8 Conv2d or Linear: its input's mantissas (Int8Input), its weight operand (Int8Weights),
// `kernel(x, w, first, rows, acc)` the int32 sums of output rows [first, first + rows) (samples; x and w whole) into
// acc, requantized into y by int8_requantize_rows (the whole batch at once, or chunk by chunk).
template <class Kernel>
void int8_forward(const Tensor& x, const Param& weight, const Int8Accumulators& acc, Tensor& y, const Kernel& kernel) {
  const Int8Input xq(x);
  const Int8Weights w(weight);  // ElasticZO-INT8's passes: clip(w +- zeta), the stored weights untouched
  int8_requantize_rows([&](std::int64_t first, std::int64_t rows, std::int32_t* sums) {
    kernel(xq.data(), w.data(), first, rows, sums);
  }, acc, xq.exponent() + w.exponent(), y);
}

// The input error of an int8 Conv2d or Linear: `kernel(dy, w, acc)` into the int32 error accumulator, requantized.
template <class Kernel>
void int8_backward_data(const Tensor& dy, const Tensor& w, const Tensor& bound, Tensor& dx, const Kernel& kernel) {
  Tensor acc = Int8Accumulators::use(bound, dx.shape(), MemCategory::errors);
  kernel(dy.s8(), w.s8(), acc.s32());
  requantize_into(acc, kNitiRounding.errors, dy.exponent() + w.exponent(), dx);
}

// An int8 layer's weight gradient G: `kernel(out)` writes the int32 products into p.grad, or with `accumulate`
// (ElasticZO-INT8's backprop part, one gradient per pass) into scratch memory added to p.grad. NITI's update takes
// its step size from the range of G, so the sum of the two passes' gradients stands for their mean; the sum
// saturates rather than wraps at the int32 limits.
template <class Kernel>
void int8_weight_grad(Param& p, bool accumulate, const Kernel& kernel) {
  if (!accumulate) return kernel(p.grad.s32());
  const auto n = static_cast<std::size_t>(p.grad.numel());
  ScratchBuffer<std::int32_t> pass(n);
  kernel(pass.data());
  add_saturating_i32(n, pass.data(), p.grad.s32());
}

// NITI's initialization of an int8 weight (Xavier normal, the first commit) from the layer's seed; sets its exponent.
void niti_init(Tensor& w, int fan_in, int fan_out, std::uint64_t seed);

}  // namespace ez
