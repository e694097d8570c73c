// FP32 ZO passes (layers/fp32_operand.h): a Linear whose perturbed weights are met in blocks of output features
// (in parallel tasks, or one after another) computes the very bits of the same Linear holding theta + s z, on every
// kernel level and for 1, 2 and 3 threads, and leaves its stored weights alone.
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "bit_compare.h"
#include "core/parallel.h"
#include "kernels/kernels.h"
#include "layers/fp32_operand.h"
#include "layers/linear.h"
#include "rng/philox.h"

namespace ez {
namespace {

std::vector<float> values(const Tensor& t) { return {t.f32(), t.f32() + t.numel()}; }

std::vector<float> forward(const Linear& layer, const Tensor& x, int rows, int out) {
  Tensor y({rows, out}, DType::f32, MemCategory::activations);
  layer.forward(x, y);
  return values(y);
}

TEST(Fp32Operand, ALinearZoPassByBlocksEqualsTheLayerHoldingThePerturbedWeights) {
  // {rows, in, out}: LeNet-5's fc1 at batch 64 and 32 (parallel blocks of 12), a ragged last block, a short
  // reduction, one row, and a shape whose kernel takes workspace on the SIMD levels (blocks one after another).
  const std::array<int, 3> shapes[] = {{64, 784, 120}, {32, 784, 120}, {3, 1000, 50}, {5, 100, 400},
                                       {1, 4100, 30},  {100, 200, 1000}};
  const float scale = -3e-3f;
  const PhiloxKey key = step_key(17, 4);
  const std::string isa_before = kernels().isa;
  const int threads_before = num_threads();
  for (const auto& [rows, in, out] : shapes) {
    const LinearShape s{rows, in, out};
    ASSERT_LT(zo_linear_blocks(s, true).width, out) << "the shape must go by blocks";
    Linear zo(in, out, true, false), held(in, out, true, false);
    zo.init_parameters(7);
    held.init_parameters(7);
    Param &w = zo.params()[0], &b = zo.params()[1];
    const std::vector<float> w_before = values(w.value), b_before = values(b.value);
    w.zo = {key, 3, 0, 0, 0};
    b.zo = {key, 3, static_cast<std::uint64_t>(w.value.numel()), 0, 0};  // weight and bias share the stream
    w.zo_scale = b.zo_scale = scale;
    for (Param* p : {&held.params()[0], &held.params()[1]}) {
      const Param& src = p == &held.params()[0] ? w : b;
      zo_axpy_gaussian_f32_ref(static_cast<std::size_t>(p->value.numel()), scale, key, 3, src.zo.offset,
                               p->value.f32(), p->value.f32());
    }
    Tensor x({rows, in}, DType::f32, MemCategory::activations);
    std::mt19937 gen(static_cast<std::uint32_t>(rows * in + out));
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    for (std::int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = u(gen);
    for (const std::string& isa : available_isas()) {
      set_isa(isa);
      set_num_threads(1);
      const std::vector<float> want = forward(held, x, rows, out);
      for (const int threads : {1, 2, 3}) {
        set_num_threads(threads);
        const std::string what = isa + " " + std::to_string(rows) + "x" + std::to_string(in) + "x" +
                                 std::to_string(out) + ", " + std::to_string(threads) + " threads";
        EXPECT_TRUE(testing::same_bits(want, forward(zo, x, rows, out), what));
        EXPECT_TRUE(testing::same_bits(w_before, values(w.value), what + ": stored weight"));
        EXPECT_TRUE(testing::same_bits(b_before, values(b.value), what + ": stored bias"));
      }
    }
  }
  set_isa(isa_before);
  set_num_threads(threads_before);
}

}  // namespace
}  // namespace ez
