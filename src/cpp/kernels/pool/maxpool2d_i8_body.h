// 2x2 max-pooling (stride 2) of int8 mantissas over a 16-byte lane type V (ISA files only): V::pool8 takes 16
// bytes of two input rows and gives the 8 maxima of their 2x2 windows. A row of 8 or more outputs ends with a
// vector that overlaps the one before (the same values written twice); a shorter row (LeNet's pool2: 7) reads 16
// bytes when they lie inside the tensor (else zero-padded copies) and stores only its outputs. Exact: an integer max
// does not depend on the order of its operands. Other window sizes go to the reference. Planes are split among
// threads when the tensor is large.
#pragma once
#include <cstdint>
#include <cstring>

#include "core/parallel.h"
#include "kernels/kernels.h"

namespace ez {
namespace {

constexpr std::int64_t kPoolI8ParallelBytes = std::int64_t{1} << 16;

// The first n (< 8) bytes of the 8 in `v` to y: whole 4-, 2- and 1-byte stores, nothing past y + n.
inline void store_i8_n(std::int8_t* y, std::uint64_t v, int n) {
  if (n & 4) {
    std::memcpy(y, &v, 4);
    y += 4;
    v >>= 32;
  }
  if (n & 2) {
    std::memcpy(y, &v, 2);
    y += 2;
    v >>= 16;
  }
  if (n & 1) *y = static_cast<std::int8_t>(v);
}

template <class V>
void maxpool2d_fwd_i8_body(const Pool2dShape& s, const std::int8_t* x, std::int8_t* y) {
  if (s.k != 2) return maxpool2d_fwd_i8_ref(s, x, y);
  const int oh = s.out_h(), ow = s.out_w(), w = s.w;
  const std::int64_t planes = static_cast<std::int64_t>(s.n) * s.c, plane_in = static_cast<std::int64_t>(s.h) * w;
  const std::int8_t* x_end = x + planes * plane_in;
  const int team = planes * plane_in >= kPoolI8ParallelBytes ? num_threads() : 1;
  parallel_for(team, planes, [=](std::int64_t plane) {
    for (int oy = 0; oy < oh; ++oy) {
      const std::int8_t* r0 = x + plane * plane_in + static_cast<std::int64_t>(2 * oy) * w;
      const std::int8_t* r1 = r0 + w;
      std::int8_t* yr = y + (plane * oh + oy) * ow;
      if (ow >= 8) {
        int ox = 0;
        for (; ox + 8 <= ow; ox += 8) V::store8(yr + ox, V::pool8(r0 + 2 * ox, r1 + 2 * ox));
        if (ox < ow) V::store8(yr + ow - 8, V::pool8(r0 + 2 * (ow - 8), r1 + 2 * (ow - 8)));
      } else if (x_end - r1 >= 16) {
        store_i8_n(yr, V::pool8(r0, r1), ow);
      } else {
        std::int8_t t0[16] = {}, t1[16] = {};
        std::memcpy(t0, r0, 2 * static_cast<std::size_t>(ow));
        std::memcpy(t1, r1, 2 * static_cast<std::size_t>(ow));
        store_i8_n(yr, V::pool8(t0, t1), ow);
      }
    }
  });
}

}  // namespace
}  // namespace ez
