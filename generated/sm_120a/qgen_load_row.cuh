// qgen_load_row.cuh — a segment's values from a row-major bf16 or f32 tensor (16-byte loads).
// Loads (inactive threads get zeros, which take part in shuffles and reductions harmlessly).
#pragma once
#include <cstdint>
#include <cuda_runtime.h>
#include "qgen_fp32.cuh"
#include "qgen_segment.cuh"

// bf16 [rows, cols] row-major, in two steps so that a loop can issue the next segment's loads before working on
// this one: the raw 16-byte words (zeros when inactive or beyond cols), then their values (exact widening, §1.2).
template <int E>
__device__ __forceinline__ void qgen_fetch_bf16_row(const void* x, int64_t cols, qgen_segment s, bool active,
                                                    uint4 (&raw)[E / 8]) {
  static_assert(E % 8 == 0, "8 bf16 per 16-byte load");
  const uint4* p = reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(x) + s.row * cols + s.k0);
  if (active && s.k0 + E <= cols) {  // the common case: one address, E / 8 unconditional loads
#pragma unroll
    for (int c = 0; c < E / 8; ++c) raw[c] = __ldg(p + c);
  } else {
#pragma unroll
    for (int c = 0; c < E / 8; ++c) raw[c] = (active && s.k0 + 8 * c < cols) ? __ldg(p + c) : make_uint4(0, 0, 0, 0);
  }
}

template <int E>
__device__ __forceinline__ void qgen_unpack_bf16_row(const uint4 (&raw)[E / 8], float (&v)[E]) {
#pragma unroll
  for (int c = 0; c < E / 8; ++c) {
    const uint32_t words[4] = {raw[c].x, raw[c].y, raw[c].z, raw[c].w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      v[8 * c + 2 * i] = __uint_as_float(words[i] << 16);
      v[8 * c + 2 * i + 1] = __uint_as_float(words[i] & 0xFFFF0000u);
    }
  }
}

// bf16 [rows, cols] row-major: 16-byte loads (cols is a multiple of 16 and the base is 16-byte aligned).
template <int E>
__device__ __forceinline__ void qgen_load_bf16_row(const void* x, int64_t cols, qgen_segment s, bool active,
                                                   float (&v)[E]) {
  uint4 raw[E / 8];
  qgen_fetch_bf16_row<E>(x, cols, s, active, raw);
  qgen_unpack_bf16_row<E>(raw, v);
}

// f32 [rows, cols] row-major: 16-byte loads.
template <int E>
__device__ __forceinline__ void qgen_load_f32_row(const void* x, int64_t cols, qgen_segment s, bool active,
                                                  float (&v)[E]) {
  static_assert(E % 4 == 0, "4 f32 per 16-byte load");
  const float4* p = reinterpret_cast<const float4*>(static_cast<const float*>(x) + s.row * cols + s.k0);
#pragma unroll
  for (int c = 0; c < E / 4; ++c) {
    const float4 w = (active && s.k0 + 4 * c < cols) ? __ldg(p + c) : make_float4(0.f, 0.f, 0.f, 0.f);
    v[4 * c] = w.x;
    v[4 * c + 1] = w.y;
    v[4 * c + 2] = w.z;
    v[4 * c + 3] = w.w;
  }
}
