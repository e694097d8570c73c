// Sequential model: a chain of named modules with their activation and error buffers.
// A "parameter layer" is a module with parameters (conv, linear); the ReLU/pool/flatten modules after it belong to
// it (SPEC §1), so parameter layer p spans modules [first_module(p), first_module(p+1)).
// Buffers come from a MemoryPlan built from the layers' declarations (model/memory_plan.h): one activation per
// module output (views and in-place ReLUs share their input's buffer, except the caller's model input), errors and
// gradients only for the part trained by backprop, each kernel's workspace; allocated under the model's policy
// (`static`: the paper's model; `lifetime`: buffers whose lifetimes do not overlap share memory).
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "layers/layer.h"
#include "model/memory_plan.h"

namespace ez {

struct NamedParam {
  std::string name;  // "<module>.<param>", e.g. "conv1.weight"
  Param* param;
  int param_layer;   // index of the parameter layer that owns it
};

class Sequential {
 public:
  Sequential();
  void add(const std::string& name, std::shared_ptr<Layer> layer);
  std::size_t size() const { return layers_.size(); }
  Layer& layer(std::size_t i) { return *layers_.at(i); }
  const std::string& name(std::size_t i) const { return names_.at(i); }

  // The precision of every module (fp32 for an empty model).
  Precision precision() const { return layers_.empty() ? Precision::fp32 : layers_.front()->precision(); }
  int num_param_layers() const { return static_cast<int>(param_modules_.size()); }
  // Module index where parameter layer p starts; p == num_param_layers() gives size() (nothing left).
  std::size_t first_module(int p) const;
  // Module index of parameter layer p itself.
  std::size_t param_module(int p) const { return param_modules_.at(static_cast<std::size_t>(p)); }
  std::vector<NamedParam> named_parameters();
  std::int64_t num_params() const;
  void init_parameters(std::uint64_t seed);
  // The seed of the last init_parameters, if any (each layer also keeps the seed derived from it).
  std::optional<std::uint64_t> init_seed() const { return init_seed_; }

  // INT8: how the layers round their activations and the errors they propagate (the policy's other classes belong
  // to the trainer), and the key of their stochastic draws: a trainer sets its step key for the step and {0, 0}
  // after it, so an evaluation is a pure function of weights and input. The policy stays for evaluation.
  void set_rounding(const RoundingPolicy& policy, PhiloxKey key = {0, 0});
  const RoundingPolicy& rounding() const { return rounding_; }

  Shape output_shape(const Shape& input) const;  // validates the whole chain
  // Runs every module on x; buffers are (re)planned only when x's shape (or the threads or kernels, which size
  // the workspace) changes. Returns the output.
  const Tensor& forward(const Tensor& x);
  // Module i's output of the last forward pass, where activation_held(i): under the lifetime policy later outputs
  // may have been written over it, and no output a fusion did not write is held (MemoryPlan::fused).
  const Tensor& activation(std::size_t i) const { return acts_.at(i); }
  // Whether activation(i) holds module i's output of the last forward pass: written by it (or a view of one that
  // was) and not written over since, by that pass or by a replanning (which copies what it can).
  bool activation_held(std::size_t i) const { return i < held_.size() && held_[i]; }
  const Tensor& output() const;

  // Gets error buffers for the outputs of modules >= first and gradients for their parameters.
  // Everything below `first` keeps none: that part is trained by forward passes only. The outputs of the last
  // forward pass the backward reads (modules >= first - 1) are carried into the new buffers: copied where held,
  // computed again from their input by modules without parameters, else std::logic_error naming the module
  // (nothing changed then; run forward again after prepare_backward).
  void prepare_backward(std::size_t first);
  // The error of the model output (dL/dlogits), filled by the loss before backward().
  Tensor& output_error();
  // Backprop from output_error() down to module `first` (as given to prepare_backward): gradients of every
  // parameter there are written (or added, with accumulate); no error is computed for module first's input.
  void backward(const Tensor& x, bool accumulate);
  bool backward_ready() const { return !errs_.empty(); }
  std::size_t backward_start() const { return bwd_first_; }
  // Frees errors and gradients (e.g. between training and evaluation), carrying over the outputs of the last
  // forward pass that the smaller plan can hold (activation_held).
  void release_backward();

