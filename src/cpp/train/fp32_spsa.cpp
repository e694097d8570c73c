// FP32 Gaussian SPSA (train/fp32_spsa.h): the passes' weights are built aside, the update is written once.
#include "train/fp32_spsa.h"

#include <algorithm>

#include "kernels/kernels.h"

namespace ez {

void Fp32Spsa::perturb(const std::vector<ZoSlice>& slices, float scale, PhiloxKey key) {
  const KernelTable& k = kernels();
  for (const ZoSlice& z : slices) {
    Tensor& t = z.param->value;
    k.zo_axpy_gaussian_f32(static_cast<std::size_t>(t.numel()), scale, key, z.stream, z.offset, t.f32(), t.f32());
  }
}

void Fp32Spsa::aside(const std::vector<ZoSlice>& slices, float scale, PhiloxKey key) {
  for (const ZoSlice& z : slices) {
    z.param->zo = {key, z.stream, z.offset, 0, 0};
    z.param->zo_scale = scale;
  }
}

void Fp32Spsa::commit(const std::vector<ZoSlice>& slices, PhiloxKey key) {
  // The same kernel on the same elements as the clean pass's operand: the stored values are the ones it used.
  const float scale = slices.empty() ? 0.0f : slices.front().param->zo_scale;
  aside(slices, 0.0f, key);
  if (scale != 0.0f) perturb(slices, scale, key);
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

}  // namespace ez
