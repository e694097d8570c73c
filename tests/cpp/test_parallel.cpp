// The thread pool: every task runs once whatever the team, slots are unique among running threads, nested and
// concurrent jobs work, exceptions reach the caller, the caller finishes a job alone while a worker is stuck, and
// a forked child gets a working pool.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sys/wait.h>
#include <unistd.h>
#endif

#include "core/parallel.h"

namespace ez {
namespace {

// Restores the thread count a test changed.
class Parallel : public testing::Test {
 protected:
  void SetUp() override { saved_ = num_threads(); }
  void TearDown() override { set_num_threads(saved_); }

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

TEST_F(Parallel, TheCallerFinishesAloneWhileAWorkerIsStuck) {
  // The first task a worker takes blocks until every other task is done: only the calling thread can do them,
  // as it must when the scheduler has taken the worker's core away.
  set_num_threads(2);
  constexpr std::int64_t kTasks = 200;
  for (int rep = 0; rep < 20; ++rep) {
    std::atomic<std::int64_t> done{0};
    std::atomic<bool> blocked{false};
    parallel_for(2, kTasks, [&](std::int64_t, int slot) {
      if (slot != 0 && !blocked.exchange(true)) {
        while (done.load() < kTasks - 1) std::this_thread::yield();
      }
      done.fetch_add(1);
    });
    EXPECT_EQ(done.load(), kTasks);
  }
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

#if defined(__linux__)
TEST_F(Parallel, AForkedChildRunsJobs) {
  set_num_threads(2);
  std::atomic<std::int64_t> sum{0};
  parallel_for(100, [&](std::int64_t t) { sum.fetch_add(t); });  // the parent's workers exist
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
