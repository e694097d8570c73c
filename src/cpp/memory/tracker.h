// Memory tracker: every buffer of the engine is allocated here, so current and peak bytes per category are exact,
// in total and per owner (a model and what is allocated for it), and every live buffer has a record saying what it
// is (name, category, bytes, when the step uses it).
#pragma once
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace ez {

// optimizer: Adam's moment estimates for the backprop-trained parameters (the paper's 2|theta_BP|).
// accumulators: int32 outputs of integer layers (SPEC §4, INT8). workspace: kernels' temporary space.
enum class MemCategory : std::uint8_t {
  parameters, activations, gradients, errors, optimizer, accumulators, workspace, count
};
constexpr std::size_t kMemCategories = static_cast<std::size_t>(MemCategory::count);
constexpr std::size_t kAlignment = 64;  // one cache line; also the widest vector (AVX-512)

const char* category_name(MemCategory c);
// Bytes a buffer of `bytes` occupies once rounded up to the alignment (what a planned arena reserves for it).
constexpr std::size_t aligned_bytes(std::size_t bytes) { return (bytes + kAlignment - 1) / kAlignment * kAlignment; }

// When a buffer is in use within one pass of a training step (see MemoryPlan); kWholeStep: for the whole step.
constexpr int kWholeStep = -1;

struct BufferRecord {
  std::string name;  // "conv1.output", "fc3.weight.grad", "activations arena", ...
  MemCategory category = MemCategory::workspace;
  std::size_t bytes = 0;
  int first_op = kWholeStep, last_op = kWholeStep;
  std::uint64_t owner = 0;  // 0: nobody's (a standalone layer or tensor)
};

struct MemoryStats {
  std::array<std::size_t, kMemCategories> current{};
  std::array<std::size_t, kMemCategories> peak{};
  std::size_t total_current = 0;
  std::size_t total_peak = 0;  // peak of the sum, not the sum of per-category peaks
};

class MemoryTracker {
 public:
  static MemoryTracker& instance();
  // 64-byte aligned, zero-filled, recorded under the owner of the calling thread's MemoryOwnerScope;
  // throws std::bad_alloc on failure. Returns the record id through `id`.
  void* allocate(std::size_t bytes, MemCategory category, const std::string& name, std::uint64_t& id);
  void release(void* ptr, std::uint64_t id) noexcept;
  // Gives a live buffer a name, lifetime and owner (a model adopting its layers' parameters, a plan naming its
  // buffers); the bytes move to the new owner's counters.
  void describe(std::uint64_t id, const BufferRecord& record);
  std::vector<BufferRecord> records(std::uint64_t owner) const;
  MemoryStats stats() const;
  MemoryStats stats(std::uint64_t owner) const;
  // Peaks restart from the current usage, so a phase (one training step) can be measured on its own.
  void reset_peak() noexcept;
  void reset_peak(std::uint64_t owner);
  // A fresh owner id (one per model).
  std::uint64_t new_owner() noexcept { return next_owner_.fetch_add(1, std::memory_order_relaxed); }

 private:
  MemoryTracker() = default;
  struct Counters {
    std::array<std::size_t, kMemCategories> current{}, peak{};
    std::size_t total_current = 0, total_peak = 0;
    void add(MemCategory c, std::size_t bytes);
    void sub(MemCategory c, std::size_t bytes);
  };
  static void raise_peak(std::atomic<std::size_t>& peak, std::size_t value) noexcept;
  std::array<std::atomic<std::size_t>, kMemCategories> current_{};
  std::array<std::atomic<std::size_t>, kMemCategories> peak_{};
  std::atomic<std::size_t> total_current_{0};
  std::atomic<std::size_t> total_peak_{0};
  std::atomic<std::uint64_t> next_owner_{1};
  mutable std::mutex mutex_;  // guards the records and per-owner counters (allocations are not per element)
  std::uint64_t next_id_ = 1;
  std::unordered_map<std::uint64_t, BufferRecord> records_;
  std::unordered_map<std::uint64_t, Counters> owners_;
};

// While alive, allocations made by this thread are recorded under `owner` (restores the previous one on exit).
class MemoryOwnerScope {
 public:
  explicit MemoryOwnerScope(std::uint64_t owner) noexcept;
  ~MemoryOwnerScope();
  MemoryOwnerScope(const MemoryOwnerScope&) = delete;
  MemoryOwnerScope& operator=(const MemoryOwnerScope&) = delete;
  static std::uint64_t current() noexcept;

 private:
  std::uint64_t previous_;
};

// Workspace a planned model lends to the kernels it calls: ScratchBuffers take their memory from the bound
// workspace (a stack: buffers are released in reverse order) instead of allocating it per call.
class WorkspaceArena {
 public:
  WorkspaceArena(void* data, std::size_t bytes) noexcept : base_(static_cast<char*>(data)), bytes_(bytes) {}
  // 64-byte aligned, zero-filled unless `zeroed` is false; nullptr if the rest of the arena is too small.
  void* take(std::size_t bytes, bool zeroed = true) noexcept;
  void give_back(std::size_t bytes) noexcept { used_ -= aligned_bytes(bytes); }
  std::size_t high_water() const noexcept { return high_; }
  // The arena bound to the calling thread, if any.
  static WorkspaceArena* bound() noexcept;

  class Binding {  // binds an arena to the calling thread for a scope
   public:
    explicit Binding(WorkspaceArena* arena) noexcept;
    ~Binding();
    Binding(const Binding&) = delete;
    Binding& operator=(const Binding&) = delete;

   private:
    WorkspaceArena* previous_;
  };

 private:
  char* base_;
  std::size_t bytes_, used_ = 0, high_ = 0;
};

// RAII temporary space for kernels (padded images, packed panels, per-chunk partial sums), zero-filled, counted
// as `workspace`: from the bound WorkspaceArena when it has room (a planned model step), else allocated.
template <class T>
class ScratchBuffer {
 public:
  // `zeroed` false: the caller overwrites every element first (a planned buffer then skips the memset).
  explicit ScratchBuffer(std::size_t count, bool zeroed = true)
      : bytes_(count * sizeof(T)), arena_(WorkspaceArena::bound()) {
    void* p = arena_ != nullptr ? arena_->take(bytes_, zeroed) : nullptr;
    if (p == nullptr) {
      arena_ = nullptr;
      p = MemoryTracker::instance().allocate(bytes_, MemCategory::workspace, "kernel scratch", id_);
    }
    data_ = static_cast<T*>(p);
  }
  ~ScratchBuffer() {
    if (arena_ != nullptr)
      arena_->give_back(bytes_);
    else
      MemoryTracker::instance().release(data_, id_);
  }
  ScratchBuffer(const ScratchBuffer&) = delete;
  ScratchBuffer& operator=(const ScratchBuffer&) = delete;
  T* data() noexcept { return data_; }
  T& operator[](std::size_t i) noexcept { return data_[i]; }

 private:
  std::size_t bytes_;
  WorkspaceArena* arena_;
  std::uint64_t id_ = 0;
  T* data_ = nullptr;
};

}  // namespace ez
