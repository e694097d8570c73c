// The thread pool behind parallel_for. One job at a time: its descriptor sits beside a 64-bit ticket holding
// (job generation << 32 | next task); a thread claims a task by a compare-and-swap on the ticket, which also proves
// the descriptor it read belongs to that job. The caller claims tasks like the workers, then waits only for tasks
// that workers claimed and are still running. Waiting threads spin for kSpin, then sleep on a condition variable;
// a job wakes sleepers only when there are some, and never waits for them to wake up.
#include "core/parallel.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <string>

#if ELASTICZO_THREADS
#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>
#if defined(__linux__)
#include <pthread.h>
#include <sched.h>
#endif
#endif

namespace ez {

#if ELASTICZO_THREADS
namespace {

// Long enough to bridge the gaps between the jobs of a training step (a few microseconds of serial work), short
// enough that an idle pool leaves the CPU to other programs at once; measured in benchmarks/busy_board.py.
constexpr auto kSpin = std::chrono::microseconds(50);
constexpr std::uint64_t kTaskMask = 0xffffffffu;
constexpr std::int64_t kMaxTasksPerJob = std::int64_t{1} << 31;

thread_local bool t_in_task = false;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// Spins until done() or kSpin has passed; true if done.
template <class Done>
bool spin_until(Done done) {
  const auto start = std::chrono::steady_clock::now();
  for (int i = 1;; ++i) {
    if (done()) return true;
    cpu_relax();
    if (i % 64 == 0 && std::chrono::steady_clock::now() - start > kSpin) return done();
  }
}

int default_threads() {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
#endif
  return std::max(1u, std::thread::hardware_concurrency());
}

class Pool {
 public:
  static Pool& get() {
    static Pool* pool = new Pool;  // never destroyed: workers may outlive static destructors at exit
    return *pool;
  }

  int threads() const { return threads_.load(std::memory_order_relaxed); }

  void set_threads(int n) {
    std::lock_guard<std::mutex> job(submit_);
    if (n == threads()) return;
    stop_workers();
    threads_.store(n, std::memory_order_relaxed);
  }

  void run(int team, std::int64_t tasks, detail::TaskFn fn, const void* ctx) {
    team = static_cast<int>(std::min<std::int64_t>({team, threads(), tasks}));
    std::unique_lock<std::mutex> job(submit_, std::defer_lock);
    // Nested jobs and jobs of a second caller thread (the pool is busy) run here, serially.
    if (team <= 1 || t_in_task || !job.try_lock()) {
      run_serial(tasks, fn, ctx);
      return;
    }
    if (workers_.empty()) start_workers();
    for (std::int64_t first = 0; first < tasks; first += kMaxTasksPerJob) {
      const std::int64_t count = std::min(kMaxTasksPerJob, tasks - first);
      if (first > 0) {  // only for more than 2^31 tasks: an offset wrapper
        struct Offset { detail::TaskFn fn; const void* ctx; std::int64_t first; } off{fn, ctx, first};
        run_job(team, count, [](const void* c, std::int64_t t, int s) {
          const auto* o = static_cast<const Offset*>(c);
          o->fn(o->ctx, o->first + t, s);
        }, &off);
      } else {
        run_job(team, count, fn, ctx);
      }
    }
  }

 private:
  Pool() : threads_(default_threads()) {
#if defined(__linux__)
    // A forked child has none of the parent's workers: it forgets them (without joining) and starts its own.
    pthread_atfork([] { get().submit_.lock(); get().sleep_mutex_.lock(); },
                   [] { get().sleep_mutex_.unlock(); get().submit_.unlock(); },
                   [] {
                     Pool& p = get();
                     p.sleep_mutex_.unlock();
                     p.submit_.unlock();
                     for (auto& w : p.workers_) new std::thread(std::move(w));  // leaked: not joinable here
                     p.workers_.clear();
                     p.sleepers_.store(0);
                     p.caller_waiting_.store(false);
                   });
#endif
  }

  static void run_serial(std::int64_t tasks, detail::TaskFn fn, const void* ctx) {
    const bool outer = t_in_task;
    t_in_task = true;
    try {
      for (std::int64_t t = 0; t < tasks; ++t) fn(ctx, t, 0);
    } catch (...) {
      t_in_task = outer;
      throw;
    }
    t_in_task = outer;
  }

  void run_job(int team, std::int64_t tasks, detail::TaskFn fn, const void* ctx) {
    fn_.store(fn, std::memory_order_relaxed);
    ctx_.store(ctx, std::memory_order_relaxed);
    tasks_.store(tasks, std::memory_order_relaxed);
    team_.store(team, std::memory_order_relaxed);
    done_.store(0, std::memory_order_relaxed);
    error_ = nullptr;
    const auto gen = static_cast<std::uint32_t>((ticket_.load(std::memory_order_relaxed) >> 32) + 1);
    ticket_.store(std::uint64_t{gen} << 32);  // seq_cst: ordered before the read of sleepers_
    if (sleepers_.load() > 0) {
      { std::lock_guard<std::mutex> lock(sleep_mutex_); }
      wake_.notify_all();
    }
    t_in_task = true;
    work(gen, 0);
    t_in_task = false;
    if (!spin_until([&] { return done_.load(std::memory_order_acquire) == tasks; })) {
      std::unique_lock<std::mutex> lock(sleep_mutex_);
      caller_waiting_.store(true);  // seq_cst: ordered before the predicate's read of done_
      finished_.wait(lock, [&] { return done_.load() == tasks; });
      caller_waiting_.store(false);
    }
    if (error_) std::rethrow_exception(error_);
  }

