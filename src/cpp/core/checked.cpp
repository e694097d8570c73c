// Checked size arithmetic (see checked.h).
#include "core/checked.h"

#include <stdexcept>

namespace ez {

std::int64_t product_within(const std::int64_t* first, const std::int64_t* last, std::int64_t limit) noexcept {
  bool empty = false;
  for (const std::int64_t* f = first; f != last; ++f) {
    if (*f < 0) return -1;
    empty = empty || *f == 0;
  }
  if (empty) return 0 <= limit ? 0 : -1;  // an empty extent makes the product 0, whatever the other factors are
  std::int64_t p = 1;
  for (const std::int64_t* f = first; f != last; ++f)
    if (__builtin_mul_overflow(p, *f, &p) || p > limit) return -1;
  return p;
}

std::int64_t sum_within(std::initializer_list<std::int64_t> terms, std::int64_t limit) noexcept {
  std::int64_t s = 0;
  for (std::int64_t t : terms)
    if (t < 0 || __builtin_add_overflow(s, t, &s) || s > limit) return -1;
  return s;
}

void throw_too_large(const std::string& what, const std::int64_t* first, const std::int64_t* last, const char* op,
                     std::int64_t limit) {
  std::string expr;
  for (const std::int64_t* f = first; f != last; ++f) expr += (f == first ? "" : op) + std::to_string(*f);
  throw std::overflow_error(what + " is too large: " + expr + " exceeds " + std::to_string(limit));
}

void throw_too_large(const std::string& what, std::initializer_list<std::int64_t> factors) {
  std::string expr;
  for (std::int64_t f : factors) expr += (expr.empty() ? "" : " x ") + std::to_string(f);
  throw std::overflow_error(what + " is too large: " + expr + " overflows");
}

int checked_int(std::int64_t v, const char* what) {
  if (v < 0) throw std::invalid_argument(std::string(what) + " is negative: " + std::to_string(v));
  if (v > INT_MAX)
    throw std::overflow_error(std::string(what) + " is too large: " + std::to_string(v) + " exceeds " +
                              std::to_string(INT_MAX));
  return static_cast<int>(v);
}

}  // namespace ez
