// qgen_dequantize.cuh — dequantization, NUMERICS §6: f32(f32(e2m1 * scale) * t); MXFP4: f32(e2m1 * 2^(e-127)).
#pragma once
#include <cstdint>
#include <cuda_runtime.h>
#include "qgen_fp32.cuh"
#include "qgen_e2m1.cuh"
#include "qgen_e4m3.cuh"
#include "qgen_ue8m0.cuh"

// 16 NVFP4 values of one group: y_i = f32(f32(e2m1_i * s) * t) (the inner product is exact).
__device__ __forceinline__ void qgen_dequantize_nvfp4_16(uint2 codes, uint32_t scale, float t, float* y) {
  const float s = qgen_e4m3_value(scale);
#pragma unroll
  for (int i = 0; i < 16; ++i) {
    const uint32_t word = i < 8 ? codes.x : codes.y;
    y[i] = qgen_mul(qgen_mul(qgen_e2m1_value((word >> (4 * (i & 7))) & 0xFu), s), t);
  }
}

// 16 MXFP4 values (half of a 32-group): y_i = f32(e2m1_i * 2^(e-127)).
__device__ __forceinline__ void qgen_dequantize_mxfp4_16(uint2 codes, uint32_t scale, float* y) {
  const float s = qgen_ue8m0_value(scale);
#pragma unroll
  for (int i = 0; i < 16; ++i) {
    const uint32_t word = i < 8 ? codes.x : codes.y;
    y[i] = qgen_mul(qgen_e2m1_value((word >> (4 * (i & 7))) & 0xFu), s);
  }
}

// The E2M1 values of the 4 codes in the low 16 bits of `nibbles` (low nibble first), through one byte permute: the
// bytes of {0, 1, 2, 3, 4, 6, 8, 12} are twice the magnitudes of codes 0..7 (NUMERICS §2.1), selected by the
// magnitude bits, then halved and signed by bit 3. Equal to qgen_e2m1_value of each code, -0 for code 8 included.
__device__ __forceinline__ void qgen_e2m1_values_4(uint32_t nibbles, float* v) {
  const uint32_t twice = __byte_perm(0x03020100u, 0x0C080604u, nibbles & 0x7777u);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float magnitude = static_cast<float>((twice >> (8 * i)) & 0xFFu) * 0.5f;
    v[i] = __uint_as_float(__float_as_uint(magnitude) | (((nibbles >> (4 * i + 3)) & 1u) << 31));
  }
}

// 8 NVFP4 values of one code word (8 consecutive elements of one group): y_i = f32(f32(e2m1_i * s) * t).
__device__ __forceinline__ void qgen_dequantize_nvfp4_8(uint32_t word, uint32_t scale, float t, float (&y)[8]) {
  const float s = qgen_e4m3_value(scale);
  qgen_e2m1_values_4(word, y);
  qgen_e2m1_values_4(word >> 16, y + 4);
#pragma unroll
  for (int i = 0; i < 8; ++i) y[i] = qgen_mul(qgen_mul(y[i], s), t);
}

// ---------------------------------------------------------------------------------------------------------------
// The bf16 form of an NVFP4 piece without tensor scale (NUMERICS §6.4 / §6.6: e2m1 * e4m3 has at most 6 significant
// bits and lies in {0} or [2^-10, 2688], so it is an exact bf16 value and one bf16 multiply of the exact bf16 e2m1
// value by the exact bf16 scale rounds nothing): the plane of the two-pass GEMM, written by the dequantize kernel
// with t = 1 and by a one-pass quantizer's pass B. Host spellings (for host tests) give the same bits.

// prmt.b32 with selector nibbles 0..7 (bit 3 of each nibble clear, so the mode question never arises).
__host__ __device__ __forceinline__ uint32_t qgen_prmt(uint32_t lo, uint32_t hi, uint32_t selector) {
#if defined(__CUDA_ARCH__)
  return __byte_perm(lo, hi, selector);
#else
  const uint64_t pool = (static_cast<uint64_t>(hi) << 32) | lo;
  uint32_t out = 0;
  for (int i = 0; i < 4; ++i)
    out |= static_cast<uint32_t>((pool >> (8 * ((selector >> (4 * i)) & 7u))) & 0xFFu) << (8 * i);
  return out;
#endif
}

// The bf16x2 (s, s) of an E4M3 scale byte: exact (E4M3 -> f16 -> f32 -> bf16 round nothing; NaN stays NaN).
__host__ __device__ __forceinline__ uint32_t qgen_bf16x2_of_e4m3(uint32_t scale_byte) {
#if defined(__CUDA_ARCH__)
  uint32_t h2;
  asm("cvt.rn.f16x2.e4m3x2 %0, %1;" : "=r"(h2) : "h"(static_cast<unsigned short>((scale_byte & 0xFFu) * 0x101u)));
  float s;
  asm("cvt.f32.f16 %0, %1;" : "=f"(s) : "h"(static_cast<unsigned short>(h2 & 0xFFFFu)));
  uint32_t out;
  asm("cvt.rn.bf16x2.f32 %0, %1, %1;" : "=r"(out) : "f"(s));
  return out;
#else
  const uint32_t bits = qgen_f32_bits(qgen_e4m3_value(scale_byte)) >> 16;  // exact: <= 4 significant bits
  return bits | (bits << 16);
#endif
}

