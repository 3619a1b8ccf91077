// qgen_load_nvfp4.cuh — a segment's values from an NVFP4 tensor read as its transpose (NUMERICS §5.9), directly or
// staged through shared memory. Inactive threads get zeros.
#pragma once
#include <cstdint>
#include <cuda_runtime.h>
#include "qgen_fp32.cuh"
#include "qgen_e2m1.cuh"
#include "qgen_e4m3.cuh"
#include "qgen_segment.cuh"

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

// Codes j and j + 4 (j in 0..3) of an 8-code word as binary32 patterns with the values e2m1(code) * 2^-126: sign to
// bit 31, the three magnitude bits to bits 24:22, so E2M1's exponent bits become the low exponent bits and its
// subnormal (code 1, 0.5) lands on binary32's subnormal 2^-127 (the placement qgen_fp4_bf16.cuh uses in bf16). Both
// codes are moved at once: a shift, a multiply that copies each code twice, a mask, then a shift or a mask per code.
__host__ __device__ __forceinline__ void qgen_e2m1_pair_subnormal(uint32_t word, int j, float& lo, float& hi) {
  const uint32_t codes = (word >> (4 * j)) & 0x000F000Fu;  // code j in bits 3:0, code j + 4 in bits 19:16
  const uint32_t pair = (codes * 0x1040u) & 0x81C081C0u;   // copies at << 6 and << 12: sign at 15, magnitude at 8:6
  lo = qgen_f32_from_bits(pair << 16);
  hi = qgen_f32_from_bits(pair & 0xFFFF0000u);
}

// The multipliers of qgen_nvfp4_pair_values: f32(s * 2^118) of an E4M3 scale (exact: at most 4 significant bits,
// below 448 * 2^118 < 2^127), and f32(t_in * 2^8) (exact when |t_in| <= 2^119, qgen_nvfp4_tile_usable).
constexpr float kQgenNvfp4ScaleFactor = 0x1p118f;
constexpr float kQgenNvfp4MaxTileTensorScale = 0x1p119f;
__host__ __device__ __forceinline__ float qgen_nvfp4_scale_multiplier(uint32_t scale) {
  return qgen_mul(qgen_e4m3_value(scale), kQgenNvfp4ScaleFactor);
}

// NUMERICS §5.9: f32(f32(e2m1 * s) * t_in) of codes j (lo) and j + 4 (hi) of an 8-code word, given
// s_mul = qgen_nvfp4_scale_multiplier(s) and t_mul = f32(t_in * 2^8) (exact). f32(pattern * s_mul) is the exact
// q s 2^-8 (at most 6 significant bits, in [2^-18, 10.5] or 0, NaN for a NaN scale), and f32(that * t_mul) rounds
// the real product q s t_in once, as the contract's form does (its q s is exact too).
__host__ __device__ __forceinline__ void qgen_nvfp4_pair_values(uint32_t word, int j, float s_mul, float t_mul,
                                                                float& lo, float& hi) {
  float q_lo, q_hi;
  qgen_e2m1_pair_subnormal(word, j, q_lo, q_hi);
  lo = qgen_mul(qgen_mul(q_lo, s_mul), t_mul);
  hi = qgen_mul(qgen_mul(q_hi, s_mul), t_mul);
}

// NUMERICS §5.9 input staged through shared memory (column-major order, the NVFP4 counterpart of
// qgen_transposed_tile). The block's THREADS items are kRows = THREADS / L consecutive output rows (A's columns) of
// one unit of kWidth = E * L output columns (A's rows). When the rectangle lies inside the tensor and its code lines
// are 16-byte aligned and |t_in| <= 2^119 (qgen_nvfp4_tile_usable), each thread loads 16-byte pieces of packed codes
// along A's rows (32 codes each) with the two scale bytes of those 32 codes, dequantizes them to the values
// qgen_load_nvfp4_transposed gives, two codes at a time (qgen_nvfp4_pair_values), and writes them transposed into
// shared memory as f32 [output row][output column]; every thread then
// reads its E consecutive columns with 16-byte shared loads. The 32 lanes of a warp take the same piece of 32
// consecutive lines of A, so their shared stores hit 32 distinct banks (the two or more 16-byte halves of a line's
// 32-byte sectors come from different warps and meet in L1). Each lane's E columns are followed by 4 padding floats,
// so the 8 threads of a quarter-warp read 8 distinct 16-byte bank groups (L * (E + 4) floats per row).
template <int E, int L, int THREADS>
struct qgen_nvfp4_transposed_tile {
  static constexpr int kRows = THREADS / L;
  static constexpr int kWidth = E * L;
  static constexpr int kLaneStride = E + 4;        // floats per lane segment, padded
  static constexpr int kStride = L * kLaneStride;  // floats per shared row
  static constexpr int kElems = kRows * kStride;
  static constexpr int kPiecesPerLine = kRows / 32;  // 16-byte code pieces per line of A
  static constexpr int kPiecesPerThread = kWidth * kPiecesPerLine / THREADS;
  using Element = float;
  static_assert(kRows % 32 == 0 && E % 32 == 0 && E % 4 == 0, "whole 16-byte code pieces; whole pieces per thread");
  static_assert(kWidth * kPiecesPerLine == kPiecesPerThread * THREADS, "pieces divide evenly among threads");
  // The output column (within the unit; A's row in the tile) of piece i of the thread with index `thread`.
  __device__ __forceinline__ static int column(int i, int thread) { return (thread + i * THREADS) % kWidth; }
};

