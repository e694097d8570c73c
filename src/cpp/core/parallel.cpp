// The thread pool behind parallel_for. One job at a time. Each of the job's threads owns a contiguous range of
// its tasks (thread s of T: the s-th T-th), so a thread meets the same part of the batch in consecutive layers and
// finds it in its own cache; once its range is empty it takes tasks from the others' ranges. Tasks are claimed in
// runs of about 1/8 of a range through a 64-bit counter per range holding (job generation << 32 | next task): the
// compare-and-swap that claims a run also proves that the job descriptor the thread read is that job's. A worker
// the scheduler took away therefore holds back at most the run it is in, the caller can finish all the rest, and
// who runs a task never changes what it computes. Waiting threads spin for kSpin, then sleep on a condition
// variable; a job wakes sleepers only when there are some, and never waits for them to wake up.
// When the CPU is oversubscribed, a worker is sometimes descheduled in the middle of a run, and the caller then
// waits a whole scheduling period for it. A job whose caller waited longer than its own share of the work took
// is such a stall: the pool then runs jobs on the calling thread alone for a while (kMinBackoff, doubling while
// stalls repeat, up to kMaxBackoff), so a busy board costs at most about what one thread costs.
#include "core/parallel.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <string>

#if ELASTICZO_THREADS
#include <atomic>
#include <condition_variable>
#include <exception>
#include <memory>
#include <new>
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
// Rejected, measured (session 7; LeNet-5 Cls1 step harness, chrt, alternated, load 4-7): 150 us together with
// team_for's threshold at 1.5 MFLOP (the backprop part's fc2 on the caller). It helps only while the VM makes
// cross-core cache traffic slow (backprop part 86-100 -> 39-43 us per step; fastest step of 400 1570-1583 ->
// 1471-1526 us); in its usual state fc2 on one thread is slower (33-38 -> 45-49 us) and so is the step (1142-1172 ->
// 1168-1256 us; Full ZO's step/forward 2.27-2.28 -> 2.30-2.35). Either change alone did no better.
constexpr auto kSpin = std::chrono::microseconds(50);
// A healthy worker's last run ends within the caller's own share of the job; this much more is a stall.
constexpr auto kStallSlack = std::chrono::microseconds(100);
constexpr auto kMinBackoff = std::chrono::milliseconds(10), kMaxBackoff = std::chrono::milliseconds(1000);
using Clock = std::chrono::steady_clock;
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

// A thread's range of tasks; a cache line of its own, as every thread claims from it.
struct alignas(64) Range {
  std::atomic<std::uint64_t> next{0};  // generation << 32 | next task
  std::atomic<std::int64_t> end{0};
};

class Pool {
 public:
  static Pool& get() {
    static Pool* pool = new Pool;  // never destroyed: workers may outlive static destructors at exit
    return *pool;
  }

  int threads() const { return threads_.load(std::memory_order_relaxed); }

  void set_backoff(bool on) {
    if (t_in_task) throw std::logic_error("set_stall_backoff called from a parallel_for task");
    std::lock_guard<std::mutex> job(submit_);
    backoff_on_ = on;
    serial_until_ = {};
    backoff_ = kMinBackoff;
  }

  void set_threads(int n) {
    if (t_in_task) throw std::logic_error("set_num_threads called from a parallel_for task");
    std::lock_guard<std::mutex> job(submit_);
    if (n == threads()) return;
    stop_workers();
    threads_.store(n, std::memory_order_relaxed);
  }

