// Tensor implementation.
#include "core/tensor.h"

#include <limits>
#include <stdexcept>

#include "core/checked.h"

namespace ez {

std::size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32: return 4;
    case DType::s8: return 1;
    case DType::s32: return 4;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "float32";
    case DType::s8: return "int8";
    case DType::s32: return "int32";
  }
  return "?";
}

std::int64_t shape_numel(const Shape& s) {
  for (auto d : s)
    if (d < 0) throw std::invalid_argument("negative dimension in shape " + shape_str(s));
  const std::int64_t n = product_within(s.data(), s.data() + s.size(), std::numeric_limits<std::int64_t>::max());
  if (n < 0)
    throw_too_large("shape " + shape_str(s), s.data(), s.data() + s.size(), " x ",
                    std::numeric_limits<std::int64_t>::max());
  return n;
}

std::string shape_str(const Shape& s) {
  std::string out = "(";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + (s.size() == 1 ? ",)" : ")");
}

Storage::Storage(std::size_t bytes, MemCategory category, const std::string& name)
    : bytes_(bytes),
      category_(category),
      data_(MemoryTracker::instance().allocate(bytes, category, name.empty() ? category_name(category) : name,
                                               record_)) {}

Storage::Storage(void* external, std::size_t bytes) noexcept
    : bytes_(bytes), category_(MemCategory::workspace), data_(external), owned_(false) {}

Storage::Storage(std::shared_ptr<Storage> arena, std::size_t offset, std::size_t bytes)
    : bytes_(bytes), category_(arena->category()), record_(arena->record()), data_(nullptr), owned_(false) {
  if (offset > arena->bytes() || bytes > arena->bytes() - offset)
    throw std::logic_error("a planned buffer runs past its arena");
  data_ = static_cast<char*>(arena->data()) + offset;
  arena_ = std::move(arena);
}

Storage::~Storage() {
  if (owned_) MemoryTracker::instance().release(data_, record_);
}

// Every tensor's element and byte counts are checked here, once, so numel() and nbytes() never wrap afterwards.
static std::size_t checked_tensor_bytes(const Shape& shape, DType dtype) {
  return checked_bytes(shape_numel(shape), dtype_size(dtype), [&] { return "tensor of shape " + shape_str(shape); });
}

Tensor::Tensor(Shape shape, DType dtype, MemCategory category) : shape_(std::move(shape)), dtype_(dtype) {
  storage_ = std::make_shared<Storage>(checked_tensor_bytes(shape_, dtype_), category);
  numel_ = shape_numel(shape_);
}

Tensor Tensor::borrow(void* data, Shape shape, DType dtype) {
  Tensor t;
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  t.storage_ = std::make_shared<Storage>(data, checked_tensor_bytes(t.shape_, dtype));
  t.numel_ = shape_numel(t.shape_);
  return t;
}

Tensor Tensor::over(std::shared_ptr<Storage> storage, Shape shape, DType dtype) {
  Tensor t;
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  t.numel_ = shape_numel(t.shape_);
  if (!storage || storage->bytes() < t.nbytes()) throw std::logic_error("storage too small for " + shape_str(t.shape_));
  t.storage_ = std::move(storage);
  return t;
}

MemCategory Tensor::category() const {
  if (!storage_) throw std::logic_error("undefined tensor has no category");
  return storage_->category();
}

void Tensor::set_exponent(int e) {
  if (!storage_) throw std::logic_error("an undefined tensor has no exponent");
  if (dtype_ == DType::f32 && e != 0) throw std::invalid_argument("a float32 tensor has no exponent");
  storage_->set_exponent(e);
}

Tensor Tensor::reshaped(Shape shape) const {
  if (shape_numel(shape) != numel_)
    throw std::invalid_argument("cannot reshape " + shape_str(shape_) + " to " + shape_str(shape));
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

void Tensor::check_dtype(DType want) const {
  if (dtype_ != want)
    throw std::invalid_argument(std::string("tensor is ") + dtype_name(dtype_) + ", expected " + dtype_name(want));
}

float* Tensor::f32() { check_dtype(DType::f32); return static_cast<float*>(raw()); }
const float* Tensor::f32() const { check_dtype(DType::f32); return static_cast<const float*>(raw()); }
std::int8_t* Tensor::s8() { check_dtype(DType::s8); return static_cast<std::int8_t*>(raw()); }
const std::int8_t* Tensor::s8() const { check_dtype(DType::s8); return static_cast<const std::int8_t*>(raw()); }
std::int32_t* Tensor::s32() { check_dtype(DType::s32); return static_cast<std::int32_t*>(raw()); }
const std::int32_t* Tensor::s32() const { check_dtype(DType::s32); return static_cast<const std::int32_t*>(raw()); }

}  // namespace ez
