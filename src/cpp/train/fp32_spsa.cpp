// FP32 Gaussian SPSA. Each move adds a multiple of the same regenerated z, so undoing the moves in reverse order
// brings theta back up to the rounding of each float add: bitwise exact restores would need a copy of theta, which
// the paper's memory model (and ours) does not have.
#include "train/fp32_spsa.h"

#include <algorithm>

#include "kernels/kernels.h"

namespace ez {

void Fp32Spsa::perturb(const std::vector<ZoSlice>& slices, float scale, PhiloxKey key) {
  const KernelTable& k = kernels();
  for (const ZoSlice& z : slices) {
    Tensor& t = z.param->value;
    k.zo_axpy_gaussian_f32(static_cast<std::size_t>(t.numel()), scale, key, z.stream, z.offset, t.f32());
  }
}

float Fp32Spsa::loss(Sequential& model, const Tensor& labels, float grad_scale) {
  const Tensor& out = model.output();
  const int rows = static_cast<int>(out.dim(0));
  const int classes = static_cast<int>(out.numel() / out.dim(0));
  float* grad = grad_scale != 0.0f ? model.output_error().f32() : nullptr;
  return kernels().softmax_xent_f32(rows, classes, out.f32(), labels.s32(), grad_scale, grad);
}

float Fp32Spsa::projected_grad(float loss_plus, float loss_minus) const {
  const float g = (loss_plus - loss_minus) / (2.0f * cfg_.eps);
  return cfg_.grad_clip > 0.0f ? std::clamp(g, -cfg_.grad_clip, cfg_.grad_clip) : g;
}

void Fp32Spsa::update(const std::vector<ZoSlice>& s, PhiloxKey key, float g) {
  perturb(s, cfg_.eps - cfg_.lr_zo * g, key);
}

void Fp32Spsa::restore(const std::vector<ZoSlice>& s, PhiloxKey key, ZoPoint at, float g) {
  // Reverse order of the moves: each add is undone by the same multiple of z with the sign flipped.
  switch (at) {
    case ZoPoint::center: return;
    case ZoPoint::updated: perturb(s, -(cfg_.eps - cfg_.lr_zo * g), key); [[fallthrough]];
    case ZoPoint::minus: perturb(s, 2.0f * cfg_.eps, key); [[fallthrough]];
    case ZoPoint::plus: perturb(s, -cfg_.eps, key);
  }
}

}  // namespace ez
