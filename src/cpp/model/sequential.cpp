// Sequential model: buffers from the memory plan, and the forward / backward sweeps.
#include "model/sequential.h"

#include <cstring>
#include <stdexcept>

#include "core/parallel.h"
#include "kernels/kernels.h"
#include "layers/linear.h"
#include "layers/shape_ops.h"

namespace ez {
namespace {

template <class T>
bool kind_of(const Layer& l) { return dynamic_cast<const T*>(&l) != nullptr; }

// Whether module j exists, runs before the backprop part and is an FP32 module that `is` accepts.
bool fp32_before(const std::vector<std::shared_ptr<Layer>>& layers, std::size_t j, std::size_t bp_first,
                 bool (*is)(const Layer&)) {
  return j < layers.size() && j < bp_first && layers[j]->precision() == Precision::fp32 && is(*layers[j]);
}

}  // namespace

Sequential::Sequential() : owner_(MemoryTracker::instance().new_owner()) {}

void Sequential::add(const std::string& name, std::shared_ptr<Layer> layer) {
  const auto guard = lock();
  if (!layer) throw std::invalid_argument("Sequential.add: layer is null");
  for (const auto& n : names_)
    if (n == name) throw std::invalid_argument("Sequential: duplicate module name '" + name + "'");
  if (name.empty() || name.find('.') != std::string::npos)
    throw std::invalid_argument("Sequential: module name must be non-empty and without '.', got '" + name + "'");
  if (!layers_.empty() && layer->precision() != precision())
    throw std::invalid_argument("Sequential: " + layer->repr() + " (module '" + name + "') computes in " +
                                precision_name(layer->precision()) + ", the model's modules in " +
                                precision_name(precision()) + "; a model has one precision");
  // An INT8 model quantizes its float input per batch in its first layer (NITI), which must therefore be a
  // Conv2d or (Point)Linear.
  if (layers_.empty() && layer->precision() == Precision::int8 && layer->params().empty())
    throw std::invalid_argument("Sequential: an int8 model must start with an int8 Conv2d or Linear, which "
                                "quantizes the float input; got " + layer->repr() + " (module '" + name + "')");
  // The model owns its parameters' memory from now on: the tracker counts them under this model.
  for (auto& prm : layer->params()) {
    const auto& st = prm.value.storage();
    if (st && st->record() != 0)
      MemoryTracker::instance().describe(
          st->record(), {name + "." + prm.name, MemCategory::parameters, st->bytes(), kWholeStep, kWholeStep, owner_});
  }
  if (!layer->params().empty()) {
    // Its parameters and gradient slots would be trained by two models (or twice by one) under different locks.
    if (!layer->share_lock(mutex_))
      throw std::invalid_argument("Sequential: " + layer->repr() + " (module '" + name +
                                  "') already belongs to a model; a layer with parameters can be in one model only");
    param_modules_.push_back(layers_.size());
  }
  layer->set_model_input(layers_.empty());
  layer->set_rounding(layer_rounding(rounding_, draw_key_, static_cast<std::uint32_t>(layers_.size())));
  names_.push_back(name);
  layers_.push_back(std::move(layer));
  free_buffers();  // the plan no longer matches the chain
}

void Sequential::set_rounding(const RoundingPolicy& policy, PhiloxKey key) {
  const auto guard = lock();
  rounding_ = policy;
  draw_key_ = key;
  for (std::size_t i = 0; i < layers_.size(); ++i)
    layers_[i]->set_rounding(layer_rounding(policy, key, static_cast<std::uint32_t>(i)));
}

std::size_t Sequential::first_module(int p) const {
  if (p < 0 || p > num_param_layers())
    throw std::invalid_argument("parameter layer index " + std::to_string(p) + " is out of range [0, " +
                                std::to_string(num_param_layers()) + "]");
  return p == num_param_layers() ? layers_.size() : (p == 0 ? 0 : param_modules_[p]);
}

std::vector<NamedParam> Sequential::named_parameters() {
  std::vector<NamedParam> out;
  int p = -1;
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    if (!layers_[i]->params().empty()) ++p;
    for (auto& prm : layers_[i]->params()) out.push_back({names_[i] + "." + prm.name, &prm, p});
  }
  return out;
}

