// The ElasticZO step skeleton: a step that throws (here: a non-finite loss in the + pass, in the - pass, or in the
// clean backprop pass) brings the ZO weights back and leaves the backprop part and the step count alone; and
// switching the ISA while another thread trains is safe (tables live for the process; run under ASan in CI).
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bit_compare.h"
#include "kernels/kernels.h"
#include "layers/conv2d.h"
#include "layers/linear.h"
#include "layers/shape_ops.h"
#include "model/sequential.h"
#include "rng/philox.h"
#include "train/elasticzo.h"

namespace ez {
namespace {

std::shared_ptr<Sequential> small_convnet(std::uint64_t seed) {
  auto m = std::make_shared<Sequential>();
  m->add("conv1", std::make_shared<Conv2d>(1, 4, 3, 1, true));
  m->add("relu1", std::make_shared<ReLU>(true));
  m->add("pool1", std::make_shared<MaxPool2d>(2));
  m->add("flatten", std::make_shared<Flatten>());
  m->add("fc1", std::make_shared<Linear>(4 * 4 * 4, 16, true, false));
  m->add("relu2", std::make_shared<ReLU>(false));
  m->add("fc2", std::make_shared<Linear>(16, 10, true, false));
  m->init_parameters(seed);
  return m;
}

struct Batch {
  std::vector<float> x;
  std::vector<std::int32_t> y;
  Tensor xt, yt;
};

Batch batch(int n, std::uint32_t seed) {
  Batch b{std::vector<float>(static_cast<std::size_t>(n) * 64), std::vector<std::int32_t>(n), {}, {}};
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  for (float& v : b.x) v = u(gen);
  for (int i = 0; i < n; ++i) b.y[i] = static_cast<std::int32_t>(gen() % 10);
  b.xt = Tensor::borrow(b.x.data(), {n, 1, 8, 8}, DType::f32);
  b.yt = Tensor::borrow(b.y.data(), {n}, DType::s32);
  return b;
}

std::vector<std::vector<float>> weights(Sequential& m) {
  std::vector<std::vector<float>> out;
  for (const NamedParam& p : m.named_parameters())
    out.emplace_back(p.param->value.f32(), p.param->value.f32() + p.param->value.numel());
  return out;
}

std::int64_t max_ulps(const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b) {
  std::int64_t worst = 0;
  for (std::size_t t = 0; t < a.size(); ++t)
    for (std::size_t i = 0; i < a[t].size(); ++i) {
      std::int32_t ia, ib;
      std::memcpy(&ia, &a[t][i], 4);
      std::memcpy(&ib, &b[t][i], 4);
      worst = std::max<std::int64_t>(worst, std::llabs(static_cast<std::int64_t>(ia) - ib));
    }
  return worst;
}

ElasticZOConfig config(int zo_layers) {
  ElasticZOConfig c;
  c.zo_layers = zo_layers;
  c.eps = 1e-2f;
  c.lr_zo = 1e-3f;
  c.lr_bp = 0.05f;
  c.grad_clip = 1.0f;
  c.seed = 11;
  return c;
}

// An output bias that has overflowed to +inf makes the + pass's loss NaN. The step throws with every weight as it was
// before the step, bit for bit: the passes computed with perturbed weights built aside, the stored ones were never
// written (before, the ZO part came back only up to the rounding of the float adds that undid the perturbation). The
// backprop part and the step count are unchanged too.
TEST(StepRestore, NonFiniteLossInThePlusPassLeavesEveryWeightBitIdentical) {
  for (const int zo_layers : {1, 2, 3}) {
    for (const bool clean_pass : {false, true}) {
      auto model = small_convnet(3);
      ElasticZOConfig c = config(zo_layers);
      c.clean_bp_pass = clean_pass;
      ElasticZO trainer(model, c);
      Batch good = batch(8, 1);
      trainer.step(good.xt, good.yt);  // a normal step first: gradient buffers exist, Adam/SGD state is in use
      model->named_parameters()[5].param->value.f32()[3] = std::numeric_limits<float>::infinity();  // fc2.bias
      const auto before = weights(*model);
      EXPECT_THROW(trainer.step(good.xt, good.yt), std::runtime_error);
      const auto after = weights(*model);
      std::size_t t = 0;
      for (const NamedParam& p : model->named_parameters()) {
        EXPECT_TRUE(testing::same_bits(before[t], after[t], p.name + " zo_layers=" + std::to_string(zo_layers)));
        EXPECT_EQ(p.param->zo_scale, 0.0f) << p.name;  // no operand left aside for later forwards
        ++t;
      }
      EXPECT_EQ(trainer.steps_done(), 1u);
    }
  }
}

// The update of a completed step is the same as replaying it (apply_zo_update with -lr g, as federated replicas
// do): theta + (-lr g) z written once, from the weights before the step.
TEST(StepRestore, ACompletedStepWritesTheUpdateOnceLikeAReplay) {
  auto model = small_convnet(3), replica = small_convnet(3);
  ElasticZOConfig c = config(3);
  ElasticZO trainer(model, c), replay(replica, c);
  Batch good = batch(8, 1);
  const StepStats st = trainer.step(good.xt, good.yt);
  replay.apply_zo_update(0, -c.lr_zo * st.projected_grad);
  const auto a = weights(*model), b = weights(*replica);
  for (std::size_t t = 0; t < a.size(); ++t) EXPECT_TRUE(testing::same_bits(a[t], b[t], std::to_string(t)));
}

// The - pass fails and the + pass does not: one linear layer without bias whose weights are w = -eps z, so that the
// + pass sees exactly 0 and the - pass sees -2 eps z * x, which overflows for x near FLT_MAX.
TEST(StepRestore, NonFiniteLossInTheMinusPassRestoresTheZoWeightsExactly) {
  auto model = std::make_shared<Sequential>();
  model->add("fc", std::make_shared<Linear>(1, 2, false, false));
  ElasticZOConfig c = config(1);
  c.eps = 1.0f;
  std::vector<float> z(2, 0.0f);
  // The first seed whose z has an element above 0.6 in magnitude, so that 2 |z| 3e38 overflows.
  for (c.seed = 0; std::max(std::fabs(z[0]), std::fabs(z[1])) <= 0.6f; ++c.seed) {
    z.assign(2, 0.0f);
    zo_axpy_gaussian_f32_ref(2, 1.0f, step_key(c.seed, 0), 0, 0, z.data(), z.data());
  }
  --c.seed;
  ElasticZO trainer(model, c);
  Tensor& w = model->named_parameters()[0].param->value;
  for (int i = 0; i < 2; ++i) w.f32()[i] = -z[i];
  const std::vector<float> before(w.f32(), w.f32() + 2);
  std::vector<float> x{3e38f};
  std::vector<std::int32_t> y{0};
  const Tensor xt = Tensor::borrow(x.data(), {1, 1}, DType::f32), yt = Tensor::borrow(y.data(), {1}, DType::s32);
  try {
    trainer.step(xt, yt);
    FAIL() << "the - pass should have overflowed";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("not finite at step 0"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(testing::same_bits(before, std::vector<float>(w.f32(), w.f32() + 2), "fc.weight"));
  EXPECT_EQ(trainer.steps_done(), 0u);
}

// A step that completes still moves the weights (the restore is not applied twice).
TEST(StepRestore, ACompletedStepKeepsItsUpdate) {
  auto model = small_convnet(3);
  ElasticZO trainer(model, config(3));
  const auto before = weights(*model);
  Batch good = batch(8, 1);
  const StepStats st = trainer.step(good.xt, good.yt);
  ASSERT_NE(st.projected_grad, 0.0f);
  EXPECT_GT(max_ulps(before, weights(*model)), 1000);
}

// One thread trains while the other switches the ISA back and forth. Results then mix ISAs (not compared); what is
// checked is that nothing calls through a freed table (AddressSanitizer in CI) and training goes on.
TEST(SetIsaWhileTraining, IsSafe) {
  auto model = small_convnet(5);
  ElasticZO trainer(model, config(2));
  Batch b = batch(16, 3);
  std::atomic<bool> done{false};
  std::atomic<int> steps{0};
  std::thread worker([&] {
    for (int i = 0; i < 150; ++i) {
      const StepStats st = trainer.step(b.xt, b.yt);
      if (!std::isfinite(st.loss)) break;
      ++steps;
    }
    done = true;
  });
  const auto isas = available_isas();
  for (std::size_t round = 0; !done; ++round) set_isa(isas[round % isas.size()]);
  worker.join();
  set_isa("auto");
  EXPECT_EQ(steps.load(), 150);
}

}  // namespace
}  // namespace ez
