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
        const std::vector<std::int8_t> before(p.value.s8(), p.value.s8() + n);
        // every scheme a run may choose for the weight gradients, stochastic draws from an arbitrary stream
        for (Rounding mode : {Rounding::nearest, Rounding::stochastic, Rounding::pseudo_stochastic}) {
          const DrawStream draws{{5, 9}, kWeightGradDraws + 3, 17};
          std::vector<std::int8_t> want = before;
          niti_weight_update(n, p.grad.s32(), mu, mode, draws, want.data());
          std::copy(before.begin(), before.end(), p.value.s8());
          niti_update_param(p, mu, mode, draws);
          ASSERT_EQ(std::vector<std::int8_t>(p.value.s8(), p.value.s8() + n), want)
              << isa << " mu " << mu << " bits " << bits << " " << rounding_name(mode);
        }
      }
    }
  }
}

// The weight gradient of `layer` for int8 input x and error dy (filled by `value(i)`), as int64 sums saturated to
// int32: what int8_weight_grad must give however long the reduction is.
template <class Fill>
std::vector<std::int32_t> weight_grad_of(Layer& layer, const Shape& in, Fill value) {
  Tensor x(in, DType::s8, MemCategory::activations), dy(layer.output_shape(in), DType::s8, MemCategory::errors);
  for (std::int64_t i = 0; i < x.numel(); ++i) x.s8()[i] = 127;
  for (std::int64_t i = 0; i < dy.numel(); ++i) dy.s8()[i] = value(i);
  Tensor& g = layer.params()[0].grad;  // a model allocates it while backprop trains the layer
  g = Tensor(layer.params()[0].value.shape(), DType::s32, MemCategory::gradients);
  layer.backward_weight(x, dy, false);
  return {g.s32(), g.s32() + g.numel()};
}

TEST(Int8Layers, WeightGradientOverLongReductionsIsExactOrSaturatesNeverWraps) {
  // 140,000 products of 127 x 127 overflow an int32 (the most it holds exactly is 133,143 of them).
  const std::int64_t rows = 140000;
  Linear fc(1, 1, false, false, Precision::int8);
  EXPECT_EQ(weight_grad_of(fc, {rows, 1}, [](std::int64_t) { return std::int8_t{127}; }),
            std::vector<std::int32_t>{INT32_MAX});
  EXPECT_EQ(weight_grad_of(fc, {rows, 1}, [](std::int64_t) { return std::int8_t{-127}; }),
            std::vector<std::int32_t>{-INT32_MAX - 1});
  // Positive first, negative last: partial sums beyond int32, a total within it, which must come out exact.
  const std::int64_t positive = 133143;
  const auto mixed = [&](std::int64_t i) { return static_cast<std::int8_t>(i < positive ? 127 : -127); };
  EXPECT_EQ(weight_grad_of(fc, {rows, 1}, mixed),
            std::vector<std::int32_t>{static_cast<std::int32_t>((2 * positive - rows) * 127 * 127)});
  // Conv2d blocks whole samples: 4 images of 200 x 200 output positions (3 per block).
  Conv2d conv(1, 1, 1, 0, false, Precision::int8);
  const auto per_image = [](std::int64_t i) { return static_cast<std::int8_t>(i < 3 * 40000 ? 127 : -127); };
  EXPECT_EQ(weight_grad_of(conv, {4, 1, 200, 200}, per_image),
            std::vector<std::int32_t>{static_cast<std::int32_t>(2 * 40000 * 127 * 127)});
  EXPECT_EQ(weight_grad_of(conv, {4, 1, 200, 200}, [](std::int64_t) { return std::int8_t{127}; }),
            std::vector<std::int32_t>{INT32_MAX});
  // One image whose gradient alone would sum more products than an int32 holds: a clear error, before any step.
  EXPECT_THROW(conv.buffers({1, 1, 400, 400}, true), std::invalid_argument);
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
