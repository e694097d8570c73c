// Tensors of every dtype: an int8 tensor's exponent lives with its storage, so views made once (the alias views
// Sequential builds for Flatten and in-place ReLU, copies of the handle) always see the current exponent; and a
// layer parameter can be int8 (the lowest level that holds one until the INT8 layers exist).
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include "layers/layer.h"
#include "layers/shape_ops.h"
#include "model/sequential.h"

namespace ez {
namespace {

TEST(TensorExponent, TravelsWithTheStorageToEveryView) {
  Tensor t({2, 3, 4}, DType::s8, MemCategory::activations);
  const Tensor flat = t.reshaped({2, 12});  // what Sequential makes once for a Flatten after this output
  const Tensor handle = t;                 // what an in-place ReLU receives as its output
  EXPECT_EQ(flat.exponent(), 0);
  t.set_exponent(-5);  // the next batch requantizes with another exponent
  EXPECT_EQ(flat.exponent(), -5);
  EXPECT_EQ(handle.exponent(), -5);
  Tensor view = flat;
  view.set_exponent(3);  // written through a view: the owner sees it too
  EXPECT_EQ(t.exponent(), 3);
  // A separate tensor has its own exponent.
  Tensor other({2, 3, 4}, DType::s8, MemCategory::activations);
  EXPECT_EQ(other.exponent(), 0);
}

TEST(TensorExponent, FlattenOutputSeesTheExponentOfItsInput) {
  Flatten flatten;
  Tensor x({2, 3, 2, 2}, DType::s8, MemCategory::activations);
  Tensor y = x.reshaped(flatten.output_shape(x.shape()));  // Flatten aliases its input, as in Sequential
  ASSERT_TRUE(flatten.aliases_input());
  for (int e : {-7, 2, -1}) {
    x.set_exponent(e);
    flatten.forward(x, y);
    EXPECT_EQ(y.exponent(), e);
  }
}

TEST(TensorExponent, Float32HasNoneAndUndefinedTensorsRefuse) {
  Tensor f({3}, DType::f32, MemCategory::activations);
  EXPECT_EQ(f.exponent(), 0);
  EXPECT_NO_THROW(f.set_exponent(0));
  EXPECT_THROW(f.set_exponent(2), std::invalid_argument);
  Tensor undefined;
  EXPECT_EQ(undefined.exponent(), 0);
  EXPECT_THROW(undefined.set_exponent(1), std::logic_error);
  Tensor acc({3}, DType::s32, MemCategory::accumulators);  // int32 accumulators carry a scale too
  acc.set_exponent(-9);
  EXPECT_EQ(acc.reshaped({1, 3}).exponent(), -9);
}

// A parameter layer whose weight is int8 mantissas with an exponent (test-only: no int8 layer exists yet).
class Int8Weight final : public Layer {
 public:
  explicit Int8Weight(int exponent) {
    params_.push_back({"weight", Tensor({2, 3}, DType::s8, MemCategory::parameters), {}});
    for (int i = 0; i < 6; ++i) params_[0].value.s8()[i] = static_cast<std::int8_t>(i * 40 - 100);
    params_[0].value.set_exponent(exponent);
  }
  std::string kind() const override { return "int8_weight"; }
  std::string repr() const override { return "Int8Weight()"; }
  Shape output_shape(const Shape& in) const override { return in; }
  void forward(const Tensor&, Tensor&) const override {}
  void backward_data(const Tensor&, const Tensor&, const Tensor&, Tensor&) const override {}
};

TEST(Int8Parameters, ComeOutOfTheModelWithTheirDtypeValuesAndExponent) {
  Sequential m;
  m.add("q", std::make_shared<Int8Weight>(-6));
  const auto named = m.named_parameters();
  ASSERT_EQ(named.size(), 1u);
  EXPECT_EQ(named[0].name, "q.weight");
  const Tensor& w = named[0].param->value;
  EXPECT_EQ(w.dtype(), DType::s8);
  EXPECT_EQ(w.exponent(), -6);
  EXPECT_EQ(w.s8()[5], 100);
  EXPECT_THROW(w.f32(), std::invalid_argument);  // a float32 kernel given it fails clearly
  EXPECT_EQ(m.num_params(), 6);
}

}  // namespace
}  // namespace ez
