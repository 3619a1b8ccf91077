// qgen_e2m1.cuh — E2M1 (FP4) rounding and decoding, NUMERICS §2.1, §2.2, §2.7.
//
// A code is sign<<3 | magnitude code, magnitudes {0, .5, 1, 1.5, 2, 3, 4, 6} = codes 0..7.
// Round-to-nearest has two spellings with identical results on finite inputs:
//   qgen_rn_e2m1_soft      the threshold rule of §2.1 (every arch; the only one on sm_90a);
//   qgen_rn_e2m1x2_hw      `cvt.rn.satfinite.e2m1x2.f32` (sm_100a / sm_120a), NaN inputs mapped to +6 first
//                          because the hardware NaN result is unconfirmed (PTX-FACTS §9 item 1).
// Stochastic rounding (§2.2) is software on every arch (`cvt.rs` exists only on sm_100a and its rounding rule is
// not the contract's).
#pragma once
#include <cstdint>
#include <cuda_runtime.h>
#include "qgen_fp32.cuh"

// E2M1 code of +6 (the code of NaN, §2.1).
constexpr uint32_t QGEN_E2M1_NAN_CODE = 0x7u;

// NUMERICS §2.1: RN_E2M1 as the threshold rule on |v|; ties go to the even code; sign copied; NaN -> 0x7.
__host__ __device__ __forceinline__ uint32_t qgen_rn_e2m1_soft(float v) {
  const float a = qgen_f32_from_bits(qgen_f32_bits(v) & 0x7FFFFFFFu);
  if (a != a) return QGEN_E2M1_NAN_CODE;
  const uint32_t sign = (qgen_f32_bits(v) >> 28) & 0x8u;
  // Each comparison is one threshold of the rule: <= 0.25 -> 0; < 0.75 -> .5; <= 1.25 -> 1; < 1.75 -> 1.5;
  // <= 2.5 -> 2; < 3.5 -> 3; <= 5 -> 4; else 6. +Inf passes every threshold (-> 6).
  const uint32_t magnitude = static_cast<uint32_t>(a > 0.25f) + static_cast<uint32_t>(a >= 0.75f) +
                             static_cast<uint32_t>(a > 1.25f) + static_cast<uint32_t>(a >= 1.75f) +
                             static_cast<uint32_t>(a > 2.5f) + static_cast<uint32_t>(a >= 3.5f) +
                             static_cast<uint32_t>(a > 5.0f);
  return sign | magnitude;
}

// RN_E2M1 with its decoded value (the binary32 value of the code, §2.1), for kernels that need both.
struct qgen_e2m1_rounded {
  uint32_t code;  // sign<<3 | magnitude code
  float value;    // the code's value: ±{0, .5, 1, 1.5, 2, 3, 4, 6}; NaN input -> +6
};

// RN_E2M1 as a code nibble in bits 31:28 of a word (the form the packing below adds into code words), with its value.
struct qgen_e2m1_nibble {
  uint32_t top;  // code << 28
  float value;   // the code's value: ±{0, .5, 1, 1.5, 2, 3, 4, 6}; NaN input -> +6
};

// NUMERICS §2.1 by exact binary32 arithmetic (a fast spelling of the threshold rule, checked equal to it on every
// bf16 input and on a large binary32 sample in test/compile.test.ts):
//  - m = v with NaN replaced by +6, and otherwise min(v, 6) (which keeps the sign of v); a = min(|m|, 6), so ±Inf
//    and everything above 6 saturate.
//  - u = 2^max(exponent(a), 0), the exponent field of max(a, 1); c = u * 2^22: the unit in the last place of c is
//    the E2M1 grid spacing at a (0.5 below 2, 1 in [2, 4), 2 in [4, 6]), so r = f32(f32(a + c) - c) is a rounded
//    to the grid, ties to the even multiple of the spacing, which is the even code. a + c is exact or rounded once;
//    c - ... is exact (Sterbenz). Both are FMAs of the exact product u * 2^22, i.e. the same two additions.
//  - the magnitude code is the bit pattern of r * 2^-126 shifted right by 22 (exact: binary32 subnormals and
//    the first normals, so no flush-to-zero may be in effect): .5 -> 1, 1 -> 2, ..., 4 -> 6, 6 -> 7. Shifted left
//    by 6 instead, it lands in bits 30:28, next to the sign in bit 31.
// Its two steps on a = min(|m|, 6): the grid value r = RN_E2M1(a) >= 0, then the magnitude code in bits 24:22.
__host__ __device__ __forceinline__ float qgen_rn_e2m1_magnitude(float a) {
  const uint32_t a_bits = qgen_f32_bits(a);
  const float unit = qgen_f32_from_bits((a_bits > 0x3F800000u ? a_bits : 0x3F800000u) & 0x7F800000u);
  return qgen_fma_exact_product(unit, -4194304.0f, qgen_fma_exact_product(unit, 4194304.0f /* 2^22 */, a));
}