std::int64_t Sequential::num_params() const {
  std::int64_t n = 0;
  for (const auto& l : layers_) n += l->num_params();
  return n;
}

void Sequential::init_parameters(std::uint64_t seed) {
  const auto guard = lock();
  // Each module draws from its own seed so that inserting a layer does not shift the others' values.
  for (std::size_t i = 0; i < layers_.size(); ++i) layers_[i]->initialize(seed * 1000003u + i);
  init_seed_ = seed;
}

Shape Sequential::output_shape(const Shape& input) const {
  const auto guard = lock();  // reads the module list, which add() changes
  if (layers_.empty()) throw std::invalid_argument("Sequential has no modules");
  Shape s = input;
  for (const auto& l : layers_) s = l->output_shape(s);
  return s;
}

MemoryPlan Sequential::plan_for(const Shape& input, std::size_t bp_first, MemoryPolicy policy) const {
  const auto guard = lock();
  std::vector<Fusion> fused(layers_.size(), Fusion::none);
  Shape s = input;
  for (std::size_t i = 0, inside = 0; i < layers_.size(); ++i) {  // inside: modules left of the current fusion
    if (inside > 0) {
      --inside;
    } else {
      fused[i] = fusion_at(i, s, bp_first);
      inside = fusion_modules(fused[i]) - 1;
    }
    s = layers_[i]->output_shape(s);  // plan_memory checks the chain: a misfit throws there
  }
  return plan_memory(layers_, names_, input, bp_first, policy, std::move(fused));
}

void Sequential::set_memory_policy(MemoryPolicy policy) {
  const auto guard = lock();
  if (policy == policy_) return;
  policy_ = policy;
  if (planned_) {
    const Shape input = plan_.input_shape;
    const std::size_t first = plan_.bp_first;
    prepare(input, first);
  }
}

void Sequential::release_buffers() {
  const auto guard = lock();
  free_buffers();
}

bool Sequential::plan_matches(const Shape& input, std::size_t bp_first) const {
  return planned_ && plan_.input_shape == input && plan_.bp_first == bp_first && plan_.policy == policy_ &&
         plan_threads_ == num_threads() && plan_isa_ == kernels().isa;
}

void Sequential::free_buffers() {
  planned_ = false;
  acts_.clear();
  held_.clear();
  errs_.clear();
  ws_fwd_.clear();
  ws_bwd_.clear();
  for (auto& l : layers_) {
    for (auto& prm : l->params()) prm.grad = prm.grad_rounded = Tensor();
    l->bind_accumulator(BufferRole::accumulator, Tensor());
    l->bind_accumulator(BufferRole::error_accumulator, Tensor());
  }
  arenas_.clear();
  bwd_first_ = layers_.size();
}

const MemoryPlan& Sequential::prepare(const Shape& input, std::size_t bp_first) {
  const auto guard = lock();
  if (!plan_matches(input, bp_first)) allocate(plan_for(input, bp_first, policy_));  // validates before freeing
  return plan_;
}

