// Standard normals from Philox4x32-10 words by Box-Muller, with our own log and sincos written once over a lane
// type (`Ops`), so the scalar reference and every SIMD file make the same bits: only IEEE-exact operations are
// used (+ - * fma sqrt, integer ops, int32 -> float of values below 2^24), each in the same order everywhere.
//
// Index -> value. Element i of stream s under key k is lane i % 4 of block b = i / 4:
//   (w0, w1, w2, w3) = philox4x32_10(counter = (b low 32 bits, b high 32 bits, s, 0), k)
//   z[4b+0] = R(w0) cos A(w1)   z[4b+1] = R(w0) sin A(w1)   z[4b+2] = R(w2) cos A(w3)   z[4b+3] = R(w2) sin A(w3)
//   R(w) = sqrt(-2 ln u), u = ((w >> 8) + 1) / 2^24 in (0, 1];  A(w) = 2 pi (w >> 8) / 2^24 in [0, 2 pi).
// Hence |z| <= sqrt(48 ln 2) = 5.77 (P(|N(0,1)| > 5.77) = 8e-9: invisible in training).
//
// Numerics. ln u = (e - 24) ln 2 + log1p(f) where y = u 2^24 = 2^e (1 + f), 1 + f in [sqrt(1/2), sqrt(2)), and
// log1p(f) = f + f^2 Q(f), Q of degree 8. The angle is reduced exactly: 4 (w >> 8) / 2^24 = j + t with quadrant
// j = round(.) and t = integer / 2^22 in [-1/2, 1/2], so A = (pi/2)(j + t) and sin, cos (pi/2 t) are odd and even
// polynomials in t. Coefficients are minimax for relative error (Lawson's iteration in double, rounded to float).
// Over all 2^24 inputs (tests/cpp/test_rng.cpp) R is within 1 ulp and sin, cos within 2 ulp of double libm.
#pragma once
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/shapes.h"
#include "rng/philox.h"

