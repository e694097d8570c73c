// NITI's integer rules (rules.h): the scalar references, built on the reference requantization kernels.
#include "int8/rules.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "kernels/kernels.h"
#include "rng/gaussian.h"

namespace ez {

int range_bits(std::uint32_t max_abs) { return max_abs == 0 ? 0 : 32 - __builtin_clz(max_abs); }

int range_i32(std::size_t n, const std::int32_t* x) { return range_bits(max_abs_i32_ref(n, x)); }

int requantize_i8(std::size_t n, const std::int32_t* acc, Rounding mode, const DrawStream& draws, std::int8_t* out) {
  const int s = std::max(0, range_i32(n, acc) - 7);
  round_shift_i8_ref(n, acc, s, mode, draws, out);
  return s;
}

namespace {

// The binary exponent b of a finite m > 0: m in [2^(b-1), 2^b), the float form of range_bits.
int float_range(float m) {
  int b = 0;
  std::frexp(m, &b);
  return b;
}


}  // namespace

int quantize_input(std::size_t n, const float* x, std::int8_t* v) {
  const KernelTable& k = kernels();
  const std::uint32_t bits = k.max_abs_bits_f32(n, x);
  if (bits >= 0x7f800000u) {  // the bits of +infinity: a NaN or an infinity is present; name the first
    std::size_t i = 0;
    while (std::isfinite(x[i])) ++i;
    throw std::invalid_argument("quantize_input: element " + std::to_string(i) + " is not finite");
  }
  float m;
  std::memcpy(&m, &bits, sizeof m);
  const int b = m == 0.f ? 0 : float_range(m);
  k.quantize_f32_i8(n, x, 7 - b, v);
  return b - 7;
}

int niti_init_weights(int fan_in, int fan_out, std::size_t n, WeightInit init, PhiloxKey key, std::uint32_t stream,
                      std::int8_t* w) {
  if (fan_in <= 0 || fan_out <= 0) throw std::invalid_argument("niti_init_weights: fans must be positive");
  const float fans = static_cast<float>(fan_in) + static_cast<float>(fan_out);
  std::vector<float> wf(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (init == WeightInit::xavier_normal) {
      wf[i] = std::sqrt(2.f / fans) * gaussian_at(key, stream, i);
    } else {
      const std::uint32_t word = draw_word({key, stream, 0}, i);
      const float u = (static_cast<float>(word >> 8) + 0.5f) * 0x1p-24f;  // in (0, 1), exact
      wf[i] = std::sqrt(6.f / fans) * (2.f * u - 1.f);
    }
  }
  float m = 0.f;
  for (float x : wf) m = std::max(m, std::fabs(x));
  if (m == 0.f) {  // n == 0 (or every draw exactly 0): nothing to scale
    std::fill(w, w + n, std::int8_t{0});
    return -7;
  }
  for (std::size_t i = 0; i < n; ++i) {
    w[i] = static_cast<std::int8_t>(std::round(wf[i] / m * static_cast<float>(kMantissaMax)));
  }
  return float_range(m) - 7;
}

int niti_weight_update(std::size_t n, const std::int32_t* grad, int mu, Rounding mode, const DrawStream& draws,
                       std::int8_t* w) {
  if (mu < 0 || mu > 7)
    throw std::invalid_argument("niti_weight_update: mu must lie in [0, 7], got " + std::to_string(mu));
  const int b = range_i32(n, grad);
  if (b == 0) return 0;
  const int s = b - mu;
  std::vector<std::int8_t> g(n);
  round_shift_i8_ref(n, grad, std::max(s, 0), mode, draws, g.data());  // s < 1: |G| < 2^mu, taken as is
  for (std::size_t i = 0; i < n; ++i) {
    w[i] = static_cast<std::int8_t>(std::clamp(w[i] - g[i], -kMantissaMax, kMantissaMax));
  }
  return s;
}

int niti_mu_for_epoch(int epoch) { return epoch < 20 ? 5 : epoch < 50 ? 4 : 3; }

namespace {

// floor(a / 2^k) for k >= 0 (>> on a negative signed value is arithmetic in C++20 and in gcc/clang before).
std::int64_t floor_shift(std::int64_t a, int k) { return a >> k; }

// The unnormalized softmax t_j of one row (rules.h, int_xent_grad).
void softmax_terms(int classes, const std::int8_t* v, int e, std::int64_t* t) {
  constexpr std::int64_t kLog2eQ15 = 47274;  // log2(e) * 2^15: the softmax base becomes 2
  if (e > -7) {
    std::int64_t smax = INT64_MIN;
    for (int j = 0; j < classes; ++j) {
      const std::int64_t p = v[j] * kLog2eQ15;
      t[j] = e >= 0 ? floor_shift(p * (std::int64_t{1} << std::min(e, 32)), 15) : floor_shift(p, 15 - e);
      smax = std::max(smax, t[j]);
    }
    for (int j = 0; j < classes; ++j) {
      const std::int64_t d = t[j] - (smax - 10);  // <= 10
      t[j] = d > 0 ? (std::int64_t{1} << d) - 1 : 0;
    }
  } else {
    const int ee = std::max(e, -24);
    for (int j = 0; j < classes; ++j) {
      const std::int64_t x = v[j];
      t[j] = (std::int64_t{1} << (1 - 2 * ee)) + x * (std::int64_t{1} << (1 - ee)) + x * x;
    }
  }
}

}  // namespace

void int_xent_grad(int rows, int classes, const std::int8_t* logits, int exponent, const std::int32_t* labels,
                   Rounding mode, const DrawStream& draws, std::int8_t* grad) {
  if (classes < 1 || classes > 4096)
    throw std::invalid_argument("int_xent_grad: classes must lie in [1, 4096], got " + std::to_string(classes));
  for (int r = 0; r < rows; ++r) {
    if (labels[r] < 0 || labels[r] >= classes)
      throw std::invalid_argument("int_xent_grad: label " + std::to_string(labels[r]) + " of row " +
                                  std::to_string(r) + " is outside [0, " + std::to_string(classes) + ")");
  }
  std::vector<std::int64_t> t(classes);
  std::vector<std::int32_t> p(classes);
  for (int r = 0; r < rows; ++r) {
    const long row = static_cast<long>(r) * classes;
    softmax_terms(classes, logits + row, exponent, t.data());
    std::int64_t sum = 0;
    for (int j = 0; j < classes; ++j) sum += t[j];  // > 0: the largest term is 1023 or at least 2^15
    std::int64_t psum = 0;
    for (int j = 0; j < classes; ++j) {
      p[j] = static_cast<std::int32_t>(t[j] * 2048 / sum);
      psum += p[j];
    }
    p[labels[r]] -= static_cast<std::int32_t>(psum);
    DrawStream d = draws;
    d.offset += static_cast<std::uint64_t>(row);
    round_shift_i8_ref(classes, p.data(), 4, mode, d, grad + row);
  }
}

Rounding RoundingPolicy::of(TensorClass c) const { return const_cast<RoundingPolicy*>(this)->of(c); }

Rounding& RoundingPolicy::of(TensorClass c) {
  switch (c) {
    case TensorClass::activations: return activations;
    case TensorClass::errors: return errors;
    case TensorClass::weight_grads: return weight_grads;
    case TensorClass::loss_grad: return loss_grad;
  }
  return activations;
}

const char* tensor_class_name(TensorClass c) {
  switch (c) {
    case TensorClass::activations: return "activations";
    case TensorClass::errors: return "errors";
    case TensorClass::weight_grads: return "weight_grads";
    case TensorClass::loss_grad: return "loss_grad";
  }
  return "?";
}

TensorClass parse_tensor_class(const std::string& name) {
  for (TensorClass c : kTensorClasses) {
    if (name == tensor_class_name(c)) return c;
  }
  throw std::invalid_argument("unknown tensor class '" + name + "' (activations, errors, weight_grads, loss_grad)");
}

const char* rounding_name(Rounding r) {
  switch (r) {
    case Rounding::nearest: return "nearest";
    case Rounding::stochastic: return "stochastic";
    case Rounding::pseudo_stochastic: return "pseudo_stochastic";
  }
  return "?";
}

Rounding parse_rounding(const std::string& name) {
  for (Rounding r : {Rounding::nearest, Rounding::stochastic, Rounding::pseudo_stochastic}) {
    if (name == rounding_name(r)) return r;
  }
  throw std::invalid_argument("unknown rounding '" + name + "' (nearest, stochastic, pseudo_stochastic)");
}

RoundingPolicy rounding_policy(const std::map<std::string, std::string>& schemes) {
  RoundingPolicy p;
  for (const auto& [cls, scheme] : schemes) p.of(parse_tensor_class(cls)) = parse_rounding(scheme);
  return p;
}

std::map<std::string, std::string> rounding_schemes(const RoundingPolicy& p) {
  std::map<std::string, std::string> out;
  for (TensorClass c : kTensorClasses) out[tensor_class_name(c)] = rounding_name(p.of(c));
  return out;
}

}  // namespace ez
