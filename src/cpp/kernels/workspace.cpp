// Workspace declarations for the layers: the active kernel table says which implementation runs each kernel,
// and that implementation's tiling sizes its scratch (kernels/workspace.h).
#include "kernels/workspace.h"

#include "kernels/kernels.h"

namespace ez {

bool tile_dims(const std::string& isa, TileDims& out) {
  // The register tiles of simd/f32x8_avx2.h, f32x16_avx512.h and f32x4_neon.h (the NEON dot-product level uses
  // the same float tiles); tests/cpp/test_layers.cpp checks that a planned step never needs more.
  if (isa == "avx2") out = {8, 6, 2, false};
  else if (isa == "avx512") out = {16, 6, 4, false};
  else if (isa == "neon" || isa == "neon_dotprod") out = {4, 8, 3, true};
  else return false;
  return true;
}

std::size_t conv2d_fwd_workspace(const Conv2dShape& s) {
  TileDims t;
  return tile_dims(kernels().conv2d_fwd_f32.isa, t) ? conv_fwd_scratch(s, t.width).bytes() : 0;
}

std::size_t conv2d_bwd_workspace(const Conv2dShape& s, bool bias) {
  TileDims t;
  const std::size_t data = tile_dims(kernels().conv2d_bwd_data_f32.isa, t) ? conv_bwd_data_bytes(s, t.width) : 0;
  const std::size_t weight =
      tile_dims(kernels().conv2d_bwd_weight_f32.isa, t) ? conv_bwd_weight_scratch(s, bias).bytes() : 0;
  return std::max(data, weight);
}

std::size_t linear_fwd_workspace(const LinearShape& s) {
  TileDims t;
  return tile_dims(kernels().linear_fwd_f32.isa, t) ? gemm_bytes(false, true, s.rows, s.out, s.in, t) : 0;
}

std::size_t point_linear_max_workspace(const LinearShape& s, int points) {
  TileDims t;
  return tile_dims(kernels().point_linear_relu_max_f32.isa, t) ? point_linear_max_scratch(s, points, t).bytes() : 0;
}

std::size_t linear_bwd_workspace(const LinearShape& s) {
  TileDims t;
  const std::size_t data =
      tile_dims(kernels().linear_bwd_data_f32.isa, t) ? gemm_bytes(false, false, s.rows, s.in, s.out, t) : 0;
  const std::size_t weight =
      tile_dims(kernels().linear_bwd_weight_f32.isa, t) ? gemm_bytes(true, false, s.out, s.in, s.rows, t) : 0;
  return std::max(data, weight);
}



std::vector<I8Tiles> i8_tiles(const std::string& isa, bool conv_forward) {
  // The microkernels of simd/i8_x86.h and i8_neon.h, as the *_i8_<isa>.cpp files instantiate them.
  const I8Tiles s16x8{8, 2, 6, 2, true, true}, u8x8{8, 4, 4, 1, true, false}, s8x8_vnni{8, 4, 4, 1, true, false};
  const I8Tiles s8x16_vnni{16, 4, 8, 1, true, false, true};
  const I8Tiles s8x4_mlal{4, 8, 4, 1}, s8x4_sdot{4, 4, 8, 1};
  if (isa == "avx2") return conv_forward ? std::vector<I8Tiles>{s16x8, u8x8} : std::vector<I8Tiles>{s16x8};
  if (isa == "avx_vnni") return {s8x8_vnni};
  if (isa == "avx512_vnni") return {s8x16_vnni};
  if (isa == "neon") return {s8x4_mlal};
  if (isa == "neon_dotprod") return {s8x4_sdot};
  return {};
}

namespace {

// The most any microkernel of the active implementation of a kernel takes.
template <class Bytes>
std::size_t i8_workspace(const char* isa, bool conv_forward, Bytes bytes) {
  std::size_t most = 0;
  for (const I8Tiles& t : i8_tiles(isa, conv_forward)) most = std::max(most, bytes(t));
  return most;
}

}  // namespace

std::size_t conv2d_fwd_i8_workspace(const Conv2dShape& s) {
  return i8_workspace(kernels().conv2d_fwd_i8.isa, true, [&](const I8Tiles& t) { return conv_fwd_i8_bytes(s, t); });
}
std::size_t conv2d_bwd_data_i8_workspace(const Conv2dShape& s) {
  return i8_workspace(kernels().conv2d_bwd_data_i8.isa, false,
                      [&](const I8Tiles& t) { return conv_bwd_data_i8_bytes(s, t); });
}
std::size_t conv2d_bwd_weight_i8_workspace(const Conv2dShape& s) {
  return i8_workspace(kernels().conv2d_bwd_weight_i8.isa, false,
                      [&](const I8Tiles& t) { return conv_bwd_weight_i8_bytes(s, t); });
}
std::size_t linear_fwd_i8_workspace(const LinearShape& s) {
  return i8_workspace(kernels().linear_fwd_i8.isa, false,
                      [&](const I8Tiles& t) { return gemm_i8_bytes(s.rows, s.out, s.in, t); });
}
std::size_t linear_bwd_data_i8_workspace(const LinearShape& s) {
  return i8_workspace(kernels().linear_bwd_data_i8.isa, false,
                      [&](const I8Tiles& t) { return gemm_i8_bytes(s.rows, s.in, s.out, t); });
}
std::size_t linear_bwd_weight_i8_workspace(const LinearShape& s) {
  return i8_workspace(kernels().linear_bwd_weight_i8.isa, false,
                      [&](const I8Tiles& t) { return gemm_i8_bytes(s.out, s.in, s.rows, t); });
}

}  // namespace ez
