// Elementwise loop shared by the SIMD kernels: n is cut into chunks of kElementwiseChunk elements (fixed by n,
// never by the thread count; a multiple of every vector width), chunks go to the thread pool, whole vectors to
// `vec(i)` and the last chunk's remainder to `tail(i, count)`, normally the reference kernel itself.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/parallel.h"

namespace ez {
namespace {

constexpr std::size_t kElementwiseChunk = std::size_t{1} << 14;

template <class V, class Vec, class Tail>
void for_each_vector(std::size_t n, Vec vec, Tail tail) {
  const auto chunks = static_cast<std::int64_t>((n + kElementwiseChunk - 1) / kElementwiseChunk);
  parallel_for(chunks, [&](std::int64_t c) {
    const std::size_t begin = static_cast<std::size_t>(c) * kElementwiseChunk;
    const std::size_t end = begin + kElementwiseChunk < n ? begin + kElementwiseChunk : n;
    std::size_t i = begin;
    for (; i + V::width <= end; i += V::width) vec(i);
    if (i < end) tail(i, end - i);
  });
}

}  // namespace
}  // namespace ez