  void run(int team, std::int64_t tasks, detail::TaskFn fn, const void* ctx) {
    std::unique_lock<std::mutex> job(submit_, std::defer_lock);
    // Nested jobs and jobs of a second caller thread (the pool is busy) run here, serially. The team is sized
    // under the lock: set_threads may have changed the thread count (and the ranges) since the caller looked.
    if (team <= 1 || tasks <= 1 || t_in_task || !job.try_lock()) {
      run_serial(tasks, fn, ctx);
      return;
    }
    team = static_cast<int>(std::min<std::int64_t>({team, threads(), tasks}));
    if (team <= 1 || (backoff_on_ && Clock::now() < serial_until_)) {
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
    // A forked child has none of the parent's workers: it forgets them (without joining) and starts its own. The
    // condition variables are made anew: the parent's sleeping workers are still counted as waiters in them, and
    // a notify would wait for those forever.
    pthread_atfork([] { get().submit_.lock(); get().sleep_mutex_.lock(); },
                   [] { get().sleep_mutex_.unlock(); get().submit_.unlock(); },
                   [] {
                     Pool& p = get();
                     p.sleep_mutex_.unlock();
                     p.submit_.unlock();
                     new (&p.wake_) std::condition_variable;
                     new (&p.finished_) std::condition_variable;
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
    const std::uint32_t gen = gen_.load(std::memory_order_relaxed) + 1;
    fn_.store(fn, std::memory_order_relaxed);
    ctx_.store(ctx, std::memory_order_relaxed);
    tasks_.store(tasks, std::memory_order_relaxed);
    run_.store(std::max<std::int64_t>(1, tasks / (8 * team)), std::memory_order_relaxed);
    team_.store(team, std::memory_order_relaxed);
    for (int s = 0; s < team; ++s) {
      // The cursor first, then the end with release: a thread still in an earlier job that reads this job's end
      // (acquire, before the cursor) also reads this job's generation in the cursor, so it cannot pair a new end
      // with an old cursor and claim tasks past the old end.
      ranges_[s].next.store(std::uint64_t{gen} << 32 | static_cast<std::uint64_t>(tasks * s / team),
                            std::memory_order_relaxed);
      ranges_[s].end.store(tasks * (s + 1) / team, std::memory_order_release);
    }
    done_.store(0, std::memory_order_relaxed);
    error_ = nullptr;
    const auto start = Clock::now();
    gen_.store(gen);  // seq_cst: publishes the above, and is ordered before the read of sleepers_
    if (sleepers_.load() > 0) {
      { std::lock_guard<std::mutex> lock(sleep_mutex_); }
      wake_.notify_all();
    }
    t_in_task = true;
    work(gen, 0);
    t_in_task = false;
    const auto free = Clock::now();
    if (!spin_until([&] { return done_.load(std::memory_order_acquire) == tasks; })) {
      std::unique_lock<std::mutex> lock(sleep_mutex_);
      caller_waiting_.store(true);  // seq_cst: ordered before the predicate's read of done_
      finished_.wait(lock, [&] { return done_.load() == tasks; });
      caller_waiting_.store(false);
    }
    note_stalls(start, free, Clock::now());
    if (error_) std::rethrow_exception(error_);
  }

  // The caller worked from `start` to `free`, then waited for the workers' last runs until `end`.
  void note_stalls(Clock::time_point start, Clock::time_point free, Clock::time_point end) {
    if (end - free > (free - start) + kStallSlack) {
      serial_until_ = end + backoff_;
      backoff_ = std::min<Clock::duration>(2 * backoff_, kMaxBackoff);
      last_stall_ = end;
    } else if (end - last_stall_ > kMaxBackoff) {
      backoff_ = kMinBackoff;
    }
  }

  // Runs tasks of job `gen`: first from the thread's own range, then from the others', until none is left.
  void work(std::uint32_t gen, int slot) {
    if (gen_.load(std::memory_order_acquire) != gen) return;
    const detail::TaskFn fn = fn_.load(std::memory_order_relaxed);
    const void* ctx = ctx_.load(std::memory_order_relaxed);
    const std::int64_t tasks = tasks_.load(std::memory_order_relaxed), run = run_.load(std::memory_order_relaxed);
    const int team = team_.load(std::memory_order_relaxed);
    for (int k = 0; k < team; ++k) {
      Range& range = ranges_[(slot + k) % team];
      const std::int64_t end = range.end.load(std::memory_order_acquire);  // before next: see run_job
      std::uint64_t t = range.next.load(std::memory_order_acquire);
      for (;;) {
        if (static_cast<std::uint32_t>(t >> 32) != gen) return;  // the job is over
        const auto first = static_cast<std::int64_t>(t & kTaskMask);
        if (first >= end) break;
        const std::int64_t count = std::min(run, end - first);
        // Success proves this range still belonged to job `gen` with these tasks unclaimed, so the job is not
        // finished and everything read above is its own.
        if (!range.next.compare_exchange_weak(t, t + static_cast<std::uint64_t>(count), std::memory_order_acq_rel,
                                              std::memory_order_acquire))
          continue;
        try {
          for (std::int64_t task = first; task < first + count; ++task) fn(ctx, task, slot);
        } catch (...) {
          std::lock_guard<std::mutex> lock(error_mutex_);
          if (!error_) error_ = std::current_exception();
        }
        if (done_.fetch_add(count) + count == tasks && caller_waiting_.load()) {
          { std::lock_guard<std::mutex> lock(sleep_mutex_); }
          finished_.notify_one();
        }
        t = range.next.load(std::memory_order_acquire);
      }
    }
  }

  void worker_main(int slot, std::uint32_t seen) {
    t_in_task = true;
    for (;;) {
      auto fresh = [&] { return gen_.load(std::memory_order_acquire) != seen; };
      if (!spin_until([&] { return fresh() || stop_.load(std::memory_order_relaxed); })) {
        std::unique_lock<std::mutex> lock(sleep_mutex_);
        sleepers_.fetch_add(1);  // seq_cst: ordered before the predicate's read of gen_
        wake_.wait(lock, [&] { return gen_.load() != seen || stop_.load(); });  // seq_cst, as sleepers_
        sleepers_.fetch_sub(1);
      }
      if (stop_.load()) return;
      seen = gen_.load(std::memory_order_acquire);
      if (slot < team_.load(std::memory_order_relaxed)) work(seen, slot);
    }
  }

  void start_workers() {
    ranges_.reset(new Range[static_cast<std::size_t>(threads())]);
    stop_.store(false);
    const std::uint32_t seen = gen_.load();  // the job about to be published is new to the workers
    for (int slot = 1; slot < threads(); ++slot)
      workers_.emplace_back([this, slot, seen] { worker_main(slot, seen); });
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
  std::mutex submit_;  // held by the caller for a whole job, and guards the four below
  bool backoff_on_ = true;
  Clock::time_point serial_until_{}, last_stall_{};
  Clock::duration backoff_ = kMinBackoff;
  std::vector<std::thread> workers_;
  std::unique_ptr<Range[]> ranges_;  // one per thread; replaced only while no worker runs
  // Changed once per job, read by spinning workers: a cache line of its own, as is the count of finished tasks.
  alignas(64) std::atomic<std::uint32_t> gen_{0};
  alignas(64) std::atomic<std::int64_t> done_{0};
  // The job descriptor: written by the caller between jobs only.
  alignas(64) std::atomic<detail::TaskFn> fn_{nullptr};
  std::atomic<const void*> ctx_{nullptr};
  std::atomic<std::int64_t> tasks_{0}, run_{1};
  std::atomic<int> team_{0};
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

void set_stall_backoff(bool on) { Pool::get().set_backoff(on); }

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

void set_stall_backoff(bool) {}

int team_for(double) { return 1; }

namespace detail {
void run_tasks(int, std::int64_t tasks, TaskFn fn, const void* ctx) {
  for (std::int64_t t = 0; t < tasks; ++t) fn(ctx, t, 0);
}
}  // namespace detail

#endif

}  // namespace ez
