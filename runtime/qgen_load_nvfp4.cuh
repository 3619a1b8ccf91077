// qgen_load_nvfp4.cuh — a segment's values from an NVFP4 tensor read as its transpose (NUMERICS §5.9), directly or
// staged through shared memory. Inactive threads get zeros.
#pragma once
#include <cstdint>
#include <type_traits>
#include <cuda_runtime.h>
#include "qgen_async.cuh"
#include "qgen_fp32.cuh"
#include "qgen_e2m1.cuh"
#include "qgen_e4m3.cuh"
#include "qgen_layout.cuh"
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

// Codes j and j + 4 (j in 0..3) of an 8-code word as a bf16x2 of exact patterns with the values e2m1(code) * 2^-126
// (NUMERICS §6.2's placement, low half: code j): sign to bit 15, the three magnitude bits to bits 8:6, so E2M1's
// exponent bits become bf16's low exponent bits and its subnormal (code 1, 0.5) lands on bf16's subnormal 2^-127.
// word8 = word >> 8, shared by the four pairs of a word: j = 0, 2 mask the two nibbles in place and copy them to << 6
// and << 12 (x 0x1040); j = 1, 3 mask them one nibble up and copy them to << 2 and << 8 (x 0x104), the same bits.
__host__ __device__ __forceinline__ uint32_t qgen_nvfp4_bf16_pattern_pair(uint32_t word, uint32_t word8, int j) {
  const uint32_t w = j < 2 ? word : word8;
  const uint32_t copies = j % 2 == 0 ? (w & 0x000F000Fu) * 0x1040u : (w & 0x00F000F0u) * 0x104u;
  return copies & 0x81C081C0u;
}

// The bf16x2 multipliers (S, S) of the two E4M3 scale bytes of `scale_pair` (byte h -> mult[h]), S = s * 2^118:
// exact (E4M3 -> f16 -> f32 round nothing, at most 4 significant bits below 448 * 2^118 < 2^127; NaN stays NaN).
// One cvt.rn.f16x2.e4m3x2 widens both bytes (byte h into half h, as the producer-decode GEMM's multipliers).
constexpr float kQgenNvfp4ScaleFactor = 0x1p118f;
constexpr float kQgenNvfp4MaxTileTensorScale = 0x1p119f;
__host__ __device__ __forceinline__ void qgen_nvfp4_bf16_multipliers(uint32_t scale_pair, uint32_t (&mult)[2]) {
#if defined(__CUDA_ARCH__)
  uint32_t h2;
  asm("cvt.rn.f16x2.e4m3x2 %0, %1;" : "=r"(h2) : "h"(static_cast<unsigned short>(scale_pair & 0xFFFFu)));
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    float s;
    asm("cvt.f32.f16 %0, %1;" : "=f"(s) : "h"(static_cast<unsigned short>(h2 >> (16 * h))));
    const float scaled = qgen_mul(s, kQgenNvfp4ScaleFactor);
    asm("cvt.rn.bf16x2.f32 %0, %1, %1;" : "=r"(mult[h]) : "f"(scaled));
  }
#else
  for (int h = 0; h < 2; ++h) {
    const uint32_t bits = qgen_f32_bits(qgen_mul(qgen_e4m3_value((scale_pair >> (8 * h)) & 0xFFu),
                                                 kQgenNvfp4ScaleFactor)) >>
                          16;  // exact: the low 16 bits are 0
    mult[h] = bits | (bits << 16);
  }
#endif
}

// Both halves of a pattern pair times a multiplier, mul.rn.bf16x2: e2m1 * s * 2^-8 exactly (at most 6 significant
// bits, in [2^-18, 10.5] or 0: a normal bf16; zero signs as IEEE; NaN for a NaN scale). The host spelling multiplies
// in binary32 (exact) and rounds to bf16 by RNE.
__host__ __device__ __forceinline__ uint32_t qgen_nvfp4_bf16_pair(uint32_t pattern, uint32_t mult) {
#if defined(__CUDA_ARCH__)
  uint32_t out;
  asm("mul.rn.bf16x2 %0, %1, %2;" : "=r"(out) : "r"(pattern), "r"(mult));
  return out;
#else
  uint32_t out = 0;
  for (int h = 0; h < 2; ++h) {
    const float p =
        qgen_bf16_bits_to_f32((pattern >> (16 * h)) & 0xFFFFu) * qgen_bf16_bits_to_f32((mult >> (16 * h)) & 0xFFFFu);
    const uint32_t x = qgen_f32_bits(p);
    const uint32_t r = p != p ? 0x7FC0u : (x + 0x7FFFu + ((x >> 16) & 1u)) >> 16;
    out |= (r & 0xFFFFu) << (16 * h);
  }
  return out;
#endif
}

