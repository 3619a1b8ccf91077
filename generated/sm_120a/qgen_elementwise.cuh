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

// a / b and a % b for 0 <= a, 0 < b: 32-bit unsigned division when both fit (a 64-bit division is a long
// subroutine on the GPU, and a grid-stride loop divides once per item).
__host__ __device__ __forceinline__ void qgen_divmod(int64_t a, int64_t b, int64_t& quotient, int64_t& remainder) {
  if (((static_cast<uint64_t>(a) | static_cast<uint64_t>(b)) >> 32) == 0) {
    const uint32_t a32 = static_cast<uint32_t>(a), b32 = static_cast<uint32_t>(b);
    const uint32_t q32 = a32 / b32;
    quotient = q32;
    remainder = a32 - q32 * b32;
  } else {
    quotient = a / b;
    remainder = a - quotient * b;
  }
}

// Row-major order (inputs read along K): item = (row * units_per_row + unit) * L + lane; consecutive lanes read
// consecutive 16-byte pieces of a row.
template <int E, int L>
__device__ __forceinline__ qgen_segment qgen_segment_row_major(int64_t item, int64_t cols) {
  int64_t row, segment;
  qgen_divmod(item, qgen_ceil_div(cols, E), row, segment);
  return {row, segment * E, static_cast<int>(item % L)};
}

// Column-major order (inputs stored [K, rows]): item = (unit * rows + row) * L + lane; lanes of a warp cover
// consecutive rows, i.e. consecutive addresses of the transposed input.
template <int E, int L>
__device__ __forceinline__ qgen_segment qgen_segment_column_major(int64_t item, int64_t rows) {
  const int64_t unit_row = item / L;
  const int lane = static_cast<int>(item % L);
  int64_t unit, row;
  qgen_divmod(unit_row, rows, unit, row);
  return {row, unit * (E * L) + lane * E, lane};
}

