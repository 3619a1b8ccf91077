// qgen_fp4_bf16.cuh — exact NVFP4 -> bf16 dequantization for the Hopper GEMM emulation (NUMERICS §6.2).
//
// A code c = s e1 e0 m placed in a bf16 pattern as s << 15 | (e1 e0 m) << 6 has the bf16 value e2m1(c) * 2^-126:
// the code's exponent bits become the two low exponent bits and m the top mantissa bit, and E2M1's subnormal
// (e = 0) lands on bf16's subnormal range with the same spacing. Multiplying by the bf16 S = s_e4m3 * 2^118 gives
// e2m1(c) * s_e4m3 * 2^-8 exactly: the product has at most 6 significant bits and lies in [2^-18, 10.5] (PTX-FACTS
// §2.4).
// The GEMM folds the 2^-8 of each operand back in as 2^16 in alpha, which is exact.
#pragma once
#include <cstdint>
#include <cuda_fp16.h>
#include <cuda_bf16.h>

// log2 of the factor that maps an E4M3 scale to the bf16 multiplier S (kept below 2^127 / 448).
constexpr int kQgenFp4ScaleShift = 118;
constexpr float qgen_pow2(int e) { return e == 0 ? 1.0f : 2.0f * qgen_pow2(e - 1); }
constexpr float kQgenFp4ScaleFactor = qgen_pow2(kQgenFp4ScaleShift);
// Each dequantized operand carries 2^(kQgenFp4ScaleShift - 126) = 2^-8; the product of both is undone by this.
constexpr float kQgenFp4AlphaFix = 65536.0f;

// Codes n_j and n_{j+4} of an 8-code word x (code i in bits 4i+3..4i) as a bf16x2 pattern (low half: n_j),
// each code in the exact subnormal form above. j in 0..3 (a constant after unrolling).
__device__ __forceinline__ uint32_t qgen_fp4_pair_pattern(uint32_t x, int j) {
  const uint32_t codes = (x >> (4 * j)) & 0x000F000Fu;  // n_j in bits 3:0, n_{j+4} in bits 19:16
  return (codes * 0x1040u) & 0x81C081C0u;               // copies at <<6 and <<12; keep s at 15, e1 e0 m at 8:6
}

// The bf16x2 multiplier (S, S) of an E4M3 scale byte: S = scale * 2^118, exact (E4M3 -> f16 -> f32 are exact).
__device__ __forceinline__ uint32_t qgen_fp4_scale_multiplier(uint32_t scale_byte) {
  uint32_t h2;
  asm("cvt.rn.f16x2.e4m3x2 %0, %1;" : "=r"(h2) : "h"(static_cast<unsigned short>(scale_byte & 0xFFu)));
  const float s = __half2float(__ushort_as_half(static_cast<unsigned short>(h2 & 0xFFFFu))) * kQgenFp4ScaleFactor;
  uint32_t out;
  asm("cvt.rn.bf16x2.f32 %0, %1, %1;" : "=r"(out) : "f"(s));
  return out;
}

// Exact product of a code pattern pair and the multiplier: bf16x2 (e2m1 * scale * 2^-8) for both halves.
__device__ __forceinline__ uint32_t qgen_fp4_pair_scaled(uint32_t pattern, uint32_t multiplier) {
  uint32_t out;
  asm("mul.rn.bf16x2 %0, %1, %2;" : "=r"(out) : "r"(pattern), "r"(multiplier));
  return out;
}
