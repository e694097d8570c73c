// The thread pool: every task runs once whatever the team, slots are unique among running threads, nested and
// concurrent jobs work, exceptions reach the caller, the caller finishes a job alone while a worker is stuck, a
// stall makes the pool run jobs serially for a while, and a forked child gets a working pool.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#if defined(__linux__) && !defined(ELASTICZO_TESTS_EMULATED)
#include <sys/wait.h>
#include <unistd.h>
#endif

#include "core/parallel.h"

namespace ez {
namespace {

// Every test of this binary runs its jobs on the whole team: a stall on a loaded test machine must not turn the
// thread-invariance tests into serial runs. The backoff test turns it on for itself.
class WholeTeam : public testing::Environment {
 public:
  void SetUp() override { set_stall_backoff(false); }
};
const testing::Environment* const kWholeTeam = testing::AddGlobalTestEnvironment(new WholeTeam);

// Restores the thread count a test changed.
class Parallel : public testing::Test {
 protected:
  void SetUp() override { saved_ = num_threads(); }
  void TearDown() override {
    set_num_threads(saved_);
    set_stall_backoff(false);
  }

 private:
  int saved_ = 1;
};

TEST_F(Parallel, EveryTaskRunsExactlyOnceForAnyTeam) {
  for (const int threads : {1, 2, 3, 5}) {
    set_num_threads(threads);
    for (const int team : {1, 2, 3, 8}) {
      for (const std::int64_t tasks : {0, 1, 2, 7, 1000}) {
        std::vector<std::atomic<int>> runs(static_cast<std::size_t>(tasks));
        std::atomic<int> bad_slot{0};
        parallel_for(team, tasks, [&](std::int64_t t, int slot) {
          runs[static_cast<std::size_t>(t)].fetch_add(1);
          if (slot < 0 || slot >= team) bad_slot.fetch_add(1);
        });
        for (std::int64_t t = 0; t < tasks; ++t)
          ASSERT_EQ(runs[static_cast<std::size_t>(t)].load(), 1)
              << "task " << t << " of " << tasks << ", team " << team << ", " << threads << " threads";
        EXPECT_EQ(bad_slot.load(), 0);
      }
    }
  }
}

TEST_F(Parallel, SlotsAreNeverSharedByTwoRunningTasks) {
  set_num_threads(3);
  std::vector<std::atomic<int>> in_use(3);
  std::atomic<int> clashes{0};
  for (int rep = 0; rep < 50; ++rep) {
    parallel_for(3, 64, [&](std::int64_t, int slot) {
      if (in_use[static_cast<std::size_t>(slot)].exchange(1) != 0) clashes.fetch_add(1);
      std::this_thread::yield();
      in_use[static_cast<std::size_t>(slot)].store(0);
    });
  }
  EXPECT_EQ(clashes.load(), 0);
}

TEST_F(Parallel, NestedJobsRunInsideTheTask) {
  set_num_threads(2);
  std::vector<std::atomic<int>> cells(8 * 8);
  parallel_for(8, [&](std::int64_t i) {
    EXPECT_EQ(team_for(1e12), 1);  // a kernel called from a task sizes its scratch for one thread
    parallel_for(8, [&](std::int64_t j, int slot) {
      EXPECT_EQ(slot, 0);
      cells[static_cast<std::size_t>(i * 8 + j)].fetch_add(1);
    });
  });
  for (auto& c : cells) EXPECT_EQ(c.load(), 1);
}

TEST_F(Parallel, ATaskExceptionReachesTheCallerAndThePoolKeepsWorking) {
  set_num_threads(2);
  EXPECT_THROW(parallel_for(100, [](std::int64_t t) {
                 if (t == 37) throw std::runtime_error("task 37");
               }),
               std::runtime_error);
  std::atomic<std::int64_t> sum{0};
  parallel_for(100, [&](std::int64_t t) { sum.fetch_add(t); });
  EXPECT_EQ(sum.load(), 4950);
}

void busy_for(std::chrono::microseconds us) {
  const auto end = std::chrono::steady_clock::now() + us;
  while (std::chrono::steady_clock::now() < end) {
  }
}

// A job of `tasks` 20-us tasks in which the first task a worker takes stops it, as if the scheduler had taken its
// core away, until the caller has done all other tasks but `allowed` (or 10 s have passed), then `extra` longer.
// Returns how many tasks besides the stuck one were not done by then (held back by the worker), or -1 if no
// worker took a task within 10 s of tries.
int stuck_worker_job(std::int64_t tasks, std::int64_t allowed, std::chrono::milliseconds extra) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < give_up) {
    std::atomic<std::int64_t> done{0};
    std::atomic<bool> stuck{false};
    std::int64_t held_back = -1;
    parallel_for(2, tasks, [&](std::int64_t, int slot) {
      busy_for(std::chrono::microseconds(20));
      if (slot != 0 && !stuck.exchange(true)) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (done.load() < tasks - 1 - allowed && std::chrono::steady_clock::now() < deadline)
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        held_back = tasks - 1 - done.load();
        std::this_thread::sleep_for(extra);
      }
      done.fetch_add(1);
    });
    if (stuck.load()) return static_cast<int>(held_back);
  }
  return -1;
}

