// Overflow-checked size arithmetic for every size a caller can drive (shapes, kernel sizes, padding, channels,
// features, batch): a product that does not fit its limit raises std::overflow_error naming what was computed,
// instead of wrapping to a small number that then allocates a small buffer and is written past.
#pragma once
#include <climits>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>

namespace ez {

// The kernels index one tensor (and one sample's padded scratch image) with int, so no such count may exceed it.
constexpr std::int64_t kMaxKernelElements = INT_MAX;

// Product of [first, last) if every factor is >= 0 and the product is at most `limit`, else -1. Never overflows.
std::int64_t product_within(const std::int64_t* first, const std::int64_t* last, std::int64_t limit) noexcept;
inline std::int64_t product_within(std::initializer_list<std::int64_t> factors, std::int64_t limit) noexcept {
  return product_within(factors.begin(), factors.end(), limit);
}
// Sum of non-negative terms if it is at most `limit`, else -1.
std::int64_t sum_within(std::initializer_list<std::int64_t> terms, std::int64_t limit) noexcept;
[[noreturn]] void throw_too_large(const std::string& what, const std::int64_t* first, const std::int64_t* last,
                                  const char* op, std::int64_t limit);
// For a product that overflowed its own type (no smaller limit).
[[noreturn]] void throw_too_large(const std::string& what, std::initializer_list<std::int64_t> factors);

// `describe()` names what is computed ("Conv2d(1, 4, kernel_size=1073741824): weight"); it runs only on failure,
// so the checks cost nothing on the hot path of a step.
template <class Describe>
std::int64_t checked_product(std::initializer_list<std::int64_t> factors, std::int64_t limit, Describe&& describe) {
  const std::int64_t p = product_within(factors, limit);
  if (p < 0) throw_too_large(describe(), factors.begin(), factors.end(), " x ", limit);
  return p;
}
template <class Describe>
std::int64_t checked_sum(std::initializer_list<std::int64_t> terms, std::int64_t limit, Describe&& describe) {
  const std::int64_t s = sum_within(terms, limit);
  if (s < 0) throw_too_large(describe(), terms.begin(), terms.end(), " + ", limit);
  return s;
}

// Bytes of `numel` elements of `elem_size` bytes; std::overflow_error if that does not fit a size_t.
template <class Describe>
std::size_t checked_bytes(std::int64_t numel, std::size_t elem_size, Describe&& describe) {
  std::size_t bytes = 0;
  if (numel < 0 || __builtin_mul_overflow(static_cast<std::uint64_t>(numel), elem_size, &bytes))
    throw_too_large(describe() + " in bytes", {numel, static_cast<std::int64_t>(elem_size)});
  return bytes;
}
// v as an int: std::invalid_argument if negative, std::overflow_error if above INT_MAX.
int checked_int(std::int64_t v, const char* what);

}  // namespace ez