__host__ __device__ __forceinline__ uint32_t qgen_e2m1_magnitude22(float r) {
  return qgen_f32_bits(qgen_mul(r, 1.17549435082228750797e-38f /* 2^-126 */));
}

__host__ __device__ __forceinline__ qgen_e2m1_nibble qgen_rn_e2m1_top(float v) {
#if defined(__CUDA_ARCH__)
  const float m =
      fminf(v, 6.0f);  // min.f32: when one operand is NaN the result is the other one (PTX ISA), so NaN -> 6
#else
  const float m = v != v ? 6.0f : v;  // host libm fminf may return NaN for a signaling NaN operand
#endif
  const float r = qgen_rn_e2m1_magnitude(fminf(fabsf(m), 6.0f));
  const uint32_t sign = qgen_f32_bits(m) & 0x80000000u;
  return {(qgen_e2m1_magnitude22(r) << 6) + sign, qgen_f32_from_bits(qgen_f32_bits(r) | sign)};
}

// Adds a nibble from bits 31:28 into nibble j (bits 4j+3..4j) of a word whose nibble j is still 0 (a shift and an
// add: one LEA.HI).
__host__ __device__ __forceinline__ uint32_t qgen_add_nibble(uint32_t word, uint32_t top, int j) {
  return word + (top >> (28 - 4 * j));
}

// Adds a magnitude code c held as c << 22 (the bit pattern of r * 2^-126 above) into nibble j of a word whose nibble
// j is still 0: one shift-add (LEA.HI, or LEA for j >= 6).
__host__ __device__ __forceinline__ uint32_t qgen_add_code22(uint32_t word, uint32_t code22, int j) {
  return 4 * j >= 22 ? word + (code22 << (4 * j - 22)) : word + (code22 >> (22 - 4 * j));
}

// RN_E2M1 with its decoded value, as (code, value).
__host__ __device__ __forceinline__ qgen_e2m1_rounded qgen_rn_e2m1_arith(float v) {
  const qgen_e2m1_nibble n = qgen_rn_e2m1_top(v);
  return {n.top >> 28, n.value};
}

// Two codes packed as a byte (§2.7: the lower index in bits 3:0), software rounding.
__host__ __device__ __forceinline__ uint32_t qgen_rn_e2m1x2_soft(float lo, float hi) {
  return qgen_rn_e2m1_arith(lo).code | (qgen_rn_e2m1_arith(hi).code << 4);
}

#if defined(__CUDA_ARCH_FAMILY_SPECIFIC__) && (__CUDA_ARCH_FAMILY_SPECIFIC__ >= 1000)
#define QGEN_HAS_HW_E2M1 1
// NUMERICS §2.1 on Blackwell: hardware RN + satfinite. NaN is mapped to +6 before the instruction, so the result
// equals the threshold rule on every input. Operand a lands in bits 7:4, so the higher index goes first.
__device__ __forceinline__ uint32_t qgen_rn_e2m1x2_hw(float lo, float hi) {
  lo = (lo != lo) ? 6.0f : lo;
  hi = (hi != hi) ? 6.0f : hi;
  uint16_t packed;
  asm("{ .reg .b8 t;\n\tcvt.rn.satfinite.e2m1x2.f32 t, %1, %2;\n\tcvt.u16.u8 %0, t; }"
      : "=h"(packed)
      : "f"(hi), "f"(lo));
  return packed;
}
#endif

// The two RN spellings as policies, so that a kernel names its choice once (lower/lower.ts picks per arch).
struct qgen_e2m1_software {
  static __host__ __device__ __forceinline__ uint32_t pack2(float lo, float hi) { return qgen_rn_e2m1x2_soft(lo, hi); }
  // Eight codes as a word (§2.7: element j in bits 4j+3..4j).
  static __host__ __device__ __forceinline__ uint32_t pack8(const float (&v)[8]) {
    uint32_t word = 0;
#pragma unroll
    for (int j = 0; j < 8; ++j) word = qgen_add_nibble(word, qgen_rn_e2m1_top(v[j]).top, j);
    return word;
  }
};

#if defined(__CUDA_ARCH__) && !defined(QGEN_HAS_HW_E2M1)
// Declared, never defined: a kernel that picks the hardware policy on an arch without the instruction fails to
// link ("unresolved extern function") instead of silently changing numerics.
__device__ uint32_t qgen_rn_e2m1x2_hw_unavailable_on_this_arch(float lo, float hi);
#endif

struct qgen_e2m1_hardware {
  static __device__ __forceinline__ uint32_t pack2(float lo, float hi) {
#if defined(QGEN_HAS_HW_E2M1)
    return qgen_rn_e2m1x2_hw(lo, hi);
#elif defined(__CUDA_ARCH__)
    return qgen_rn_e2m1x2_hw_unavailable_on_this_arch(lo, hi);
#else
    (void)lo;
    (void)hi;
    return 0;  // host pass: device code only
#endif
  }
  static __device__ __forceinline__ uint32_t pack8(const float (&v)[8]) {
    return pack2(v[0], v[1]) | (pack2(v[2], v[3]) << 8) | (pack2(v[4], v[5]) << 16) | (pack2(v[6], v[7]) << 24);
  }
};

