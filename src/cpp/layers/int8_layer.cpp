// Integer layer helpers (layers/int8_layer.h) over the dispatched integer kernels.
#include "layers/int8_layer.h"

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "kernels/kernels.h"

namespace ez {

Int8Input::Int8Input(const Tensor& x) {
  if (x.dtype() == DType::s8) {
    data_ = x.s8();
    exponent_ = x.exponent();
    return;
  }
  const auto n = static_cast<std::size_t>(x.numel());
  quantized_.emplace(n);
  exponent_ = quantize_input(n, x.f32(), quantized_->data());
  data_ = quantized_->data();
}

Int8Weights::Int8Weights(const Param& p) : data_(p.value.s8()), exponent_(p.value.exponent()) {
  if (p.zo_sign == 0) return;
  const auto n = static_cast<std::size_t>(p.value.numel());
  perturbed_.emplace(n);
  kernels().zo_perturb_i8(n, p.zo, p.zo_sign, 0, data_, perturbed_->data());
  data_ = perturbed_->data();
}

Tensor Int8Accumulators::use(const Tensor& bound, const Shape& shape, MemCategory category) {
  if (bound.defined() && bound.shape() == shape) return bound;
  return Tensor(shape, DType::s32, category);
}

std::vector<BufferSpec> int8_layer_buffers(std::vector<BufferSpec> specs, const Shape& in, const Shape& out,
                                           std::int64_t weight_elems, bool model_input, bool backprop,
                                           std::size_t fwd_kernel, std::size_t bwd_data_kernel,
                                           std::size_t bwd_weight_kernel) {
  specs.push_back({"accumulator", BufferRole::accumulator, DType::s32, out, MemCategory::accumulators});
  if (backprop)
    specs.push_back({"input_error.accumulator", BufferRole::error_accumulator, DType::s32, in, MemCategory::errors});
  const std::size_t input = model_input ? aligned_bytes(static_cast<std::size_t>(shape_numel(in))) : 0;
  const auto w = static_cast<std::size_t>(weight_elems);
  const std::size_t forward = input + (backprop ? 0 : aligned_bytes(w)) + fwd_kernel;
  const std::size_t backward =
      std::max(bwd_data_kernel, input + aligned_bytes(w * sizeof(std::int32_t)) + bwd_weight_kernel);
  return with_workspace(std::move(specs), forward, backprop ? backward : 0);
}

void requantize_into(const Tensor& acc, Rounding mode, const DrawStream& draws, int base_exponent, Tensor& y) {
  const KernelTable& k = kernels();
  const auto n = static_cast<std::size_t>(acc.numel());
  const int s = std::max(0, range_bits(k.max_abs_i32(n, acc.s32())) - 7);
  k.round_shift_i8(n, acc.s32(), s, mode, draws, y.s8());
  y.set_exponent(base_exponent + s);
}

void int8_requantize_rows(const Int8RowsKernel& kernel, const Int8Accumulators& acc, Rounding mode,
                          const DrawStream& draws, int base_exponent, Tensor& y) {
  const std::int64_t rows = y.dim(0);
  // The planned accumulator: the whole batch or a chunk of its rows; without one (no plan), the whole batch.
  Tensor sums = acc.forward;
  if (!sums.defined() || sums.ndim() != y.ndim() ||
      !std::equal(sums.shape().begin() + 1, sums.shape().end(), y.shape().begin() + 1))
    sums = Tensor(y.shape(), DType::s32, MemCategory::accumulators);
  if (sums.dim(0) >= rows) {
    kernel(0, rows, sums.s32());
    requantize_into(sums, mode, draws, base_exponent, y);
    acc.forward_shift = y.exponent() - base_exponent;
    return;
  }
  const KernelTable& k = kernels();
  const std::int64_t chunk = sums.dim(0), per_row = y.numel() / rows;
  const auto shift_of = [](std::uint32_t max_abs) { return std::max(0, range_bits(max_abs) - 7); };
  // Chunk c's rounding; its draws continue the whole tensor's (element i of the batch uses word i), so a stochastic
  // activation rounding gives the same bits too.
  const auto round_chunk = [&](std::int64_t first, std::int64_t n, int shift) {
    const auto offset = static_cast<std::uint64_t>(first * per_row);
    DrawStream chunk_draws = draws;
    chunk_draws.offset += offset;
    k.round_shift_i8(static_cast<std::size_t>(n * per_row), sums.s32(), shift, mode, chunk_draws, y.s8() + offset);
  };
  std::vector<int> used;
  std::uint32_t max_abs = 0;
  for (std::int64_t first = 0; first < rows; first += chunk) {
    const std::int64_t n = std::min(chunk, rows - first);
    kernel(first, n, sums.s32());
    max_abs = std::max(max_abs, k.max_abs_i32(static_cast<std::size_t>(n * per_row), sums.s32()));
    used.push_back(std::max(acc.forward_shift, shift_of(max_abs)));
    round_chunk(first, n, used.back());
  }
  const int s = shift_of(max_abs);
  for (std::size_t c = 0; c < used.size(); ++c) {
    if (used[c] == s) continue;
    const std::int64_t first = static_cast<std::int64_t>(c) * chunk, n = std::min(chunk, rows - first);
    kernel(first, n, sums.s32());
    round_chunk(first, n, s);
  }
  acc.forward_shift = s;
  y.set_exponent(base_exponent + s);
}

void niti_update_param(Param& p, int mu, Rounding mode, const DrawStream& draws) {
  if (mu < 0 || mu > 7) throw std::invalid_argument("gradient bit-width mu must be in [0, 7], got " + std::to_string(mu));
  const KernelTable& k = kernels();
  const auto n = static_cast<std::size_t>(p.value.numel());
  const std::int32_t* grad = p.grad.s32();
  const int b = range_bits(k.max_abs_i32(n, grad));
  if (b == 0) return;  // a zero gradient moves nothing
  // s < 1: |G| < 2^mu <= 128 is taken as it is (round_shift by 0 only clips, and nothing needs clipping).
  std::int8_t* g = p.grad_rounded.s8();
  k.round_shift_i8(n, grad, std::max(0, b - mu), mode, draws, g);
  std::int8_t* w = p.value.s8();
  for (std::size_t i = 0; i < n; ++i)
    w[i] = static_cast<std::int8_t>(std::clamp(w[i] - g[i], -kMantissaMax, kMantissaMax));
}

void check_int8_layer(const std::string& repr, bool bias) {
  if (bias)
    throw std::invalid_argument(repr + ": int8 layers have no bias (NITI); build it with bias=False");
}

void add_saturating_i32(std::size_t n, const std::int32_t* x, std::int32_t* y) {
  for (std::size_t i = 0; i < n; ++i)
    y[i] = static_cast<std::int32_t>(std::clamp<std::int64_t>(std::int64_t{x[i]} + y[i], INT32_MIN, INT32_MAX));
}

std::int64_t weight_grad_block(const std::string& repr, std::int64_t samples, std::int64_t terms_per_sample) {
  if (terms_per_sample > kExactInt32Terms)
    throw std::invalid_argument(repr + ": one sample's int8 weight gradient sums " + std::to_string(terms_per_sample) +
                                " products, more than an int32 holds exactly (" + std::to_string(kExactInt32Terms) +
                                "); use a smaller input");
  return std::max<std::int64_t>(1, std::min(samples, kExactInt32Terms / std::max<std::int64_t>(1, terms_per_sample)));
}

std::size_t weight_grad_blocks_workspace(std::int64_t samples, std::int64_t block, std::int64_t weight_elems) {
  if (samples <= block) return 0;
  const auto n = static_cast<std::size_t>(weight_elems);
  return aligned_bytes(n * sizeof(std::int64_t)) + aligned_bytes(n * sizeof(std::int32_t));
}

void niti_init(Tensor& w, int fan_in, int fan_out, std::uint64_t seed) {
  const PhiloxKey key{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)};
  w.set_exponent(niti_init_weights(fan_in, fan_out, static_cast<std::size_t>(w.numel()), WeightInit::xavier_normal,
                                   key, 0, w.s8()));
}

}  // namespace ez
