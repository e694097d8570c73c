// Memory tracker: every buffer of the engine is allocated here, so current and peak bytes per category are exact.
#pragma once
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

namespace ez {

// optimizer: Adam's moment estimates for the backprop-trained parameters (the paper's 2|theta_BP|).
enum class MemCategory : std::uint8_t { parameters, activations, gradients, errors, optimizer, scratch, count };
constexpr std::size_t kMemCategories = static_cast<std::size_t>(MemCategory::count);
constexpr std::size_t kAlignment = 64;  // one cache line; also the widest vector (AVX-512)

const char* category_name(MemCategory c);

struct MemoryStats {
  std::array<std::size_t, kMemCategories> current{};
  std::array<std::size_t, kMemCategories> peak{};
  std::size_t total_current = 0;
  std::size_t total_peak = 0;  // peak of the sum, not the sum of per-category peaks
};

class MemoryTracker {
 public:
  static MemoryTracker& instance();
  // 64-byte aligned, zero-filled; throws std::bad_alloc on failure.
  void* allocate(std::size_t bytes, MemCategory category);
  void release(void* ptr, std::size_t bytes, MemCategory category) noexcept;
  MemoryStats stats() const;
  // Peaks restart from the current usage, so a phase (one training step) can be measured on its own.
  void reset_peak() noexcept;

 private:
  MemoryTracker() = default;
  void raise_peak(std::atomic<std::size_t>& peak, std::size_t value) noexcept;
  std::array<std::atomic<std::size_t>, kMemCategories> current_{};
  std::array<std::atomic<std::size_t>, kMemCategories> peak_{};
  std::atomic<std::size_t> total_current_{0};
  std::atomic<std::size_t> total_peak_{0};
};

// RAII scratch space for kernels (im2col columns, per-chunk partial sums), counted as `scratch`.
template <class T>
class ScratchBuffer {
 public:
  explicit ScratchBuffer(std::size_t count)
      : bytes_(count * sizeof(T)),
        data_(static_cast<T*>(MemoryTracker::instance().allocate(bytes_, MemCategory::scratch))) {}
  ~ScratchBuffer() { MemoryTracker::instance().release(data_, bytes_, MemCategory::scratch); }
  ScratchBuffer(const ScratchBuffer&) = delete;
  ScratchBuffer& operator=(const ScratchBuffer&) = delete;
  T* data() noexcept { return data_; }
  T& operator[](std::size_t i) noexcept { return data_[i]; }

 private:
  std::size_t bytes_;
  T* data_;
};

}  // namespace ez
