// Thread control and the library's own thread pool, built to survive a busy CPU (a board that also runs other
// programs): a job is a count of tasks, fixed by the problem's shape and never by the thread count, so results are
// the same bits for any team; tasks are claimed one at a time through an atomic counter, so a worker the scheduler
// took away delays only the task it holds; the calling thread works too and can finish every task alone; idle
// workers spin briefly, then sleep. Without ELASTICZO_THREADS everything runs on the calling thread.
#pragma once
#include <cstdint>
#include <type_traits>

namespace ez {

int num_threads();            // threads a job may use, the caller included
void set_num_threads(int n);  // n >= 1; the default is the number of CPUs this process may run on
bool thread_pool_enabled();
// After a job in which the caller waited for a descheduled worker, the pool runs jobs on the calling thread alone
// for a while (see parallel.cpp). On by default; tests that must exercise the whole team turn it off.
void set_stall_backoff(bool on);

// Threads worth using for about `flops` operations: a job costs around a microsecond to hand out, so small ops
// run on the calling thread; so does any job started from inside another job's task.
int team_for(double flops);

namespace detail {
using TaskFn = void (*)(const void* ctx, std::int64_t task, int slot);
void run_tasks(int team, std::int64_t tasks, TaskFn fn, const void* ctx);
}  // namespace detail

// fn(task) or fn(task, slot) for every task in [0, tasks), on at most `team` threads. `slot` in [0, team) is
// unique among the threads running tasks of this job at once (per-thread scratch). Each task runs at most once,
// and exactly once unless a task throws; which thread runs it is unspecified. Returns when all are done; if a task
// threw, the first exception is rethrown and which other tasks ran is unspecified. set_num_threads (and a fork)
// must not be called from inside a task: the job holds the pool (set_num_threads throws std::logic_error there).
template <class Fn>
void parallel_for(int team, std::int64_t tasks, const Fn& fn) {
  detail::run_tasks(team, tasks, [](const void* ctx, std::int64_t task, int slot) {
    const Fn& f = *static_cast<const Fn*>(ctx);
    if constexpr (std::is_invocable_v<const Fn&, std::int64_t, int>) {
      f(task, slot);
    } else {
      (void)slot;
      f(task);
    }
  }, &fn);
}

template <class Fn>
void parallel_for(std::int64_t tasks, const Fn& fn) {
  parallel_for(num_threads(), tasks, fn);
}

}  // namespace ez
