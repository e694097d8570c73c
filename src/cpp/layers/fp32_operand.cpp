// FP32 perturbed weight operands (layers/fp32_operand.h).
#include "layers/fp32_operand.h"

#include <algorithm>
#include <cstring>

#include "core/parallel.h"
#include "kernels/kernels.h"
#include "kernels/workspace.h"

namespace ez {
namespace {

// Elements [begin, begin + count) of p's operand during a ZO pass, into out.
void build_zo_operand(const Param& p, std::size_t begin, std::size_t count, float* out) {
  kernels().zo_axpy_gaussian_f32(count, p.zo_scale, p.zo.key, p.zo.stream, p.zo.offset + begin, p.value.f32() + begin,
                                 out);
}

// Dot tiles are 6 (AVX-512), 4 (NEON) or 3 (AVX2) weight rows wide: parallel blocks of a multiple of 12 leave no
// ragged tile but the last block's.
constexpr long kBlockMultiple = 12;

long piece(long floats) { return static_cast<long>(ws_piece(floats) / sizeof(float)); }

}  // namespace

Fp32Operand::Fp32Operand(const Param& p, std::size_t begin, std::size_t count) : data_(p.value.f32() + begin) {
  if (!zo_pass(p)) return;
  perturbed_.emplace(count, false);  // every element is written by the kernel
  build_zo_operand(p, begin, count, perturbed_->data());
  data_ = perturbed_->data();
}

ZoLinearBlocks zo_linear_blocks(const LinearShape& s, bool bias) {
  const long whole = static_cast<long>(s.out) * s.in;
  if (whole <= kZoChunkFloats || whole <= static_cast<long>(s.rows) * (s.in + s.out)) return {s.out, 0, 0};
  const auto slot = [&](long width) { return piece(width * s.in) + (bias ? piece(width) : 0) + piece(s.rows * width); };
  const long width =
      std::min<long>(s.out, std::max(kBlockMultiple, kZoBlockFloats / s.in / kBlockMultiple * kBlockMultiple));
  // The dot strategy is chosen by rows and reduction alone, so every block (the last one too) takes the same.
  if (linear_fwd_workspace({s.rows, s.in, static_cast<int>(width)}) == 0) {
    const long blocks = ws_ceil_div(s.out, width);
    const int team = static_cast<int>(std::min<long>(team_for(2.0 * s.rows * s.in * s.out), blocks));
    return {static_cast<int>(width), team, slot(width)};
  }
  const long chunk = std::max(1L, kZoChunkFloats / s.in);
  return {static_cast<int>(chunk), 0, slot(chunk)};
}

void zo_linear_forward_blocks(const LinearShape& s, const float* x, const Param& w, const Param* b, float* y) {
  const ZoLinearBlocks z = zo_linear_blocks(s, b != nullptr);
  ScratchBuffer<float> slots(static_cast<std::size_t>(std::max(z.team, 1)) * z.slot, false);  // written before read
  const auto block = [&](std::int64_t task, int k) {
    const int j0 = static_cast<int>(task) * z.width, c = std::min(z.width, s.out - j0);
    float* wb = slots.data() + static_cast<long>(k) * z.slot;
    float* bb = wb + piece(static_cast<long>(z.width) * s.in);
    float* part = bb + (b != nullptr ? piece(z.width) : 0);
    build_zo_operand(w, static_cast<std::size_t>(j0) * s.in, static_cast<std::size_t>(c) * s.in, wb);
    if (b != nullptr) build_zo_operand(*b, static_cast<std::size_t>(j0), static_cast<std::size_t>(c), bb);
    kernels().linear_fwd_f32(LinearShape{s.rows, s.in, c}, x, wb, b != nullptr ? bb : nullptr, part);
    for (long r = 0; r < s.rows; ++r)
      std::memcpy(y + r * s.out + j0, part + r * c, static_cast<std::size_t>(c) * sizeof(float));
  };
  const long blocks = ws_ceil_div(s.out, z.width);
  if (z.team > 0) return parallel_for(z.team, blocks, block);  // the kernels inside a task run on its thread alone
  for (long t = 0; t < blocks; ++t) block(t, 0);
}

std::size_t zo_conv2d_forward_workspace(const Conv2dShape& s, bool bias) {
  const std::size_t w = static_cast<std::size_t>(s.c_out) * s.c_in * s.k * s.k;
  return aligned_bytes(w * sizeof(float)) + (bias ? aligned_bytes(s.c_out * sizeof(float)) : 0) +
         conv2d_fwd_workspace(s);
}

namespace {
// The whole perturbed copies of a Linear's weight and bias.
std::size_t whole_linear_copies(const LinearShape& s, bool bias) {
  return aligned_bytes(static_cast<std::size_t>(s.out) * s.in * sizeof(float)) +
         (bias ? aligned_bytes(s.out * sizeof(float)) : 0);
}
}  // namespace

std::size_t zo_linear_forward_workspace(const LinearShape& s, bool bias) {
  const ZoLinearBlocks z = zo_linear_blocks(s, bias);
  if (z.width >= s.out) return whole_linear_copies(s, bias) + linear_fwd_workspace(s);
  const std::size_t slots = static_cast<std::size_t>(std::max(z.team, 1)) * z.slot * sizeof(float);
  if (z.team > 0) return slots;  // the blocks' kernel takes no workspace
  // One block after another: the kernel's own workspace on top (the last block may be narrower).
  const int last = s.out - (s.out - 1) / z.width * z.width;
  return slots + std::max(linear_fwd_workspace({s.rows, s.in, z.width}), linear_fwd_workspace({s.rows, s.in, last}));
}

std::size_t zo_point_linear_max_workspace(const LinearShape& s, int points, bool bias) {
  const std::size_t kernel = point_linear_max_workspace(s, points);
  return zo_linear_blocks(s, bias).width >= s.out ? whole_linear_copies(s, bias) + kernel : kernel;
}

}  // namespace ez
