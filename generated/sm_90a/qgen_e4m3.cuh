// qgen_e4m3.cuh — E4M3 scales and the P4 proxy grid, NUMERICS §2.3-§2.5.
//
// RN_E4M3 is the hardware `cvt.rn.satfinite.e4m3x2.f32` on all three archs (sm_89+; exhaustively equal to the
// contract, PTX-FACTS §2.2). SR_E4M3, RN_P4 and SR_P4 work on bit patterns and are identical everywhere.
#pragma once
#include <cstdint>
#include <cuda_runtime.h>
#include "qgen_fp32.cuh"

// E4M3 code of 1.0 (the scale of a zero group, §5.2) and of the largest finite value 448.
constexpr uint32_t QGEN_E4M3_ONE = 0x38u;
constexpr uint32_t QGEN_E4M3_MAX_CODE = 0x7Eu;

// NUMERICS §2.3: RN_E4M3(x) — RNE with subnormals, |x| > 448 and ±Inf -> ±448, NaN -> 0x7F. Returns the byte.
__device__ __forceinline__ uint32_t qgen_rn_e4m3(float x) {
  uint16_t packed;
  // Operand a lands in bits 15:8; x goes to the low byte.
  asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(packed) : "f"(0.0f), "f"(x));
  return packed & 0xFFu;
}

// NUMERICS §2.3: the binary32 value of an E4M3 byte (exact; 0x7F / 0xFF are NaN). On the device: the hardware
// widening cvt.rn.f16x2.e4m3x2 (sm_89+; every E4M3 value is a binary16 value, subnormals included) and then
// binary16 -> binary32, both exact: two instructions instead of the integer decode below.
__host__ __device__ __forceinline__ float qgen_e4m3_value(uint32_t code) {
#if defined(__CUDA_ARCH__)
  // The byte in both halves, so the result does not depend on which half the instruction widens into which.
  const uint16_t pair = static_cast<uint16_t>((code & 0xFFu) * 0x101u);
  uint32_t halves;
  asm("cvt.rn.f16x2.e4m3x2 %0, %1;" : "=r"(halves) : "h"(pair));
  float value;
  asm("cvt.f32.f16 %0, %1;" : "=f"(value) : "h"(static_cast<uint16_t>(halves)));
  return value;
#else
  const uint32_t e = (code >> 3) & 0xFu, m = code & 0x7u;
  float magnitude;
  if ((code & 0x7Fu) == 0x7Fu) {
    magnitude = qgen_f32_from_bits(0x7FC00000u);
  } else if (e == 0u) {
    magnitude = static_cast<float>(m) * 0.001953125f;  // m * 2^-9 (subnormal)
  } else {
    // (8 + m) * 2^(e - 10): an exact product of a small integer and a power of two.
    const float power = static_cast<float>(1u << e) * 0.0009765625f;  // 2^e * 2^-10
    magnitude = static_cast<float>(8u + m) * power;
  }
  return (code & 0x80u) ? -magnitude : magnitude;
#endif
}

// NUMERICS §2.4: SR_E4M3(c, r32) for c >= 0 (never NaN here), as a binary32 value (an E4M3 value). Between the E4M3
// neighbours down <= c < up, up is taken iff (r32 >> 8) * 2^-24 < (c - down) / (up - down).
__host__ __device__ __forceinline__ float qgen_sr_e4m3_value(float c, uint32_t r32) {
  if (c >= 448.0f) return 448.0f;
  float down, spacing;
  if (c < 0.015625f /* 2^-6: E4M3 subnormal range, spacing 2^-9 */) {
    spacing = 0.001953125f;
    down = qgen_mul(floorf(qgen_mul(c, 512.0f)), spacing);  // exact: power-of-two scalings of a small integer
  } else {
    // Normal range: 3 mantissa bits, so down drops the low 20 bits of the binary32 pattern and the spacing is
    // 2^(exponent - 3).
    const uint32_t bits = qgen_f32_bits(c);
    down = qgen_f32_from_bits(bits & 0xFFF00000u);
    spacing = qgen_f32_from_bits((bits & 0x7F800000u) - (3u << 23));
  }
  const float frac = qgen_div(qgen_sub(c, down), spacing);  // exact
  const float draw = qgen_mul(static_cast<float>(r32 >> 8), 5.9604644775390625e-08f /* 2^-24 */);
  return draw < frac ? qgen_add(down, spacing) : down;
}

// SR_E4M3 as the E4M3 byte (the encoding of an E4M3 value is exact).
__device__ __forceinline__ uint32_t qgen_sr_e4m3(float c, uint32_t r32) {
  return qgen_rn_e4m3(qgen_sr_e4m3_value(c, r32));
}

// NUMERICS §2.5: RN_P4 on the bit pattern of a non-negative binary32 (RNE on the low 20 bits).
__host__ __device__ __forceinline__ uint32_t qgen_rn_p4_bits(uint32_t b) {
  return (b + 0x7FFFFu + ((b >> 20) & 1u)) & 0xFFF00000u;
}

// NUMERICS §2.5: SR_P4 on the bit pattern: up iff (r32 >> 12) < (b & 0xFFFFF).
__host__ __device__ __forceinline__ uint32_t qgen_sr_p4_bits(uint32_t b, uint32_t r32) {
  const uint32_t down = b & 0xFFF00000u;
  return (r32 >> 12) < (b & 0xFFFFFu) ? down + 0x100000u : down;
}

__host__ __device__ __forceinline__ float qgen_rn_p4(float x) {
  return qgen_f32_from_bits(qgen_rn_p4_bits(qgen_f32_bits(x)));
}
__host__ __device__ __forceinline__ float qgen_sr_p4(float x, uint32_t r32) {
  return qgen_f32_from_bits(qgen_sr_p4_bits(qgen_f32_bits(x), r32));
}
