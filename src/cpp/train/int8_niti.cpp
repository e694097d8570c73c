// NITI Full BP as a numeric policy of the step skeleton.
#include "train/int8_niti.h"

#include <cmath>
#include <stdexcept>

#include "int8/rules.h"
#include "layers/int8_layer.h"

namespace ez {

namespace {

// Philox stream of the loss gradient's stochastic rounding; the ZO perturbations use streams 0..L-1 (one per
// parameter layer), so this one never meets them.
constexpr std::uint32_t kLossGradStream = 0x4C4F5353u;  // "LOSS"

[[noreturn]] void no_int8_zo() {
  throw std::logic_error("the INT8 ZO part (ElasticZO-INT8) is not built yet: INT8 trains by NITI backprop only");
}

}  // namespace

void Int8Niti::set_gradient_bits(int mu) {
  if (mu < 0 || mu > 7) throw std::invalid_argument("gradient bit-width mu must be in [0, 7], got " + std::to_string(mu));
  mu_ = mu;
}

void Int8Niti::to_plus(const std::vector<ZoSlice>&, PhiloxKey) { no_int8_zo(); }
void Int8Niti::to_minus(const std::vector<ZoSlice>&, PhiloxKey) { no_int8_zo(); }
float Int8Niti::projected_grad(float, float) const { no_int8_zo(); }
void Int8Niti::update(const std::vector<ZoSlice>&, PhiloxKey, float) { no_int8_zo(); }
void Int8Niti::restore(const std::vector<ZoSlice>&, PhiloxKey, ZoPoint at, float) {
  if (at != ZoPoint::center) no_int8_zo();
}

float Int8Niti::loss(Sequential& model, const Tensor& labels, float grad_scale) {
  const Tensor& out = model.output();
  const int rows = static_cast<int>(out.dim(0));
  const int classes = static_cast<int>(out.numel() / out.dim(0));
  const std::int8_t* v = out.s8();
  const double scale = std::ldexp(1.0, out.exponent());
  double total = 0.0;
  for (int r = 0; r < rows; ++r) {
    const std::int8_t* row = v + static_cast<long>(r) * classes;
    int m = row[0];
    for (int j = 1; j < classes; ++j) m = row[j] > m ? row[j] : m;
    double sum = 0.0;
    for (int j = 0; j < classes; ++j) sum += std::exp((row[j] - m) * scale);
    total += std::log(sum) - (row[labels.s32()[r]] - m) * scale;
  }
  if (grad_scale != 0.0f) {
    // NITI's error has no scale to share between passes: its weight update sets the step size from its range.
    if (grad_scale != 1.0f) no_int8_zo();
    Tensor& err = model.output_error();
    int_xent_grad(rows, classes, v, out.exponent(), labels.s32(), kNitiRounding.loss_grad,
                  DrawStream{key_, kLossGradStream, 0}, err.s8());
    err.set_exponent(0);
  }
  return static_cast<float>(total / rows);
}

void Int8Niti::update_backprop() {
  for (Param* p : params_) niti_update_param(*p, mu_);
}

}  // namespace ez
