// Timing helpers shared by the C++ microbenchmarks.
#pragma once
#include <algorithm>
#include <chrono>
#include <functional>

namespace ez::bench {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Best time of repeated runs: one warm-up, then as many runs (up to max_reps) as fit in `budget` seconds.
inline double best_time(const std::function<void()>& fn, double budget, int max_reps = 200) {
  auto t0 = Clock::now();
  fn();
  double best = seconds_since(t0), spent = best;
  for (int rep = 0; rep < max_reps && spent < budget; ++rep) {
    t0 = Clock::now();
    fn();
    const double t = seconds_since(t0);
    best = std::min(best, t);
    spent += t;
  }
  return best;
}

}  // namespace ez::bench
