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
#include "qgen_async.cuh"

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

// The four bf16x2 multipliers of one row's groups group0 .. group0 + 3 (scale bytes packed in `scales4`); groups
// past K get 0 so that padding or stale scale bytes never reach the sum.
__device__ __forceinline__ void qgen_fp4_row_multipliers(uint32_t scales4, int32_t group0, int32_t kgroups,
                                                         uint32_t (&mult)[4]) {
#pragma unroll
  for (int t = 0; t < 4; ++t) mult[t] = group0 + t < kgroups ? qgen_fp4_scale_multiplier(scales4 >> (8 * t)) : 0u;
}

// One row of one 64-wide K atom (32 code bytes, 4 scales) -> 128 bytes of bf16 in a 128-byte-swizzled K-major tile
// (the wgmma shared-memory operand). K permutation (NUMERICS §6.2): logical column 16 s + 8 h + 2 t + i of an atom
// holds element 16 t + 8 h + s + 4 i.
__device__ __forceinline__ void qgen_fp4_dequantize_row_sw128(const uint8_t* codes, uint32_t scales4,
                                                              uint8_t* atom_tile, int row, int32_t group0,
                                                              int32_t kgroups) {
  // Read the two 16-byte halves of the row in a row-dependent order: no bank conflicts across a warp.
  const uint32_t first = (static_cast<uint32_t>(row) >> 2) & 1u;
  const uint4 x = *reinterpret_cast<const uint4*>(codes + first * 16);
  const uint4 y = *reinterpret_cast<const uint4*>(codes + (first ^ 1u) * 16);
  const uint4 lo = first ? y : x, hi = first ? x : y;
  const uint32_t w[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};  // w[2 t + h]: group t, half h
  uint32_t mult[4];
  qgen_fp4_row_multipliers(scales4, group0, kgroups, mult);
#pragma unroll
  for (int h = 0; h < 2; ++h) {
#pragma unroll
    for (int s = 0; s < 4; ++s) {
      uint32_t v[4];
#pragma unroll
      for (int t = 0; t < 4; ++t) v[t] = qgen_fp4_pair_scaled(qgen_fp4_pair_pattern(w[2 * t + h], s), mult[t]);
      *reinterpret_cast<uint4*>(atom_tile + qgen_swizzled_offset<128>(row, (2 * s + h) * 16)) =
          make_uint4(v[0], v[1], v[2], v[3]);
    }
  }
}

// The RS-form wgmma A fragments (PTX-FACTS §6.3) of one 64-wide K atom for a thread whose rows are g and g + 8:
// x, y = the 8 code bytes of group q (the thread's lane & 3) of rows g and g + 8, mx, my their multipliers.
// frag[4 s + r] is register a_r of k16 step s of the atom, in the K permutation above.
__device__ __forceinline__ void qgen_fp4_atom_fragments(uint2 x, uint2 y, uint32_t mx, uint32_t my, uint32_t* frag) {
#pragma unroll
  for (int s = 0; s < 4; ++s) {
    uint32_t* a = frag + 4 * s;
    a[0] = qgen_fp4_pair_scaled(qgen_fp4_pair_pattern(x.x, s), mx);  // (g,     2q..2q+1)
    a[1] = qgen_fp4_pair_scaled(qgen_fp4_pair_pattern(y.x, s), my);  // (g + 8, 2q..2q+1)
    a[2] = qgen_fp4_pair_scaled(qgen_fp4_pair_pattern(x.y, s), mx);  // (g,     8+2q..)
    a[3] = qgen_fp4_pair_scaled(qgen_fp4_pair_pattern(y.y, s), my);  // (g + 8, 8+2q..)
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Producer-side decode (tiling.decode 'producer', templates/gemm_sm90_pd.cu.hbs): the same bf16 values and layout as
// qgen_fp4_dequantize_row_sw128, in fewer instructions (bench/NOTES.md "Issue 16" counts them from SASS).

// qgen_fp4_pair_pattern(x, j) with x8 = x >> 8 shared by the four pairs of a word: j = 0, 2 keep the nibbles in place
// (x, x8) and multiply by 0x1040 (copies at <<6 and <<12); j = 1, 3 keep them one nibble up and multiply by 0x104
// (copies at <<2 and <<8, the same bit positions). One shift per word instead of three.
__device__ __forceinline__ uint32_t qgen_fp4_pair_pattern_word(uint32_t x, uint32_t x8, int j) {
  const uint32_t w = j < 2 ? x : x8;
  const uint32_t copies = j % 2 == 0 ? (w & 0x000F000Fu) * 0x1040u : (w & 0x00F000F0u) * 0x104u;
  return copies & 0x81C081C0u;
}

// The four bf16x2 multipliers (S, S) of one row's scale bytes `scales4` (group t in byte t), two bytes per
// cvt.rn.f16x2.e4m3x2; groups t >= `inside` get 0 (past k: padding or stale scale bytes never reach the sum).
// Same values as qgen_fp4_scale_multiplier.
__device__ __forceinline__ void qgen_fp4_row_multipliers_x2(uint32_t scales4, int32_t inside, uint32_t (&mult)[4]) {
#pragma unroll
  for (int p = 0; p < 2; ++p) {
    uint32_t h2;
    asm("cvt.rn.f16x2.e4m3x2 %0, %1;" : "=r"(h2) : "h"(static_cast<unsigned short>(scales4 >> (16 * p))));
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const float s = __half2float(__ushort_as_half(static_cast<unsigned short>(h2 >> (16 * i)))) * kQgenFp4ScaleFactor;
      uint32_t m;
      asm("cvt.rn.bf16x2.f32 %0, %1, %1;" : "=r"(m) : "f"(s));
      mult[2 * p + i] = 2 * p + i < inside ? m : 0u;
    }
  }
}

// One row of one 64-wide K atom: its 32 code bytes lo (bytes 0..15) and hi (16..31), its multipliers -> 128 bytes of
// bf16 at `line` (the row's 128-byte line of a SW128 tile) in the K permutation of NUMERICS §6.2; chunk c of the line
// goes to line + chunk[c] (chunk[c] = (c ^ row mod 8) * 16, computed once per thread by the caller).
__device__ __forceinline__ void qgen_fp4_decode_row_sw128(uint4 lo, uint4 hi, const uint32_t (&mult)[4], uint8_t* line,
                                                          const uint32_t (&chunk)[8]) {
  const uint32_t w[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};  // w[2 t + h]: group t, half h
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    uint32_t w8[4];
#pragma unroll
    for (int t = 0; t < 4; ++t) w8[t] = w[2 * t + h] >> 8;
#pragma unroll
    for (int s = 0; s < 4; ++s) {
      uint32_t v[4];
#pragma unroll
      for (int t = 0; t < 4; ++t)
        v[t] = qgen_fp4_pair_scaled(qgen_fp4_pair_pattern_word(w[2 * t + h], w8[t], s), mult[t]);
      *reinterpret_cast<uint4*>(line + chunk[2 * s + h]) = make_uint4(v[0], v[1], v[2], v[3]);
    }
  }
}
