// Tensor: shape + dtype + shared 64-byte aligned storage from the MemoryTracker.
// int8 tensors carry one power-of-two exponent (value = mantissa * 2^exponent, NITI); int32 holds accumulators.
// The exponent belongs to the storage, not to the Tensor handle: every view of the same bytes (Flatten, an in-place
// ReLU, the alias views Sequential makes once) sees the exponent the last writer set, even when it changes per batch.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "memory/tracker.h"

namespace ez {

enum class DType : std::uint8_t { f32, s8, s32 };
std::size_t dtype_size(DType t);
const char* dtype_name(DType t);

using Shape = std::vector<std::int64_t>;
// Element count; std::invalid_argument for a negative dimension, std::overflow_error if it does not fit int64.
std::int64_t shape_numel(const Shape& s);
std::string shape_str(const Shape& s);

class Storage {
 public:
  Storage(std::size_t bytes, MemCategory category, const std::string& name = "");
  // Caller-owned memory (a batch of input data held by Python): not tracked, not freed.
  explicit Storage(void* external, std::size_t bytes) noexcept;
  // `bytes` at `offset` inside a planned arena, which this view keeps alive (counted once, as the arena).
  Storage(std::shared_ptr<Storage> arena, std::size_t offset, std::size_t bytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data() const noexcept { return data_; }
  std::size_t bytes() const noexcept { return bytes_; }
  MemCategory category() const noexcept { return category_; }
  // The tracker's record of this buffer (0 for caller-owned memory; an arena view shares its arena's).
  std::uint64_t record() const noexcept { return record_; }
  int exponent() const noexcept { return exponent_; }
  void set_exponent(int e) noexcept { exponent_ = e; }

 private:
  std::size_t bytes_;
  MemCategory category_;
  std::uint64_t record_ = 0;  // before data_: the allocation in the initializer list sets it
  int exponent_ = 0;
  void* data_;
  bool owned_ = true;
  std::shared_ptr<Storage> arena_;
};

class Tensor {
 public:
  Tensor() = default;  // empty: no storage, numel 0
  Tensor(Shape shape, DType dtype, MemCategory category);
  // A tensor over caller-owned memory (model input, labels); the caller keeps it alive for the call.
  static Tensor borrow(void* data, Shape shape, DType dtype);
  // A tensor over existing storage (a planned buffer, possibly a view into an arena).
  static Tensor over(std::shared_ptr<Storage> storage, Shape shape, DType dtype);

  const Shape& shape() const noexcept { return shape_; }
  std::int64_t dim(std::size_t i) const { return shape_.at(i); }
  std::size_t ndim() const noexcept { return shape_.size(); }
  // Counted (and checked) once when the tensor is made or reshaped: kernels' loops call it, and an int8 store may
  // alias anything, so a product recomputed per call would be recomputed per element.
  std::int64_t numel() const noexcept { return numel_; }
  std::size_t nbytes() const noexcept { return static_cast<std::size_t>(numel()) * dtype_size(dtype_); }
  DType dtype() const noexcept { return dtype_; }
  bool defined() const noexcept { return storage_ != nullptr; }
  MemCategory category() const;

  // Power-of-two scale of integer tensors (kept by the storage, so shared with every view); 0 for f32.
  int exponent() const noexcept { return storage_ ? storage_->exponent() : 0; }
  void set_exponent(int e);

  // A view with another shape of the same numel, sharing storage (Flatten uses it).
  Tensor reshaped(Shape shape) const;

  float* f32();
  const float* f32() const;
  std::int8_t* s8();
  const std::int8_t* s8() const;
  std::int32_t* s32();
  const std::int32_t* s32() const;
  void* raw() const noexcept { return storage_ ? storage_->data() : nullptr; }
  const std::shared_ptr<Storage>& storage() const noexcept { return storage_; }

 private:
  void check_dtype(DType want) const;
  Shape shape_;
  std::int64_t numel_ = 1;  // of the empty shape, as shape_numel({})
  DType dtype_ = DType::f32;
  std::shared_ptr<Storage> storage_;
};

}  // namespace ez