// 16x16 blocks (NUMERICS §5.7, L = 1): item = ((row / 16) * segments_per_row + segment) * 16 + row % 16, so the 16
// rows of a block are lanes l ^ {1, 2, 4, 8}. Rows are padded to a multiple of 16; padding rows are inactive.
template <int E>
__device__ __forceinline__ qgen_segment qgen_segment_block16(int64_t item, int64_t cols) {
  int64_t block_row, segment;
  qgen_divmod(item / 16, qgen_ceil_div(cols, E), block_row, segment);
  return {block_row * 16 + item % 16, segment * E, 0};
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

// bf16 [rows, cols] row-major, in two steps so that a loop can issue the next segment's loads before working on
// this one: the raw 16-byte words (zeros when inactive or beyond cols), then their values (exact widening, §1.2).
template <int E>
__device__ __forceinline__ void qgen_fetch_bf16_row(const void* x, int64_t cols, qgen_segment s, bool active,
                                                    uint4 (&raw)[E / 8]) {
  static_assert(E % 8 == 0, "8 bf16 per 16-byte load");
  const uint4* p = reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(x) + s.row * cols + s.k0);
#pragma unroll
  for (int c = 0; c < E / 8; ++c) raw[c] = (active && s.k0 + 8 * c < cols) ? __ldg(p + c) : make_uint4(0, 0, 0, 0);
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

// bf16 stored transposed, staged through shared memory (column-major order, NUMERICS §5 inputs read as x^T).
// The THREADS items of a block are THREADS / L consecutive rows of one unit of W = E * L columns; when the whole
// rectangle lies inside the tensor (qgen_transposed_tile_usable), the block reads it with 16-byte loads along rows
// (W lines of THREADS / L rows each, coalesced), writes it transposed into shared memory ([row][column], rows padded
// by 2 bf16 to spread the banks), and every thread then reads its E consecutive columns of its row as bf16 pairs.
// The values are the same as qgen_load_bf16_transposed's; only the memory traffic changes.
template <int E, int L, int THREADS>
struct qgen_transposed_tile {
  static constexpr int kRows = THREADS / L;
  static constexpr int kWidth = E * L;
  static constexpr int kStride = kWidth + 2;  // bf16 per shared row
  static constexpr int kElems = kRows * kStride;
  using Element = uint16_t;
  static_assert(kRows % 8 == 0 && E % 8 == 0, "16-byte pieces of 8 rows; whole pieces per thread");
};

// Block-uniform: whether the block whose items start at block_item (a multiple of THREADS) can use the tile: all its
// items exist, its rows are in range and in one unit, the unit is whole, and 16-byte loads are aligned.
template <int E, int L, int THREADS>
__device__ __forceinline__ bool qgen_transposed_tile_usable(const void* x, int64_t block_item, int64_t items,
                                                            int64_t rows, int64_t cols) {
  using Tile = qgen_transposed_tile<E, L, THREADS>;
  if (block_item + THREADS > items || rows % 8 != 0 || (reinterpret_cast<uintptr_t>(x) & 15u) != 0) return false;
  int64_t unit, row0;
  qgen_divmod(block_item / L, rows, unit, row0);
  return row0 + Tile::kRows <= rows && (unit + 1) * Tile::kWidth <= cols;
}

// Every thread of the block calls this (it synchronises the block twice); item = block_item + threadIdx.x.
template <int E, int L, int THREADS>
__device__ __forceinline__ void qgen_load_bf16_transposed_tile(const void* x, int64_t rows, int64_t block_item,
                                                               uint16_t* tile, float (&v)[E]) {
  using Tile = qgen_transposed_tile<E, L, THREADS>;
  int64_t unit, row0;
  qgen_divmod(block_item / L, rows, unit, row0);
  const uint16_t* base = static_cast<const uint16_t*>(x) + unit * Tile::kWidth * rows + row0;
  constexpr int kPiecesPerLine = Tile::kRows / 8;
  uint4 pieces[E / 8];
#pragma unroll
  for (int i = 0; i < E / 8; ++i) {  // E / 8 loads in flight per thread
    const int u = static_cast<int>(threadIdx.x) + i * THREADS;
    const int line = u / kPiecesPerLine, piece = u % kPiecesPerLine;
    pieces[i] = __ldg(reinterpret_cast<const uint4*>(base + static_cast<int64_t>(line) * rows + piece * 8));
  }
  __syncthreads();  // the previous tile has been read by every thread
#pragma unroll
  for (int i = 0; i < E / 8; ++i) {
    const int u = static_cast<int>(threadIdx.x) + i * THREADS;
    const int line = u / kPiecesPerLine, piece = u % kPiecesPerLine;
    const uint32_t words[4] = {pieces[i].x, pieces[i].y, pieces[i].z, pieces[i].w};
#pragma unroll
    for (int e = 0; e < 8; ++e)
      tile[(piece * 8 + e) * Tile::kStride + line] = static_cast<uint16_t>(words[e / 2] >> (16 * (e & 1)));
  }
  __syncthreads();
  const int row = static_cast<int>(threadIdx.x) / L, lane_in_unit = static_cast<int>(threadIdx.x) % L;
  const uint32_t* mine = reinterpret_cast<const uint32_t*>(tile + row * Tile::kStride + lane_in_unit * E);
#pragma unroll
  for (int j = 0; j < E / 2; ++j) {
    const uint32_t pair = mine[j];
    v[2 * j] = __uint_as_float(pair << 16);
    v[2 * j + 1] = __uint_as_float(pair & 0xFFFF0000u);
  }
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

// NUMERICS §5.9 input staged through shared memory (column-major order, the NVFP4 counterpart of
// qgen_transposed_tile). The block's THREADS items are kRows = THREADS / L consecutive output rows (A's columns) of
// one unit of kWidth = E * L output columns (A's rows). When the rectangle lies inside the tensor and its code lines
// are 16-byte aligned (qgen_nvfp4_tile_usable), each thread loads 16-byte pieces of packed codes along A's rows
// (32 codes each) with the two scale bytes of those 32 codes, dequantizes them exactly as qgen_load_nvfp4_transposed
// does, and writes the values transposed into shared memory as f32 [output row][output column]; every thread then
// reads its E consecutive columns with 16-byte shared loads. The 32 lanes of a warp take the same piece of 32
// consecutive lines of A, so their shared stores hit 32 distinct banks (the two or more 16-byte halves of a line's
// 32-byte sectors come from different warps and meet in L1). Each lane's E columns are followed by 4 padding floats,
// so the 8 threads of a quarter-warp read 8 distinct 16-byte bank groups (L * (E + 4) floats per row).
template <int E, int L, int THREADS>
struct qgen_nvfp4_transposed_tile {
  static constexpr int kRows = THREADS / L;
  static constexpr int kWidth = E * L;
  static constexpr int kLaneStride = E + 4;          // floats per lane segment, padded
  static constexpr int kStride = L * kLaneStride;    // floats per shared row
  static constexpr int kElems = kRows * kStride;
  static constexpr int kPiecesPerLine = kRows / 32;  // 16-byte code pieces per line of A
  static constexpr int kPiecesPerThread = kWidth * kPiecesPerLine / THREADS;
  using Element = float;
  static_assert(kRows % 32 == 0 && E % 32 == 0 && E % 4 == 0, "whole 16-byte code pieces; whole pieces per thread");
  static_assert(kWidth * kPiecesPerLine == kPiecesPerThread * THREADS, "pieces divide evenly among threads");
};

// Block-uniform, as qgen_transposed_tile_usable: all items exist, rows in range and in one whole unit, and every code
// line of the tile starts on a 16-byte boundary (rows % 32 == 0, row0 % 32 == 0, aligned codes).
template <int E, int L, int THREADS>
__device__ __forceinline__ bool qgen_nvfp4_tile_usable(const uint8_t* codes, int64_t block_item, int64_t items,
                                                       int64_t rows, int64_t cols) {
  using Tile = qgen_nvfp4_transposed_tile<E, L, THREADS>;
  if (block_item + THREADS > items || rows % 32 != 0 || (reinterpret_cast<uintptr_t>(codes) & 15u) != 0) return false;
  int64_t unit, row0;
  qgen_divmod(block_item / L, rows, unit, row0);
  return row0 % 32 == 0 && row0 + Tile::kRows <= rows && (unit + 1) * Tile::kWidth <= cols;
}

// Every thread of the block calls this (it synchronises the block twice); item = block_item + threadIdx.x.
template <int E, int L, int THREADS, class Layout>
__device__ __forceinline__ void qgen_load_nvfp4_transposed_tile(const uint8_t* codes, const uint8_t* scales,
                                                                float t_in, int64_t rows, int64_t block_item,
                                                                float* tile, float (&v)[E]) {
  using Tile = qgen_nvfp4_transposed_tile<E, L, THREADS>;
  int64_t unit, row0;
  qgen_divmod(block_item / L, rows, unit, row0);
  const int64_t a_row0 = unit * Tile::kWidth;   // A's first row in the tile
  const int64_t a_groups_per_row = rows / 16;   // A's rows are quantized along `rows`
  uint4 pieces[Tile::kPiecesPerThread];
  uint32_t piece_scales[Tile::kPiecesPerThread][2];
#pragma unroll
  for (int i = 0; i < Tile::kPiecesPerThread; ++i) {  // all loads in flight before any use
    const int u = static_cast<int>(threadIdx.x) + i * THREADS;
    const int line = u % Tile::kWidth, piece = u / Tile::kWidth;
    const int64_t a_row = a_row0 + line, a_col = row0 + 32 * piece;
    pieces[i] = __ldg(reinterpret_cast<const uint4*>(codes + a_row * (rows / 2) + a_col / 2));
#pragma unroll
    for (int h = 0; h < 2; ++h)
      piece_scales[i][h] = __ldg(scales + Layout::offset(a_row, a_col / 16 + h, a_groups_per_row));
  }
  __syncthreads();  // the previous tile has been read by every thread
#pragma unroll
  for (int i = 0; i < Tile::kPiecesPerThread; ++i) {
    const int u = static_cast<int>(threadIdx.x) + i * THREADS;
    const int line = u % Tile::kWidth, piece = u / Tile::kWidth;
    const int column = (line / E) * Tile::kLaneStride + line % E;  // output column `line`, padded
    const uint32_t words[4] = {pieces[i].x, pieces[i].y, pieces[i].z, pieces[i].w};
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const float s = qgen_e4m3_value(piece_scales[i][h]);
#pragma unroll
      for (int e = 0; e < 16; ++e) {
        const uint32_t code = (words[2 * h + e / 8] >> (4 * (e % 8))) & 0xFu;  // low nibble = even column of A
        tile[(32 * piece + 16 * h + e) * Tile::kStride + column] = qgen_mul(qgen_mul(qgen_e2m1_value(code), s), t_in);
      }
    }
  }
  __syncthreads();
  const int row = static_cast<int>(threadIdx.x) / L, lane_in_unit = static_cast<int>(threadIdx.x) % L;
  const float4* mine = reinterpret_cast<const float4*>(tile + row * Tile::kStride + lane_in_unit * Tile::kLaneStride);
#pragma unroll
  for (int j = 0; j < E / 4; ++j) {
    const float4 w = mine[j];
    v[4 * j] = w.x; v[4 * j + 1] = w.y; v[4 * j + 2] = w.z; v[4 * j + 3] = w.w;
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
