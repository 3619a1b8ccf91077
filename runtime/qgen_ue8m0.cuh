// qgen_ue8m0.cuh — UE8M0 (MX) scales, NUMERICS §2.6 and §5.8. Software on every arch (bit manipulation, exact).
#pragma once
#include <cstdint>
#include <cuda_runtime.h>
#include "qgen_fp32.cuh"

// UE8M0 byte of 1.0 (the scale of a zero MXFP4 group, §5.8).
constexpr uint32_t QGEN_UE8M0_ONE = 127u;

// NUMERICS §2.6: RP_UE8M0(x) for x > 0 finite — the smallest power of two >= x, clamped to [2^-127, 2^127].
// Returns the biased exponent e (value 2^(e-127)).
__host__ __device__ __forceinline__ uint32_t qgen_rp_ue8m0_bits(uint32_t x_bits) {
  const uint32_t exponent = (x_bits >> 23) & 0xFFu, mantissa = x_bits & 0x7FFFFFu;
  if (exponent == 0u) {
    // Subnormal x < 2^-126: the answer is 2^-127 when x <= 2^-127 (mantissa <= 0x400000), else 2^-126.
    return mantissa > 0x400000u ? 1u : 0u;
  }
  const uint32_t e = exponent + (mantissa != 0u ? 1u : 0u);  // round up when any mantissa bit is set
  return e > 254u ? 254u : e;
}

// The scale value 2^(e-127) and its exact reciprocal 2^(127-e) (both may be binary32 subnormals; 0xFF is NaN).
__host__ __device__ __forceinline__ float qgen_ue8m0_value(uint32_t e) {
  if (e == 0xFFu) return qgen_f32_from_bits(0x7FC00000u);
  return e == 0u ? qgen_f32_from_bits(0x00400000u) : qgen_f32_from_bits(e << 23);
}
__host__ __device__ __forceinline__ float qgen_ue8m0_reciprocal(uint32_t e) {
  // 2^(127-e): biased binary32 exponent 254 - e for e <= 253; e = 254 gives the subnormal 2^-127.
  return e <= 253u ? qgen_f32_from_bits((254u - e) << 23) : qgen_f32_from_bits(0x00400000u);
}