// Half `half` of a bf16x2 word widened to binary32 (exact), as one byte permute with a per-thread selector.
__host__ __device__ __forceinline__ uint32_t qgen_nvfp4_bf16_half_selector(uint32_t half) {
  return half ? 0x3244u : 0x1044u;
}
__host__ __device__ __forceinline__ float qgen_nvfp4_bf16_half(uint32_t pair, uint32_t selector) {
#if defined(__CUDA_ARCH__)
  uint32_t bits;  // prmt.b32 (default mode; the selectors' nibbles are below 8, so no sign replication)
  asm("prmt.b32 %0, %1, 0, %2;" : "=r"(bits) : "r"(pair), "r"(selector));
  return qgen_f32_from_bits(bits);
#else
  return qgen_f32_from_bits(selector == 0x3244u ? pair & 0xFFFF0000u : pair << 16);
#endif
}

// NUMERICS §5.9: f32(f32(e2m1 * s) * t_in) from a decoded bf16 half b = e2m1 * s * 2^-8 (exact) and
// t_mul = f32(t_in * 2^8) (exact when |t_in| <= 2^119, qgen_nvfp4_tile_usable): f32(b * t_mul) rounds the real
// product q s t_in once, as the contract's form does (its q s is exact too).
__host__ __device__ __forceinline__ float qgen_nvfp4_tile_value(uint32_t pair, uint32_t selector, float t_mul) {
  return qgen_mul(qgen_nvfp4_bf16_half(pair, selector), t_mul);
}

// NUMERICS §5.9 input staged through shared memory (column-major order, the NVFP4 counterpart of
// qgen_transposed_tile). The block's THREADS items are kRows = THREADS / L consecutive output rows (A's columns) of
// one unit of kWidth = E * L output columns (A's rows). When the rectangle lies inside the tensor, its code lines are
// 16-byte aligned, the scales readable as aligned words (qgen_nvfp4_tile_scale_words) and |t_in| <= 2^119
// (qgen_nvfp4_tile_usable), each thread loads 16-byte pieces of packed codes along A's rows (32 codes each) with the
// two scale bytes of those 32 codes (one 16-bit load, or the half of the aligned 32-bit word the prefetch copies: the
// groups 2m, 2m + 1 of a row are adjacent bytes in both layouts, §7), decodes them two codes at a time into exact
// bf16x2 values e2m1 * s * 2^-8 (one multiply per pair) and stores each pair word once, transposed: pair j of word w
// of piece p holds output rows 32 p + 8 w + j (low half) and 32 p + 8 w + j + 4 (high half) of one output column,
// so slot row 16 p + 4 w + j of the tile holds those two rows as the halves of one 32-bit word per column. Every
// thread then reads its E consecutive columns of its row's slot row with 16-byte shared loads, takes its half and
// multiplies by t_in * 2^8 (qgen_nvfp4_tile_value). The 32 lanes of a warp take the same piece of 32 consecutive lines
// of A, so their 32-bit shared stores hit 32 distinct banks. Each lane's E columns are followed by 4 padding words, so
// the 8 threads of a quarter-warp (two rows, adjacent slot rows, x L = 4 lanes) read 8 distinct 16-byte bank groups.
template <int E, int L, int THREADS>
struct qgen_nvfp4_transposed_tile {
  static constexpr int kRows = THREADS / L;
  static constexpr int kWidth = E * L;
  static constexpr int kLaneStride = E + 4;          // words per lane segment, padded
  static constexpr int kStride = L * kLaneStride;    // words per slot row
  static constexpr int kSlotRows = kRows / 2;        // two output rows per slot row (bf16 halves)
  static constexpr int kPiecesPerLine = kRows / 32;  // 16-byte code pieces per line of A
  static constexpr int kPiecesPerThread = kWidth * kPiecesPerLine / THREADS;
  // Per-thread constants (qgen_nvfp4_tile_thread_state) where a thread has one piece, one piece per line, and a unit
  // spans whole 128-line blocks of the 128x4 layout: 4 words per thread behind the slots.
  static constexpr bool kThreadState = kPiecesPerThread == 1 && kPiecesPerLine == 1 && kWidth % 128 == 0;
  static constexpr int kStateOffset = kSlotRows * kStride;
  static constexpr int kElems = kStateOffset + (kThreadState ? 4 * THREADS : 0);
  // Prefetched (qgen_fetch_nvfp4_transposed_tile): a raw buffer of the pieces as read, [piece i][thread] code pieces
  // (16 bytes) then [piece i][thread] scale words (the aligned 32-bit word holding the piece's two scale bytes), so
  // each thread reads back only its own and a warp's accesses cover consecutive banks.
  static constexpr int kRawVecs = kPiecesPerThread * THREADS + kPiecesPerThread * THREADS / 4;  // uint4 per buffer
  using Element = uint32_t;
  static_assert(kRows % 32 == 0 && E % 32 == 0 && E % 4 == 0, "whole 16-byte code pieces; whole pieces per thread");
  static_assert(kWidth * kPiecesPerLine == kPiecesPerThread * THREADS, "pieces divide evenly among threads");
  // The output column (within the unit; A's row in the tile) of piece i of the thread with index `thread`.
  __host__ __device__ __forceinline__ static int column(int i, int thread) { return (thread + i * THREADS) % kWidth; }
  // The slot row and half of output row r (0 .. kRows - 1) of the tile.
  __host__ __device__ __forceinline__ static uint32_t slot(uint32_t r) {
    return 16 * (r / 32) + 4 * ((r % 32) / 8) + r % 4;
  }
  __host__ __device__ __forceinline__ static uint32_t half(uint32_t r) { return (r >> 2) & 1u; }
};

