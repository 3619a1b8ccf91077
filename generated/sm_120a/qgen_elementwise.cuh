// qgen_elementwise.cuh — how memory-bound kernels walk a tensor: work items, loads and stores, reductions.
//
// A work item is one thread's segment: E consecutive elements of one output row along K. A "unit" of W = E * L
// elements (a Hadamard chunk or an MS-EDEN 128-chunk larger than E) is spread over L adjacent lanes; items are
// numbered so that the L segments of a unit are consecutive, and a grid-stride loop advances whole warps, so unit
// partners always sit on lanes l ^ 1 .. l ^ (L-1) of the same warp. Launch shape never changes results: randomness
// and all arithmetic are keyed by logical positions (NUMERICS §3.2).
#pragma once
#include <cstdint>
#include <cuda_runtime.h>
#include "qgen_fp32.cuh"
#include "qgen_e2m1.cuh"
#include "qgen_e4m3.cuh"

struct qgen_segment {
  int64_t row;        // output row
  int64_t k0;         // first element along K
  int lane_in_unit;   // 0 .. L-1
};

// The last segment of a row may be partial when cols is not a multiple of E (only when L = 1: units of L > 1 lanes
// are Hadamard or 128-chunks, and cols is a multiple of them). Groups at or beyond cols are neither read nor written.
__host__ __device__ __forceinline__ int64_t qgen_ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Row-major order (inputs read along K): item = (row * units_per_row + unit) * L + lane; consecutive lanes read
// consecutive 16-byte pieces of a row.
template <int E, int L>
__device__ __forceinline__ qgen_segment qgen_segment_row_major(int64_t item, int64_t cols) {
  const int64_t segments_per_row = qgen_ceil_div(cols, E);
  return {item / segments_per_row, (item % segments_per_row) * E, static_cast<int>(item % L)};
}

// Column-major order (inputs stored [K, rows]): item = (unit * rows + row) * L + lane; lanes of a warp cover
// consecutive rows, i.e. consecutive addresses of the transposed input.
template <int E, int L>
__device__ __forceinline__ qgen_segment qgen_segment_column_major(int64_t item, int64_t rows) {
  const int64_t unit_row = item / L;
  const int lane = static_cast<int>(item % L);
  return {unit_row % rows, (unit_row / rows) * (E * L) + lane * E, lane};
}

// 16x16 blocks (NUMERICS §5.7, L = 1): item = ((row / 16) * segments_per_row + segment) * 16 + row % 16, so the 16
// rows of a block are lanes l ^ {1, 2, 4, 8}. Rows are padded to a multiple of 16; padding rows are inactive.
template <int E>
__device__ __forceinline__ qgen_segment qgen_segment_block16(int64_t item, int64_t cols) {
  const int64_t segments_per_row = qgen_ceil_div(cols, E);
  const int64_t block_segment = item / 16;
  return {(block_segment / segments_per_row) * 16 + item % 16, (block_segment % segments_per_row) * E, 0};
}

// Work items of each order (host side).
__host__ __device__ __forceinline__ int64_t qgen_items_row_major(int64_t rows, int64_t cols, int elems) {
  return rows * qgen_ceil_div(cols, elems);
}
__host__ __device__ __forceinline__ int64_t qgen_items_column_major(int64_t rows, int64_t cols, int elems, int lanes) {
  return qgen_ceil_div(cols, static_cast<int64_t>(elems) * lanes) * rows * lanes;
}
__host__ __device__ __forceinline__ int64_t qgen_items_block16(int64_t rows, int64_t cols, int elems) {
  return qgen_ceil_div(rows, 16) * 16 * qgen_ceil_div(cols, elems);
}

// ---------------------------------------------------------------------------------------------------------------
// Loads (inactive threads get zeros, which take part in shuffles and reductions harmlessly)

// bf16 [rows, cols] row-major: 16-byte loads (cols is a multiple of 16 and the base is 16-byte aligned).
template <int E>
__device__ __forceinline__ void qgen_load_bf16_row(const void* x, int64_t cols, qgen_segment s, bool active,
                                                   float (&v)[E]) {
  static_assert(E % 8 == 0, "8 bf16 per 16-byte load");
  const uint4* p = reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(x) + s.row * cols + s.k0);