// NUMERICS §2.1: the binary32 value of a code (exact).
__host__ __device__ __forceinline__ float qgen_e2m1_value(uint32_t code) {
  // Magnitude codes 0..7 -> 0, .5, 1, 1.5, 2, 3, 4, 6, as value * 2 = 0, 1, 2, 3, 4, 6, 8, 12.
  const uint32_t m = code & 0x7u;
  const uint32_t twice = m < 4u ? m : (m == 4u ? 4u : (m == 5u ? 6u : (m == 6u ? 8u : 12u)));
  const float magnitude = static_cast<float>(twice) * 0.5f;
  return (code & 0x8u) ? -magnitude : magnitude;
}

// NUMERICS §2.2: SR_E2M1(v, r16) with the draw given as r16 << 16 (bits 31:16, as it sits in the odd half of a
// random word; the even half needs one shift). lo/hi are the grid magnitudes around
// a = |v| (NaN -> +6, a clamped to 6 as in RN); hi is taken iff r16 * 2^-16 < frac, frac = (a - lo) / h for the grid
// spacing h at a. Read off p = bits(a * 2^-126) as in qgen_rn_e2m1_top: for a >= 1 the product is exact and normal,
// p >> 22 is lo's code and the low 22 bits are frac * 2^22 exactly; for a < 1 the product is subnormal, p is
// a * 2^23 rounded UP (mul.rp), and with X = frac * 2^22 = a * 2^23 - (p >> 22) * 2^22, r16 * 2^6 < X (an integer
// against a real) holds iff r16 * 2^6 < ceil(X), which is what the low 22 bits hold (when the rounding carries into
// bit 22, X > 2^22 - 1 > r16 * 2^6 both ways: the next grid value is taken). So hi iff (r16 << 6) < (p & 0x3FFFFF),
// compared here shifted left by 10 bits: (r16 << 16) < (p << 10) (both sides below 2^32, p's code bits shift out).
// (Checked against the §2.2 definition on the host in test/compile.test.ts.)
__host__ __device__ __forceinline__ uint32_t qgen_sr_e2m1_top(float v, uint32_t draw_hi) {
#if defined(__CUDA_ARCH__)
  const float m = fminf(v, 6.0f);  // NaN -> 6, as in qgen_rn_e2m1_top
  const float a = fminf(fabsf(m), 6.0f);
  const uint32_t p = __float_as_uint(__fmul_ru(a, 1.17549435082228750797e-38f /* 2^-126 */));
#else
  const float m = v != v ? 6.0f : v;
  const float a = fminf(fabsf(m), 6.0f);
  const uint32_t p = a >= 1.0f ? qgen_f32_bits(a) - (126u << 23)
                               : static_cast<uint32_t>(__builtin_ceil(static_cast<double>(a) * 8388608.0 /* 2^23 */));
#endif
  const uint32_t code = (p >> 22) + (draw_hi < (p << 10) ? 1u : 0u);
  return (code << 28) + (qgen_f32_bits(m) & 0x80000000u);
}

// The magnitude code of SR_E2M1 for a = |v| in [0, 6] (no NaN, no clamp: qgen_sr_magnitudes16's precondition), read
// off p = bits(a * 2^-126) rounded up as in qgen_sr_e2m1_top, with the draw given as d = r16 << 8 (bits 23:8) and no
// comparison: P = p << 2 holds lo's code in bits 26:24 and the 22-bit fraction f in bits 23:2, so P + (2^24 - 1 - d)
// carries into bit 24 exactly when 4 f > d, i.e. f > r16 << 6, the comparison above; the code is
// (P + 0xFFFFFF - d) >> 24 (P < 2^27: a <= 6). d comes from the random word by one byte permute.
__host__ __device__ __forceinline__ uint32_t qgen_sr_e2m1_magnitude_code_d(float a, uint32_t d) {
#if defined(__CUDA_ARCH__)
  const uint32_t p = __float_as_uint(__fmul_ru(a, 1.17549435082228750797e-38f /* 2^-126 */));
#else
  const uint32_t p = a >= 1.0f ? qgen_f32_bits(a) - (126u << 23)
                               : static_cast<uint32_t>(__builtin_ceil(static_cast<double>(a) * 8388608.0 /* 2^23 */));
#endif
  return ((p << 2) + (0xFFFFFFu - d)) >> 24;
}

// NUMERICS §2.2: SR_E2M1(v, r16) as a code (r16 in bits 15:0).
__host__ __device__ __forceinline__ uint32_t qgen_sr_e2m1(float v, uint32_t r16) {
  return qgen_sr_e2m1_top(v, (r16 & 0xFFFFu) << 16) >> 28;
}
