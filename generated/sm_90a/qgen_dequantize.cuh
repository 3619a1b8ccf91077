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

// 8 MXFP4 values of one code word: y_i = f32(e2m1_i * 2^(e-127)).
__device__ __forceinline__ void qgen_dequantize_mxfp4_8(uint32_t word, uint32_t scale, float (&y)[8]) {
  const float s = qgen_ue8m0_value(scale);
  qgen_e2m1_values_4(word, y);
  qgen_e2m1_values_4(word >> 16, y + 4);
#pragma unroll
  for (int i = 0; i < 8; ++i) y[i] = qgen_mul(y[i], s);
}