// Block-uniform, as qgen_transposed_tile_usable: all items exist, rows in range and in one whole unit, every code
// line of the tile starts on a 16-byte boundary (rows % 32 == 0, row0 % 32 == 0, aligned codes), and t_in * 2^8 is
// exact (|t_in| <= 2^119; false for NaN).
template <int E, int L, int THREADS>
__device__ __forceinline__ bool qgen_nvfp4_tile_usable(const uint8_t* codes, float t_in, int64_t block_item,
                                                       int64_t items, int64_t rows, int64_t cols, qgen_segment block) {
  using Tile = qgen_nvfp4_transposed_tile<E, L, THREADS>;
  if (block_item + THREADS > items || rows % 32 != 0 || (reinterpret_cast<uintptr_t>(codes) & 15u) != 0 ||
      !(fabsf(t_in) <= kQgenNvfp4MaxTileTensorScale))
    return false;
  return block.row % 32 == 0 && block.row + Tile::kRows <= rows && block.k0 + Tile::kWidth <= cols;
}

// Every thread of the block calls this (it synchronises the block twice); item = block_item + thread, thread =
// threadIdx.x (qgen_for_each_segment passes it). The values of the thread's piece i come out sign-flipped where bit i
// of piece_signs is set: a piece's 32 codes are one column, so the flip is a negated scale multiplier (exact:
// f32(-a * b) = -f32(a * b) in every rounding here).
template <int E, int L, int THREADS, class Layout>
__device__ __forceinline__ void qgen_load_nvfp4_transposed_tile(const uint8_t* codes, const uint8_t* scales, float t_in,
                                                                int64_t rows, qgen_segment block, uint32_t piece_signs,
                                                                int thread, float* tile, float (&v)[E]) {
  using Tile = qgen_nvfp4_transposed_tile<E, L, THREADS>;
  const int64_t row0 = block.row, a_row0 = block.k0;  // the tile's first output row; A's first row in the tile
  const int64_t a_groups_per_row = rows / 16;         // A's rows are quantized along `rows`
  uint4 pieces[Tile::kPiecesPerThread];
  uint32_t piece_scales[Tile::kPiecesPerThread][2];
#pragma unroll
  for (int i = 0; i < Tile::kPiecesPerThread; ++i) {  // all loads in flight before any use
    const int u = thread + i * THREADS;
    const int line = Tile::column(i, thread), piece = u / Tile::kWidth;
    const int64_t a_row = a_row0 + line, a_col = row0 + 32 * piece;
    pieces[i] = __ldg(reinterpret_cast<const uint4*>(codes + a_row * (rows / 2) + a_col / 2));
#pragma unroll
    for (int h = 0; h < 2; ++h)
      piece_scales[i][h] = __ldg(scales + Layout::offset(a_row, a_col / 16 + h, a_groups_per_row));
  }
  const float t_mul = qgen_mul(t_in, 256.0f);  // exact: |t_in| <= 2^119 (qgen_nvfp4_tile_usable)
  __syncthreads();                             // the previous tile has been read by every thread
#pragma unroll
  for (int i = 0; i < Tile::kPiecesPerThread; ++i) {
    const int u = thread + i * THREADS;
    const int line = Tile::column(i, thread), piece = u / Tile::kWidth;
    const int column = (line / E) * Tile::kLaneStride + line % E;  // output column `line`, padded
    const uint32_t words[4] = {pieces[i].x, pieces[i].y, pieces[i].z, pieces[i].w};
    const uint32_t flip = ((piece_signs >> i) & 1u) << 31;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const float s_mul = qgen_f32_from_bits(qgen_f32_bits(qgen_nvfp4_scale_multiplier(piece_scales[i][h])) ^ flip);
#pragma unroll
      for (int e = 0; e < 16; ++e) {
        if ((e & 4) != 0) continue;  // codes e and e + 4 of a word come as one pair (low nibble = even column of A)
        float lo, hi;
        qgen_nvfp4_pair_values(words[2 * h + e / 8], e % 8, s_mul, t_mul, lo, hi);
        tile[(32 * piece + 16 * h + e) * Tile::kStride + column] = lo;
        tile[(32 * piece + 16 * h + e + 4) * Tile::kStride + column] = hi;
      }
    }
  }
  __syncthreads();
  const int row = thread / L, lane_in_unit = thread % L;
  const float4* mine = reinterpret_cast<const float4*>(tile + row * Tile::kStride + lane_in_unit * Tile::kLaneStride);
#pragma unroll
  for (int j = 0; j < E / 4; ++j) {
    const float4 w = mine[j];
    v[4 * j] = w.x;
    v[4 * j + 1] = w.y;
    v[4 * j + 2] = w.z;
    v[4 * j + 3] = w.w;
  }
}