// Layout::offset(a_row, kb, groups_per_row) (NUMERICS §7) in 32-bit unsigned arithmetic: every operand is >= 0 (the
// divisions by powers of two are shifts, without the sign fix-ups of the signed form) and the staged tile is used only
// for tensors of at most 2^32 elements (qgen_nvfp4_tile_usable), whose scale offsets are below 2^32.
template <class Layout>
__host__ __device__ __forceinline__ uint32_t qgen_nvfp4_tile_scale_offset(uint32_t a_row, uint32_t kb,
                                                                          uint32_t groups_per_row) {
  if constexpr (std::is_same_v<Layout, qgen_layout_128x4>)
    return ((a_row / 128u) * ((groups_per_row + 3u) / 4u) + kb / 4u) * 512u + (a_row % 32u) * 16u +
           ((a_row % 128u) / 32u) * 4u + kb % 4u;
  else
    return a_row * groups_per_row + kb;
}

// Per-thread constants of the staged tile (the same in every iteration), made once before the loop and kept in the
// tile's shared memory behind the slots (registers are what the loop lacks, and the thread index is re-read in every
// iteration): one 16-byte shared load per iteration instead of the index math below. Used where a thread has one
// piece, a line one piece and a unit spans whole 128-line blocks (Tile::kThreadState: the catalog's MS-EDEN requant
// tilings); other tilings compute the offsets in place. For line = thread % kWidth and piece = thread / kWidth:
// x = line * rows / 2 + 16 piece (code bytes past the tile's first line and column), y = the scale bytes past the
// tile's first ones (row-major: line * Kb + 2 piece; 128x4: (line / 128) * ceil(Kb / 4) * 512 + (line % 32) * 16 +
// ((line % 128) / 32) * 4), z = the word offset of the thread's slot-row-0 store | the word offset of its reads << 16,
// w = its half selector. The tile's first line a_row0 is a multiple of kWidth, its first column row0 of kRows.
template <int E, int L, int THREADS, class Layout>
struct qgen_nvfp4_tile_thread_state {
  using Tile = qgen_nvfp4_transposed_tile<E, L, THREADS>;
  static constexpr bool k128x4 = std::is_same_v<Layout, qgen_layout_128x4>;
  static constexpr bool kUsed = Tile::kThreadState;
  __host__ __device__ __forceinline__ static uint4 make(uint32_t thread, uint32_t rows) {
    const uint32_t line = thread % Tile::kWidth, piece = thread / Tile::kWidth;
    const uint32_t kb = rows / 16u;
    const uint32_t scale =
        k128x4 ? (line / 128u) * ((kb + 3u) / 4u) * 512u + (line % 32u) * 16u + ((line % 128u) / 32u) * 4u
               : line * kb + 2u * piece;
    const uint32_t row = thread / L, lane_in_unit = thread % L;
    const uint32_t store = 16u * piece * Tile::kStride + (line / E) * Tile::kLaneStride + line % E;
    const uint32_t read = Tile::slot(row) * Tile::kStride + lane_in_unit * Tile::kLaneStride;
    return make_uint4(line * (rows / 2u) + 16u * piece, scale, store | (read << 16),
                      qgen_nvfp4_bf16_half_selector(Tile::half(row)));
  }
  // The tile's first code and scale byte offsets (block-uniform) plus the thread's.
  __host__ __device__ __forceinline__ static uint32_t code_offset(uint4 state, uint32_t a_row0, uint32_t row0,
                                                                  uint32_t rows) {
    return a_row0 * (rows / 2u) + row0 / 2u + state.x;
  }
  __host__ __device__ __forceinline__ static uint32_t scale_offset(uint4 state, uint32_t a_row0, uint32_t row0,
                                                                   uint32_t rows) {
    const uint32_t kb = rows / 16u, kb0 = row0 / 16u;
    if constexpr (k128x4)
      return ((a_row0 / 128u) * ((kb + 3u) / 4u) + kb0 / 4u) * 512u + kb0 % 4u + state.y;
    else
      return a_row0 * kb + kb0 + state.y;
  }
};

