// qgen_codes_io.cuh — a segment's packed E2M1 codes to and from a [rows, cols/2] code tensor.
#pragma once
#include <cstdint>
#include <cuda_runtime.h>
#include "qgen_segment.cuh"

// Packed codes of the segment's 16-groups at (row, k0) of a [rows, cols/2] code tensor: 16-byte stores for pairs of
// groups, 8-byte stores otherwise; groups at or beyond cols are skipped.
template <int E>
__device__ __forceinline__ void qgen_store_codes(uint8_t* codes, int64_t cols, qgen_segment s,
                                                 const uint2 (&packed)[E / 16]) {
  uint8_t* p = codes + s.row * (cols / 2) + s.k0 / 2;
  // 16-byte stores need 16-byte aligned rows: cols / 2 bytes per row, so cols a multiple of 32.
  if (E % 32 == 0 && cols % 32 == 0 && s.k0 + E <= cols) {
#pragma unroll
    for (int c = 0; c < E / 32; ++c)
      reinterpret_cast<uint4*>(p)[c] =
          make_uint4(packed[2 * c].x, packed[2 * c].y, packed[2 * c + 1].x, packed[2 * c + 1].y);
  } else {
#pragma unroll
    for (int c = 0; c < E / 16; ++c)
      if (s.k0 + 16 * c < cols) reinterpret_cast<uint2*>(p)[c] = packed[c];
  }
}

// 16-group codes of a segment, the inverse of qgen_store_codes (zeros beyond cols).
template <int E>
__device__ __forceinline__ void qgen_load_codes(const uint8_t* codes, int64_t cols, qgen_segment s, bool active,
                                                uint2 (&packed)[E / 16]) {
  const uint2* p = reinterpret_cast<const uint2*>(codes + s.row * (cols / 2) + s.k0 / 2);
#pragma unroll
  for (int c = 0; c < E / 16; ++c) packed[c] = (active && s.k0 + 16 * c < cols) ? __ldg(p + c) : make_uint2(0, 0);
}
