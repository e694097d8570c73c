// OpenMP team helpers for the optimized kernel bodies, with a serial fallback when OpenMP is off.
// Kernels open a parallel region only at op level and never inside a caller's parallel region, and they split
// work by the problem's shape alone: the team size decides who computes a chunk, never how it is computed.
#pragma once
#ifdef _OPENMP
#include <omp.h>
#endif

namespace ez {
namespace {

// Threads worth using for `flops` of work: a region costs a few microseconds, so small ops stay serial.
inline int team_size(double flops) {
#ifdef _OPENMP
  if (flops < 2e5 || omp_in_parallel()) return 1;
  return omp_get_max_threads();
#else
  (void)flops;
  return 1;
#endif
}

inline int thread_id() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

}  // namespace
}  // namespace ez
