// Bit-for-bit comparison of float arrays for kernel tests: the message names the first differing element.
#pragma once
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace ez::testing {

inline ::testing::AssertionResult same_bits(const std::vector<float>& want, const std::vector<float>& got,
                                            const std::string& what) {
  if (want.size() != got.size())
    return ::testing::AssertionFailure() << what << ": size " << got.size() << " != " << want.size();
  for (std::size_t i = 0; i < want.size(); ++i)
    if (std::memcmp(&want[i], &got[i], sizeof(float)) != 0) {
      char values[96];
      std::snprintf(values, sizeof values, "got %a, want %a", static_cast<double>(got[i]), static_cast<double>(want[i]));
      return ::testing::AssertionFailure() << what << ": first difference at element " << i << " of " << want.size()
                                           << ": " << values;
    }
  return ::testing::AssertionSuccess();
}

}  // namespace ez::testing
