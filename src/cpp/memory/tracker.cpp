// Memory tracker implementation: lock-free global counters, per-owner counters and records under a mutex
// (taken once per buffer, never per element), aligned zeroed allocations, the workspace arena.
#include "memory/tracker.h"

#include <algorithm>
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
    case MemCategory::accumulators: return "accumulators";
    case MemCategory::workspace: return "workspace";
    default: return "?";
  }
}

namespace {
thread_local std::uint64_t t_owner = 0;
thread_local WorkspaceArena* t_arena = nullptr;
}  // namespace

MemoryOwnerScope::MemoryOwnerScope(std::uint64_t owner) noexcept : previous_(t_owner) { t_owner = owner; }
MemoryOwnerScope::~MemoryOwnerScope() { t_owner = previous_; }
std::uint64_t MemoryOwnerScope::current() noexcept { return t_owner; }

void* WorkspaceArena::take(std::size_t bytes, bool zeroed) noexcept {
  const std::size_t need = aligned_bytes(bytes);
  if (need > bytes_ - used_) return nullptr;
  void* p = base_ + used_;
  used_ += need;
  if (used_ > high_) high_ = used_;
  if (zeroed) std::memset(p, 0, need);  // kernels rely on zeroed scratch (padding, slack past an image)
  return p;
}

WorkspaceArena* WorkspaceArena::bound() noexcept { return t_arena; }
WorkspaceArena::Binding::Binding(WorkspaceArena* arena) noexcept : previous_(t_arena) { t_arena = arena; }
WorkspaceArena::Binding::~Binding() { t_arena = previous_; }

void MemoryTracker::Counters::add(MemCategory c, std::size_t bytes) {
  const auto i = static_cast<std::size_t>(c);
  current[i] += bytes;
  if (current[i] > peak[i]) peak[i] = current[i];
  total_current += bytes;
  if (total_current > total_peak) total_peak = total_current;
}

void MemoryTracker::Counters::sub(MemCategory c, std::size_t bytes) {
  current[static_cast<std::size_t>(c)] -= bytes;
  total_current -= bytes;
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

void* MemoryTracker::allocate(std::size_t bytes, MemCategory category, const std::string& name, std::uint64_t& id) {
  // aligned_alloc needs a size that is a multiple of the alignment; a zero-size tensor still gets a valid pointer.
  const std::size_t padded = bytes == 0 ? kAlignment : aligned_bytes(bytes);
  if (padded < bytes) throw std::bad_alloc();  // the rounding overflowed
  void* ptr = std::aligned_alloc(kAlignment, padded);
  if (ptr == nullptr) throw std::bad_alloc();
  std::memset(ptr, 0, padded);
  const auto i = static_cast<std::size_t>(category);
  raise_peak(peak_[i], current_[i].fetch_add(bytes, std::memory_order_relaxed) + bytes);
  raise_peak(total_peak_, total_current_.fetch_add(bytes, std::memory_order_relaxed) + bytes);
  try {
    const std::lock_guard<std::mutex> guard(mutex_);
    id = next_id_++;
    records_.emplace(id, BufferRecord{name, category, bytes, kWholeStep, kWholeStep, t_owner});
    owners_[t_owner].add(category, bytes);
  } catch (...) {
    release(ptr, 0);
    throw;
  }
  return ptr;
}

void MemoryTracker::release(void* ptr, std::uint64_t id) noexcept {
  if (ptr == nullptr) return;
  std::free(ptr);
  const std::lock_guard<std::mutex> guard(mutex_);
  const auto it = records_.find(id);
  if (it == records_.end()) return;
  const BufferRecord& r = it->second;
  current_[static_cast<std::size_t>(r.category)].fetch_sub(r.bytes, std::memory_order_relaxed);
  total_current_.fetch_sub(r.bytes, std::memory_order_relaxed);
  const auto o = owners_.find(r.owner);
  if (o != owners_.end()) o->second.sub(r.category, r.bytes);
  records_.erase(it);
}

void MemoryTracker::describe(std::uint64_t id, const BufferRecord& record) {
  const std::lock_guard<std::mutex> guard(mutex_);
  const auto it = records_.find(id);
  if (it == records_.end()) return;
  BufferRecord& r = it->second;
  if (r.owner != record.owner) {
    owners_[r.owner].sub(r.category, r.bytes);
    owners_[record.owner].add(r.category, r.bytes);
  }
  r.name = record.name;
  r.first_op = record.first_op;
  r.last_op = record.last_op;
  r.owner = record.owner;
}

std::vector<BufferRecord> MemoryTracker::records(std::uint64_t owner) const {
  const std::lock_guard<std::mutex> guard(mutex_);
  std::vector<std::pair<std::uint64_t, BufferRecord>> found;
  for (const auto& [id, r] : records_)
    if (r.owner == owner) found.emplace_back(id, r);
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<BufferRecord> out;
  for (auto& f : found) out.push_back(std::move(f.second));
  return out;
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

MemoryStats MemoryTracker::stats(std::uint64_t owner) const {
  const std::lock_guard<std::mutex> guard(mutex_);
  MemoryStats s;
  const auto it = owners_.find(owner);
  if (it == owners_.end()) return s;
  s.current = it->second.current;
  s.peak = it->second.peak;
  s.total_current = it->second.total_current;
  s.total_peak = it->second.total_peak;
  return s;
}

void MemoryTracker::reset_peak() noexcept {
  for (std::size_t i = 0; i < kMemCategories; ++i) peak_[i].store(current_[i].load());
  total_peak_.store(total_current_.load());
}

void MemoryTracker::reset_peak(std::uint64_t owner) {
  const std::lock_guard<std::mutex> guard(mutex_);
  Counters& c = owners_[owner];
  c.peak = c.current;
  c.total_peak = c.total_current;
}

}  // namespace ez