void Sequential::allocate(MemoryPlan plan) {
  free_buffers();
  const MemoryOwnerScope scope(owner_);
  auto& tracker = MemoryTracker::instance();
  std::vector<std::shared_ptr<Storage>> storage(plan.buffers.size());
  if (plan.policy == MemoryPolicy::lifetime) {
    for (std::size_t c = 0; c < kMemCategories; ++c) {
      if (plan.bytes[c] == 0) continue;
      const auto cat = static_cast<MemCategory>(c);
      const std::string name = std::string(category_name(cat)) + " arena";
      arenas_.push_back(std::make_shared<Storage>(plan.bytes[c], cat, name));
      for (std::size_t b = 0; b < plan.buffers.size(); ++b) {
        const PlannedBuffer& pb = plan.buffers[b];
        if (pb.category == cat && pb.shares < 0)
          storage[b] = std::make_shared<Storage>(arenas_.back(), pb.offset, pb.bytes);
      }
    }
  } else {
    for (std::size_t b = 0; b < plan.buffers.size(); ++b) {
      const PlannedBuffer& pb = plan.buffers[b];
      if (pb.shares >= 0) continue;
      storage[b] = std::make_shared<Storage>(pb.bytes, pb.category, pb.name);
      tracker.describe(storage[b]->record(), {pb.name, pb.category, pb.bytes, pb.first_op, pb.last_op, owner_});
    }
  }
  const std::size_t n = layers_.size();
  acts_.assign(n, Tensor());
  held_.assign(n, false);
  ws_fwd_.assign(n, Tensor());
  ws_bwd_.assign(n, Tensor());
  if (plan.bp_first < n) errs_.assign(n, Tensor());
  for (std::size_t b = 0; b < plan.buffers.size(); ++b) {
    const PlannedBuffer& pb = plan.buffers[b];
    const Tensor t = Tensor::over(pb.shares >= 0 ? storage[pb.shares] : storage[b], pb.shape, pb.dtype);
    switch (pb.role) {
      case BufferRole::output: acts_[pb.module] = t; break;
      case BufferRole::output_error: errs_[pb.module] = t; break;
      case BufferRole::workspace_forward: ws_fwd_[pb.module] = t; break;
      case BufferRole::workspace_backward: ws_bwd_[pb.module] = t; break;
      case BufferRole::accumulator:
      case BufferRole::error_accumulator: layers_[pb.module]->bind_accumulator(pb.role, t); break;
      case BufferRole::param_grad:
        for (auto& prm : layers_[pb.module]->params()) {
          if (pb.name == names_[pb.module] + "." + prm.name + ".grad") prm.grad = t;
          if (pb.name == names_[pb.module] + "." + prm.name + ".grad_rounded") prm.grad_rounded = t;
        }
        break;
    }
  }
  plan_ = std::move(plan);
  plan_threads_ = num_threads();
  plan_isa_ = kernels().isa;
  bwd_first_ = plan_.bp_first;
  planned_ = true;
}

std::size_t Sequential::run_forward(std::size_t i, const Tensor& in, Fusion fusion) {
  WorkspaceArena arena(ws_fwd_[i].raw(), ws_fwd_[i].nbytes());
  const WorkspaceArena::Binding bind(ws_fwd_[i].defined() ? &arena : nullptr);
  const std::size_t modules = fusion_modules(fusion);
  Tensor& out = acts_[i + modules - 1];
  switch (fusion) {
    case Fusion::none: layers_[i]->forward(in, out); break;
    case Fusion::relu_pool: static_cast<const MaxPool2d&>(*layers_[i + 1]).forward_of_relu(in, out); break;
    case Fusion::point_pool: static_cast<const Linear&>(*layers_[i]).forward_relu_max(in, out); break;
  }
  return modules;
}

// Where no backward goes through them, the outputs inside a fusion are never read again, so one kernel computes
// the last module's output from the first one's input without writing them (the same bits: kernels.inc):
// - relu_pool: an FP32 ReLU and the MaxPool2d after it; the pooling reads the ReLU's input (one pass less over a
//   conv output). Never at module 0, whose input (the caller's) a backward could not recompute the ReLU from.
// - point_pool: an FP32 per-point Linear, a ReLU and a PointMaxPool (PointNet's last per-point layer and the
//   global pooling) when the Linear's perturbed weights fit whole (Linear::fuses_relu_max).
Fusion Sequential::fusion_at(std::size_t i, const Shape& in, std::size_t bp_first) const {
  if (fusion_enabled(Fusion::point_pool) && fp32_before(layers_, i, bp_first, kind_of<Linear>) &&
      fp32_before(layers_, i + 1, bp_first, kind_of<ReLU>) &&
      fp32_before(layers_, i + 2, bp_first, kind_of<PointMaxPool>) &&
      static_cast<const Linear&>(*layers_[i]).fuses_relu_max(in))
    return Fusion::point_pool;
  if (fusion_enabled(Fusion::relu_pool) && i > 0 && fp32_before(layers_, i, bp_first, kind_of<ReLU>) &&
      fp32_before(layers_, i + 1, bp_first, kind_of<MaxPool2d>))
    return Fusion::relu_pool;
  return Fusion::none;
}