// Both halves of two bf16x2 values multiplied, RNE (here always exact: see above).
__host__ __device__ __forceinline__ uint32_t qgen_bf16x2_mul(uint32_t a, uint32_t b) {
#if defined(__CUDA_ARCH__)
  uint32_t out;
  asm("mul.rn.bf16x2 %0, %1, %2;" : "=r"(out) : "r"(a), "r"(b));
  return out;
#else
  uint32_t out = 0;
  for (int h = 0; h < 2; ++h) {
    // bf16 x bf16 (8-bit significands) is exact in binary32; then RNE to bf16 (NaN: the quiet NaN 0x7FC0)
    const float p = qgen_bf16_bits_to_f32((a >> (16 * h)) & 0xFFFFu) * qgen_bf16_bits_to_f32((b >> (16 * h)) & 0xFFFFu);
    const uint32_t x = qgen_f32_bits(p);
    const uint32_t r = p != p ? 0x7FC0u : (x + 0x7FFFu + ((x >> 16) & 1u)) >> 16;
    out |= (r & 0xFFFFu) << (16 * h);
  }
  return out;
#endif
}

// The high and low bytes of the bf16 E2M1 magnitudes {0, .5, 1, 1.5, 2, 3, 4, 6} (codes 0..7: 0x0000, 0x3F00,
// 0x3F80, 0x3FC0, 0x4000, 0x4040, 0x4080, 0x40C0), as two 8-byte prmt tables.
constexpr uint32_t QGEN_E2M1_BF16_HI_0_3 = 0x3F3F3F00u, QGEN_E2M1_BF16_HI_4_7 = 0x40404040u;
constexpr uint32_t QGEN_E2M1_BF16_LO_0_3 = 0xC0800000u, QGEN_E2M1_BF16_LO_4_7 = 0xC0804000u;

// The 4 codes of nibbles (low 16 bits, low nibble first) times the bf16x2 scale (s, s) as two bf16x2 words (code 0
// in the low half of the first); sign_source: a word whose byte i has code i's sign in bit 7 (see below).
__host__ __device__ __forceinline__ void qgen_nvfp4_bf16_quad(uint32_t nibbles, uint32_t sign_source, uint32_t s2,
                                                              uint32_t& w01, uint32_t& w23) {
  const uint32_t magnitudes = nibbles & 0x7777u;  // prmt selectors 0..7
  const uint32_t lo = qgen_prmt(QGEN_E2M1_BF16_LO_0_3, QGEN_E2M1_BF16_LO_4_7, magnitudes);
  const uint32_t hi = qgen_prmt(QGEN_E2M1_BF16_HI_0_3, QGEN_E2M1_BF16_HI_4_7, magnitudes) | (sign_source & 0x80808080u);
  w01 = qgen_bf16x2_mul(qgen_prmt(lo, hi, 0x5140u), s2);  // bytes lo0 hi0 lo1 hi1
  w23 = qgen_bf16x2_mul(qgen_prmt(lo, hi, 0x7362u), s2);  // bytes lo2 hi2 lo3 hi3
}

// 8 bf16 plane values of one code word (8 consecutive elements of one 16-group) with the group's bf16x2 scale (s, s):
// bf16(e2m1_i * s) = qgen_dequantize_nvfp4_8(word, scale, 1) rounded to bf16, bit for bit (sign of zero included).
// The sign of code i (word bit 4i+3) lands in bit 7 of byte i of prmt(word << 4, word, ...): even codes from the
// shifted word, odd ones from the word itself.
__host__ __device__ __forceinline__ uint4 qgen_nvfp4_bf16_piece(uint32_t word, uint32_t s2) {
  const uint32_t shifted = word << 4;
  uint4 out;
  qgen_nvfp4_bf16_quad(word, qgen_prmt(shifted, word, 0x5140u), s2, out.x, out.y);
  qgen_nvfp4_bf16_quad(word >> 16, qgen_prmt(shifted, word, 0x7362u), s2, out.z, out.w);
  return out;
}

// 8 MXFP4 values of one code word: y_i = f32(e2m1_i * 2^(e-127)).
__device__ __forceinline__ void qgen_dequantize_mxfp4_8(uint32_t word, uint32_t scale, float (&y)[8]) {
  const float s = qgen_ue8m0_value(scale);
  qgen_e2m1_values_4(word, y);
  qgen_e2m1_values_4(word >> 16, y + 4);
#pragma unroll
  for (int i = 0; i < 8; ++i) y[i] = qgen_mul(y[i], s);
}
