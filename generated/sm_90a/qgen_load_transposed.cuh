// qgen_load_transposed.cuh — a segment's values from a bf16 tensor stored transposed ([cols, rows]), directly or
// staged through shared memory. Inactive threads get zeros.
#pragma once
#include <cstdint>
#include <cuda_runtime.h>
#include "qgen_async.cuh"
#include "qgen_fp32.cuh"
#include "qgen_segment.cuh"

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
// by 2 bf16 to spread the banks; a thread loads two adjacent columns and stores them as bf16 pairs), and every thread
// then reads its E consecutive columns of its row as bf16 pairs.
// The values are the same as qgen_load_bf16_transposed's; only the memory traffic changes.
template <int E, int L, int THREADS>
struct qgen_transposed_tile {
  static constexpr int kRows = THREADS / L;
  static constexpr int kWidth = E * L;
  static constexpr int kStride = kWidth + 2;  // bf16 per shared row
  static constexpr int kElems = kRows * kStride;
  static constexpr int kPiecesPerLine = kRows / 8;  // 16-byte pieces (8 rows) per column
  static constexpr int kPiecesPerThread = E / 8;
  // Prefetched (qgen_fetch_bf16_transposed_tile): a raw buffer of the pieces as read from x, [piece i][thread], so
  // each thread reads back only its own pieces and a warp's 16-byte accesses cover consecutive banks.
  static constexpr int kRawVecs = kPiecesPerThread * THREADS;  // uint4 per raw buffer
  using Element = uint16_t;
  static_assert(kRows % 8 == 0 && E % 16 == 0, "16-byte pieces of 8 rows; pieces of two adjacent columns per thread");
  // The column (within the unit) of piece i of the thread with index `thread` in the block: pieces 2m and 2m + 1 are
  // the same rows of two adjacent columns, so their values are staged as bf16 pairs (32-bit stores).
  __device__ __forceinline__ static int column(int i, int thread) {
    const int pair = thread / kPiecesPerLine + (i / 2) * (THREADS / kPiecesPerLine);
    return 2 * pair + (i & 1);
  }
};

// Block-uniform: whether the block whose items start at block_item (a multiple of THREADS; `block` its segment: row
// row0, first column of its unit) can use the tile: all its items exist, its rows are in range and in one unit, the
// unit is whole, and 16-byte loads are aligned.
template <int E, int L, int THREADS>
__device__ __forceinline__ bool qgen_transposed_tile_usable(const void* x, int64_t block_item, int64_t items,
                                                            int64_t rows, int64_t cols, qgen_segment block) {
  using Tile = qgen_transposed_tile<E, L, THREADS>;
  if (block_item + THREADS > items || rows % 8 != 0 || (reinterpret_cast<uintptr_t>(x) & 15u) != 0) return false;
  return block.row + Tile::kRows <= rows && block.k0 + Tile::kWidth <= cols;
}

// The global address of the thread's piece i of the block's tile.
template <int E, int L, int THREADS>
__device__ __forceinline__ const uint4* qgen_transposed_tile_piece(const void* x, int64_t rows, qgen_segment block,
                                                                   int i, int thread) {
  using Tile = qgen_transposed_tile<E, L, THREADS>;
  const uint16_t* base = static_cast<const uint16_t*>(x) + block.k0 * rows + block.row;
  const int line = Tile::column(i, thread), piece = thread % Tile::kPiecesPerLine;
  return reinterpret_cast<const uint4*>(base + static_cast<int64_t>(line) * rows + piece * 8);
}

// Issues the copies of the thread's pieces of the block's tile into `raw` (one buffer of Tile::kRawVecs) with
// cp.async, an iteration ahead of qgen_load_bf16_transposed_tile<..., true>, which reads them back once the caller
// has waited for them (qgen_cp_async_wait).
template <int E, int L, int THREADS>
__device__ __forceinline__ void qgen_fetch_bf16_transposed_tile(const void* x, int64_t rows, qgen_segment block,
                                                                int thread, uint4* raw) {
#pragma unroll
  for (int i = 0; i < E / 8; ++i)
    qgen_cp_async_16(raw + i * THREADS + thread, qgen_transposed_tile_piece<E, L, THREADS>(x, rows, block, i, thread));
}

// Every thread of the block calls this (it synchronises the block twice); item = block_item + thread, thread =
// threadIdx.x (qgen_for_each_segment passes it). The values of the thread's piece i come out sign-flipped where bit i
// of piece_signs is set (a piece is 8 rows of one column: one mask flips all 8 before they are staged). kPrefetched:
// the pieces are read from `raw`, where qgen_fetch_bf16_transposed_tile copied them, instead of from x.
template <int E, int L, int THREADS, bool kPrefetched>
__device__ __forceinline__ void qgen_load_bf16_transposed_tile(const void* x, int64_t rows, qgen_segment block,
                                                               uint32_t piece_signs, int thread, const uint4* raw,
                                                               uint16_t* tile, float (&v)[E]) {
  using Tile = qgen_transposed_tile<E, L, THREADS>;
  constexpr int kPiecesPerLine = Tile::kPiecesPerLine;
  uint4 pieces[E / 8];
  if constexpr (!kPrefetched) {
#pragma unroll
    for (int i = 0; i < E / 8; ++i)  // E / 8 loads in flight per thread
      pieces[i] = __ldg(qgen_transposed_tile_piece<E, L, THREADS>(x, rows, block, i, thread));
  }
  __syncthreads();  // the previous tile has been read by every thread
  const int piece = thread % kPiecesPerLine;
#pragma unroll
  for (int i = 0; i < E / 8; i += 2) {
    const int line = Tile::column(i, thread);  // even; piece i + 1 holds column line + 1
    uint32_t words[2][4];
#pragma unroll
    for (int c = 0; c < 2; ++c) {
      const uint32_t mask = ((piece_signs >> (i + c)) & 1u) * 0x80008000u;  // the sign bits of both bf16 halves
      const uint4 p = kPrefetched ? raw[(i + c) * THREADS + thread] : pieces[i + c];
      words[c][0] = p.x ^ mask;
      words[c][1] = p.y ^ mask;
      words[c][2] = p.z ^ mask;
      words[c][3] = p.w ^ mask;
    }
#pragma unroll
    for (int e = 0; e < 8; ++e)  // row 8 piece + e: (column line, column line + 1) as one bf16 pair
      *reinterpret_cast<uint32_t*>(tile + (piece * 8 + e) * Tile::kStride + line) =
          __byte_perm(words[0][e / 2], words[1][e / 2], (e & 1) ? 0x7632u : 0x5410u);
  }
  __syncthreads();
  const int row = thread / L, lane_in_unit = thread % L;
  const uint32_t* mine = reinterpret_cast<const uint32_t*>(tile + row * Tile::kStride + lane_in_unit * E);
#pragma unroll
  for (int j = 0; j < E / 2; ++j) {
    const uint32_t pair = mine[j];
    v[2 * j] = __uint_as_float(pair << 16);
    v[2 * j + 1] = __uint_as_float(pair & 0xFFFF0000u);
  }
}