#pragma unroll
  for (int c = 0; c < E / 8; ++c) {
    const uint4 w = (active && s.k0 + 8 * c < cols) ? __ldg(p + c) : make_uint4(0, 0, 0, 0);
    const uint32_t words[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      v[8 * c + 2 * i] = __uint_as_float(words[i] << 16);
      v[8 * c + 2 * i + 1] = __uint_as_float(words[i] & 0xFFFF0000u);
    }
  }
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
    v[4 * c] = w.x; v[4 * c + 1] = w.y; v[4 * c + 2] = w.z; v[4 * c + 3] = w.w;
  }
}

// bf16 stored transposed, [cols, rows] row-major: element (row, k) at x[k * rows + row]. Lanes of a warp hold
// consecutive rows, so each of the E loads is coalesced across the warp.
template <int E>
__device__ __forceinline__ void qgen_load_bf16_transposed(const void* x, int64_t rows, int64_t cols, qgen_segment s,
                                                          bool active, float (&v)[E]) {
  const uint16_t* p = static_cast<const uint16_t*>(x) + s.k0 * rows + s.row;
#pragma unroll
  for (int j = 0; j < E; ++j) v[j] = (active && s.k0 + j < cols) ? qgen_bf16_bits_to_f32(__ldg(p + j * rows)) : 0.0f;
}

// NUMERICS §5.9: an NVFP4 tensor A [cols, rows] (codes, scales in `Layout`, tensor scale t_in) quantized along rows,
// read as its transpose: element (row, k) = f32(f32(e2m1 * e4m3) * t_in) of A[k, row].
template <int E, class Layout>
__device__ __forceinline__ void qgen_load_nvfp4_transposed(const uint8_t* codes, const uint8_t* scales, float t_in,
                                                           int64_t rows, int64_t cols, qgen_segment s, bool active,
                                                           float (&v)[E]) {
  const int64_t a_groups_per_row = rows / 16;  // A's rows are quantized along `rows`
#pragma unroll
  for (int j = 0; j < E; ++j) {
    float value = 0.0f;
    if (active && s.k0 + j < cols) {
      const int64_t a_row = s.k0 + j;
      const uint32_t byte = __ldg(codes + a_row * (rows / 2) + s.row / 2);
      const uint32_t code = (s.row & 1) ? (byte >> 4) : (byte & 0xFu);
      const uint32_t scale = __ldg(scales + Layout::offset(a_row, s.row / 16, a_groups_per_row));
      value = qgen_mul(qgen_mul(qgen_e2m1_value(code), qgen_e4m3_value(scale)), t_in);
    }
    v[j] = value;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Stores

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
      reinterpret_cast<uint4*>(p)[c] = make_uint4(packed[2 * c].x, packed[2 * c].y, packed[2 * c + 1].x, packed[2 * c + 1].y);
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
      w[i] = qgen_f32_to_bf16_bits(v[8 * c + 2 * i]) | (static_cast<uint32_t>(qgen_f32_to_bf16_bits(v[8 * c + 2 * i + 1])) << 16);
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

// ---------------------------------------------------------------------------------------------------------------
// Reductions

// The maximum of a non-negative binary32 over the block, folded into a global word with atomicMax on its bit
// pattern (monotone for non-negative values). Every thread of the block must call this.
__device__ __forceinline__ void qgen_block_max_to_global(float value, unsigned int* global_word) {
  __shared__ float warp_max[32];
#pragma unroll
  for (int mask = 16; mask >= 1; mask /= 2) value = fmaxf(value, __shfl_xor_sync(0xffffffffu, value, mask));
  const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
  if (lane == 0) warp_max[warp] = value;
  __syncthreads();
  if (warp == 0) {
    const unsigned warps = (blockDim.x + 31u) >> 5;
    value = lane < warps ? warp_max[lane] : 0.0f;
#pragma unroll
    for (int mask = 16; mask >= 1; mask /= 2) value = fmaxf(value, __shfl_xor_sync(0xffffffffu, value, mask));
    if (lane == 0 && value > 0.0f) atomicMax(global_word, __float_as_uint(value));
  }
}

// The binary32 whose bit pattern a global max word holds.
__device__ __forceinline__ float qgen_load_max_word(const unsigned int* global_word) {
  return __uint_as_float(*reinterpret_cast<const volatile unsigned int*>(global_word));
}
