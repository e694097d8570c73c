// Max over the points of x[n][points][c] (PointNet's global pooling) over any pw_f32xN vector type
// (simd/pointwise_*.h). Work is cut into (sample, block of kPointBlock channels) tasks, fixed by the shape; inside
// a task the points are walked in order, each row of channels streamed from memory once. Exact: the reference's
// fold `v > m ? v : m` in point order, and the backward routes each error to the first point equal to the max.
#pragma once
#include <cstdint>

#include "core/parallel.h"
#include "kernels/kernels.h"

namespace ez {
namespace {

constexpr int kPointBlock = 256;  // channels per task: a multiple of every vector width
constexpr std::int64_t kPointParallelElements = std::int64_t{1} << 15;

// fn(sample, first channel, end channel) for every task, on the pool's threads when the shape is large.
template <class Fn>
void for_each_point_task(const PointPoolShape& s, Fn fn) {
  const int blocks = (s.c + kPointBlock - 1) / kPointBlock;
  const std::int64_t tasks = static_cast<std::int64_t>(s.n) * blocks;
  const bool large = tasks * kPointBlock * s.points >= kPointParallelElements;
  parallel_for(large ? num_threads() : 1, tasks, [&](std::int64_t task) {
    const int c0 = static_cast<int>(task % blocks) * kPointBlock;
    fn(task / blocks, c0, c0 + kPointBlock < s.c ? c0 + kPointBlock : s.c);
  });
}

template <class V>
void point_maxpool_fwd(const PointPoolShape& s, const float* x, float* y) {
  for_each_point_task(s, [=](std::int64_t n, int c0, int c1) {
    const int vec_end = c0 + (c1 - c0) / V::width * V::width;
    const float* xs = x + n * s.points * s.c;
    float* ys = y + n * s.c;
    for (int c = c0; c < c1; ++c) ys[c] = xs[c];
    for (int p = 1; p < s.points; ++p) {
      const float* row = xs + static_cast<std::int64_t>(p) * s.c;
      for (int c = c0; c < vec_end; c += V::width) V::store(ys + c, V::take_greater(V::load(row + c), V::load(ys + c)));
      for (int c = vec_end; c < c1; ++c) ys[c] = row[c] > ys[c] ? row[c] : ys[c];
    }
  });
}

template <class V>
void point_maxpool_bwd(const PointPoolShape& s, const float* x, const float* y, const float* dy, float* dx) {
  for_each_point_task(s, [=](std::int64_t n, int c0, int c1) {
    const int vecs = (c1 - c0) / V::width, vec_end = c0 + vecs * V::width;
    const float* xs = x + n * s.points * s.c;
    const float* ms = y + n * s.c;
    const float* gs = dy + n * s.c;
    float* ds = dx + n * s.c * s.points;
    typename V::mask taken[kPointBlock / V::width];  // channel already routed to an earlier point
    bool taken_tail[V::width];
    for (int v = 0; v < vecs; ++v) taken[v] = V::none();
    for (int c = vec_end; c < c1; ++c) taken_tail[c - vec_end] = false;
    for (int p = 0; p < s.points; ++p) {
      const float* row = xs + static_cast<std::int64_t>(p) * s.c;
      float* drow = ds + static_cast<std::int64_t>(p) * s.c;
      for (int v = 0; v < vecs; ++v) {
        const int c = c0 + v * V::width;
        const typename V::mask q = V::but_not(V::equal(V::load(row + c), V::load(ms + c)), taken[v]);
        V::store(drow + c, V::select(q, V::load(gs + c)));
        taken[v] = V::either(taken[v], q);
      }
      for (int c = vec_end; c < c1; ++c) {
        const bool q = !taken_tail[c - vec_end] && row[c] == ms[c];
        drow[c] = q ? gs[c] : 0.f;
        taken_tail[c - vec_end] = taken_tail[c - vec_end] || q;
      }
    }
  });
}

}  // namespace
}  // namespace ez
