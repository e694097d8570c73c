// int8 GEMM microkernel types for x86 (gemm_i8_body.h), for *_avx2 / *_avx_vnni / *_avx512_vnni files only
// (anonymous namespace: nothing compiled with wider ISA flags can reach baseline code).
//   s8x16_vnni: AVX-512 VNNI, 16 int32 lanes, vpdpbusd on groups of 4 k (B stored + 128 as u8, row correction).
//   s8x8_vnni:  AVX-VNNI (VEX vpdpbusd on ymm), the same with 8 lanes.
//   s16x8:      AVX2, B widened to int16 in groups of 2 k, vpmaddwd then vpaddd (vpmaddubsw would saturate
//               with the +128 offset, and its sign trick costs more instructions per product).
//   u8x8:       AVX2 for a non-negative B (inputs after a ReLU or a max-pool of ReLU outputs): B taken as u8 in
//               groups of 4 k, vpmaddubsw (pair sums <= 2 * 127^2 < 2^15: never saturates), vpmaddwd by ones,
//               vpaddd: 32 products in 3 instructions instead of 4.
#pragma once
#if defined(__AVX512F__)
// GCC 12 reports the _mm512_undefined_* inside its own intrinsics as uninitialized once the loop that inlines them
// becomes a thread pool task (a false positive, as in f32x16_avx512.h): silence it before the intrinsics are read.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#if defined(__AVX512F__)
#include "simd/f32x16_avx512.h"
#endif

namespace ez {
namespace {

// The bytes of `lanes` <= 16 lanes of one B row (the rest zero), without reading past them.
inline __m128i load_row_i8(const std::int8_t* p, int lanes) {
  if (lanes == 16) return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  if (lanes == 8) return _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  alignas(16) std::int8_t tmp[16] = {};
  std::memcpy(tmp, p, static_cast<std::size_t>(lanes));
  return _mm_load_si128(reinterpret_cast<const __m128i*>(tmp));
}

// Groups of 4 rows into [lane][4] bytes, + 128 (xor 0x80) when `offset`: lanes 0-3, 4-7, 8-11, 12-15 in u[0..3].
inline void interleave4_u8(const std::int8_t* const* rows, int lanes, __m128i (&u)[4], bool offset = true) {
  const __m128i r0 = load_row_i8(rows[0], lanes), r1 = load_row_i8(rows[1], lanes);
  const __m128i r2 = load_row_i8(rows[2], lanes), r3 = load_row_i8(rows[3], lanes);
  const __m128i t0 = _mm_unpacklo_epi8(r0, r1), t1 = _mm_unpackhi_epi8(r0, r1);
  const __m128i t2 = _mm_unpacklo_epi8(r2, r3), t3 = _mm_unpackhi_epi8(r2, r3);
  const __m128i flip = _mm_set1_epi8(static_cast<char>(offset ? 0x80 : 0));
  u[0] = _mm_xor_si128(_mm_unpacklo_epi16(t0, t2), flip);
  u[1] = _mm_xor_si128(_mm_unpackhi_epi16(t0, t2), flip);
  u[2] = _mm_xor_si128(_mm_unpacklo_epi16(t1, t3), flip);
  u[3] = _mm_xor_si128(_mm_unpackhi_epi16(t1, t3), flip);
}

// Shared by the two VNNI types: B bytes are [lane][4] (+128), A groups are 4 signed bytes broadcast.
// channel_lanes: conv_fwd_i8_channels may run it with the roles swapped (the input broadcast, as the unsigned
// operand of the dot product, and W output channels of weights as the vector).
struct u8_offset_layout {
  using elem = std::int8_t;
  static constexpr int kg = 4;
  static constexpr bool b_offset = true, channel_lanes = true, pair_lanes = false;
  static int b_index(int lane, int t) { return lane * 4 + t; }
  static elem b_elem(std::int8_t v) { return static_cast<elem>(static_cast<std::uint8_t>(v) ^ 0x80u); }
  static std::int32_t a_word(const elem* a) {
    std::int32_t w;
    std::memcpy(&w, a, 4);
    return w;
  }
};

#if defined(__AVX512VNNI__)
struct s8x16_vnni : u8_offset_layout {
  using reg = __m512i;
  using acc = __m512i;
  using areg = __m512i;
  using breg = __m512i;
  static constexpr int width = 16;
  // 24 of the 32 zmm registers hold accumulators.
  static constexpr int tile_rows = 8, tile_vecs = 3;
  static constexpr bool pair_lanes = true;

