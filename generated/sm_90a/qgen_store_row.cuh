// qgen_store_row.cuh — a segment's values into a row-major bf16 or f32 tensor (16-byte stores).
#pragma once
#include <cstdint>
#include <cuda_runtime.h>
#include "qgen_fp32.cuh"
#include "qgen_segment.cuh"

// E values as bf16 (RNE, §2.8) or f32 at (row, k0) of a [rows, cols] tensor, 16-byte stores.
template <int E>
__device__ __forceinline__ void qgen_store_bf16_row(void* y, int64_t cols, qgen_segment s, const float (&v)[E]) {
  uint4* p = reinterpret_cast<uint4*>(static_cast<uint16_t*>(y) + s.row * cols + s.k0);
#pragma unroll
  for (int c = 0; c < E / 8; ++c) {
    if (s.k0 + 8 * c >= cols) break;
    uint32_t w[4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
      w[i] = qgen_f32_to_bf16_bits(v[8 * c + 2 * i]) |
             (static_cast<uint32_t>(qgen_f32_to_bf16_bits(v[8 * c + 2 * i + 1])) << 16);
    p[c] = make_uint4(w[0], w[1], w[2], w[3]);
  }
}
template <int E>
__device__ __forceinline__ void qgen_store_f32_row(void* y, int64_t cols, qgen_segment s, const float (&v)[E]) {
  float4* p = reinterpret_cast<float4*>(static_cast<float*>(y) + s.row * cols + s.k0);
#pragma unroll
  for (int c = 0; c < E / 4; ++c)
    if (s.k0 + 4 * c < cols) p[c] = make_float4(v[4 * c], v[4 * c + 1], v[4 * c + 2], v[4 * c + 3]);
}
