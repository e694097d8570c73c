// Reference 2-D convolution (stride 1, zero padding): direct loops, deliberately independent of the GEMM path.
#include "core/parallel.h"
#include "kernels/kernels.h"

namespace ez {

namespace {
// Input coordinate of output position o and kernel tap t, or -1 when it falls in the zero padding.
inline int in_coord(int o, int t, int pad, int size) {
  const int i = o + t - pad;
  return (i >= 0 && i < size) ? i : -1;
}
}  // namespace

void conv2d_fwd_f32_ref(const Conv2dShape& s, const float* x, const float* w, const float* bias, float* y) {
  const int oh = s.out_h(), ow = s.out_w();
  parallel_for(static_cast<std::int64_t>(s.n) * s.c_out, [&](std::int64_t task) {
    const int n = static_cast<int>(task / s.c_out), co = static_cast<int>(task % s.c_out);
    float* yp = y + (static_cast<long>(n) * s.c_out + co) * oh * ow;
    for (int oy = 0; oy < oh; ++oy) {
      for (int ox = 0; ox < ow; ++ox) {
        float acc = bias ? bias[co] : 0.f;
        for (int ci = 0; ci < s.c_in; ++ci) {
          const float* xp = x + (static_cast<long>(n) * s.c_in + ci) * s.h * s.w;
          const float* wp = w + (static_cast<long>(co) * s.c_in + ci) * s.k * s.k;
          for (int ky = 0; ky < s.k; ++ky) {
            const int iy = in_coord(oy, ky, s.pad, s.h);
            if (iy < 0) continue;
            for (int kx = 0; kx < s.k; ++kx) {
              const int ix = in_coord(ox, kx, s.pad, s.w);
              if (ix >= 0) acc += xp[iy * s.w + ix] * wp[ky * s.k + kx];
            }
          }
        }
        yp[oy * ow + ox] = acc;
      }
    }
  });
}

void conv2d_bwd_data_f32_ref(const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  const int oh = s.out_h(), ow = s.out_w();
  // Gather form (each dx element sums the outputs it fed), so threads never write the same element.
  parallel_for(static_cast<std::int64_t>(s.n) * s.c_in, [&](std::int64_t task) {
    const int n = static_cast<int>(task / s.c_in), ci = static_cast<int>(task % s.c_in);
    float* dxp = dx + (static_cast<long>(n) * s.c_in + ci) * s.h * s.w;
    for (int iy = 0; iy < s.h; ++iy) {
      for (int ix = 0; ix < s.w; ++ix) {
        float acc = 0.f;
        for (int co = 0; co < s.c_out; ++co) {
          const float* dyp = dy + (static_cast<long>(n) * s.c_out + co) * oh * ow;
          const float* wp = w + (static_cast<long>(co) * s.c_in + ci) * s.k * s.k;
          for (int ky = 0; ky < s.k; ++ky) {
            const int oy = iy - ky + s.pad;
            if (oy < 0 || oy >= oh) continue;
            for (int kx = 0; kx < s.k; ++kx) {
              const int ox = ix - kx + s.pad;
              if (ox >= 0 && ox < ow) acc += dyp[oy * ow + ox] * wp[ky * s.k + kx];
            }
          }
        }
        dxp[iy * s.w + ix] = acc;
      }
    }
  });
}

void conv2d_bwd_weight_f32_ref(const Conv2dShape& s, const float* x, const float* dy, bool accumulate, float* dw,
                               float* dbias) {
  const int oh = s.out_h(), ow = s.out_w();
  parallel_for(static_cast<std::int64_t>(s.c_out) * s.c_in, [&](std::int64_t task) {
    const int co = static_cast<int>(task / s.c_in), ci = static_cast<int>(task % s.c_in);
    for (int ky = 0; ky < s.k; ++ky) {
      for (int kx = 0; kx < s.k; ++kx) {
        float acc = 0.f;
        for (int n = 0; n < s.n; ++n) {
          const float* xp = x + (static_cast<long>(n) * s.c_in + ci) * s.h * s.w;
          const float* dyp = dy + (static_cast<long>(n) * s.c_out + co) * oh * ow;
          for (int oy = 0; oy < oh; ++oy) {
            const int iy = in_coord(oy, ky, s.pad, s.h);
            if (iy < 0) continue;
            for (int ox = 0; ox < ow; ++ox) {
              const int ix = in_coord(ox, kx, s.pad, s.w);
              if (ix >= 0) acc += xp[iy * s.w + ix] * dyp[oy * ow + ox];
            }
          }
        }
        float& out = dw[((static_cast<long>(co) * s.c_in + ci) * s.k + ky) * s.k + kx];
        out = accumulate ? out + acc : acc;
      }
    }
  });
  if (dbias == nullptr) return;
  for (int co = 0; co < s.c_out; ++co) {
    float acc = 0.f;
    for (int n = 0; n < s.n; ++n) {
      const float* dyp = dy + (static_cast<long>(n) * s.c_out + co) * oh * ow;
      for (int i = 0; i < oh * ow; ++i) acc += dyp[i];
    }
    dbias[co] = accumulate ? dbias[co] + acc : acc;
  }
}

}  // namespace ez
