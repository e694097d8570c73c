// Memory tracker implementation: lock-free counters, aligned zeroed allocations.
#include "memory/tracker.h"

#include <cstdlib>
#include <cstring>
#include <new>

namespace ez {

const char* category_name(MemCategory c) {
  switch (c) {
    case MemCategory::parameters: return "parameters";
    case MemCategory::activations: return "activations";
    case MemCategory::gradients: return "gradients";
    case MemCategory::errors: return "errors";
    case MemCategory::optimizer: return "optimizer";
    case MemCategory::scratch: return "scratch";
    default: return "?";
  }
}

MemoryTracker& MemoryTracker::instance() {
  static MemoryTracker tracker;
  return tracker;
}

void MemoryTracker::raise_peak(std::atomic<std::size_t>& peak, std::size_t value) noexcept {
  std::size_t seen = peak.load(std::memory_order_relaxed);
  while (value > seen && !peak.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
  }
}

void* MemoryTracker::allocate(std::size_t bytes, MemCategory category) {
  // aligned_alloc needs a size that is a multiple of the alignment; a zero-size tensor still gets a valid pointer.
  const std::size_t padded = bytes == 0 ? kAlignment : (bytes + kAlignment - 1) / kAlignment * kAlignment;
  void* ptr = std::aligned_alloc(kAlignment, padded);
  if (ptr == nullptr) throw std::bad_alloc();
  std::memset(ptr, 0, padded);
  const auto i = static_cast<std::size_t>(category);
  raise_peak(peak_[i], current_[i].fetch_add(bytes, std::memory_order_relaxed) + bytes);
  raise_peak(total_peak_, total_current_.fetch_add(bytes, std::memory_order_relaxed) + bytes);
  return ptr;
}

void MemoryTracker::release(void* ptr, std::size_t bytes, MemCategory category) noexcept {
  if (ptr == nullptr) return;
  std::free(ptr);
  current_[static_cast<std::size_t>(category)].fetch_sub(bytes, std::memory_order_relaxed);
  total_current_.fetch_sub(bytes, std::memory_order_relaxed);
}

MemoryStats MemoryTracker::stats() const {
  MemoryStats s;
  for (std::size_t i = 0; i < kMemCategories; ++i) {
    s.current[i] = current_[i].load(std::memory_order_relaxed);
    s.peak[i] = peak_[i].load(std::memory_order_relaxed);
  }
  s.total_current = total_current_.load(std::memory_order_relaxed);
  s.total_peak = total_peak_.load(std::memory_order_relaxed);
  return s;
}

void MemoryTracker::reset_peak() noexcept {
  for (std::size_t i = 0; i < kMemCategories; ++i) peak_[i].store(current_[i].load());
  total_peak_.store(total_current_.load());
}

}  // namespace ez
