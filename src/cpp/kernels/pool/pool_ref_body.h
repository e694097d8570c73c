// Reference max-pooling loops for any value type: the FP32 reference kernels and the INT8 layers (NITI pools int8
// mantissas, exponent unchanged) share them. Backward routes each output's error to the first input that holds the
// max, found again by comparing with the output.
#pragma once
#include "kernels/shapes.h"

namespace ez {

// kRelu: pools relu(x) = x > 0 ? x : 0, element by element, without writing it.
template <class T, bool kRelu = false>
void maxpool2d_fwd_ref(const Pool2dShape& s, const T* x, T* y) {
  const auto read = [](T v) { return kRelu ? (v > T{0} ? v : T{0}) : v; };
  const int oh = s.out_h(), ow = s.out_w();
  for (long plane = 0; plane < static_cast<long>(s.n) * s.c; ++plane) {
    const T* xp = x + plane * s.h * s.w;
    T* yp = y + plane * oh * ow;
    for (int oy = 0; oy < oh; ++oy) {
      for (int ox = 0; ox < ow; ++ox) {
        T m = read(xp[(oy * s.k) * s.w + ox * s.k]);
        for (int ky = 0; ky < s.k; ++ky)
          for (int kx = 0; kx < s.k; ++kx) {
            const T v = read(xp[(oy * s.k + ky) * s.w + ox * s.k + kx]);
            m = v > m ? v : m;
          }
        yp[oy * ow + ox] = m;
      }
    }
  }
}

template <class T>
void maxpool2d_bwd_ref(const Pool2dShape& s, const T* x, const T* y, const T* dy, T* dx) {
  const int oh = s.out_h(), ow = s.out_w();
  for (long plane = 0; plane < static_cast<long>(s.n) * s.c; ++plane) {
    const T* xp = x + plane * s.h * s.w;
    T* dxp = dx + plane * s.h * s.w;
    for (int i = 0; i < s.h * s.w; ++i) dxp[i] = T{0};
    for (int oy = 0; oy < oh; ++oy) {
      for (int ox = 0; ox < ow; ++ox) {
        const T m = y[plane * oh * ow + oy * ow + ox];
        bool routed = false;
        for (int ky = 0; ky < s.k && !routed; ++ky)
          for (int kx = 0; kx < s.k && !routed; ++kx) {
            const int idx = (oy * s.k + ky) * s.w + ox * s.k + kx;
            if (xp[idx] == m) {
              dxp[idx] = dy[plane * oh * ow + oy * ow + ox];
              routed = true;
            }
          }
      }
    }
  }
}

template <class T>
void point_maxpool_fwd_ref(const PointPoolShape& s, const T* x, T* y) {
  for (int n = 0; n < s.n; ++n) {
    const T* xp = x + static_cast<long>(n) * s.points * s.c;
    T* yp = y + static_cast<long>(n) * s.c;
    for (int c = 0; c < s.c; ++c) yp[c] = xp[c];
    for (int p = 1; p < s.points; ++p)
      for (int c = 0; c < s.c; ++c) {
        const T v = xp[static_cast<long>(p) * s.c + c];
        yp[c] = v > yp[c] ? v : yp[c];
      }
  }
}

template <class T>
void point_maxpool_bwd_ref(const PointPoolShape& s, const T* x, const T* y, const T* dy, T* dx) {
  for (int n = 0; n < s.n; ++n) {
    const T* xp = x + static_cast<long>(n) * s.points * s.c;
    T* dxp = dx + static_cast<long>(n) * s.points * s.c;
    for (long i = 0; i < static_cast<long>(s.points) * s.c; ++i) dxp[i] = T{0};
    for (int c = 0; c < s.c; ++c) {
      const T m = y[static_cast<long>(n) * s.c + c];
      for (int p = 0; p < s.points; ++p)
        if (xp[static_cast<long>(p) * s.c + c] == m) {  // the first point holding the max takes the error
          dxp[static_cast<long>(p) * s.c + c] = dy[static_cast<long>(n) * s.c + c];
          break;
        }
    }
  }
}

}  // namespace ez