void Sequential::set_fusion_enabled(Fusion kind, bool on) {
  const auto guard = lock();
  if (kind == Fusion::none) throw std::invalid_argument("set_fusion_enabled: 'none' is not a fusion");
  if (on == fusion_enabled(kind)) return;
  fusion_on_.at(static_cast<std::size_t>(kind)) = on;
  free_buffers();  // the plan records the fusions and gives memory by them
}

const Tensor& Sequential::forward(const Tensor& x) {
  const auto guard = lock();
  const MemoryOwnerScope scope(owner_);
  prepare(x.shape(), planned_ ? plan_.bp_first : layers_.size());
  held_.assign(layers_.size(), false);
  for (std::size_t i = 0; i < layers_.size();) {
    const std::size_t last = i + run_forward(i, i == 0 ? x : acts_[i - 1], plan_.fused[i]) - 1;
    if (views_input(last)) held_[last] = held_[last - 1];
    else note_written(last);
    i = last + 1;
  }
  return acts_.back();
}

bool Sequential::views_input(std::size_t i) const {
  return i > 0 && layers_[i]->is_view() && acts_[i].defined() && acts_[i].raw() == acts_[i - 1].raw();
}

// Only outputs can be written over outputs: errors, gradients and workspaces have arenas (or storages) of their own.
void Sequential::note_written(std::size_t i) {
  const auto* begin = static_cast<const char*>(acts_[i].raw());
  const auto* end = begin + acts_[i].nbytes();
  for (std::size_t j = 0; j < acts_.size(); ++j) {
    const auto* b = static_cast<const char*>(acts_[j].raw());
    if (j != i && acts_[j].defined() && b < end && begin < b + acts_[j].nbytes()) held_[j] = false;
  }
  held_[i] = true;
}

const Tensor& Sequential::output() const {
  if (acts_.empty()) throw std::logic_error("Sequential.output: no forward pass yet");
  return acts_.back();
}

void Sequential::prepare_backward(std::size_t first) {
  const auto guard = lock();
  if (first > layers_.size()) throw std::invalid_argument("prepare_backward: module index out of range");
  if (!planned_) throw std::logic_error("prepare_backward needs a forward pass first");
  carry_over(first, first);
}