  // Claims and runs tasks of job `gen` until none is left (or a newer job has started).
  void work(std::uint32_t gen, int slot) {
    std::uint64_t t = ticket_.load(std::memory_order_acquire);
    if (static_cast<std::uint32_t>(t >> 32) != gen) return;
    const detail::TaskFn fn = fn_.load(std::memory_order_relaxed);
    const void* ctx = ctx_.load(std::memory_order_relaxed);
    const std::int64_t tasks = tasks_.load(std::memory_order_relaxed);
    for (;;) {
      if (static_cast<std::uint32_t>(t >> 32) != gen || static_cast<std::int64_t>(t & kTaskMask) >= tasks) return;
      // Success proves the ticket still belonged to job `gen` with this task unclaimed, so the job is not
      // finished and the descriptor read above is its own.
      if (!ticket_.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
      try {
        fn(ctx, static_cast<std::int64_t>(t & kTaskMask), slot);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex_);
        if (!error_) error_ = std::current_exception();
      }
      if (done_.fetch_add(1) + 1 == tasks && caller_waiting_.load()) {
        { std::lock_guard<std::mutex> lock(sleep_mutex_); }
        finished_.notify_one();
      }
      t = ticket_.load(std::memory_order_acquire);
    }
  }

  void worker_main(int slot) {
    t_in_task = true;
    std::uint32_t seen = static_cast<std::uint32_t>(ticket_.load() >> 32);
    for (;;) {
      auto fresh = [&] { return static_cast<std::uint32_t>(ticket_.load(std::memory_order_acquire) >> 32) != seen; };
      if (!spin_until([&] { return fresh() || stop_.load(std::memory_order_relaxed); })) {
        std::unique_lock<std::mutex> lock(sleep_mutex_);
        sleepers_.fetch_add(1);  // seq_cst: ordered before the predicate's read of the ticket
        wake_.wait(lock, [&] { return fresh() || stop_.load(); });
        sleepers_.fetch_sub(1);
      }
      if (stop_.load()) return;
      seen = static_cast<std::uint32_t>(ticket_.load(std::memory_order_acquire) >> 32);
      if (slot < team_.load(std::memory_order_relaxed)) work(seen, slot);
    }
  }

  void start_workers() {
    stop_.store(false);
    for (int slot = 1; slot < threads(); ++slot) workers_.emplace_back([this, slot] { worker_main(slot); });
  }

  void stop_workers() {
    {
      std::lock_guard<std::mutex> lock(sleep_mutex_);
      stop_.store(true);
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
  }

  std::atomic<int> threads_;
  std::mutex submit_;  // held by the caller for a whole job
  std::vector<std::thread> workers_;
  std::atomic<std::uint64_t> ticket_{0};
  std::atomic<detail::TaskFn> fn_{nullptr};
  std::atomic<const void*> ctx_{nullptr};
  std::atomic<std::int64_t> tasks_{0};
  std::atomic<int> team_{0};
  std::atomic<std::int64_t> done_{0};
  std::mutex error_mutex_;
  std::exception_ptr error_;
  std::mutex sleep_mutex_;
  std::condition_variable wake_, finished_;
  std::atomic<int> sleepers_{0};
  std::atomic<bool> caller_waiting_{false};
  std::atomic<bool> stop_{false};
};

}  // namespace

int num_threads() { return Pool::get().threads(); }

void set_num_threads(int n) {
  if (n < 1) throw std::invalid_argument("thread count must be >= 1, got " + std::to_string(n));
  Pool::get().set_threads(n);
}

bool thread_pool_enabled() { return true; }

int team_for(double flops) { return flops < 2e5 || t_in_task ? 1 : num_threads(); }

namespace detail {
void run_tasks(int team, std::int64_t tasks, TaskFn fn, const void* ctx) {
  if (tasks > 0) Pool::get().run(team, tasks, fn, ctx);
}
}  // namespace detail

#else  // serial build

int num_threads() { return 1; }

void set_num_threads(int n) {
  if (n < 1) throw std::invalid_argument("thread count must be >= 1, got " + std::to_string(n));
}

bool thread_pool_enabled() { return false; }

int team_for(double) { return 1; }

namespace detail {
void run_tasks(int, std::int64_t tasks, TaskFn fn, const void* ctx) {
  for (std::int64_t t = 0; t < tasks; ++t) fn(ctx, t, 0);
}
}  // namespace detail

#endif

}  // namespace ez
