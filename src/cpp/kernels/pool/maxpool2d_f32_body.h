// 2x2 max-pooling (stride 2, LeNet's) over any pw_f32xN vector type (simd/pointwise_*.h); other window sizes go
// to the reference. Exact: the window is folded in the reference's order with its `v > m ? v : m`, and the
// backward routes each error to the first element of the window (row-major) equal to the output, as the
// reference does. Planes are split among threads in fixed chunks.
#pragma once
#include <cstdint>
#include <type_traits>
#include <utility>

#include "core/parallel.h"
#include "kernels/kernels.h"

namespace ez {
namespace {

constexpr std::int64_t kPoolParallelElements = std::int64_t{1} << 15;

inline float take_greater_scalar(float v, float m) { return v > m ? v : m; }

// fn(plane) for each of the n x c planes, on the pool's threads when the tensor is large.
template <class Fn>
void for_each_plane(const Pool2dShape& s, Fn fn) {
  const std::int64_t planes = static_cast<std::int64_t>(s.n) * s.c;
  parallel_for(planes * s.h * s.w >= kPoolParallelElements ? num_threads() : 1, planes, fn);
}

// Vector types that load and store a partial vector of pairs (V::load_pairs_n, V::store_n) pool a row's tail in
// one vector; the others finish it in scalar code.
template <class V, class = void>
struct HasPartialPairs : std::false_type {};
template <class V>
struct HasPartialPairs<V, std::void_t<decltype(V::load_pairs_n(nullptr, 1, std::declval<typename V::reg&>(),
                                                               std::declval<typename V::reg&>()))>>
    : std::true_type {};

// kRelu: pools relu(x) (x > 0 ? x : 0 = take_greater(x, +0)) element by element before the window's max, as the
// reference does, so NaNs and signed zeros come out as a ReLU layer followed by the pooling gives them.
template <class V, bool kRelu = false>
void maxpool2d_fwd(const Pool2dShape& s, const float* x, float* y) {
  if (s.k != 2) return kRelu ? maxpool2d_relu_fwd_f32_ref(s, x, y) : maxpool2d_fwd_f32_ref(s, x, y);
  const int oh = s.out_h(), ow = s.out_w();
  const auto act = [](typename V::reg v) { return kRelu ? V::take_greater(v, V::set1(0.f)) : v; };
  const auto act_scalar = [](float v) { return kRelu ? take_greater_scalar(v, 0.f) : v; };
  const auto window = [=](typename V::reg e0, typename V::reg o0, typename V::reg e1, typename V::reg o1) {
    return V::take_greater(act(o1), V::take_greater(act(e1), V::take_greater(act(o0), act(e0))));
  };
  for_each_plane(s, [=](std::int64_t plane) {
    for (int oy = 0; oy < oh; ++oy) {
      const float* r0 = x + (plane * s.h + 2 * oy) * s.w;
      const float* r1 = r0 + s.w;
      float* yr = y + (plane * oh + oy) * ow;
      int ox = 0;
      for (; ox + V::width <= ow; ox += V::width) {
        typename V::reg e0, o0, e1, o1;
        V::load_pairs(r0 + 2 * ox, e0, o0);
        V::load_pairs(r1 + 2 * ox, e1, o1);
        V::store(yr + ox, window(e0, o0, e1, o1));
      }
      if constexpr (HasPartialPairs<V>::value) {
        if (ox < ow) {
          typename V::reg e0, o0, e1, o1;
          V::load_pairs_n(r0 + 2 * ox, ow - ox, e0, o0);
          V::load_pairs_n(r1 + 2 * ox, ow - ox, e1, o1);
          V::store_n(yr + ox, window(e0, o0, e1, o1), ow - ox);
          ox = ow;
        }
      }
      for (; ox < ow; ++ox)
        yr[ox] = take_greater_scalar(act_scalar(r1[2 * ox + 1]),
                                     take_greater_scalar(act_scalar(r1[2 * ox]), take_greater_scalar(
                                                                                     act_scalar(r0[2 * ox + 1]),
                                                                                     act_scalar(r0[2 * ox]))));
    }
  });
}

template <class V>
void maxpool2d_bwd(const Pool2dShape& s, const float* x, const float* y, const float* dy, float* dx) {
  if (s.k != 2) return maxpool2d_bwd_f32_ref(s, x, y, dy, dx);
  const int oh = s.out_h(), ow = s.out_w();
  for_each_plane(s, [=](std::int64_t plane) {
    for (int oy = 0; oy < oh; ++oy) {
      const float* r0 = x + (plane * s.h + 2 * oy) * s.w;
      const float* r1 = r0 + s.w;
      float* d0 = dx + (plane * s.h + 2 * oy) * s.w;
      float* d1 = d0 + s.w;
      const float* m_row = y + (plane * oh + oy) * ow;
      const float* g_row = dy + (plane * oh + oy) * ow;
      int ox = 0;
      for (; ox + V::width <= ow; ox += V::width) {
        const typename V::reg m = V::load(m_row + ox), g = V::load(g_row + ox);
        typename V::reg e0, o0, e1, o1;
        V::load_pairs(r0 + 2 * ox, e0, o0);
        V::load_pairs(r1 + 2 * ox, e1, o1);
        // Each position takes the error only if it equals the max and no earlier one did.
        const typename V::mask q00 = V::equal(e0, m);
        const typename V::mask q01 = V::but_not(V::equal(o0, m), q00);
        const typename V::mask q10 = V::but_not(V::equal(e1, m), V::either(q00, q01));
        const typename V::mask q11 = V::but_not(V::equal(o1, m), V::either(V::either(q00, q01), q10));
        V::store_pairs(d0 + 2 * ox, V::select(q00, g), V::select(q01, g));
        V::store_pairs(d1 + 2 * ox, V::select(q10, g), V::select(q11, g));
      }
      for (; ox < ow; ++ox) {
        const float m = m_row[ox], g = g_row[ox];
        float* slot[4] = {d0 + 2 * ox, d0 + 2 * ox + 1, d1 + 2 * ox, d1 + 2 * ox + 1};
        const float v[4] = {r0[2 * ox], r0[2 * ox + 1], r1[2 * ox], r1[2 * ox + 1]};
        bool routed = false;
        for (int q = 0; q < 4; ++q) {
          *slot[q] = !routed && v[q] == m ? g : 0.f;
          routed = routed || v[q] == m;
        }
      }
      // A last column that fills no window.
      for (int col = 2 * ow; col < s.w; ++col) d0[col] = d1[col] = 0.f;
    }
    // A last row that fills no window.
    for (int row = 2 * oh; row < s.h; ++row)
      for (int col = 0; col < s.w; ++col) dx[(plane * s.h + row) * s.w + col] = 0.f;
  });
}

}  // namespace
}  // namespace ez