// The scale words of the staged tile (the loads and the prefetch's 4-byte copies): the scales 4-byte aligned and, in
// the row-major layout, Kb = rows / 16 a multiple of 4 (rows % 64 == 0). Then the aligned word holding a piece's two
// scale bytes (groups 2m, 2m + 1 of A's row, m = a_col / 32) is groups 4 (m / 2) .. + 3 of that row (128x4: of its
// 4-group block, padding included), all inside the tensor, and the pair is its half m % 2 in both layouts.
template <class Layout>
__host__ __device__ __forceinline__ bool qgen_nvfp4_tile_scale_words(const uint8_t* scales, int64_t rows) {
  return (reinterpret_cast<uintptr_t>(scales) & 3u) == 0 &&
         (std::is_same_v<Layout, qgen_layout_128x4> || rows % 64 == 0);
}

// The scales as the staged tile reads them: 2-byte aligned (the direct loads' 16-bit scale pairs), or, for the
// prefetch (kScaleWords), readable as aligned words (qgen_nvfp4_tile_scale_words).
template <class Layout, bool kScaleWords>
__host__ __device__ __forceinline__ bool qgen_nvfp4_tile_scales_readable(const uint8_t* scales, int64_t rows) {
  if constexpr (kScaleWords) return qgen_nvfp4_tile_scale_words<Layout>(scales, rows);
  return (reinterpret_cast<uintptr_t>(scales) & 1u) == 0;
}

// Block-uniform, as qgen_transposed_tile_usable: all items exist, rows in range and in one whole unit, every code
// line of the tile starts on a 16-byte boundary (rows % 32 == 0, row0 % 32 == 0, aligned codes), the scales are
// readable (qgen_nvfp4_tile_scales_readable), the tensor has at most 2^32 elements (32-bit offsets: codes below 2^31
// bytes, scales below 2^32) and t_in * 2^8 is exact (|t_in| <= 2^119; false for NaN).
template <int E, int L, int THREADS, class Layout, bool kScaleWords>
__device__ __forceinline__ bool qgen_nvfp4_tile_usable(const uint8_t* codes, const uint8_t* scales, float t_in,
                                                       int64_t block_item, int64_t items, int64_t rows, int64_t cols,
                                                       qgen_segment block) {
  using Tile = qgen_nvfp4_transposed_tile<E, L, THREADS>;
  if (block_item + THREADS > items || rows % 32 != 0 ||
      static_cast<uint64_t>(rows) * static_cast<uint64_t>(cols) > (uint64_t{1} << 32) ||
      (reinterpret_cast<uintptr_t>(codes) & 15u) != 0 ||
      !qgen_nvfp4_tile_scales_readable<Layout, kScaleWords>(scales, rows) ||
      !(fabsf(t_in) <= kQgenNvfp4MaxTileTensorScale))
    return false;
  return block.row % 32 == 0 && block.row + Tile::kRows <= rows && block.k0 + Tile::kWidth <= cols;
}

