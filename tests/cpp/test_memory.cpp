// Memory tracker and tensor storage: every allocation is counted, aligned, and released.
#include <gtest/gtest.h>

#include <cstdint>

#include "core/tensor.h"
#include "memory/tracker.h"

namespace ez {
namespace {

TEST(Memory, TensorStorageIsAlignedCountedAndReleased) {
  auto& tracker = MemoryTracker::instance();
  const auto before = tracker.stats();
  {
    Tensor t({3, 5, 7}, DType::f32, MemCategory::activations);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(t.raw()) % kAlignment, 0u);
    EXPECT_EQ(t.numel(), 105);
    const auto during = tracker.stats();
    const auto a = static_cast<std::size_t>(MemCategory::activations);
    EXPECT_EQ(during.current[a], before.current[a] + 105 * 4);
    EXPECT_GE(during.peak[a], during.current[a]);
    for (std::int64_t i = 0; i < t.numel(); ++i) EXPECT_EQ(t.f32()[i], 0.f);
  }
  EXPECT_EQ(tracker.stats().total_current, before.total_current);
}

TEST(Memory, ReshapeSharesStorageAndChecksNumel) {
  Tensor t({4, 6}, DType::s8, MemCategory::parameters);
  Tensor v = t.reshaped({24});
  EXPECT_EQ(v.raw(), t.raw());
  EXPECT_THROW(t.reshaped({5, 5}), std::invalid_argument);
  EXPECT_THROW(t.f32(), std::invalid_argument);
}

TEST(Memory, PeakResetsToCurrent) {
  auto& tracker = MemoryTracker::instance();
  { ScratchBuffer<float> big(1 << 16); }
  tracker.reset_peak();
  const auto s = tracker.stats();
  EXPECT_EQ(s.total_peak, s.total_current);
}

}  // namespace
}  // namespace ez
