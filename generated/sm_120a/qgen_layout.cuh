// qgen_layout.cuh — where codes and scales live in memory, NUMERICS §2.7 and §7.
#pragma once
#include <cstdint>
#include <cuda_runtime.h>
#include "qgen.h"

// NUMERICS §2.7: 16 codes (4 bits each, element i in bits 4i+3..4i) as the 8 bytes they occupy in memory.
// Built from 8 bytes, each holding two codes with the lower index in bits 3:0.
__host__ __device__ __forceinline__ uint2 qgen_pack_code_bytes(const uint32_t (&bytes)[8]) {
  return make_uint2(bytes[0] | (bytes[1] << 8) | (bytes[2] << 16) | (bytes[3] << 24),
                    bytes[4] | (bytes[5] << 8) | (bytes[6] << 16) | (bytes[7] << 24));
}

// NUMERICS §7: scale layouts. Kb = groups per row.
// row-major: (r, kb) at r * Kb + kb.
__host__ __device__ __forceinline__ int64_t qgen_scale_offset_row_major(int64_t r, int64_t kb, int64_t groups_per_row) {
  return r * groups_per_row + kb;
}

// 128x4 (cuBLAS / CUTLASS block-scaled): rows padded to 128, Kb to 4, and
// off(r, kb) = ((r div 128) * ceil(Kb/4) + kb div 4) * 512 + (r mod 32) * 16 + ((r mod 128) div 32) * 4 + kb mod 4:
// 512-byte blocks of 128 rows x 4 groups, and inside a block the 4 groups of a row are 4 consecutive bytes.
// Byte offset of the block holding rows [128 rb, 128 rb + 128) and groups [4 kb4, 4 kb4 + 4); kb_tiles = ceil(Kb / 4).
__host__ __device__ __forceinline__ int64_t qgen_scale_block_offset(int64_t rb, int64_t kb4, int64_t kb_tiles) {
  return (rb * kb_tiles + kb4) * 512;
}
// Byte offset of row r (0..127) inside its block.
__host__ __device__ __forceinline__ uint32_t qgen_scale_row_in_block(uint32_t r) {
  return (r % 32u) * 16u + (r / 32u) * 4u;
}
__host__ __device__ __forceinline__ int64_t qgen_scale_offset_128x4(int64_t r, int64_t kb, int64_t groups_per_row) {
  return qgen_scale_block_offset(r / 128, kb / 4, (groups_per_row + 3) / 4) +
         qgen_scale_row_in_block(static_cast<uint32_t>(r % 128)) + kb % 4;
}

// The bytes of a scale tensor, qgen_scale_bytes_128x4 / _row_major, are in qgen.h (callers allocate with them).

// The two layouts as policies, so that a kernel names its layout once.
struct qgen_layout_row_major {
  static __host__ __device__ __forceinline__ int64_t offset(int64_t r, int64_t kb, int64_t groups_per_row) {
    return qgen_scale_offset_row_major(r, kb, groups_per_row);
  }
  static __host__ __device__ __forceinline__ int64_t bytes(int64_t rows, int64_t groups_per_row) {
    return qgen_scale_bytes_row_major(rows, groups_per_row);
  }
};
struct qgen_layout_128x4 {
  static __host__ __device__ __forceinline__ int64_t offset(int64_t r, int64_t kb, int64_t groups_per_row) {
    return qgen_scale_offset_128x4(r, kb, groups_per_row);
  }
  static __host__ __device__ __forceinline__ int64_t bytes(int64_t rows, int64_t groups_per_row) {
    return qgen_scale_bytes_128x4(rows, groups_per_row);
  }
};

// NUMERICS §7: padding bytes of the 128x4 layout are 0. Writes them (grid-stride over the whole grid): the groups
// kb >= Kb of real rows, and every group of the padding rows. A no-op for the row-major layout.
template <class Layout>
__device__ __forceinline__ void qgen_zero_scale_padding(uint8_t* scales, int64_t rows, int64_t groups_per_row) {
  const int64_t padded_rows = ((rows + 127) / 128) * 128;
  const int64_t padded_groups = ((groups_per_row + 3) / 4) * 4;
  if (Layout::bytes(rows, groups_per_row) == rows * groups_per_row) return;
  const int64_t extra_groups = padded_groups - groups_per_row;
  const int64_t column_pad = rows * extra_groups;                           // (r < rows, kb >= Kb)
  const int64_t total = column_pad + (padded_rows - rows) * padded_groups;  // + (r >= rows, any kb)
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    int64_t r, kb;
    if (i < column_pad) {
      r = i / extra_groups;
      kb = groups_per_row + i % extra_groups;
    } else {
      r = rows + (i - column_pad) / padded_groups;
      kb = (i - column_pad) % padded_groups;
    }
    scales[Layout::offset(r, kb, groups_per_row)] = 0;
  }
}
