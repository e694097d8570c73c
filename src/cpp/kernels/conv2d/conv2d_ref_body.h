// Reference 2-D convolution loops (stride 1, zero padding), shared by the FP32 and int8 references: inputs of type
// T, sums of type A (float, or int32 for int8 mantissas). Direct loops, deliberately independent of the GEMM path
// the optimized kernels take.
#pragma once
#include <cstdint>

#include "core/parallel.h"
#include "kernels/shapes.h"

namespace ez {
namespace {

// Input coordinate of output position o and kernel tap t, or -1 when it falls in the zero padding.
inline int in_coord(int o, int t, int pad, int size) {
  const int i = o + t - pad;
  return (i >= 0 && i < size) ? i : -1;
}

// y = conv(x, w) (+ bias when not null).
template <class T, class A>
void conv_fwd_ref(const Conv2dShape& s, const T* x, const T* w, const A* bias, A* y) {
  const int oh = s.out_h(), ow = s.out_w();
  parallel_for(static_cast<std::int64_t>(s.n) * s.c_out, [&](std::int64_t task) {
    const int n = static_cast<int>(task / s.c_out), co = static_cast<int>(task % s.c_out);
    A* yp = y + (static_cast<long>(n) * s.c_out + co) * oh * ow;
    for (int oy = 0; oy < oh; ++oy) {
      for (int ox = 0; ox < ow; ++ox) {
        A acc = bias ? bias[co] : A{0};
        for (int ci = 0; ci < s.c_in; ++ci) {
          const T* xp = x + (static_cast<long>(n) * s.c_in + ci) * s.h * s.w;
          const T* wp = w + (static_cast<long>(co) * s.c_in + ci) * s.k * s.k;
          for (int ky = 0; ky < s.k; ++ky) {
            const int iy = in_coord(oy, ky, s.pad, s.h);
            if (iy < 0) continue;
            for (int kx = 0; kx < s.k; ++kx) {
              const int ix = in_coord(ox, kx, s.pad, s.w);
              if (ix >= 0) acc += static_cast<A>(xp[iy * s.w + ix]) * static_cast<A>(wp[ky * s.k + kx]);
            }
          }
        }
        yp[oy * ow + ox] = acc;
      }
    }
  });
}

template <class T, class A>
void conv_bwd_data_ref(const Conv2dShape& s, const T* dy, const T* w, A* dx) {
  const int oh = s.out_h(), ow = s.out_w();
  // Gather form (each dx element sums the outputs it fed), so threads never write the same element.
  parallel_for(static_cast<std::int64_t>(s.n) * s.c_in, [&](std::int64_t task) {
    const int n = static_cast<int>(task / s.c_in), ci = static_cast<int>(task % s.c_in);
    A* dxp = dx + (static_cast<long>(n) * s.c_in + ci) * s.h * s.w;
    for (int iy = 0; iy < s.h; ++iy) {
      for (int ix = 0; ix < s.w; ++ix) {
        A acc{0};
        for (int co = 0; co < s.c_out; ++co) {
          const T* dyp = dy + (static_cast<long>(n) * s.c_out + co) * oh * ow;
          const T* wp = w + (static_cast<long>(co) * s.c_in + ci) * s.k * s.k;
          for (int ky = 0; ky < s.k; ++ky) {
            const int oy = iy - ky + s.pad;
            if (oy < 0 || oy >= oh) continue;
            for (int kx = 0; kx < s.k; ++kx) {
              const int ox = ix - kx + s.pad;
              if (ox >= 0 && ox < ow) acc += static_cast<A>(dyp[oy * ow + ox]) * static_cast<A>(wp[ky * s.k + kx]);
            }
          }
        }
        dxp[iy * s.w + ix] = acc;
      }
    }
  });
}

// dw (+)= the weight gradient (no bias part).
template <class T, class A>
void conv_bwd_weight_ref(const Conv2dShape& s, const T* x, const T* dy, bool accumulate, A* dw) {
  const int oh = s.out_h(), ow = s.out_w();
  parallel_for(static_cast<std::int64_t>(s.c_out) * s.c_in, [&](std::int64_t task) {
    const int co = static_cast<int>(task / s.c_in), ci = static_cast<int>(task % s.c_in);
    for (int ky = 0; ky < s.k; ++ky) {
      for (int kx = 0; kx < s.k; ++kx) {
        A acc{0};
        for (int n = 0; n < s.n; ++n) {
          const T* xp = x + (static_cast<long>(n) * s.c_in + ci) * s.h * s.w;
          const T* dyp = dy + (static_cast<long>(n) * s.c_out + co) * oh * ow;
          for (int oy = 0; oy < oh; ++oy) {
            const int iy = in_coord(oy, ky, s.pad, s.h);
            if (iy < 0) continue;
            for (int ox = 0; ox < ow; ++ox) {
              const int ix = in_coord(ox, kx, s.pad, s.w);
              if (ix >= 0) acc += static_cast<A>(xp[iy * s.w + ix]) * static_cast<A>(dyp[oy * ow + ox]);
            }
          }
        }
        A& out = dw[((static_cast<long>(co) * s.c_in + ci) * s.k + ky) * s.k + kx];
        out = accumulate ? out + acc : acc;
      }
    }
  });
}

}  // namespace
}  // namespace ez