TEST_F(Parallel, TheCallerFinishesAloneWhileAWorkerIsStuck) {
  // The caller does every task but the few of the run the stuck worker had claimed (1/8 of its share).
  if (!thread_pool_enabled()) GTEST_SKIP() << "serial build: no workers";
  set_num_threads(2);
  for (const std::int64_t tasks : {16, 200, 1000}) {
    const int held_back = stuck_worker_job(tasks, tasks / 16, std::chrono::milliseconds(0));
    ASSERT_GE(held_back, 0) << "no worker took a task of " << tasks;
    EXPECT_LE(held_back, tasks / 16) << "a stuck worker held back " << held_back << " of " << tasks << " tasks";
  }
}

// Tasks that each take `us` microseconds; returns how many of them ran on a worker.
int tasks_on_workers(std::int64_t tasks, int us) {
  std::atomic<int> on_worker{0};
  parallel_for(2, tasks, [&](std::int64_t, int slot) {
    busy_for(std::chrono::microseconds(us));
    if (slot != 0) on_worker.fetch_add(1);
  });
  return on_worker.load();
}

TEST_F(Parallel, AfterAStallJobsRunOnTheCallerForAWhile) {
  if (!thread_pool_enabled()) GTEST_SKIP() << "serial build: no workers";
  set_num_threads(2);
  set_stall_backoff(true);
  // The caller waits 300 ms for the stuck worker after its own work, far longer than that work took (even on a
  // loaded test machine): a stall.
  ASSERT_GE(stuck_worker_job(64, 64, std::chrono::milliseconds(300)), 0) << "no worker took a task";
  EXPECT_EQ(tasks_on_workers(64, 20), 0) << "the job right after a stall used a worker";
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // past the first backoff (10 ms)
  int on_worker = 0;
  for (int rep = 0; rep < 20 && on_worker == 0; ++rep) on_worker += tasks_on_workers(64, 20);
  EXPECT_GT(on_worker, 0) << "the pool never went back to using its worker";
}

TEST_F(Parallel, ConcurrentCallersEachGetAllTheirTasks) {
  set_num_threads(2);
  std::vector<std::thread> callers;
  std::atomic<int> wrong{0};
  for (int c = 0; c < 4; ++c) {
    callers.emplace_back([&] {
      for (int rep = 0; rep < 200; ++rep) {
        std::atomic<std::int64_t> sum{0};
        parallel_for(37, [&](std::int64_t t) { sum.fetch_add(t + 1); });
        if (sum.load() != 37 * 38 / 2) wrong.fetch_add(1);
      }
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST_F(Parallel, WorkersThatFellAsleepWakeForTheNextJob) {
  set_num_threads(2);
  std::atomic<int> on_worker{0};
  for (int rep = 0; rep < 5; ++rep) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // far past the spin: the worker sleeps
    std::atomic<std::int64_t> sum{0};
    // Tasks long enough that a woken worker finds some left.
    parallel_for(2, 64, [&](std::int64_t t, int slot) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      sum.fetch_add(t);
      if (slot != 0) on_worker.fetch_add(1);
    });
    EXPECT_EQ(sum.load(), 63 * 64 / 2);
  }
  if (thread_pool_enabled()) EXPECT_GT(on_worker.load(), 0);
}

TEST_F(Parallel, ThreadCountIsCheckedAndChangesTheTeam) {
  EXPECT_THROW(set_num_threads(0), std::invalid_argument);
  EXPECT_THROW(set_num_threads(-3), std::invalid_argument);
  set_num_threads(3);
  EXPECT_EQ(num_threads(), thread_pool_enabled() ? 3 : 1);
  EXPECT_EQ(team_for(1.0), 1);
  EXPECT_EQ(team_for(1e9), num_threads());
}

#if defined(__linux__) && !defined(ELASTICZO_TESTS_EMULATED)
TEST_F(Parallel, AForkedChildRunsJobs) {
  set_num_threads(2);
  std::atomic<std::int64_t> sum{0};
  parallel_for(100, [&](std::int64_t t) { sum.fetch_add(t); });  // the parent's workers exist
  std::this_thread::sleep_for(std::chrono::milliseconds(5));      // and sleep: waiters of a condition variable
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::atomic<std::int64_t> child_sum{0};
    parallel_for(100, [&](std::int64_t t) { child_sum.fetch_add(t); });
    set_num_threads(3);
    parallel_for(100, [&](std::int64_t t) { child_sum.fetch_add(t); });
    _exit(child_sum.load() == 2 * 4950 ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
}
#endif

}  // namespace
}  // namespace ez
