// Sequential in C++: buffer accounting against SPEC §4 on a LeNet-5 built from the layer classes, backward against
// finite differences on a tiny net, and bad shapes or calls throwing.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "layers/conv2d.h"
#include "layers/linear.h"
#include "kernels/kernels.h"
#include "layers/shape_ops.h"
#include "memory/tracker.h"
#include "model/sequential.h"

namespace ez {
namespace {

constexpr std::int64_t kLeNetActivationsPerSample = 18058;  // SPEC §4
constexpr std::int64_t kLeNetParams = 107786;               // SPEC §1

std::shared_ptr<Sequential> make_lenet5(bool inplace_relu = false) {
  auto m = std::make_shared<Sequential>();
  m->add("conv1", std::make_shared<Conv2d>(1, 6, 5, 2, true));
  m->add("relu1", std::make_shared<ReLU>(inplace_relu));
  m->add("pool1", std::make_shared<MaxPool2d>(2));
  m->add("conv2", std::make_shared<Conv2d>(6, 16, 5, 2, true));
  m->add("relu2", std::make_shared<ReLU>(inplace_relu));
  m->add("pool2", std::make_shared<MaxPool2d>(2));
  m->add("flatten", std::make_shared<Flatten>());
  m->add("fc1", std::make_shared<Linear>(784, 120, true, false));
  m->add("relu3", std::make_shared<ReLU>(inplace_relu));
  m->add("fc2", std::make_shared<Linear>(120, 84, true, false));
  m->add("relu4", std::make_shared<ReLU>(inplace_relu));
  m->add("fc3", std::make_shared<Linear>(84, 10, true, false));
  m->init_parameters(1);
  return m;
}

void fill_random(Tensor& t, std::uint32_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = dist(gen);
}

std::size_t bytes_now(MemCategory c) {
  return MemoryTracker::instance().stats().current[static_cast<std::size_t>(c)];
}

// Bytes a block adds to one category while the objects it creates are alive.
struct CategoryDelta {
  explicit CategoryDelta(MemCategory c) : category(c), before(bytes_now(c)) {}
  std::int64_t bytes() const {
    return static_cast<std::int64_t>(bytes_now(category)) - static_cast<std::int64_t>(before);
  }
  MemCategory category;
  std::size_t before;
};

TEST(SequentialMemory, LeNet5ActivationsMatchSpecAtBatch32) {
  const CategoryDelta params(MemCategory::parameters);
  auto m = make_lenet5();
  EXPECT_EQ(m->num_params(), kLeNetParams);
  EXPECT_EQ(params.bytes(), kLeNetParams * 4);
  EXPECT_EQ(m->num_param_layers(), 5);

  Tensor x({32, 1, 28, 28}, DType::f32, MemCategory::workspace);
  fill_random(x, 1, 0.f, 1.f);
  const CategoryDelta acts(MemCategory::activations);
  m->forward(x);
  EXPECT_EQ(acts.bytes(), kLeNetActivationsPerSample * 32 * 4);
  // Full ZO at batch 32 is 2.61 MiB (SPEC §4).
  EXPECT_NEAR((params.bytes() + acts.bytes()) / 1048576.0, 2.61, 0.01);

  // Flatten is a view of pool2's output; a second forward of the same shape allocates nothing.
  EXPECT_EQ(m->activation(6).raw(), m->activation(5).raw());
  EXPECT_EQ(m->activation(6).shape(), (Shape{32, 784}));
  EXPECT_NE(m->activation(1).raw(), m->activation(0).raw());
  m->forward(x);
  EXPECT_EQ(acts.bytes(), kLeNetActivationsPerSample * 32 * 4);
}

TEST(SequentialMemory, InPlaceReluSharesItsInputBuffer) {
  auto m = make_lenet5(true);
  Tensor x({4, 1, 28, 28}, DType::f32, MemCategory::workspace);
  const CategoryDelta acts(MemCategory::activations);
  m->forward(x);
  for (std::size_t relu : {1, 4, 8, 10}) EXPECT_EQ(m->activation(relu).raw(), m->activation(relu - 1).raw()) << relu;
  const std::int64_t relu_outputs = 4704 + 3136 + 120 + 84;
  EXPECT_EQ(acts.bytes(), (kLeNetActivationsPerSample - relu_outputs) * 4 * 4);
}

// ElasticZO's extra memory over Full ZO (SPEC §4): gradients of the BP part and errors of the outputs inside it.
struct BackwardCase {
  const char* name;
  int zo_layers;              // C
  std::int64_t grad_floats;   // |grad theta| of layers C+1..L
  std::int64_t err_per_sample;
  double extra_kib;           // the paper's figure at batch 32
};

TEST(SequentialMemory, BackwardBuffersOnlyForTheBackpropPart) {
  const BackwardCase cases[] = {
      {"ZO-Feat-Cls2", 4, 84 * 10 + 10, 10, 4.57},
      {"ZO-Feat-Cls1", 3, 120 * 84 + 84 + 84 * 10 + 10, 84 + 84 + 10, 65.3},
  };
  auto m = make_lenet5();
  Tensor x({32, 1, 28, 28}, DType::f32, MemCategory::workspace);
  m->forward(x);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const CategoryDelta grads(MemCategory::gradients), errs(MemCategory::errors);
    const std::size_t first = m->first_module(c.zo_layers);
    m->prepare_backward(first);
    EXPECT_EQ(grads.bytes(), c.grad_floats * 4);
    EXPECT_EQ(errs.bytes(), c.err_per_sample * 32 * 4);
    EXPECT_NEAR((grads.bytes() + errs.bytes()) / 1024.0, c.extra_kib, 0.05);  // the paper's rounding
    for (auto& np : m->named_parameters())
      EXPECT_EQ(np.param->grad.defined(), np.param_layer >= c.zo_layers) << np.name;
    m->release_backward();
    EXPECT_EQ(grads.bytes(), 0);
    EXPECT_EQ(errs.bytes(), 0);
  }
}

TEST(SequentialMemory, FullBackpropErrorsEqualActivations) {
  auto m = make_lenet5();
  Tensor x({32, 1, 28, 28}, DType::f32, MemCategory::workspace);
  const CategoryDelta acts(MemCategory::activations), errs(MemCategory::errors), grads(MemCategory::gradients);
  m->forward(x);
  m->prepare_backward(0);
  EXPECT_EQ(errs.bytes(), acts.bytes());
  EXPECT_EQ(grads.bytes(), kLeNetParams * 4);
  // Full BP at batch 32 is 5.23 MiB (SPEC §4).
  EXPECT_NEAR((kLeNetParams * 4 + grads.bytes() + acts.bytes() + errs.bytes()) / 1048576.0, 5.23, 0.01);
  // A new batch size re-allocates both, keeping the backward part.
  Tensor x8({8, 1, 28, 28}, DType::f32, MemCategory::workspace);
  m->forward(x8);
  EXPECT_TRUE(m->backward_ready());
  EXPECT_EQ(acts.bytes(), kLeNetActivationsPerSample * 8 * 4);
  EXPECT_EQ(errs.bytes(), acts.bytes());
}

TEST(SequentialMemory, AliasingFirstModuleGetsItsOwnBuffer) {
  // A view of the caller's input would outlive the call (and an in-place ReLU would write into it).
  for (bool relu : {false, true}) {
    Sequential m;
    if (relu)
      m.add("relu", std::make_shared<ReLU>(true));
    else
      m.add("flatten", std::make_shared<Flatten>());
    m.add("fc", std::make_shared<Linear>(relu ? 4 : 12, 2, true, false));
    Tensor x(relu ? Shape{1, 4} : Shape{1, 3, 4}, DType::f32, MemCategory::workspace);
    fill_random(x, 3);
    const std::vector<float> before(x.f32(), x.f32() + x.numel());
    const CategoryDelta acts(MemCategory::activations);
    m.forward(x);
    EXPECT_NE(m.activation(0).raw(), x.raw());
    EXPECT_EQ(acts.bytes(), ((relu ? 4 : 12) + 2) * 4);
    EXPECT_EQ(std::vector<float>(x.f32(), x.f32() + x.numel()), before);
  }
}

// ---- backward against finite differences ------------------------------------------------------------------------

// Which ReLUs pass and which pool inputs win: the piece of the piecewise-linear net a forward pass is on.
std::vector<bool> pattern(Sequential& m, const Tensor& x) {
  std::vector<bool> out;
  for (std::size_t i = 0; i < m.size(); ++i) {
    const Tensor& a = m.activation(i);
    const Tensor& in = i == 0 ? x : m.activation(i - 1);
    if (m.layer(i).kind() == "relu") {
      for (std::int64_t j = 0; j < a.numel(); ++j) out.push_back(a.f32()[j] > 0.f);
    } else if (m.layer(i).kind() == "maxpool2d") {
      Tensor ones(a.shape(), DType::f32, MemCategory::workspace), routed(in.shape(), DType::f32, MemCategory::workspace);
      std::fill(ones.f32(), ones.f32() + ones.numel(), 1.f);
      m.layer(i).backward_data(in, a, ones, routed);
      for (std::int64_t j = 0; j < routed.numel(); ++j) out.push_back(routed.f32()[j] != 0.f);
    }
  }
  return out;
}

TEST(SequentialBackward, MatchesFiniteDifferencesOnATinyNet) {
  Sequential m;
  m.add("conv", std::make_shared<Conv2d>(2, 3, 3, 1, true));
  m.add("relu1", std::make_shared<ReLU>(false));
  m.add("pool", std::make_shared<MaxPool2d>(2));
  m.add("flatten", std::make_shared<Flatten>());
  m.add("fc1", std::make_shared<Linear>(27, 5, true, false));
  m.add("relu2", std::make_shared<ReLU>(true));
  m.add("fc2", std::make_shared<Linear>(5, 4, true, false));
  m.init_parameters(11);
  Tensor x({2, 2, 6, 6}, DType::f32, MemCategory::workspace);
  fill_random(x, 14);  // with these seeds no ReLU input or pool gap lies within the step of a kink
  m.forward(x);
  m.prepare_backward(0);
  Tensor& g = m.output_error();
  fill_random(g, 13);
  const std::vector<float> weights(g.f32(), g.f32() + g.numel());
  m.backward(x, false);
  const std::vector<bool> clean = pattern(m, x);

  // L = sum(output * weights) is linear in each parameter on one piece; central differences in double over the
  // float32 forward, dividing by the step actually taken. h = 1e-3 keeps every difference on the clean piece
  // (asserted); rounding of the output over that step costs about 1e-3 of the largest gradient.
  const float h = 1e-3f;
  auto loss = [&] {
    const Tensor& out = m.forward(x);
    EXPECT_TRUE(pattern(m, x) == clean) << "a finite difference crossed a ReLU/pool kink";
    double s = 0;
    for (std::int64_t i = 0; i < out.numel(); ++i) s += static_cast<double>(out.f32()[i]) * weights[i];
    return s;
  };
  for (auto& np : m.named_parameters()) {
    Tensor& v = np.param->value;
    const std::vector<float> analytic(np.param->grad.f32(), np.param->grad.f32() + v.numel());
    double max_grad = 0, max_err = 0;
    std::int64_t worst = 0;
    for (std::int64_t i = 0; i < v.numel(); ++i) {
      const float orig = v.f32()[i];
      v.f32()[i] = orig + h;
      const double hi_x = v.f32()[i], hi = loss();
      v.f32()[i] = orig - h;
      const double lo_x = v.f32()[i], lo = loss();
      v.f32()[i] = orig;
      const double numeric = (hi - lo) / (hi_x - lo_x);
      max_grad = std::max(max_grad, std::fabs(numeric));
      if (std::fabs(numeric - analytic[i]) > max_err) {
        max_err = std::fabs(numeric - analytic[i]);
        worst = i;
      }
    }
    EXPECT_LE(max_err, 3e-3 * max_grad) << np.name << ": worst element " << worst << " analytic "
                                        << analytic[worst] << ", max |grad| " << max_grad << " (seeds 11/14/13)";
  }
}

TEST(SequentialBackward, AccumulateAddsAndPartialBackwardLeavesTheZoPartAlone) {
  auto m = make_lenet5();
  Tensor x({3, 1, 28, 28}, DType::f32, MemCategory::workspace);
  fill_random(x, 4, 0.f, 1.f);
  m->forward(x);
  m->prepare_backward(m->first_module(3));
  fill_random(m->output_error(), 5);
  m->backward(x, false);
  auto params = m->named_parameters();
  std::vector<std::vector<float>> once;
  for (auto& np : params)
    if (np.param->grad.defined())
      once.emplace_back(np.param->grad.f32(), np.param->grad.f32() + np.param->grad.numel());
  m->backward(x, true);
  std::size_t k = 0;
  for (auto& np : params) {
    EXPECT_EQ(np.param->grad.defined(), np.param_layer >= 3) << np.name;
    if (!np.param->grad.defined()) continue;
    float scale = 0.f;
    for (float v : once[k]) scale = std::max(scale, std::fabs(v));
    // The kernels may add the new products into the old sums in another order than 'once + once'.
    for (std::int64_t i = 0; i < np.param->grad.numel(); ++i)
      ASSERT_NEAR(np.param->grad.f32()[i], 2.f * once[k][static_cast<std::size_t>(i)], 1e-5f * scale)
          << np.name << " element " << i;
    ++k;
  }
  EXPECT_EQ(k, 4u);  // fc2 and fc3, weight and bias
}

// ---- bad shapes and calls ------------------------------------------------------------------------------------------

TEST(LayerErrors, BadConstructorArgumentsThrow) {
  EXPECT_THROW(Conv2d(0, 6, 5, 2, true), std::invalid_argument);
  EXPECT_THROW(Conv2d(1, -6, 5, 2, true), std::invalid_argument);
  EXPECT_THROW(Conv2d(1, 6, 0, 2, true), std::invalid_argument);
  EXPECT_THROW(Conv2d(1, 6, 5, -1, true), std::invalid_argument);
  EXPECT_THROW(Linear(0, 3, true, false), std::invalid_argument);
  EXPECT_THROW(Linear(3, 0, true, true), std::invalid_argument);
  EXPECT_THROW(MaxPool2d(0), std::invalid_argument);
}

TEST(LayerErrors, BadShapesThrow) {
  const Conv2d conv(3, 4, 5, 1, true);
  EXPECT_THROW(conv.output_shape({2, 2, 8, 8}), std::invalid_argument);  // channels
  EXPECT_THROW(conv.output_shape({2, 3, 8}), std::invalid_argument);     // rank
  EXPECT_THROW(conv.output_shape({2, 3, 2, 8}), std::invalid_argument);  // kernel larger than padded input
  EXPECT_THROW(conv.output_shape({0, 3, 8, 8}), std::invalid_argument);  // empty
  EXPECT_EQ(conv.output_shape({2, 3, 3, 8}), (Shape{2, 4, 1, 6}));
  const Linear fc(5, 3, true, false), point(3, 8, false, true);
  EXPECT_THROW(fc.output_shape({2, 4}), std::invalid_argument);
  EXPECT_THROW(fc.output_shape({2, 1, 5}), std::invalid_argument);
  EXPECT_THROW(fc.output_shape({std::int64_t{1} << 40, 5}), std::overflow_error);  // test_checked.cpp
  EXPECT_THROW(point.output_shape({2, 3}), std::invalid_argument);
  EXPECT_EQ(point.output_shape({2, 7, 3}), (Shape{2, 7, 8}));
  EXPECT_THROW(MaxPool2d(3).output_shape({1, 1, 2, 9}), std::invalid_argument);
  EXPECT_THROW(PointMaxPool().output_shape({2, 8}), std::invalid_argument);
  EXPECT_THROW(Flatten().output_shape({6}), std::invalid_argument);
  EXPECT_THROW(ReLU(false).output_shape({}), std::invalid_argument);
  EXPECT_THROW(ReLU(false).output_shape({3, -1}), std::invalid_argument);
}

TEST(SequentialErrors, BadShapesAndCallsThrow) {
  auto m = make_lenet5();
  Tensor wrong({2, 3, 28, 28}, DType::f32, MemCategory::workspace);
  EXPECT_THROW(m->forward(wrong), std::invalid_argument);
  EXPECT_THROW(m->output(), std::logic_error);
  EXPECT_THROW(m->prepare_backward(0), std::logic_error);  // no forward yet
  Tensor x({2, 1, 28, 28}, DType::f32, MemCategory::workspace);
  m->forward(x);
  EXPECT_THROW(m->output_error(), std::logic_error);
  EXPECT_THROW(m->backward(x, false), std::logic_error);
  EXPECT_THROW(m->prepare_backward(m->size() + 1), std::invalid_argument);
  EXPECT_THROW(m->first_module(6), std::invalid_argument);
  EXPECT_THROW(m->first_module(-1), std::invalid_argument);
  m->prepare_backward(m->first_module(4));
  Tensor other({3, 1, 28, 28}, DType::f32, MemCategory::workspace);
  EXPECT_THROW(m->backward(other, false), std::invalid_argument);
  EXPECT_THROW(m->add("conv1", std::make_shared<ReLU>(false)), std::invalid_argument);
  EXPECT_THROW(m->add("a.b", std::make_shared<ReLU>(false)), std::invalid_argument);
  EXPECT_THROW(m->add("x", nullptr), std::invalid_argument);
  EXPECT_THROW(Sequential().output_shape({1, 2}), std::invalid_argument);
  // A failed forward leaves the model usable.
  EXPECT_THROW(m->forward(wrong), std::invalid_argument);
  EXPECT_EQ(m->forward(x).shape(), (Shape{2, 10}));
}

// ---- memory plan ---------------------------------------------------------------------------------------------------

// Under `lifetime`, two buffers of one category whose lifetimes overlap never share a byte, and every buffer lies
// inside its category's arena; under `static`, each category is the plain sum of its buffers.
void expect_consistent(const MemoryPlan& p) {
  std::array<std::size_t, kMemCategories> sum{};
  const int last = static_cast<int>(p.ops.size()) - 1;
  auto span = [&](const PlannedBuffer& b) {
    return b.first_op == kWholeStep ? std::make_pair(0, last) : std::make_pair(b.first_op, b.last_op);
  };
  for (std::size_t i = 0; i < p.buffers.size(); ++i) {
    const PlannedBuffer& a = p.buffers[i];
    if (a.shares >= 0) continue;
    sum[static_cast<std::size_t>(a.category)] += a.bytes;
    if (p.policy == MemoryPolicy::static_) continue;
    EXPECT_LE(a.offset + a.bytes, p.bytes[static_cast<std::size_t>(a.category)]) << a.name;
    for (std::size_t j = i + 1; j < p.buffers.size(); ++j) {
      const PlannedBuffer& b = p.buffers[j];
      if (b.shares >= 0 || b.category != a.category) continue;
      const auto [a0, a1] = span(a);
      const auto [b0, b1] = span(b);
      const bool in_time = a0 <= b1 && b0 <= a1;
      const bool in_memory = a.offset < b.offset + b.bytes && b.offset < a.offset + a.bytes;
      EXPECT_FALSE(in_time && in_memory) << a.name << " and " << b.name;
    }
  }
  if (p.policy == MemoryPolicy::static_) EXPECT_EQ(sum, p.bytes);
}

TEST(MemoryPlan, LifetimeNeverOverlapsLiveBuffersAndStaticIsThePapersModel) {
  auto m = make_lenet5();
  const Shape in{32, 1, 28, 28};
  for (int c = 0; c <= m->num_param_layers(); ++c) {
    SCOPED_TRACE(c);
    const MemoryPlan s = m->plan_for(in, m->first_module(c), MemoryPolicy::static_);
    const MemoryPlan l = m->plan_for(in, m->first_module(c), MemoryPolicy::lifetime);
    expect_consistent(s);
    expect_consistent(l);
    EXPECT_EQ(s.bytes[static_cast<std::size_t>(MemCategory::activations)], kLeNetActivationsPerSample * 32 * 4);
    EXPECT_LT(l.total(), s.total());
  }
  // Full ZO: the largest neighbours (conv1's output, ReLU'd in place, and pool1's) are all that is live at once.
  const MemoryPlan zo = m->plan_for(in, m->size(), MemoryPolicy::lifetime);
  EXPECT_EQ(zo.bytes[static_cast<std::size_t>(MemCategory::activations)], (4704 + 1176) * 32 * 4u);
}

// One forward + backward per policy on the tiny net: outputs and gradients bit for bit the same.
TEST(MemoryPlan, PoliciesGiveBitIdenticalResults) {
  auto build = [] {
    auto m = std::make_shared<Sequential>();
    m->add("conv", std::make_shared<Conv2d>(2, 3, 3, 1, true));
    m->add("relu1", std::make_shared<ReLU>(false));
    m->add("pool", std::make_shared<MaxPool2d>(2));
    m->add("flatten", std::make_shared<Flatten>());
    m->add("fc1", std::make_shared<Linear>(27, 5, true, false));
    m->add("relu2", std::make_shared<ReLU>(false));
    m->add("fc2", std::make_shared<Linear>(5, 4, true, false));
    m->init_parameters(3);
    return m;
  };
  Tensor x({3, 2, 6, 6}, DType::f32, MemCategory::workspace);
  fill_random(x, 21);
  for (int c = 0; c < 3; ++c) {
    std::vector<std::vector<float>> results[2];
    for (int p = 0; p < 2; ++p) {
      auto m = build();
      m->set_memory_policy(p == 0 ? MemoryPolicy::static_ : MemoryPolicy::lifetime);
      m->prepare(x.shape(), m->first_module(c));
      for (int pass = 0; pass < 2; ++pass) {
        const Tensor& out = m->forward(x);
        results[p].emplace_back(out.f32(), out.f32() + out.numel());
        fill_random(m->output_error(), 30 + pass);
        m->backward(x, pass > 0);
      }
      for (auto& np : m->named_parameters())
        if (np.param->grad.defined())
          results[p].emplace_back(np.param->grad.f32(), np.param->grad.f32() + np.param->grad.numel());
    }
    EXPECT_EQ(results[0], results[1]) << "zo_layers " << c;
  }
}

// A per-point Linear + ReLU + PointMaxPool that no backward goes through runs as one kernel that never writes the
// Linear's (points x features) output: the lifetime plan has no buffer for it (nor for the ReLU's), the static plan
// (the paper's model) keeps them, and either way, fused or not, the forward gives the same bits. A backward that
// would need the skipped activations refuses to start from a fused forward instead of reading stale memory.
TEST(MemoryPlan, FusedPointPoolPlansNoBufferForWhatItNeverWrites) {
  auto build = [] {
    auto m = std::make_shared<Sequential>();
    m->add("mlp1", std::make_shared<Linear>(3, 16, true, true));
    m->add("relu1", std::make_shared<ReLU>(true));
    m->add("mlp2", std::make_shared<Linear>(16, 32, true, true));
    m->add("relu2", std::make_shared<ReLU>(true));
    m->add("pool", std::make_shared<PointMaxPool>());
    m->add("fc", std::make_shared<Linear>(32, 5, true, false));
    m->init_parameters(6);
    return m;
  };
  auto has = [](const MemoryPlan& p, const std::string& name) {
    return std::any_of(p.buffers.begin(), p.buffers.end(), [&](const PlannedBuffer& b) { return b.name == name; });
  };
  auto buffer = [](const MemoryPlan& p, const std::string& name) {
    return *std::find_if(p.buffers.begin(), p.buffers.end(), [&](const PlannedBuffer& b) { return b.name == name; });
  };
  const Shape in{4, 50, 3};
  auto m = build();
  for (std::size_t first : {m->size(), std::size_t{5}}) {  // no backprop; backprop of fc only
    SCOPED_TRACE(first);
    const MemoryPlan lifetime = m->plan_for(in, first, MemoryPolicy::lifetime);
    expect_consistent(lifetime);
    EXPECT_EQ(lifetime.fused[2], Fusion::point_pool);
    EXPECT_FALSE(has(lifetime, "mlp2.output") || has(lifetime, "relu2.output"));
    EXPECT_EQ(buffer(lifetime, "pool.output").first_op, 2);  // written by mlp2's fused forward
    const MemoryPlan stat = m->plan_for(in, first, MemoryPolicy::static_);
    EXPECT_EQ(stat.fused[2], Fusion::point_pool);
    EXPECT_TRUE(has(stat, "mlp2.output") && has(stat, "relu2.output"));
  }
  const MemoryPlan through = m->plan_for(in, 4, MemoryPolicy::lifetime);  // backprop reaches the pool: apart
  EXPECT_EQ(through.fused[2], Fusion::none);
  EXPECT_TRUE(has(through, "mlp2.output"));
  m->set_fusion_enabled(Fusion::point_pool, false);
  EXPECT_TRUE(has(m->plan_for(in, m->size(), MemoryPolicy::lifetime), "mlp2.output"));

  Tensor x(in, DType::f32, MemCategory::workspace);
  fill_random(x, 8);
  std::vector<float> reference;
  for (int fuse = 0; fuse < 2; ++fuse)
    for (MemoryPolicy policy : {MemoryPolicy::static_, MemoryPolicy::lifetime}) {
      auto net = build();
      net->set_fusion_enabled(Fusion::point_pool, fuse == 1);
      net->set_memory_policy(policy);
      const Tensor& y = net->forward(x);
      const std::vector<float> out(y.f32(), y.f32() + y.numel());
      if (reference.empty()) reference = out;
      EXPECT_EQ(out, reference) << "fuse " << fuse << " " << memory_policy_name(policy);
      if (fuse == 1) {
        EXPECT_THROW(net->prepare_backward(0), std::logic_error);
        net->prepare_backward(5);  // fc's backward needs only the pooled features, which the fused kernel wrote
      }
    }
}

// The plan records every forward fusion by kind at its start module: LeNet-5's relu1/pool1 and relu2/pool2 fold the
// ReLU into the pooling wherever no backward goes through them; the lifetime plan has no buffer for the ReLU
// outputs they never write, the static plan keeps them. A backward prepared after a fused forward computes the
// ReLU outputs it reads again (parameter-free modules), giving the gradients of an unfused run bit for bit.
TEST(MemoryPlan, ReluPoolFusionIsPlannedByKindLikeEveryFusion) {
  auto has = [](const MemoryPlan& p, const std::string& name) {
    return std::any_of(p.buffers.begin(), p.buffers.end(), [&](const PlannedBuffer& b) { return b.name == name; });
  };
  const Shape in{3, 1, 28, 28};
  for (bool inplace : {false, true}) {
    SCOPED_TRACE(inplace);
    auto m = make_lenet5(inplace);
    for (std::size_t first : {m->size(), m->first_module(3)}) {  // Full ZO, ZO-Feat-Cls1
      std::vector<Fusion> want(m->size(), Fusion::none);
      want[1] = want[4] = Fusion::relu_pool;
      for (MemoryPolicy policy : {MemoryPolicy::static_, MemoryPolicy::lifetime}) {
        const MemoryPlan p = m->plan_for(in, first, policy);
        expect_consistent(p);
        EXPECT_EQ(p.fused, want);
        const bool kept = policy == MemoryPolicy::static_;
        EXPECT_EQ(has(p, "relu1.output"), kept);
        EXPECT_EQ(has(p, "relu2.output"), kept);
        EXPECT_TRUE(has(p, "relu3.output"));  // fc1's ReLU: no pooling after it
      }
    }
    const MemoryPlan bp = m->plan_for(in, m->first_module(1), MemoryPolicy::lifetime);  // backprop from conv2 on
    EXPECT_EQ(bp.fused[1], Fusion::relu_pool);
    EXPECT_EQ(bp.fused[4], Fusion::none);
    m->set_fusion_enabled(Fusion::relu_pool, false);
    EXPECT_EQ(m->plan_for(in, m->size(), MemoryPolicy::lifetime).fused, std::vector<Fusion>(m->size(), Fusion::none));
    EXPECT_THROW(m->set_fusion_enabled(Fusion::none, true), std::invalid_argument);
  }

  Tensor x(in, DType::f32, MemCategory::workspace);
  fill_random(x, 21);
  std::vector<std::vector<float>> reference;
  for (int fuse = 0; fuse < 2; ++fuse)
    for (MemoryPolicy policy : {MemoryPolicy::static_, MemoryPolicy::lifetime}) {
      SCOPED_TRACE(std::to_string(fuse) + memory_policy_name(policy));
      auto net = make_lenet5();
      net->set_fusion_enabled(Fusion::relu_pool, fuse == 1);
      net->set_memory_policy(policy);
      const Tensor& y = net->forward(x);
      std::vector<std::vector<float>> got{{y.f32(), y.f32() + y.numel()}};
      if (policy == MemoryPolicy::static_) {  // lifetime keeps no activation but the output for another plan
        net->prepare_backward(0);
        fill_random(net->output_error(), 22);
        net->backward(x, false);
        for (auto& np : net->named_parameters())
          got.emplace_back(np.param->grad.f32(), np.param->grad.f32() + np.param->grad.numel());
      }
      if (reference.empty()) reference = got;
      EXPECT_TRUE(std::equal(got.begin(), got.end(), reference.begin()));  // output, then gradients where taken
    }
}

// plan_memory takes only fusions that fit the modules: none past the last module, into the backprop part or over
// another one.
// The MLP of the carry-over tests. Under the lifetime policy with no backprop part, relu1 runs in place over fc1's
// output and fc3's output (as large, no common lifetime) reuses those bytes; fc2's output stays apart.
std::shared_ptr<Sequential> make_mlp(MemoryPolicy policy) {
  auto m = std::make_shared<Sequential>();
  m->add("fc1", std::make_shared<Linear>(4, 64, true, false));
  m->add("relu1", std::make_shared<ReLU>(false));
  m->add("fc2", std::make_shared<Linear>(64, 8, true, false));
  m->add("fc3", std::make_shared<Linear>(8, 64, true, false));
  m->init_parameters(3);
  m->set_memory_policy(policy);
  return m;
}

// The gradients a backward from the prepared module gives for a fixed output error.
std::vector<std::vector<float>> backward_grads(Sequential& m, const Tensor& x) {
  fill_random(m.output_error(), 31);
  m.backward(x, false);
  std::vector<std::vector<float>> out;
  for (auto& np : m.named_parameters())
    if (np.param->grad.defined()) out.emplace_back(np.param->grad.f32(), np.param->grad.f32() + np.param->grad.numel());
  return out;
}

std::vector<bool> held(const Sequential& m) {
  std::vector<bool> h;
  for (std::size_t i = 0; i < m.size(); ++i) h.push_back(m.activation_held(i));
  return h;
}

// An output the last forward left in memory is copied into the buffers of a new plan, by prepare_backward and by
// release_backward alike: a backward prepared after a release reads the forward's outputs, not fresh memory.
TEST(SequentialCarryOver, HeldOutputsAreCopiedIntoEveryNewPlan) {
  Tensor x({5, 4}, DType::f32, MemCategory::workspace);
  fill_random(x, 30);
  auto ref = make_mlp(MemoryPolicy::static_);
  ref->forward(x);
  EXPECT_EQ(held(*ref), (std::vector<bool>{true, true, true, true}));
  ref->prepare_backward(3);
  const auto want = backward_grads(*ref, x);
  for (MemoryPolicy policy : {MemoryPolicy::static_, MemoryPolicy::lifetime}) {
    SCOPED_TRACE(memory_policy_name(policy));
    auto m = make_mlp(policy);
    m->forward(x);
    const bool kept = policy == MemoryPolicy::static_;
    EXPECT_EQ(held(*m), (std::vector<bool>{kept, kept, true, true}));
    m->prepare_backward(3);
    m->release_backward();
    EXPECT_TRUE(m->activation_held(2) && m->activation_held(3));
    m->prepare_backward(3);
    EXPECT_EQ(backward_grads(*m, x), want);
  }
}

// An output the forward did not leave (a fusion skipped it) is computed again by its parameter-free module from
// its input, also after a release: LeNet-5's ReLU outputs under the static policy, the unfused gradients bit for bit.
TEST(SequentialCarryOver, SkippedOutputsOfParameterFreeModulesAreComputedAgain) {
  Tensor x({3, 1, 28, 28}, DType::f32, MemCategory::workspace);
  fill_random(x, 32);
  auto ref = make_lenet5();
  ref->set_fusion_enabled(Fusion::relu_pool, false);
  ref->forward(x);
  ref->prepare_backward(0);
  const auto want = backward_grads(*ref, x);
  auto m = make_lenet5();
  m->forward(x);
  EXPECT_FALSE(m->activation_held(1));  // relu1 and relu2: fused into their pooling
  EXPECT_FALSE(m->activation_held(4));
  EXPECT_TRUE(m->activation_held(0));
  m->prepare_backward(m->first_module(3));  // reads neither
  m->release_backward();
  EXPECT_FALSE(m->activation_held(1));
  EXPECT_TRUE(m->activation_held(5) && m->activation_held(6));  // flatten: a view of pool2's output, not a copy
  m->prepare_backward(0);
  EXPECT_EQ(held(*m), std::vector<bool>(m->size(), true));
  EXPECT_EQ(backward_grads(*m, x), want);
}

// An output that is neither left in memory nor computable again (its module has parameters) is refused with the
// module's name, and the model is left as it was: under the lifetime policy fc3 wrote over relu1's output and
// relu1 over fc1's; LeNet-5's relu1 over conv1's; a replanning that carried nothing (a new policy) keeps nothing.
TEST(SequentialCarryOver, OutputsNeitherHeldNorComputableAreRefused) {
  Tensor x({5, 4}, DType::f32, MemCategory::workspace);
  fill_random(x, 30);
  auto m = make_mlp(MemoryPolicy::lifetime);
  m->forward(x);
  try {
    m->prepare_backward(2);
    ADD_FAILURE() << "a backward from fc2 reads relu1's output, which fc3 wrote over";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("output of fc1"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(m->backward_ready());
  m->prepare_backward(3);  // still there: fc2's output
  EXPECT_TRUE(m->activation_held(2));

  auto lenet = make_lenet5();
  lenet->set_fusion_enabled(Fusion::relu_pool, false);
  lenet->set_memory_policy(MemoryPolicy::lifetime);
  Tensor image({2, 1, 28, 28}, DType::f32, MemCategory::workspace);
  fill_random(image, 33);
  lenet->forward(image);
  EXPECT_THROW(lenet->prepare_backward(0), std::logic_error);

  auto other = make_mlp(MemoryPolicy::static_);
  other->forward(x);
  other->set_memory_policy(MemoryPolicy::lifetime);
  EXPECT_THROW(other->prepare_backward(3), std::logic_error);
}

TEST(MemoryPlan, FusionsThatDoNotFitAreRefused) {
  auto m = make_lenet5();
  std::vector<std::shared_ptr<Layer>> layers;
  std::vector<std::string> names;
  for (std::size_t i = 0; i < m->size(); ++i) {
    layers.push_back(std::shared_ptr<Layer>(m, &m->layer(i)));
    names.push_back(m->name(i));
  }
  const Shape in{2, 1, 28, 28};
  auto plan = [&](std::size_t bp_first, std::vector<std::pair<std::size_t, Fusion>> at) {
    std::vector<Fusion> fused(layers.size(), Fusion::none);
    for (auto [i, f] : at) fused[i] = f;
    return plan_memory(layers, names, in, bp_first, MemoryPolicy::lifetime, fused);
  };
  EXPECT_NO_THROW(plan(layers.size(), {{1, Fusion::relu_pool}, {4, Fusion::relu_pool}}));
  EXPECT_THROW(plan(2, {{1, Fusion::relu_pool}}), std::invalid_argument);            // pool1 is backprop
  EXPECT_THROW(plan(layers.size(), {{10, Fusion::point_pool}}), std::invalid_argument);  // past fc3
  EXPECT_THROW(plan(layers.size(), {{0, Fusion::point_pool}, {1, Fusion::relu_pool}}), std::invalid_argument);
  EXPECT_THROW(plan_memory(layers, names, in, 0, MemoryPolicy::static_, std::vector<Fusion>(13)),
               std::invalid_argument);  // more than one per module
}

TEST(MemoryPlan, TrackerRecordsEveryPlannedBufferOfTheModel) {
  auto m = make_lenet5();
  Tensor x({2, 1, 28, 28}, DType::f32, MemCategory::workspace);
  m->prepare(x.shape(), m->first_module(3));
  std::vector<std::string> names;
  std::size_t bytes = 0;
  for (const BufferRecord& r : MemoryTracker::instance().records(m->memory_owner())) {
    names.push_back(r.name);
    bytes += r.bytes;
  }
  for (const char* want : {"conv1.weight", "fc3.bias", "conv1.output", "fc3.output_error", "fc2.weight.grad"})
    EXPECT_NE(std::find(names.begin(), names.end(), want), names.end()) << want;
  EXPECT_EQ(bytes, MemoryTracker::instance().stats(m->memory_owner()).total_current);
  EXPECT_EQ(bytes, kLeNetParams * 4 + m->current_plan()->total());
}

}  // namespace
}  // namespace ez

namespace ez {
namespace {

// LeNet-5 in NITI's integers (no biases): the first layer quantizes the float input.
std::shared_ptr<Sequential> make_lenet5_int8() {
  const Precision q = Precision::int8;
  auto m = std::make_shared<Sequential>();
  m->add("conv1", std::make_shared<Conv2d>(1, 6, 5, 2, false, q));
  m->add("relu1", std::make_shared<ReLU>(false, q));
  m->add("pool1", std::make_shared<MaxPool2d>(2, q));
  m->add("conv2", std::make_shared<Conv2d>(6, 16, 5, 2, false, q));
  m->add("relu2", std::make_shared<ReLU>(false, q));
  m->add("pool2", std::make_shared<MaxPool2d>(2, q));
  m->add("flatten", std::make_shared<Flatten>(q));
  m->add("fc1", std::make_shared<Linear>(784, 120, false, false, q));
  m->add("relu3", std::make_shared<ReLU>(false, q));
  m->add("fc2", std::make_shared<Linear>(120, 84, false, false, q));
  m->add("fc3", std::make_shared<Linear>(84, 10, false, false, q));
  m->init_parameters(3);
  return m;
}

// The kernels and the INT8 layers' helpers take all their scratch from the workspace the layers declared: a planned
// step allocates nothing, for every kernel level this CPU runs and for conv, per-point and plain linear layers, FP32
// and int8, with and without backprop; the forward without backprop runs as a ZO pass (perturbed weights built aside:
// whole, or by blocks of output features in parallel (LeNet-5's fc1) or one after another (`wide`'s first layer on
// the SIMD levels)), the int8 backward accumulates a second pass's weight gradients.
TEST(MemoryPlan, DeclaredWorkspaceCoversEveryKernelExactly) {
  auto pointnet = std::make_shared<Sequential>();
  pointnet->add("mlp1", std::make_shared<Linear>(3, 64, true, true));
  pointnet->add("relu", std::make_shared<ReLU>(true));
  pointnet->add("pool", std::make_shared<PointMaxPool>());
  pointnet->add("fc", std::make_shared<Linear>(64, 40, true, false));
  pointnet->init_parameters(2);
  auto wide = std::make_shared<Sequential>();
  wide->add("fc1", std::make_shared<Linear>(200, 1000, true, false));
  wide->add("relu", std::make_shared<ReLU>(true));
  wide->add("fc2", std::make_shared<Linear>(1000, 10, true, false));
  wide->init_parameters(3);
  auto lenet = make_lenet5(), lenet_int8 = make_lenet5_int8();
  const std::string before = kernels().isa;
  for (const std::string& isa : available_isas()) {
    set_isa(isa);
    for (auto& [m, shape] : {std::make_pair(lenet, Shape{64, 1, 28, 28}), std::make_pair(pointnet, Shape{8, 512, 3}),
                             std::make_pair(wide, Shape{100, 200}), std::make_pair(lenet_int8, Shape{32, 1, 28, 28})}) {
      const bool int8 = m->precision() == Precision::int8;
      for (std::size_t first : {m->size(), std::size_t{0}}) {
        SCOPED_TRACE(isa + (int8 ? " int8" : "") + " backprop from " + std::to_string(first));
        Tensor x(shape, DType::f32, MemCategory::workspace);
        fill_random(x, 4);
        m->release_buffers();
        m->prepare(shape, first);
        auto& tracker = MemoryTracker::instance();
        tracker.reset_peak(m->memory_owner());
        for (const NamedParam& p : m->named_parameters())  // a ZO pass over the whole model
          if (first == m->size()) {
            p.param->zo = {step_key(1, 2), 0, 0, 3, 21627};
            if (int8)
              p.param->zo_sign = 1;
            else
              p.param->zo_scale = 1e-3f;
          }
        m->forward(x);
        for (const NamedParam& p : m->named_parameters()) p.param->zo_sign = 0, p.param->zo_scale = 0.0f;
        if (first < m->size()) {
          if (int8) {
            Tensor& e = m->output_error();
            for (std::int64_t i = 0; i < e.numel(); ++i) e.s8()[i] = static_cast<std::int8_t>(i % 7 - 3);
            m->backward(x, false);
            m->backward(x, true);  // the second pass of a step accumulates: one pass's gradient in scratch
          } else {
            fill_random(m->output_error(), 5);
            m->backward(x, false);
          }
        }
        const MemoryStats s = tracker.stats(m->memory_owner());
        const auto ws = static_cast<std::size_t>(MemCategory::workspace);
        EXPECT_EQ(s.peak[ws], s.current[ws]) << "a kernel allocated scratch outside the plan";
        EXPECT_EQ(s.current[ws], m->current_plan()->bytes[ws]);
        if (isa != "ref") EXPECT_GT(s.current[ws], 0u);
      }
    }
  }
  set_isa(before);
}

// Threads: a layer with parameters takes its model's lock, so it can join one model only; stateless layers share.
TEST(SequentialThreads, ALayerWithParametersJoinsOneModelAndItsLock) {
  auto fc = std::make_shared<Linear>(4, 2, true, false);
  auto relu = std::make_shared<ReLU>(false);
  Sequential a, b;
  // Each thread below must wait: it is released only after 20 ms, and must then go on.
  const auto waits_for = [](auto& held, auto&& take) {
    std::atomic<bool> done{false};
    std::thread t([&] {
      take();
      done = true;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_FALSE(done);
    held.unlock();
    t.join();
    EXPECT_TRUE(done);
  };
  LayerGuard own = fc->lock();  // a call on the layer alone is in progress: adding it waits
  waits_for(own.lock, [&] { a.add("fc", fc); });
  ASSERT_EQ(a.size(), 1u);
  auto model = a.lock();  // the layer now uses its model's lock
  waits_for(model, [&] { const LayerGuard g = fc->lock(); });
  EXPECT_THROW(b.add("fc", fc), std::invalid_argument);
  EXPECT_THROW(a.add("again", fc), std::invalid_argument);
  a.add("relu", relu);
  b.add("relu", relu);
  EXPECT_EQ(b.size(), 1u);
}

}  // namespace
}  // namespace ez
