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

// The sparse int8 perturbation zeta of ElasticZO-INT8 (int8/zo_int8.h defines it element by element): element i of
// a tensor draws word offset + i of Philox stream (key, stream); |zeta| <= r, and a fraction zero_threshold / 2^16
// of the elements is zeroed.
struct SparsePerturbation {
  PhiloxKey key;
  std::uint32_t stream;
  std::uint64_t offset;
  int r;                        // in [1, 127]
  std::uint32_t zero_threshold;  // in [0, 2^16]
};

}  // namespace ez