// The loop-invariant part of qgen_nvfp4_tile_usable, for the column-major order: with rows a multiple of kRows (so of
// 32) and cols of kWidth, a block whose THREADS items all exist starts at an item that is a multiple of THREADS, so its
// first row (block_item / L mod rows) is a multiple of kRows with its kRows rows inside the tensor, and its unit
// ((block_item / L) div rows < cols / kWidth) lies inside cols: qgen_nvfp4_tile_usable is then true exactly when
// block_item + THREADS <= items.
template <int E, int L, int THREADS, class Layout, bool kScaleWords>
__device__ __forceinline__ bool qgen_nvfp4_tile_always_usable(const uint8_t* codes, const uint8_t* scales, float t_in,
                                                              int64_t rows, int64_t cols) {
  using Tile = qgen_nvfp4_transposed_tile<E, L, THREADS>;
  return rows % Tile::kRows == 0 && rows % 32 == 0 && cols % Tile::kWidth == 0 &&
         static_cast<uint64_t>(rows) * static_cast<uint64_t>(cols) <= (uint64_t{1} << 32) &&
         (reinterpret_cast<uintptr_t>(codes) & 15u) == 0 &&
         qgen_nvfp4_tile_scales_readable<Layout, kScaleWords>(scales, rows) &&
         fabsf(t_in) <= kQgenNvfp4MaxTileTensorScale;
}

// Issues the copies of the thread's code pieces and scale words of the block's tile into `raw` (one buffer of
// Tile::kRawVecs) with cp.async, an iteration ahead of qgen_load_nvfp4_transposed_tile<..., true>, which reads them
// back once the caller has waited for them (qgen_cp_async_wait). The same bytes as that loader's direct form, the
// scales as the aligned words holding them (qgen_nvfp4_tile_scale_words: cp.async copies 4, 8 or 16 aligned bytes).
template <int E, int L, int THREADS, class Layout>
__device__ __forceinline__ void qgen_fetch_nvfp4_transposed_tile(const uint8_t* codes, const uint8_t* scales,
                                                                 int64_t rows, qgen_segment block, int thread,
                                                                 const uint32_t* tile, uint4* raw) {
  using Tile = qgen_nvfp4_transposed_tile<E, L, THREADS>;
  using State = qgen_nvfp4_tile_thread_state<E, L, THREADS, Layout>;
  const uint32_t row0 = static_cast<uint32_t>(block.row), a_row0 = static_cast<uint32_t>(block.k0);
  const uint32_t line_bytes = static_cast<uint32_t>(rows) / 2u, a_groups_per_row = static_cast<uint32_t>(rows) / 16u;
  uint32_t* const raw_scales = reinterpret_cast<uint32_t*>(raw + Tile::kPiecesPerThread * THREADS);
  if constexpr (State::kUsed) {
    const uint4 state = reinterpret_cast<const uint4*>(tile + Tile::kStateOffset)[thread];
    qgen_cp_async_16(raw + thread, codes + State::code_offset(state, a_row0, row0, line_bytes * 2u));
    qgen_cp_async_4(raw_scales + thread, scales + (State::scale_offset(state, a_row0, row0, line_bytes * 2u) & ~3u));
  } else {
#pragma unroll
    for (int i = 0; i < Tile::kPiecesPerThread; ++i) {
      const uint32_t u = static_cast<uint32_t>(thread) + i * THREADS;
      const uint32_t line = u % Tile::kWidth, piece = u / Tile::kWidth;
      const uint32_t a_row = a_row0 + line, a_col = row0 + 32u * piece;
      qgen_cp_async_16(raw + i * THREADS + thread, codes + a_row * line_bytes + a_col / 2u);
      qgen_cp_async_4(raw_scales + i * THREADS + thread,
                      scales + (qgen_nvfp4_tile_scale_offset<Layout>(a_row, a_col / 16u, a_groups_per_row) & ~3u));
    }
  }
}

