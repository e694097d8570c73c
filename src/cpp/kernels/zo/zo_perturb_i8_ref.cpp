// Reference sparse int8 perturbation: element by element, exactly as int8/zo_int8.h defines zeta and R_s; each
// Philox block gives the words of four consecutive elements.
#include "int8/zo_int8.h"
#include "kernels/kernels.h"

namespace ez {

void zo_perturb_i8_ref(std::size_t n, const SparsePerturbation& p, int sign, int shift, const std::int8_t* w,
                       std::int8_t* out) {
  std::size_t i = 0;
  while (i < n) {
    const std::uint64_t idx = p.offset + i;
    const PhiloxCounter words = philox_block(p.key, p.stream, idx / 4);
    for (unsigned lane = static_cast<unsigned>(idx % 4); lane < 4 && i < n; ++lane, ++i)
      out[i] = zo_apply(w[i], sign, zo_round(zo_zeta_of_word(words[lane], p.r, p.zero_threshold), shift));
  }
}

}  // namespace ez
