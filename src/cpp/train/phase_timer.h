// Wall-clock time per training phase, as in the paper's Fig. 7 breakdown.
#pragma once
#include <array>
#include <chrono>

namespace ez {

enum class Phase : int { forward, backward, zo_perturb, zo_update, loss, optimizer, count };
const char* phase_name(Phase p);

class PhaseTimes {
 public:
  void add(Phase p, double seconds) { seconds_[static_cast<int>(p)] += seconds; }
  double get(Phase p) const { return seconds_[static_cast<int>(p)]; }
  void clear() { seconds_.fill(0.0); }

 private:
  std::array<double, static_cast<int>(Phase::count)> seconds_{};
};

// Adds the time from construction to destruction to one phase.
class ScopedPhase {
 public:
  ScopedPhase(PhaseTimes& times, Phase phase) : times_(times), phase_(phase), start_(Clock::now()) {}
  ~ScopedPhase() { times_.add(phase_, std::chrono::duration<double>(Clock::now() - start_).count()); }
  ScopedPhase(const ScopedPhase&) = delete;
  ScopedPhase& operator=(const ScopedPhase&) = delete;

 private:
  using Clock = std::chrono::steady_clock;
  PhaseTimes& times_;
  Phase phase_;
  Clock::time_point start_;
};

}  // namespace ez
