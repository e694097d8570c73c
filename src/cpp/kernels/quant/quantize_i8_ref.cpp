// Reference input quantization (NITI, int8/rules.h quantize_input), one value at a time.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "int8/rounding.h"
#include "kernels/kernels.h"

namespace ez {

std::uint32_t max_abs_bits_f32_ref(std::size_t n, const float* x) {
  std::uint32_t m = 0;
  for (std::size_t i = 0; i < n; ++i) {
    std::uint32_t bits;
    std::memcpy(&bits, x + i, sizeof bits);
    m = std::max(m, bits & 0x7fffffffu);
  }
  return m;
}

void quantize_f32_i8_ref(std::size_t n, const float* x, int shift, std::int8_t* v) {
  constexpr float cap = static_cast<float>(kMantissaMax);
  for (std::size_t i = 0; i < n; ++i)
    v[i] = static_cast<std::int8_t>(std::clamp(std::round(std::ldexp(x[i], shift)), -cap, cap));
}

}  // namespace ez
