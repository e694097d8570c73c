// Reference requantization: max |x| and NITI's rounding shift with clipping, one value at a time.
#include <algorithm>

#include "kernels/kernels.h"

namespace ez {

std::uint32_t max_abs_i32_ref(std::size_t n, const std::int32_t* x) {
  std::uint32_t m = 0;
  for (std::size_t i = 0; i < n; ++i) m = std::max(m, magnitude(x[i]));
  return m;
}

void round_shift_i8_ref(std::size_t n, const std::int32_t* x, int s, Rounding mode, const DrawStream& draws,
                        std::int8_t* y) {
  if (s == 0) {
    for (std::size_t i = 0; i < n; ++i) y[i] = clip_mantissa(magnitude(x[i]), x[i] < 0);
    return;
  }
  const bool drawn = mode == Rounding::stochastic;
  for (std::size_t i = 0; i < n; ++i) y[i] = round_shift(x[i], s, mode, drawn ? draw_word(draws, i) : 0u);
}

}  // namespace ez