  static void pack_rows(const std::int8_t* const* rows, int lanes, elem* dst) {
    if (lanes < 16) {
      __m128i u[4];
      interleave4_u8(rows, lanes, u);
      for (int i = 0; i < 4; ++i) _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 16 * i), u[i]);
      return;
    }
    // Rows in the four 128-bit lanes; a dword permute brings dword j (4 columns) of every row into lane j, and a
    // byte shuffle in each lane turns [row][column] into [column][row]: 8 instructions for 64 bytes.
    __m512i v = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[0])));
    v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[1])), 1);
    v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[2])), 2);
    v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[3])), 3);
    v = _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), v);
    const __m128i transpose4x4 = _mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    v = _mm512_shuffle_epi8(v, _mm512_broadcast_i32x4(transpose4x4));
    _mm512_storeu_si512(dst, _mm512_xor_si512(v, _mm512_set1_epi8(static_cast<char>(0x80))));
  }
  static acc zero_acc() { return _mm512_setzero_si512(); }
  static areg bcast_a(const elem* a) { return _mm512_set1_epi32(a_word(a)); }
  // Paired lanes: 8 bytes to every pair of lanes (bytes 0-3 to the even lane, 4-7 to the odd one).
  static areg bcast_a2(const elem* a) {
    std::int64_t w;
    std::memcpy(&w, a, 8);
    return _mm512_set1_epi64(w);
  }
  static breg load_b(const elem* b) { return _mm512_loadu_si512(b); }
  static acc dot(acc c, areg a, breg b) { return _mm512_dpbusd_epi32(c, b, a); }
  static reg finish(acc c) { return c; }
  static reg add(reg a, reg b) { return _mm512_add_epi32(a, b); }
  // Each lane plus its pair's other lane.
  static reg add_pairs(reg a) { return _mm512_add_epi32(a, _mm512_shuffle_epi32(a, _MM_PERM_CDAB)); }
  static reg bxor(reg a, reg b) { return _mm512_xor_si512(a, b); }
  static reg set1(std::int32_t v) { return _mm512_set1_epi32(v); }
  static __mmask16 mask(int n) { return static_cast<__mmask16>((1u << n) - 1u); }
  static reg load_n(const std::int32_t* p, int n) { return _mm512_maskz_loadu_epi32(mask(n), p); }
  static reg load(const std::int32_t* p) { return _mm512_load_si512(p); }
  static void store(std::int32_t* p, reg v) { _mm512_store_si512(p, v); }
  static void store_n(std::int32_t* p, reg v, int n) { _mm512_mask_storeu_epi32(p, mask(n), v); }
  // r[i] lane j -> r[j] lane i (conv_fwd_i8_channels): f32x16's shuffles, which move bits without reading them.
  static void transpose(reg (&r)[16]) {
    __m512 f[16];
    for (int i = 0; i < 16; ++i) f[i] = _mm512_castsi512_ps(r[i]);
    f32x16::transpose(f);
    for (int i = 0; i < 16; ++i) r[i] = _mm512_castps_si512(f[i]);
  }
};
#endif

// 8 int32 lanes in a ymm: partial loads and stores through a mask of the first n lanes.
struct i32x8_io {
  using reg = __m256i;
  static __m256i first(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static reg add(reg a, reg b) { return _mm256_add_epi32(a, b); }
  static reg bxor(reg a, reg b) { return _mm256_xor_si256(a, b); }
  static reg set1(std::int32_t v) { return _mm256_set1_epi32(v); }
  static reg load(const std::int32_t* p) { return _mm256_load_si256(reinterpret_cast<const __m256i*>(p)); }
  static void store(std::int32_t* p, reg v) { _mm256_store_si256(reinterpret_cast<__m256i*>(p), v); }
  static reg load_n(const std::int32_t* p, int n) {
    return n == 8 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))
                  : _mm256_maskload_epi32(reinterpret_cast<const int*>(p), first(n));
  }
  static void store_n(std::int32_t* p, reg v, int n) {
    if (n == 8) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v);
    } else {
      _mm256_maskstore_epi32(reinterpret_cast<int*>(p), first(n), v);
    }
  }
  // r[i] lane j -> r[j] lane i (conv_fwd_i8_channels).
  static void transpose(reg (&r)[8]) {
    reg t[8];
    for (int k = 0; k < 4; ++k) {
      t[2 * k] = _mm256_unpacklo_epi32(r[2 * k], r[2 * k + 1]);
      t[2 * k + 1] = _mm256_unpackhi_epi32(r[2 * k], r[2 * k + 1]);
    }
    for (int m = 0; m < 2; ++m) {
      r[4 * m] = _mm256_unpacklo_epi64(t[4 * m], t[4 * m + 2]);
      r[4 * m + 1] = _mm256_unpackhi_epi64(t[4 * m], t[4 * m + 2]);
      r[4 * m + 2] = _mm256_unpacklo_epi64(t[4 * m + 1], t[4 * m + 3]);
      r[4 * m + 3] = _mm256_unpackhi_epi64(t[4 * m + 1], t[4 * m + 3]);
    }
    for (int j = 0; j < 4; ++j) {
      t[j] = _mm256_permute2x128_si256(r[j], r[4 + j], 0x20);
      t[4 + j] = _mm256_permute2x128_si256(r[j], r[4 + j], 0x31);
    }
    for (int i = 0; i < 8; ++i) r[i] = t[i];
  }
};

