// Checked size arithmetic (core/checked.h): exact limits, no wrap-around anywhere near INT64_MAX / SIZE_MAX, and
// tensors and layers refusing sizes that used to wrap (issue 14: Conv2d(1, 4, 2^30) wrote past a 64-byte buffer).
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

#include "core/checked.h"
#include "core/tensor.h"
#include "layers/conv2d.h"
#include "layers/linear.h"
#include "memory/tracker.h"

namespace ez {
namespace {

constexpr std::int64_t kI64Max = std::numeric_limits<std::int64_t>::max();

TEST(Checked, ProductWithinLimit) {
  EXPECT_EQ(product_within({}, 10), 1);
  EXPECT_EQ(product_within({2, 5}, 10), 10);
  EXPECT_EQ(product_within({2, 6}, 10), -1);
  EXPECT_EQ(product_within({INT32_MAX, 1}, kMaxKernelElements), INT32_MAX);
  EXPECT_EQ(product_within({1 << 16, 1 << 15}, kMaxKernelElements), -1);  // 2^31: one past INT_MAX
  EXPECT_EQ(product_within({kI64Max, 1}, kI64Max), kI64Max);
  EXPECT_EQ(product_within({kI64Max, 2}, kI64Max), -1);  // wraps in int64: caught by the overflow builtin
  EXPECT_EQ(product_within({std::int64_t{1} << 32, std::int64_t{1} << 32}, kI64Max), -1);  // 2^64 wraps to 0
  EXPECT_EQ(product_within({std::int64_t{1} << 62, 4, 0}, 10), 0);  // an empty extent: 0 whatever the others
  EXPECT_EQ(product_within({3, -1}, kI64Max), -1);
  EXPECT_EQ(product_within({0, -1}, kI64Max), -1);
}

TEST(Checked, SumWithinLimit) {
  EXPECT_EQ(sum_within({INT32_MAX - 1, 1}, kMaxKernelElements), INT32_MAX);
  EXPECT_EQ(sum_within({INT32_MAX, 1}, kMaxKernelElements), -1);
  EXPECT_EQ(sum_within({kI64Max, 1}, kI64Max), -1);
  EXPECT_EQ(sum_within({-1, 2}, 10), -1);
}

TEST(Checked, MessagesNameWhatAndTheSizes) {
  try {
    checked_product({4, 1, 1 << 30, 1 << 30}, kMaxKernelElements, [] { return std::string("conv weight"); });
    FAIL() << "no exception";
  } catch (const std::overflow_error& e) {
    EXPECT_EQ(std::string(e.what()),
              "conv weight is too large: 4 x 1 x 1073741824 x 1073741824 exceeds 2147483647");
  }
  EXPECT_THROW(checked_bytes(std::int64_t{1} << 62, 4, [] { return std::string("t"); }), std::overflow_error);
  EXPECT_EQ(checked_bytes(kI64Max / 4, 4, [] { return std::string("t"); }), std::size_t(kI64Max / 4) * 4);
  EXPECT_THROW(checked_int(-1, "x"), std::invalid_argument);
  EXPECT_THROW(checked_int(std::int64_t{INT32_MAX} + 1, "x"), std::overflow_error);
  EXPECT_EQ(checked_int(INT32_MAX, "x"), INT32_MAX);
}

TEST(Checked, TensorRefusesCountsThatWrap) {
  const auto before = MemoryTracker::instance().stats().total_current;
  // 2^62 float32 elements: the element count fits int64 but the byte count wraps to 0.
  EXPECT_THROW(Tensor({std::int64_t{1} << 31, std::int64_t{1} << 31}, DType::f32, MemCategory::workspace),
               std::overflow_error);
  EXPECT_THROW(Tensor({std::int64_t{1} << 32, std::int64_t{1} << 32}, DType::s8, MemCategory::workspace),
               std::overflow_error);  // the element count itself wraps
  EXPECT_THROW(Tensor({2, -3}, DType::f32, MemCategory::workspace), std::invalid_argument);
  EXPECT_THROW(shape_numel({kI64Max, 2}), std::overflow_error);
  EXPECT_EQ(MemoryTracker::instance().stats().total_current, before);
}

TEST(Checked, LayersRefuseSizesBeyondTheKernelsIndexRange) {
  EXPECT_THROW(Conv2d(1, 4, std::int64_t{1} << 30, 0, true), std::overflow_error);
  EXPECT_THROW(Conv2d(1, 4, 3, std::int64_t{1} << 31, true), std::overflow_error);
  EXPECT_THROW(Linear(1 << 16, 1 << 16, true, false), std::overflow_error);
  const Conv2d conv(1, 1, 3, 1 << 30, false);  // padding fits an int; padding an input does not
  EXPECT_THROW(conv.output_shape({1, 1, 4, 4}), std::overflow_error);
  const Linear fc(3, 2, true, true);
  EXPECT_THROW(fc.output_shape({1 << 20, 1 << 20, 3}), std::overflow_error);
  EXPECT_EQ(fc.output_shape({2, 5, 3}), (Shape{2, 5, 2}));
}

}  // namespace
}  // namespace ez