// Every thread of the block calls this (it synchronises the block twice); item = block_item + thread, thread =
// threadIdx.x (qgen_for_each_segment passes it). The values of the thread's piece i come out sign-flipped where bit i
// of piece_signs is set: a piece's 32 codes are one column, so the flip is a negated scale multiplier (exact:
// bf16(-a * b) = -bf16(a * b), and f32(-b * t) = -f32(b * t)). kPrefetched: the code pieces and scale words are read
// from `raw`, where qgen_fetch_nvfp4_transposed_tile copied them, instead of from global memory.
template <int E, int L, int THREADS, class Layout, bool kPrefetched>
__device__ __forceinline__ void qgen_load_nvfp4_transposed_tile(const uint8_t* codes, const uint8_t* scales, float t_in,
                                                                int64_t rows, qgen_segment block, uint32_t piece_signs,
                                                                int thread, const uint4* raw, uint32_t* tile,
                                                                float (&v)[E]) {
  using Tile = qgen_nvfp4_transposed_tile<E, L, THREADS>;
  // 32-bit unsigned index math (qgen_nvfp4_tile_usable: at most 2^32 elements): the tile's first output row, A's first
  // row in the tile, A's row bytes
  const uint32_t row0 = static_cast<uint32_t>(block.row), a_row0 = static_cast<uint32_t>(block.k0);
  const uint32_t line_bytes = static_cast<uint32_t>(rows) / 2u, a_groups_per_row = static_cast<uint32_t>(rows) / 16u;
  using State = qgen_nvfp4_tile_thread_state<E, L, THREADS, Layout>;
  const uint32_t* const raw_scales = reinterpret_cast<const uint32_t*>(raw + Tile::kPiecesPerThread * THREADS);
  uint4 pieces[Tile::kPiecesPerThread];
  uint32_t piece_scales[Tile::kPiecesPerThread];
  if constexpr (State::kUsed) {
    const uint4 state = reinterpret_cast<const uint4*>(tile + Tile::kStateOffset)[thread];
    if constexpr (!kPrefetched) {
      pieces[0] =
          __ldg(reinterpret_cast<const uint4*>(codes + State::code_offset(state, a_row0, row0, line_bytes * 2u)));
      piece_scales[0] = __ldg(
          reinterpret_cast<const unsigned short*>(scales + State::scale_offset(state, a_row0, row0, line_bytes * 2u)));
    }
    const float t_mul = qgen_mul(t_in, 256.0f);  // exact: |t_in| <= 2^119 (qgen_nvfp4_tile_usable)
    __syncthreads();                             // the previous tile has been read by every thread
    if constexpr (kPrefetched) {
      pieces[0] = raw[thread];
      piece_scales[0] = raw_scales[thread] >> (16u * ((row0 / 32u) & 1u));  // the pair's half of the scale word
    }
    uint32_t* const out = tile + (state.z & 0xFFFFu);
    const uint32_t words[4] = {pieces[0].x, pieces[0].y, pieces[0].z, pieces[0].w};
    uint32_t mult[2];
    qgen_nvfp4_bf16_multipliers(piece_scales[0], mult);
    const uint32_t flip = (piece_signs & 1u) * 0x80008000u;
#pragma unroll
    for (int w = 0; w < 4; ++w) {
      const uint32_t word8 = words[w] >> 8;
#pragma unroll
      for (int j = 0; j < 4; ++j)
        out[(4 * w + j) * Tile::kStride] =
            qgen_nvfp4_bf16_pair(qgen_nvfp4_bf16_pattern_pair(words[w], word8, j), mult[w / 2] ^ flip);
    }
    __syncthreads();
    const uint4* mine = reinterpret_cast<const uint4*>(tile + (state.z >> 16));
#pragma unroll
    for (int j = 0; j < E / 4; ++j) {
      const uint4 w = mine[j];
      v[4 * j] = qgen_nvfp4_tile_value(w.x, state.w, t_mul);
      v[4 * j + 1] = qgen_nvfp4_tile_value(w.y, state.w, t_mul);
      v[4 * j + 2] = qgen_nvfp4_tile_value(w.z, state.w, t_mul);
      v[4 * j + 3] = qgen_nvfp4_tile_value(w.w, state.w, t_mul);
    }
  } else {
    if constexpr (!kPrefetched) {
#pragma unroll
      for (int i = 0; i < Tile::kPiecesPerThread; ++i) {                   // all loads in flight before any use
        const uint32_t u = static_cast<uint32_t>(thread) + i * THREADS;    // unsigned: shifts, no sign fix-ups
        const uint32_t line = u % Tile::kWidth, piece = u / Tile::kWidth;  // line = Tile::column(i, thread)
        const uint32_t a_row = a_row0 + line, a_col = row0 + 32u * piece;
        pieces[i] = __ldg(reinterpret_cast<const uint4*>(codes + a_row * line_bytes + a_col / 2u));
        // groups a_col / 16 (even) and + 1 of A's row: adjacent bytes, the first at an even offset (§7; Kb is even)
        piece_scales[i] = __ldg(reinterpret_cast<const unsigned short*>(
            scales + qgen_nvfp4_tile_scale_offset<Layout>(a_row, a_col / 16u, a_groups_per_row)));
      }
    }
    __syncthreads();  // the previous tile has been read by every thread
#pragma unroll
    for (int i = 0; i < Tile::kPiecesPerThread; ++i) {
      const uint32_t u = static_cast<uint32_t>(thread) + i * THREADS;
      const uint32_t line = u % Tile::kWidth, piece = u / Tile::kWidth;
      if constexpr (kPrefetched) {
        pieces[i] = raw[i * THREADS + thread];
        piece_scales[i] = raw_scales[i * THREADS + thread] >> (16u * (((row0 / 32u) + piece) & 1u));  // the pair's half
      }
      uint32_t* const out = tile + (16 * piece) * Tile::kStride + (line / E) * Tile::kLaneStride + line % E;
      const uint32_t words[4] = {pieces[i].x, pieces[i].y, pieces[i].z, pieces[i].w};
      uint32_t mult[2];
      qgen_nvfp4_bf16_multipliers(piece_scales[i], mult);
      const uint32_t flip = ((piece_signs >> i) & 1u) * 0x80008000u;
#pragma unroll
      for (int w = 0; w < 4; ++w) {
        const uint32_t word8 = words[w] >> 8;
#pragma unroll
        for (int j = 0; j < 4; ++j)
          out[(4 * w + j) * Tile::kStride] =
              qgen_nvfp4_bf16_pair(qgen_nvfp4_bf16_pattern_pair(words[w], word8, j), mult[w / 2] ^ flip);
      }
    }
    const float t_mul = qgen_mul(t_in, 256.0f);  // exact: |t_in| <= 2^119 (qgen_nvfp4_tile_usable)
    __syncthreads();
    const uint32_t row = static_cast<uint32_t>(thread) / L, lane_in_unit = static_cast<uint32_t>(thread) % L;
    const uint4* mine =
        reinterpret_cast<const uint4*>(tile + Tile::slot(row) * Tile::kStride + lane_in_unit * Tile::kLaneStride);
    const uint32_t selector = qgen_nvfp4_bf16_half_selector(Tile::half(row));
#pragma unroll
    for (int j = 0; j < E / 4; ++j) {
      const uint4 w = mine[j];
      v[4 * j] = qgen_nvfp4_tile_value(w.x, selector, t_mul);
      v[4 * j + 1] = qgen_nvfp4_tile_value(w.y, selector, t_mul);
      v[4 * j + 2] = qgen_nvfp4_tile_value(w.z, selector, t_mul);
      v[4 * j + 3] = qgen_nvfp4_tile_value(w.w, selector, t_mul);
    }
  }
}

// Writes the thread's constants of qgen_nvfp4_tile_thread_state into the tile's state words (before the loop; each
// thread reads only its own, so no barrier is needed between the two). No-op for the tilings that do not use them.
template <int E, int L, int THREADS, class Layout>
__device__ __forceinline__ void qgen_nvfp4_tile_init(int64_t rows, int thread, uint32_t* tile) {
  using Tile = qgen_nvfp4_transposed_tile<E, L, THREADS>;
  using State = qgen_nvfp4_tile_thread_state<E, L, THREADS, Layout>;
  if constexpr (State::kUsed)
    reinterpret_cast<uint4*>(tile + Tile::kStateOffset)[thread] =
        State::make(static_cast<uint32_t>(thread), static_cast<uint32_t>(rows));
}
