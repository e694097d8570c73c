// The integer (NITI) side shared by Conv2d and Linear at Precision::int8 (shared/docs/NITI.md): int8 x int8 -> int32
// accumulation by the dispatched *_i8 kernels, then requantization (s = range - 7, rounding on sign and magnitude,
// e_out = e_in + e_w + s). The model's first layer quantizes its float input per batch.
#pragma once
#include <algorithm>
#include <climits>
#include <functional>
#include <optional>

#include "int8/rules.h"
#include "layers/layer.h"
#include "memory/tracker.h"

namespace ez {

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

// The requantization of an INT8 Conv2d / Linear forward: y = the sums requantized with `mode` (the layer's activation
// rounding; element i of the batch draws word i of `draws`), s = max(0,
// range - 7) over the whole batch, y's exponent = base_exponent + s. `acc.forward` is the planned accumulator:
// the whole output (the static plan, SPEC §4's model: one pass, then the max, then the rounding) or a chunk of
// its leading rows (the lifetime plan: no buffer of the batch's int32 sums). Chunked, each chunk's sums are rounded
// as soon as they are computed, with a guess of the batch's shift: the larger of the last forward's and the one
// the running max already implies (a lower bound); the chunks rounded with another shift than the batch's are
// computed again. The outputs are the same bits either way.
void int8_requantize_rows(const Int8RowsKernel& kernel, const Int8Accumulators& acc, Rounding mode,
                          const DrawStream& draws, int base_exponent, Tensor& y);

// y = acc requantized with `mode` (s = max(0, range(acc) - 7)), element i drawing word i of `draws`; y's exponent =
// base_exponent + s.
void requantize_into(const Tensor& acc, Rounding mode, const DrawStream& draws, int base_exponent, Tensor& y);

// NITI's weight update of one parameter from its int32 gradient G (p.grad): g = G rounded to mu bits (into
// p.grad_rounded, with the weight-gradient rounding `mode` and its `draws`), w <- clip(w - g, +-127).
// Bit-identical to niti_weight_update (int8/rules.h), vectorized through the requantization kernels.
void niti_update_param(Param& p, int mu, Rounding mode, const DrawStream& draws);

// INT8 layers hold int8 weights with an exponent and no bias (NITI); std::invalid_argument naming the layer
// for a bias.
void check_int8_layer(const std::string& repr, bool bias);

// y += x elementwise, saturating at the int32 limits.
void add_saturating_i32(std::size_t n, const std::int32_t* x, std::int32_t* y);

// The forward of an int8 Conv2d or Linear: its input's mantissas (Int8Input), its weight operand (Int8Weights),
// `kernel(x, w, first, rows, acc)` the int32 sums of output rows [first, first + rows) (samples; x and w whole) into
// acc, requantized into y with the layer's activation rounding by int8_requantize_rows (the whole batch at once, or
// chunk by chunk).
template <class Kernel>
void int8_forward(const Tensor& x, const Param& weight, const Int8Accumulators& acc, const LayerRounding& rounding,
                  Tensor& y, const Kernel& kernel) {
  const Int8Input xq(x);
  const Int8Weights w(weight);  // ElasticZO-INT8's passes: clip(w +- zeta), the stored weights untouched
  int8_requantize_rows([&](std::int64_t first, std::int64_t rows, std::int32_t* sums) {
    kernel(xq.data(), w.data(), first, rows, sums);
  }, acc, rounding.activations, rounding.forward_draws, xq.exponent() + w.exponent(), y);
}

// The input error of an int8 Conv2d or Linear: `kernel(dy, w, acc)` into the int32 error accumulator, requantized
// with the layer's error rounding.
template <class Kernel>
void int8_backward_data(const Tensor& dy, const Tensor& w, const Tensor& bound, const LayerRounding& rounding,
                        Tensor& dx, const Kernel& kernel) {
  Tensor acc = Int8Accumulators::use(bound, dx.shape(), MemCategory::errors);
  kernel(dy.s8(), w.s8(), acc.s32());
  requantize_into(acc, rounding.errors, rounding.backward_draws, dy.exponent() + w.exponent(), dx);
}

// How many int8 x int8 products (|each| <= 127^2) an int32 sum holds whatever their values: 133,143.
inline constexpr std::int64_t kExactInt32Terms = INT32_MAX / (kMantissaMax * kMantissaMax);

// A weight gradient sums `terms_per_sample` products per sample over the batch (Linear: 1 per row; Conv2d: one per
// output position). So that no int32 sum can overflow, it is taken over blocks of at most this many samples
// (the whole batch when it fits, the common case); std::invalid_argument naming the layer when one sample alone
// sums more products than an int32 holds.
std::int64_t weight_grad_block(const std::string& repr, std::int64_t samples, std::int64_t terms_per_sample);
// The workspace the blocked sum needs beyond one pass's gradient (none when the batch is one block).
std::size_t weight_grad_blocks_workspace(std::int64_t samples, std::int64_t block, std::int64_t weight_elems);

// An int8 layer's weight gradient G: `kernel(first, count, out)` writes the int32 products of samples
// [first, first + count) into out: p.grad, or with `accumulate` (ElasticZO-INT8's backprop part, one gradient per
// pass) scratch memory added to p.grad. A batch larger than `block` samples is summed block by block in int64 and
// saturated to int32 once, so G is exact whenever it fits in int32. NITI's update takes its step size from the
// range of G, so the sum of the two passes' gradients stands for their mean; it saturates rather than wraps.
template <class Kernel>
void int8_weight_grad(Param& p, bool accumulate, std::int64_t samples, std::int64_t block, const Kernel& kernel) {
  const auto n = static_cast<std::size_t>(p.grad.numel());
  std::optional<ScratchBuffer<std::int32_t>> pass;
  if (accumulate) pass.emplace(n, false);
  std::int32_t* out = accumulate ? pass->data() : p.grad.s32();
  if (samples <= block) {
    kernel(0, samples, out);
  } else {
    ScratchBuffer<std::int64_t> total(n);
    ScratchBuffer<std::int32_t> part(n, false);
    for (std::int64_t first = 0; first < samples; first += block) {
      kernel(first, std::min(block, samples - first), part.data());
      for (std::size_t i = 0; i < n; ++i) total[i] += part[i];
    }
    for (std::size_t i = 0; i < n; ++i)
      out[i] = static_cast<std::int32_t>(std::clamp<std::int64_t>(total[i], INT32_MIN, INT32_MAX));
  }
  if (accumulate) add_saturating_i32(n, out, p.grad.s32());
}

// NITI's initialization of an int8 weight (Xavier normal, the first commit) from the layer's seed; sets its exponent.
void niti_init(Tensor& w, int fan_in, int fan_out, std::uint64_t seed);

}  // namespace ez