  // Plans and allocates the buffers for input `input` with backprop from module `bp_first` (size(): none),
  // unless the current plan already is that one.
  const MemoryPlan& prepare(const Shape& input, std::size_t bp_first);
  // The plan for that configuration, under `policy`, without allocating anything.
  MemoryPlan plan_for(const Shape& input, std::size_t bp_first, MemoryPolicy policy) const;
  const MemoryPlan* current_plan() const { return planned_ ? &plan_ : nullptr; }
  MemoryPolicy memory_policy() const { return policy_; }
  void set_memory_policy(MemoryPolicy policy);  // takes effect at the next pass
  void release_buffers();  // frees every planned buffer; the next pass plans again
  // Forward fusions (model/memory_plan.h, Fusion), each switched on or off by kind (default on): where no backward
  // goes through them (ZO passes, evaluation), an FP32 ReLU and the MaxPool2d after it run as one pooling of the
  // ReLU's input (relu_pool), and a per-point Linear + ReLU + PointMaxPool as one kernel (point_pool). Either way
  // gives the same bits; off runs the layers apart (tests, benchmarks of what a fusion saves). Switching frees the
  // planned buffers: the next pass plans again.
  bool fusion_enabled(Fusion kind) const { return fusion_on_.at(static_cast<std::size_t>(kind)); }
  void set_fusion_enabled(Fusion kind, bool on);
  // The tracker's owner id of this model's buffers (its parameters, plan, and what trainers allocate for it).
  std::uint64_t memory_owner() const { return owner_; }

  // Threads: one recursive mutex guards the model's buffers and the parameters of all its layers (add() makes
  // each layer with parameters use it). forward, backward, prepare/release_backward, add and init_parameters take
  // it; a trainer holds it for a whole step, so no other thread ever sees mid-step weights (theta +- eps z).
  // Callers of the other accessors (layer(), named_parameters(), activation(), output()) hold it themselves.
  std::unique_lock<std::recursive_mutex> lock() const { return std::unique_lock<std::recursive_mutex>(*mutex_); }

 private:
  void free_buffers();
  bool plan_matches(const Shape& input, std::size_t bp_first) const;
  // The fusion a forward with backprop from bp_first starts at module i, whose input has shape `in`.
  Fusion fusion_at(std::size_t i, const Shape& in, std::size_t bp_first) const;
  // Runs module i, or the fusion `fusion` from it (the plan's), and returns how many modules it ran.
  std::size_t run_forward(std::size_t i, const Tensor& in, Fusion fusion);
  void allocate(MemoryPlan plan);
  // Replans for backprop from `first` and carries the last forward's outputs over (prepare_backward): every output
  // from module `need` - 1 on must be, the others are copied where held.
  void carry_over(std::size_t first, std::size_t need);
  // Whether module i's output is a view of its input's buffer (writes nothing).
  bool views_input(std::size_t i) const;
  // Records that acts_[i] was just written with module i's output: every other output over those bytes is lost.
  void note_written(std::size_t i);
  std::shared_ptr<std::recursive_mutex> mutex_ = std::make_shared<std::recursive_mutex>();
  std::uint64_t owner_;
  MemoryPolicy policy_ = MemoryPolicy::static_;
  std::array<bool, kFusionKinds> fusion_on_{true, true, true};
  MemoryPlan plan_;
  bool planned_ = false;
  int plan_threads_ = 0;   // the workspace depends on the team size and kernels the plan was made for
  std::string plan_isa_;
  std::vector<std::shared_ptr<Storage>> arenas_;  // lifetime policy: one per category
  std::vector<Tensor> ws_fwd_, ws_bwd_;            // per module, undefined when it needs none
  std::vector<std::string> names_;
  std::vector<std::shared_ptr<Layer>> layers_;
  std::vector<std::size_t> param_modules_;
  std::vector<Tensor> acts_;
  std::vector<bool> held_;  // held_[i]: acts_[i] holds module i's output of the last forward pass
  std::vector<Tensor> errs_;  // errs_[i] = dL/d(output of module i), defined for i >= bwd_first_
  std::size_t bwd_first_ = 0;
  std::optional<std::uint64_t> init_seed_;
  RoundingPolicy rounding_;
  PhiloxKey draw_key_{0, 0};
};

}  // namespace ez
