// Problem descriptions passed to kernels. Layouts: images NCHW, conv weights [Cout][Cin][K][K], linear weights
// [out][in] (as PyTorch), point clouds [N][points][C].
#pragma once
#include <cstdint>

namespace ez {

struct Conv2dShape {
  int n, c_in, h, w;  // input
  int c_out, k, pad;  // square k x k kernel, stride 1, zero padding
  int out_h() const { return h + 2 * pad - k + 1; }
  int out_w() const { return w + 2 * pad - k + 1; }
};

struct LinearShape {
  int rows, in, out;  // rows = batch (or batch x points for the per-point layer)
};

struct Pool2dShape {
  int n, c, h, w, k;  // k x k window, stride k; trailing rows/columns that do not fill a window are dropped
  int out_h() const { return h / k; }
  int out_w() const { return w / k; }
};

struct PointPoolShape {
  int n, points, c;  // max over `points` of x[n][p][c]
};

// Key of the counter-based generator behind z (rng/philox.h): z is a pure function of (key, stream, index).
struct PhiloxKey {
  std::uint32_t k0, k1;
};

}  // namespace ez