// A backward from `first` reads the outputs of modules >= first - 1 as the plan for it lays them out: an output
// its next module overwrites in place there is read as that module's. Each one the last forward pass left held is
// copied; one it did not (a fusion did not write it, or under the lifetime policy a later output was written over
// its bytes) is computed again from its input when its module has no parameters (its output is a function of the
// input alone; a module with parameters may have run with the weights a ZO pass built aside, which are gone) and
// that input can be had the same way (not the caller's, module 0's, which the model does not keep). Otherwise the
// backward would read memory that does not hold it: refused before anything changes.
void Sequential::carry_over(std::size_t first, std::size_t need) {
  const std::size_t n = layers_.size();
  std::optional<MemoryPlan> fresh;
  if (!plan_matches(plan_.input_shape, first)) fresh = plan_for(plan_.input_shape, first, policy_);
  const MemoryPlan& plan = fresh ? *fresh : plan_;
  std::vector<int> out(n, -1);  // the planned buffer of each module's output
  for (std::size_t b = 0; b < plan.buffers.size(); ++b)
    if (plan.buffers[b].role == BufferRole::output) out[plan.buffers[b].module] = static_cast<int>(b);
  auto aliases = [&](std::size_t i) { return out[i] >= 0 && plan.buffers[out[i]].shares >= 0; };
  auto inside_fusion = [&](std::size_t i) {  // an output the last forward's fusions did not write
    for (std::size_t j = 0; j < i; ++j)
      if (j + fusion_modules(plan_.fused[j]) > i + 1) return true;
    return false;
  };
  enum class Carry : std::uint8_t { none, copy, view, compute };
  std::vector<Carry> how(n, Carry::none);
  std::vector<bool> wanted(n, false);
  for (std::size_t i = need == 0 ? 0 : need - 1; i < n; ++i)
    wanted[i] = !(i + 1 < n && aliases(i + 1) && !layers_[i + 1]->is_view());
  for (std::size_t i = n; i-- > 0;) {
    if (aliases(i) && layers_[i]->is_view()) {  // holds what its input holds
      how[i] = Carry::view;
      if (wanted[i]) wanted[i - 1] = true;
    } else if (held_[i] && out[i] >= 0) {
      how[i] = Carry::copy;  // wanted or not: kept where the new plan can hold it
    } else if (!wanted[i]) {
      continue;
    } else if (i == 0 || !layers_[i]->params().empty() || out[i] < 0) {
      throw std::logic_error(
          "prepare_backward: a backward from module " + names_.at(std::min(first, n - 1)) + " needs the output of " +
          names_[i] + " (" + layers_[i]->repr() + "), which the last forward pass did not leave in memory (" +
          (inside_fusion(i) ? "a fused forward" : "the memory plan") +
          " did not keep it) and which cannot be computed again; run forward again after prepare_backward");
    } else {
      how[i] = Carry::compute;
      wanted[i - 1] = true;
    }
  }
  const std::vector<Tensor> before = acts_;
  if (fresh) allocate(std::move(*fresh));  // forgets what was held
  const MemoryOwnerScope scope(owner_);
  for (std::size_t i = 0; i < n; ++i) {
    switch (how[i]) {
      case Carry::none: break;
      case Carry::view: held_[i] = held_[i - 1]; break;
      case Carry::copy:
        if (before[i].raw() != acts_[i].raw()) std::memcpy(acts_[i].raw(), before[i].raw(), acts_[i].nbytes());
        note_written(i);
        break;
      case Carry::compute:
        run_forward(i, acts_[i - 1], Fusion::none);
        note_written(i);
        break;
    }
  }
}

Tensor& Sequential::output_error() {
  if (errs_.empty() || bwd_first_ >= layers_.size())
    throw std::logic_error("output_error: no backward part prepared (prepare_backward)");
  return errs_.back();
}

void Sequential::backward(const Tensor& x, bool accumulate) {
  const auto guard = lock();
  if (errs_.empty() || bwd_first_ >= layers_.size())
    throw std::logic_error("backward: no backward part prepared (prepare_backward)");
  if (x.shape() != plan_.input_shape) throw std::invalid_argument("backward: input differs from the forward pass's");
  const MemoryOwnerScope scope(owner_);
  for (std::size_t i = layers_.size(); i-- > bwd_first_;) {
    const Tensor& in = i == 0 ? x : acts_[i - 1];
    WorkspaceArena arena(ws_bwd_[i].raw(), ws_bwd_[i].nbytes());
    const WorkspaceArena::Binding bind(ws_bwd_[i].defined() ? &arena : nullptr);
    layers_[i]->backward_weight(in, errs_[i], accumulate);
    if (i > bwd_first_) layers_[i]->backward_data(in, acts_[i], errs_[i], errs_[i - 1]);
  }
}

void Sequential::release_backward() {
  const auto guard = lock();
  if (planned_) carry_over(layers_.size(), layers_.size() + 1);  // needs nothing, keeps what it can
}

}  // namespace ez
