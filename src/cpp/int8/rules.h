// NITI's integer tensor rules (shared/docs/NITI.md) as scalar references, independent of any model: a tensor is
// int8 mantissas v in [-127, 127] with one power-of-two exponent e (value v * 2^e); products accumulate in int32.
// Integer conventions chosen where NITI's Python used floating point are stated at each function.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "int8/rounding.h"

namespace ez {

// The range of an integer tensor: the bit length of max|x| (32 - clz), 0 for an all-zero tensor.
// Convention: NITI wrote ceil(log2 max|x|), which equals the bit length except at max = 2^k, where it gives k
// and the requantized maximum 2^k / 2^(k-7) = 128 would not fit in an int8 mantissa. The bit length gives k + 1
// there, so a requantized maximum is at most 127 before rounding (rounding up can still reach 128: it is clipped).
int range_bits(std::uint32_t max_abs);
int range_i32(std::size_t n, const std::int32_t* x);

// Requantizes int32 accumulators to int8: s = range - 7; when s > 0 the values are rounded right by s bits with
// `mode` and clipped, else taken as they are (they fit). Returns the shift s >= 0 to add to the exponent:
// e_out = e_in + e_w + s. Draws (stochastic mode) come from `draws`, element i using word i.
int requantize_i8(std::size_t n, const std::int32_t* acc, Rounding mode, const DrawStream& draws, std::int8_t* out);

// Input quantization per batch: b = the range of the batch (the binary exponent of max|x|, the same bit-length
// convention: max|x| in [2^(b-1), 2^b)), e = b - 7, v = round(x * 2^(7-b)) half away from zero, clipped; returns
// e (an all-zero batch gets e = -7). x * 2^(7-b) is an exact power-of-two scaling, so the result is the same on
// every platform. Throws std::invalid_argument on NaN or infinity. Runs the active kernel table's
// max_abs_bits_f32 and quantize_f32_i8 (every ISA gives the reference's bits).
int quantize_input(std::size_t n, const float* x, std::int8_t* v);

// NITI's weight initialization: float Xavier weights w (normal N(0, 2 / (fan_in + fan_out)), NITI's first
// commit, or uniform on +-sqrt(6 / (fan_in + fan_out)), its final version) from Philox stream (key, stream),
// then v = round(w / max|w| * 127) and e = range(max|w|) - 7 (float range as in quantize_input). The exponent
// never changes during training; only mantissas move. Returns e. Normals are rng/gaussian.h's z(key, stream, i);
// uniforms ((word >> 8) + 0.5) / 2^24 from word i: bit-identical everywhere.
enum class WeightInit : std::uint8_t { xavier_normal, xavier_uniform };
int niti_init_weights(int fan_in, int fan_out, std::size_t n, WeightInit init, PhiloxKey key, std::uint32_t stream,
                      std::int8_t* w);

// NITI's weight update with gradient bit-width mu (the learning rate): b = range(G); b = 0 leaves w unchanged;
// s = b - mu; s < 1 takes G as it is (|G| < 2^mu <= 128), else g = G rounded right by s with `mode`; then
// w <- clip(w - g, +-127). mu in [0, 7] (std::invalid_argument otherwise). Returns s (<= 0 when G was taken as is).
int niti_weight_update(std::size_t n, const std::int32_t* grad, int mu, Rounding mode, const DrawStream& draws,
                       std::int8_t* w);

// The paper's mu schedule for the backprop part: 5, then 4 from epoch 20, then 3 from epoch 50. Epochs count
// from 0, as the FP32 learning-rate decay does (elasticzo.trainer: epoch 20 is the 21st epoch).
int niti_mu_for_epoch(int epoch);

// NITI's integer cross-entropy gradient of int8 logits v (rows x classes, exponent e), written to `grad`
// (exponent 0, about (softmax - onehot) * 2^7). Integer definitions chosen where NITI's Python used floats:
//  - e > -7: s_j = floor(v_j * 47274 * 2^e / 2^15) (an arithmetic shift; e capped at 32, past which every
//    nonzero difference of logits already exceeds the 10-bit window); d_j = s_j - (max s - 10), and
//    t_j = 2^d_j - 1 as a shift for d_j > 0, else 0 (integer s, so the softmax ratios are whole powers of two).
//  - e <= -7 (all |logits| < 1): t_j = 2^(1-2e) + v_j 2^(1-e) + v_j^2 in int64, with e floored at -24 (logits
//    below 2^-17: the gradient is then (1/classes - onehot) 2^11 up to the integer division).
//  - p_j = floor(t_j * 2^11 / sum t) (integer division); at the label, subtract the row's sum of p, so every
//    row sums to exactly 0 as (softmax - onehot) does.
//  - rounding right by 4 bits with `mode` (NITI: stochastic; draws from `draws`, element r * classes + j), clipped
//    to +-127.
// Labels must lie in [0, classes) and classes in [1, 4096] (std::invalid_argument otherwise).
void int_xent_grad(int rows, int classes, const std::int8_t* logits, int exponent, const std::int32_t* labels,
                   Rounding mode, const DrawStream& draws, std::int8_t* grad);

const char* rounding_name(Rounding r);
Rounding parse_rounding(const std::string& name);  // "nearest", "stochastic", "pseudo_stochastic"
const char* tensor_class_name(TensorClass c);
TensorClass parse_tensor_class(const std::string& name);  // "activations", "errors", "weight_grads", "loss_grad"
// A policy from {class name: scheme name}; the classes not named keep the default (NITI's first commit).
// std::invalid_argument naming an unknown class or scheme.
RoundingPolicy rounding_policy(const std::map<std::string, std::string>& schemes);
std::map<std::string, std::string> rounding_schemes(const RoundingPolicy& p);  // every class

}  // namespace ez
