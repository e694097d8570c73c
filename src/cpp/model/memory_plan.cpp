// Memory planning: buffers from the layers' declarations, their lifetimes within a pass, and arena offsets.
#include "model/memory_plan.h"

#include <algorithm>
#include <stdexcept>

#include "core/parallel.h"

namespace ez {

MemoryPolicy parse_memory_policy(const std::string& name) {
  if (name == "static") return MemoryPolicy::static_;
  if (name == "lifetime") return MemoryPolicy::lifetime;
  throw std::invalid_argument("unknown memory plan '" + name + "' (expected 'static' or 'lifetime')");
}

const char* memory_policy_name(MemoryPolicy p) { return p == MemoryPolicy::static_ ? "static" : "lifetime"; }

std::size_t fusion_modules(Fusion f) {
  switch (f) {
    case Fusion::none: return 1;
    case Fusion::relu_pool: return 2;
    case Fusion::point_pool: return 3;
  }
  throw std::logic_error("unknown fusion");
}

const char* fusion_name(Fusion f) {
  switch (f) {
    case Fusion::none: return "none";
    case Fusion::relu_pool: return "relu_pool";
    case Fusion::point_pool: return "point_pool";
  }
  throw std::logic_error("unknown fusion");
}

std::size_t MemoryPlan::total() const {
  std::size_t t = 0;
  for (auto b : bytes) t += b;
  return t;
}

namespace {

std::size_t spec_bytes(const BufferSpec& s) {
  const std::int64_t n = shape_numel(s.shape);
  const std::size_t size = dtype_size(s.dtype);
  if (n < 0 || (size != 0 && static_cast<std::uint64_t>(n) > SIZE_MAX / size))
    throw std::invalid_argument("buffer " + s.name + " of shape " + shape_str(s.shape) + " is too large");
  return static_cast<std::size_t>(n) * size;
}

// Under the lifetime policy an INT8 layer's forward accumulator holds a chunk of samples, not the batch: the layer
// requantizes chunk by chunk (layers/int8_layer.h, int8_forward). Each thread's share of a chunk is about
// kAccumulatorChunkBytes (at least one sample): the int32 sums stay in cache between the kernel and the rounding.
constexpr std::int64_t kAccumulatorChunkBytes = std::int64_t{64} << 10;

Shape accumulator_chunk(Shape shape) {
  if (shape.empty() || shape[0] <= 0) return shape;
  const std::int64_t row_bytes = std::max<std::int64_t>(1, shape_numel(shape) / shape[0] * 4);
  const std::int64_t per_thread = std::max<std::int64_t>(1, kAccumulatorChunkBytes / row_bytes);
  shape[0] = std::min(shape[0], per_thread * num_threads());
  return shape;
}

bool overlaps(const PlannedBuffer& a, const PlannedBuffer& b) {
  return a.first_op <= b.last_op && b.first_op <= a.last_op;
}

// First-fit of each buffer (largest first) at the lowest 64-byte aligned offset that no buffer it overlaps in
// time occupies. Returns the arena size.
std::size_t place(std::vector<PlannedBuffer*> group) {
  std::stable_sort(group.begin(), group.end(), [](const auto* a, const auto* b) { return a->bytes > b->bytes; });
  std::vector<PlannedBuffer*> placed;
  std::size_t size = 0;
  for (PlannedBuffer* b : group) {
    std::vector<std::pair<std::size_t, std::size_t>> busy;  // [start, end) of the overlapping placed buffers
    for (const PlannedBuffer* p : placed)
      if (overlaps(*p, *b)) busy.emplace_back(p->offset, p->offset + aligned_bytes(p->bytes));
    std::sort(busy.begin(), busy.end());
    std::size_t offset = 0;
    for (const auto& [start, end] : busy) {
      if (offset + aligned_bytes(b->bytes) <= start) break;
      offset = std::max(offset, end);
    }
    b->offset = offset;
    size = std::max(size, offset + b->bytes);
    placed.push_back(b);
  }
  return size;
}

}  // namespace

MemoryPlan plan_memory(const std::vector<std::shared_ptr<Layer>>& layers, const std::vector<std::string>& names,
                       const Shape& input, std::size_t bp_first, MemoryPolicy policy, std::vector<Fusion> fused) {
  const std::size_t n = layers.size();
  if (n == 0) throw std::invalid_argument("Sequential has no modules");
  if (bp_first > n) throw std::invalid_argument("backprop start module " + std::to_string(bp_first) + " is out of range");
  if (fused.size() > n) throw std::invalid_argument("more fusions than modules");
  fused.resize(n, Fusion::none);
  // Modules whose output a fused forward never writes (lifetime policy: no buffer), and where each output is
  // written: its own forward, or the forward of the fusion's first module.
  std::vector<bool> unwritten(n, false);
  std::vector<std::size_t> written_at(n);
  for (std::size_t i = 0; i < n; ++i) written_at[i] = i;
  for (std::size_t i = 0; i < n; ++i) {
    if (fused[i] == Fusion::none) continue;
    const std::size_t last = i + fusion_modules(fused[i]) - 1;
    if (last >= n || last >= bp_first)
      throw std::invalid_argument(std::string("a fused forward (") + fusion_name(fused[i]) + " from module " +
                                  std::to_string(i) + ") cannot reach the backprop part or past the last module");
    for (std::size_t j = i + 1; j <= last; ++j)
      if (fused[j] != Fusion::none) throw std::invalid_argument("fused forwards overlap at module " + std::to_string(j));
    if (policy != MemoryPolicy::lifetime) continue;
    for (std::size_t j = i; j < last; ++j) unwritten[j] = true;
    written_at[last] = i;
  }
  MemoryPlan plan;
  plan.policy = policy;
  plan.input_shape = input;
  plan.bp_first = bp_first;
  plan.fused = fused;
  for (std::size_t i = 0; i < n; ++i) plan.ops.push_back("forward " + names[i]);
  plan.ops.push_back("loss");
  for (std::size_t i = n; i-- > bp_first;) plan.ops.push_back("backward " + names[i]);
  const int n_ops = static_cast<int>(plan.ops.size());
  const int loss = static_cast<int>(n);
  auto fwd = [](std::size_t i) { return static_cast<int>(i); };
  auto bwd = [&](std::size_t i) { return static_cast<int>(2 * n - i); };

  std::vector<int> out_of(n, -1), err_of(n, -1);  // planned buffer holding each module's output / its error
  Shape s = input;
  for (std::size_t i = 0; i < n; ++i) {
    const bool bp = i >= bp_first;
    for (BufferSpec spec : layers[i]->buffers(s, bp)) {
      if (spec.role == BufferRole::error_accumulator && i == bp_first) continue;  // propagates no error
      if (spec.role == BufferRole::output && unwritten[i]) continue;
      if (spec.role == BufferRole::accumulator && policy == MemoryPolicy::lifetime)
        spec.shape = accumulator_chunk(spec.shape);
      PlannedBuffer b{names[i] + "." + spec.name, spec.role, i, spec.dtype, spec.shape, spec.category,
                      spec_bytes(spec), 0, 0};
      switch (spec.role) {
        case BufferRole::output:
          // Read by the next forward (or the loss), by backward of the next module (its input) and of this one
          // (ReLU and pooling read their output). The model output stays readable to the end of the pass.
          b.first_op = fwd(written_at[i]);
          b.last_op = i + 1 < n ? fwd(i + 1) : n_ops - 1;
          if (bp) b.last_op = std::max(b.last_op, bwd(i));
          if (i + 1 < n && i + 1 >= bp_first) b.last_op = std::max(b.last_op, bwd(i + 1));
          break;
        case BufferRole::output_error:
          // Written by the loss (model output) or the next module's backward, read by this module's backward.
          b.first_op = i + 1 < n ? bwd(i + 1) : loss;
          b.last_op = bwd(i);
          break;
        case BufferRole::param_grad:
          b.first_op = kWholeStep;  // accumulated over the passes, read by the optimizer after them
          b.last_op = kWholeStep;
          break;
        case BufferRole::accumulator:
        case BufferRole::workspace_forward:
          b.first_op = b.last_op = fwd(i);
          break;
        case BufferRole::error_accumulator:
        case BufferRole::workspace_backward:
          b.first_op = b.last_op = bwd(i);
          break;
      }
      const int index = static_cast<int>(plan.buffers.size());
      // The model input belongs to the caller: an aliasing first module gets its own output buffer. A module
      // that may run in place does so under the lifetime policy when its input's last reader is its forward
      // (its own backward reads only its output; readers after it, like a pool's backward, forbid it).
      const bool in_place = spec.may_alias_input && policy == MemoryPolicy::lifetime && i > 0 &&
                            out_of[i - 1] >= 0 && plan.buffers[out_of[i - 1]].last_op <= fwd(i);
      const bool aliased_output =
          (spec.alias_input || in_place) && spec.role == BufferRole::output && i > 0 && out_of[i - 1] >= 0;
      if (aliased_output) {
        b.shares = out_of[i - 1];
        PlannedBuffer& root = plan.buffers[b.shares];
        root.last_op = std::max(root.last_op, b.last_op);
      }
      if (spec.role == BufferRole::output) out_of[i] = aliased_output ? out_of[i - 1] : index;
      if (spec.role == BufferRole::output_error) err_of[i] = index;
      plan.buffers.push_back(std::move(b));
    }
    s = layers[i]->output_shape(s);
  }
  // Errors are written backwards: module i's input error shares module i's output error when module i aliases.
  for (std::size_t i = n; i-- > bp_first + 1;) {
    if (err_of[i] < 0 || err_of[i - 1] < 0 || !layers[i]->aliases_input()) continue;
    const int root = plan.buffers[err_of[i]].shares >= 0 ? plan.buffers[err_of[i]].shares : err_of[i];
    plan.buffers[err_of[i - 1]].shares = root;
  }
  // A shared storage lives as long as all its users; whole-step buffers span every op.
  for (auto& b : plan.buffers) {
    if (b.first_op == kWholeStep) continue;
    if (b.shares < 0) continue;
    PlannedBuffer& root = plan.buffers[b.shares];
    root.first_op = std::min(root.first_op, b.first_op);
    root.last_op = std::max(root.last_op, b.last_op);
  }
  std::array<std::vector<PlannedBuffer*>, kMemCategories> groups;
  for (auto& b : plan.buffers) {
    if (b.shares >= 0) continue;
    const auto c = static_cast<std::size_t>(b.category);
    if (policy == MemoryPolicy::static_) {
      plan.bytes[c] += b.bytes;
      continue;
    }
    PlannedBuffer* p = &b;
    if (p->first_op == kWholeStep) {  // place over the whole pass, keep the record's "whole step"
      p->first_op = 0;
      p->last_op = n_ops - 1;
    }
    groups[c].push_back(p);
  }
  if (policy == MemoryPolicy::lifetime) {
    for (std::size_t c = 0; c < kMemCategories; ++c) plan.bytes[c] = place(groups[c]);
    for (auto& b : plan.buffers)
      if (b.role == BufferRole::param_grad) b.first_op = b.last_op = kWholeStep;
  }
  for (auto& b : plan.buffers)
    if (b.shares >= 0) b.offset = plan.buffers[b.shares].offset;
  return plan;
}

}  // namespace ez
