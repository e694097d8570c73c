// ElasticZO-INT8 and NITI backprop as a numeric policy of the step skeleton.
#include "train/int8_niti.h"

#include <stdexcept>
#include <string>

#include "int8/rules.h"
#include "int8/zo_int8.h"
#include "kernels/kernels.h"
#include "layers/int8_layer.h"

namespace ez {

namespace {

// Philox stream of the loss gradient's stochastic rounding; the ZO perturbations use streams 0..L-1 (one per
// parameter layer), so this one never meets them.
constexpr std::uint32_t kLossGradStream = 0x4C4F5353u;  // "LOSS"

int sign_of(double d) { return (d > 0) - (d < 0); }

}  // namespace

void Int8Niti::set_gradient_bits(int mu) {
  if (mu < 0 || mu > 7) throw std::invalid_argument("gradient bit-width mu must be in [0, 7], got " + std::to_string(mu));
  mu_ = mu;
}

void Int8Niti::set_zo(const Int8ZoConfig& c) {
  zo_check_perturbation(c.range, c.p_zero);
  zo_update_shift(c.range, c.update_bits);  // checks the bit-width
  if (c.log2_frac_bits < 0 || c.log2_frac_bits > kZoMaxFracBits)
    throw std::invalid_argument("log2_frac_bits must lie in [0, " + std::to_string(kZoMaxFracBits) + "], got " +
                                std::to_string(c.log2_frac_bits));
  zo_ = c;
}

void Int8Niti::point(const std::vector<ZoSlice>& slices, PhiloxKey key, int sign) {
  const std::uint32_t threshold = zo_zero_threshold(zo_.p_zero);
  for (const ZoSlice& z : slices) {
    z.param->zo = {key, z.stream, z.offset, zo_.range, threshold};
    z.param->zo_sign = sign;
  }
  pass_ = sign;
}

void Int8Niti::move(const std::vector<ZoSlice>& slices, PhiloxKey key, int sign) {
  const KernelTable& k = kernels();
  const SparsePerturbation base{key, 0, 0, zo_.range, zo_zero_threshold(zo_.p_zero)};
  const int shift = zo_update_shift(zo_.range, zo_.update_bits);
  for (const ZoSlice& z : slices) {
    SparsePerturbation p = base;
    p.stream = z.stream;
    p.offset = z.offset;
    std::int8_t* w = z.param->value.s8();
    k.zo_perturb_i8(static_cast<std::size_t>(z.param->value.numel()), p, sign, shift, w, w);
  }
}

float Int8Niti::loss(Sequential& model, const Tensor& labels, float grad_scale) {
  const Tensor& out = model.output();
  const int rows = static_cast<int>(out.dim(0));
  const int classes = static_cast<int>(out.numel() / out.dim(0));
  const std::int8_t* v = out.s8();
  const double loss = xent_dequantized(rows, classes, v, out.exponent(), labels.s32());
  if (pass_ == +1) {  // kept for the sign: the + pass's logits (integer) or loss (floating point)
    plus_logits_.assign(v, v + out.numel());
    plus_exponent_ = out.exponent();
    plus_loss_ = loss;
  } else if (pass_ == -1) {
    const int fp = sign_of(plus_loss_ - loss);
    sign_ = fp;
    if (zo_.integer_sign) {
      sign_ = zo_sign_int(rows, classes, plus_logits_.data(), plus_exponent_, v, out.exponent(), labels.s32(),
                          zo_.log2_frac_bits);
      sign_agreements += sign_ == fp;
      sign_undecided += sign_ == 0;
      sign_ties += sign_ == 0 && fp != 0;
      ++sign_steps;
    }
  }
  // NITI's error has no scale to share between passes (its weight update sets the step size from the gradient's
  // range), so grad_scale only says whether to write it.
  if (grad_scale != 0.0f) {
    Tensor& err = model.output_error();
    int_xent_grad(rows, classes, v, out.exponent(), labels.s32(), rounding_.loss_grad,
                  DrawStream{key_, kLossGradStream, 0}, err.s8());
    err.set_exponent(0);
  }
  return static_cast<float>(loss);
}

float Int8Niti::projected_grad(float, float) const { return static_cast<float>(sign_); }

void Int8Niti::update(const std::vector<ZoSlice>& s, PhiloxKey key, float g) {
  point(s, key, 0);
  if (g != 0.0f) move(s, key, g > 0 ? -1 : +1);
}

void Int8Niti::restore(const std::vector<ZoSlice>& s, PhiloxKey key, ZoPoint at, float g) {
  point(s, key, 0);  // after the passes: exact, the stored weights were never written
  // After the update (only reachable if the clean third pass throws): its inverse, exact unless the update clipped.
  if (at == ZoPoint::updated && g != 0.0f) move(s, key, g > 0 ? +1 : -1);
}

void Int8Niti::update_backprop() {
  for (std::size_t i = 0; i < params_.size(); ++i)
    niti_update_param(*params_[i], mu_, rounding_.weight_grads,
                      DrawStream{key_, kWeightGradDraws + static_cast<std::uint32_t>(i), 0});
}

}  // namespace ez
