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
