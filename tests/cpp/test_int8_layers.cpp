// INT8 layers and NITI's update as the engine runs them: the vectorized weight update against the scalar rule, on
// every kernel level, and the integer layers' buffers in the memory plan.
#include <gtest/gtest.h>

#include <random>

#include "int8/rules.h"
#include "kernels/kernels.h"
#include "layers/conv2d.h"
#include "layers/int8_layer.h"
#include "layers/linear.h"
#include "layers/shape_ops.h"
#include "model/sequential.h"

namespace ez {
namespace {

// Restores the active kernel level after a test that switches it.
struct IsaGuard {
  std::string isa = kernels().isa;
  ~IsaGuard() { set_isa(isa); }
};

TEST(Int8Layers, WeightUpdateMatchesTheRuleOnEveryLevel) {
  const IsaGuard guard;
  std::mt19937 gen(7);
  for (const std::string& isa : available_isas()) {
    set_isa(isa);
    for (int mu : {0, 3, 5, 7}) {
      for (int bits : {0, 1, 4, 9, 20, 31}) {
        const std::size_t n = 1000 + static_cast<std::size_t>(bits);
        Param p{"weight", Tensor({static_cast<std::int64_t>(n)}, DType::s8, MemCategory::parameters),
                Tensor({static_cast<std::int64_t>(n)}, DType::s32, MemCategory::gradients),
                Tensor({static_cast<std::int64_t>(n)}, DType::s8, MemCategory::gradients)};
        std::uniform_int_distribution<int> w(-127, 127);
        const std::int64_t lim = bits == 0 ? 0 : (std::int64_t{1} << bits) - 1;
        std::uniform_int_distribution<std::int64_t> g(-lim, lim);
        for (std::size_t i = 0; i < n; ++i) {
          p.value.s8()[i] = static_cast<std::int8_t>(w(gen));
          p.grad.s32()[i] = static_cast<std::int32_t>(g(gen));
        }
        std::vector<std::int8_t> want(p.value.s8(), p.value.s8() + n);
        niti_weight_update(n, p.grad.s32(), mu, kNitiRounding.weight_grads, DrawStream{}, want.data());
        niti_update_param(p, mu);
        ASSERT_EQ(std::vector<std::int8_t>(p.value.s8(), p.value.s8() + n), want)
            << isa << " mu " << mu << " bits " << bits;
      }
    }
  }
}

TEST(Int8Layers, PlanDeclaresIntegerBuffersAndAccumulators) {
  auto m = std::make_shared<Sequential>();
  m->add("fc1", std::make_shared<Linear>(20, 16, false, false, Precision::int8));
  m->add("relu", std::make_shared<ReLU>(false, Precision::int8));
  m->add("fc2", std::make_shared<Linear>(16, 5, false, false, Precision::int8));
  const MemoryPlan plan = m->plan_for({8, 20}, 0, MemoryPolicy::static_);
  std::size_t acc = 0, err_acc = 0;
  for (const PlannedBuffer& b : plan.buffers) {
    if (b.role == BufferRole::output || b.role == BufferRole::output_error) EXPECT_EQ(b.dtype, DType::s8) << b.name;
    if (b.role == BufferRole::accumulator) acc += b.bytes;
    if (b.role == BufferRole::error_accumulator) err_acc += b.bytes;
  }
  EXPECT_EQ(acc, 4u * 8 * (16 + 5));  // an int32 accumulator per output of every linear layer
  EXPECT_EQ(err_acc, 4u * 8 * 16);    // the error of fc2's input; fc1 propagates none
  EXPECT_EQ(plan.bytes[static_cast<int>(MemCategory::gradients)], 5u * (20 * 16 + 16 * 5));  // int32 G + int8 g
}

}  // namespace
}  // namespace ez