#if defined(__AVXVNNI__)
struct s8x8_vnni : u8_offset_layout, i32x8_io {
  using reg = __m256i;
  using acc = __m256i;
  using areg = __m256i;
  using breg = __m256i;
  static constexpr int width = 8;
  static constexpr int tile_rows = 4, tile_vecs = 3;  // 12 of 16 ymm registers accumulate

  static void pack_rows(const std::int8_t* const* rows, int lanes, elem* dst) {
    __m128i u[4];
    interleave4_u8(rows, lanes, u);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), u[0]);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 16), u[1]);
  }
  static acc zero_acc() { return _mm256_setzero_si256(); }
  static areg bcast_a(const elem* a) { return _mm256_set1_epi32(a_word(a)); }
  static breg load_b(const elem* b) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b)); }
  static acc dot(acc c, areg a, breg b) { return _mm256_dpbusd_avx_epi32(c, b, a); }
  static reg finish(acc c) { return c; }
};
#endif

#if defined(__AVX2__)
// The AVX2 microkernels' common part: A's group is one 32-bit word broadcast, B one ymm per group.
struct ymm_i32_acc : i32x8_io {
  static constexpr bool channel_lanes = true, pair_lanes = false;
  using acc = __m256i;
  using areg = __m256i;
  using breg = __m256i;
  static acc zero_acc() { return _mm256_setzero_si256(); }
  template <class E>
  static areg bcast_a(const E* a) {
    std::int32_t w;
    std::memcpy(&w, a, 4);
    return _mm256_set1_epi32(w);
  }
  template <class E>
  static breg load_b(const E* b) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b));
  }
  static reg finish(acc c) { return c; }
};

struct s16x8 : ymm_i32_acc {
  using elem = std::int16_t;
  static constexpr int width = 8, kg = 2;
  static constexpr bool b_offset = false;
  static constexpr int tile_rows = 6, tile_vecs = 2;  // 12 accumulators, 2 B vectors, 1 broadcast, 1 product

  static int b_index(int lane, int t) { return lane * 2 + t; }
  static elem b_elem(std::int8_t v) { return v; }
  static void pack_rows(const std::int8_t* const* rows, int lanes, elem* dst) {
    const __m128i pair = _mm_unpacklo_epi8(load_row_i8(rows[0], lanes), load_row_i8(rows[1], lanes));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), _mm256_cvtepi8_epi16(pair));
  }
  static acc dot(acc c, areg a, breg b) { return _mm256_add_epi32(c, _mm256_madd_epi16(a, b)); }
};

// Only for a B whose every value is >= 0 (the caller checks): B bytes [lane][4] as they are, read as unsigned.
struct u8x8 : ymm_i32_acc {
  using elem = std::int8_t;
  static constexpr int width = 8, kg = 4;
  static constexpr bool b_offset = false;
  static constexpr int tile_rows = 4, tile_vecs = 2;  // 8 accumulators (4x2 to 6x2 measured alike)

  static int b_index(int lane, int t) { return lane * 4 + t; }
  static elem b_elem(std::int8_t v) { return v; }
  static void pack_rows(const std::int8_t* const* rows, int lanes, elem* dst) {
    __m128i u[4];
    interleave4_u8(rows, lanes, u, false);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), u[0]);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 16), u[1]);
  }
  static acc dot(acc c, areg a, breg b) {
    return _mm256_add_epi32(c, _mm256_madd_epi16(_mm256_maddubs_epi16(b, a), _mm256_set1_epi16(1)));
  }
};

// Whether all n bytes are >= 0 (no sign bit set).
inline bool all_nonnegative_i8(const std::int8_t* x, long n) {
  __m256i any = _mm256_setzero_si256();
  long i = 0;
  for (; i + 32 <= n; i += 32) any = _mm256_or_si256(any, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i)));
  if (_mm256_movemask_epi8(any) != 0) return false;
  for (; i < n; ++i)
    if (x[i] < 0) return false;
  return true;
}
#endif

}  // namespace
}  // namespace ez