namespace ez {
// Internal linkage: each file instantiates these with its own ISA flags, and no copy compiled for AVX-512 may be
// picked by the linker for the reference.
namespace {

namespace gauss {
constexpr float kLog1pQ[9] = {-0x1.fffff8p-2f, 0x1.55555p-2f,   -0x1.000426p-2f, 0x1.99a3f4p-3f, -0x1.54276cp-3f,
                              0x1.22718cp-3f,  -0x1.0f3764p-3f, 0x1.0848cp-3f,   -0x1.3831p-4f};
constexpr float kSinP[4] = {0x1.921fb6p+0f, -0x1.4abbbap-1f, 0x1.465e92p-4f, -0x1.2d93p-8f};  // sin(pi/2 t) / t
constexpr float kCosC[4] = {-0x1.3bd3ccp+0f, 0x1.03c1dep-2f, -0x1.55c5ep-6f, 0x1.d9d57cp-11f};  // (cos - 1) / t^2
// ln 2 = kLn2Hi + kLn2Lo, kLn2Hi with 16 significant bits so that (e - 24) * kLn2Hi is exact.
constexpr float kLn2Hi = 0x1.62e4p-1f, kLn2Lo = 0x1.7f7d1cp-20f;
constexpr std::uint32_t kSqrtHalfBits = 0x3f3504f3u;  // float bits of sqrt(1/2)
}  // namespace gauss

// R(w) = sqrt(-2 ln u), u = ((w >> 8) + 1) / 2^24.
template <class Ops>
inline typename Ops::F box_muller_radius(typename Ops::U w) {
  using F = typename Ops::F;
  using U = typename Ops::U;
  const F y = Ops::to_float(Ops::add(Ops::template shr<8>(w), Ops::splat_u(1)));  // in [1, 2^24], exact
  // Subtracting the bits of sqrt(1/2) puts the exponent of y / sqrt(1/2) in bits 23+ and leaves a mantissa that,
  // with those bits added back, is 1 + f in [sqrt(1/2), sqrt(2)).
  const U ix = Ops::sub(Ops::as_bits(y), Ops::splat_u(gauss::kSqrtHalfBits));
  const F e = Ops::to_float(Ops::sub(Ops::template shr<23>(ix), Ops::splat_u(24)));  // e - 24, in [-24, 0]
  const F m = Ops::as_float(Ops::add(Ops::band(ix, Ops::splat_u(0x007fffffu)), Ops::splat_u(gauss::kSqrtHalfBits)));
  const F f = Ops::sub(m, Ops::splat_f(1.0f));  // exact (Sterbenz)
  F q = Ops::splat_f(gauss::kLog1pQ[8]);
  for (int i = 7; i >= 0; --i) q = Ops::fma(q, f, Ops::splat_f(gauss::kLog1pQ[i]));
  const F log1p_f = Ops::fma(Ops::mul(f, f), q, f);
  const F ln_u = Ops::fma(e, Ops::splat_f(gauss::kLn2Hi), Ops::fma(e, Ops::splat_f(gauss::kLn2Lo), log1p_f));
  return Ops::sqrt(Ops::mul(ln_u, Ops::splat_f(-2.0f)));
}

// (cos A(w), sin A(w)), A(w) = 2 pi (w >> 8) / 2^24.
template <class Ops>
inline void box_muller_sincos(typename Ops::U w, typename Ops::F& cos_a, typename Ops::F& sin_a) {
  using F = typename Ops::F;
  using U = typename Ops::U;
  const U k = Ops::template shr<8>(w);
  const U j = Ops::template shr<22>(Ops::add(k, Ops::splat_u(1u << 21)));  // nearest quadrant, 0..4
  // t = (k - j 2^22) / 2^22 in [-1/2, 1/2): the subtraction may wrap below zero, to_float reads it as signed.
  const F t = Ops::mul(Ops::to_float(Ops::sub(k, Ops::template shl<22>(j))), Ops::splat_f(0x1p-22f));
  const F t2 = Ops::mul(t, t);
  F p = Ops::splat_f(gauss::kSinP[3]);
  for (int i = 2; i >= 0; --i) p = Ops::fma(p, t2, Ops::splat_f(gauss::kSinP[i]));
  const F s = Ops::mul(t, p);
  F c = Ops::splat_f(gauss::kCosC[3]);
  for (int i = 2; i >= 0; --i) c = Ops::fma(c, t2, Ops::splat_f(gauss::kCosC[i]));
  c = Ops::fma(c, t2, Ops::splat_f(1.0f));
  // A = (pi/2) j + (pi/2) t: odd j swaps sin and cos; cos is negated for j = 1, 2 and sin for j = 2, 3.
  const U odd = Ops::sub(Ops::splat_u(0), Ops::band(j, Ops::splat_u(1)));
  const U cos_bits = Ops::select(odd, Ops::as_bits(s), Ops::as_bits(c));
  const U sin_bits = Ops::select(odd, Ops::as_bits(c), Ops::as_bits(s));
  const U two = Ops::splat_u(2);
  cos_a = Ops::as_float(Ops::bxor(cos_bits, Ops::template shl<30>(Ops::band(Ops::add(j, Ops::splat_u(1)), two))));
  sin_a = Ops::as_float(Ops::bxor(sin_bits, Ops::template shl<30>(Ops::band(j, two))));
}

// The four normals of Philox blocks whose output words are w[g][0..3] (one lane per block), for G groups of lanes
// side by side: the groups' independent chains interleave, which hides the latency of each.
template <class Ops, int G>
inline void box_muller4(const typename Ops::U (&w)[G][4], typename Ops::F (&z)[G][4]) {
  for (int pair = 0; pair < 2; ++pair) {
    typename Ops::F r[G], c[G], s[G];
    for (int g = 0; g < G; ++g) r[g] = box_muller_radius<Ops>(w[g][2 * pair]);
    for (int g = 0; g < G; ++g) box_muller_sincos<Ops>(w[g][2 * pair + 1], c[g], s[g]);
    for (int g = 0; g < G; ++g) {
      z[g][2 * pair] = Ops::mul(r[g], c[g]);
      z[g][2 * pair + 1] = Ops::mul(r[g], s[g]);
    }
  }
}

// The ten round keys of Philox4x32-10 (the key plus r Weyl increments in round r). Computed once for many blocks,
// they let each round read its pair from memory (an embedded broadcast operand on AVX-512) instead of stepping the
// key in general registers and broadcasting it, two instructions of ~14 per round.
struct PhiloxRoundKeys {
  std::uint32_t k0[10], k1[10];
  explicit PhiloxRoundKeys(PhiloxKey key) {
    for (int round = 0; round < 10; ++round, key.k0 += 0x9E3779B9u, key.k1 += 0xBB67AE85u) {
      k0[round] = key.k0;
      k1[round] = key.k1;
    }
  }
};

// Philox4x32-10 on lanes: c[g][0..3] are the counter words of each lane of group g; Ops::mulhilo gives the
// 32x32 -> 64 product. Each round runs over the G groups side by side.
template <class Ops, int G>
inline void philox4x32_10_lanes(typename Ops::U (&c)[G][4], const PhiloxRoundKeys& keys) {
  constexpr std::uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  for (int round = 0; round < 10; ++round) {
    for (int g = 0; g < G; ++g) {
      typename Ops::U hi0, lo0, hi1, lo1;
      Ops::mulhilo(c[g][0], kMul0, hi0, lo0);
      Ops::mulhilo(c[g][2], kMul1, hi1, lo1);
      c[g][0] = Ops::bxor3(hi1, c[g][1], Ops::splat_u(keys.k0[round]));
      c[g][1] = lo1;
      c[g][2] = Ops::bxor3(hi0, c[g][3], Ops::splat_u(keys.k1[round]));
      c[g][3] = lo0;
    }
  }
}
template <class Ops, int G>
inline void philox4x32_10_lanes(typename Ops::U (&c)[G][4], PhiloxKey key) {
  philox4x32_10_lanes<Ops, G>(c, PhiloxRoundKeys(key));
}

// One group of lanes.
template <class Ops>
inline void philox4x32_10_lanes(typename Ops::U (&c)[4], const PhiloxRoundKeys& keys) {
  philox4x32_10_lanes<Ops, 1>(reinterpret_cast<typename Ops::U(&)[1][4]>(c), keys);
}
template <class Ops>
inline void philox4x32_10_lanes(typename Ops::U (&c)[4], PhiloxKey key) {
  philox4x32_10_lanes<Ops>(c, PhiloxRoundKeys(key));
}
template <class Ops>
inline void box_muller4(const typename Ops::U (&w)[4], typename Ops::F (&z)[4]) {
  box_muller4<Ops, 1>(reinterpret_cast<const typename Ops::U(&)[1][4]>(w), reinterpret_cast<typename Ops::F(&)[1][4]>(z));
}

// One lane of plain C++ for the reference kernel and the tests.
struct ScalarOps {
  using U = std::uint32_t;
  using F = float;
  static U splat_u(std::uint32_t v) { return v; }
  static F splat_f(float v) { return v; }
  static U add(U a, U b) { return a + b; }
  static U sub(U a, U b) { return a - b; }
  static U band(U a, U b) { return a & b; }
  static U bxor(U a, U b) { return a ^ b; }
  static U bxor3(U a, U b, U c) { return a ^ b ^ c; }
  static U select(U mask, U a, U b) { return (a & mask) | (b & ~mask); }
  template <int N> static U shr(U a) { return a >> N; }
  template <int N> static U shl(U a) { return a << N; }
  static F to_float(U a) { return static_cast<float>(static_cast<std::int32_t>(a)); }
  static F as_float(U a) {
    F f;
    std::memcpy(&f, &a, sizeof f);
    return f;
  }
  static U as_bits(F f) {
    U a;
    std::memcpy(&a, &f, sizeof a);
    return a;
  }
  static F fma(F a, F b, F c) { return std::fma(a, b, c); }
  static F mul(F a, F b) { return a * b; }
  static F sub(F a, F b) { return a - b; }
  static F sqrt(F a) { return std::sqrt(a); }
  static void mulhilo(U a, std::uint32_t m, U& hi, U& lo) {
    const std::uint64_t p = static_cast<std::uint64_t>(a) * m;
    hi = static_cast<U>(p >> 32);
    lo = static_cast<U>(p);
  }
};

// z[4 block .. 4 block + 3] of (key, stream), from the scalar Philox of rng/philox.h.
inline std::array<float, 4> gaussian_block(PhiloxKey key, std::uint32_t stream, std::uint64_t block) {
  const PhiloxCounter r = philox_block(key, stream, block);
  const std::uint32_t w[4] = {r[0], r[1], r[2], r[3]};
  float z[4];
  box_muller4<ScalarOps>(w, z);
  return {z[0], z[1], z[2], z[3]};
}

inline float gaussian_at(PhiloxKey key, std::uint32_t stream, std::uint64_t index) {
  return gaussian_block(key, stream, index / 4)[index % 4];
}

}  // namespace
}  // namespace ez
