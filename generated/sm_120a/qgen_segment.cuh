// qgen_segment.cuh — how memory-bound kernels number their work items (segments) and the host's item counts.
//
// A work item is one thread's segment: E consecutive elements of one output row along K. A "unit" of W = E * L
// elements (a Hadamard chunk or an MS-EDEN 128-chunk larger than E) is spread over L adjacent lanes; items are
// numbered so that the L segments of a unit are consecutive, and a grid-stride loop advances whole warps, so unit
// partners always sit on lanes l ^ 1 .. l ^ (L-1) of the same warp. Launch shape never changes results: randomness
// and all arithmetic are keyed by logical positions (NUMERICS §3.2).
#pragma once
#include <cstdint>
#include <cuda_runtime.h>

// threadIdx.x, read where it is used: a volatile read is never hoisted out of a loop, so what a grid-stride loop
// derives from it (shared-memory addresses, the thread's tile column, its lane) is recomputed in each iteration, a
// few integer instructions, instead of occupying registers through the loop (qgen_for_each_segment's recomputed
// loop state; ptxas 13.0 then fits the MS-EDEN kernels into 80-96 registers without spills).
__device__ __forceinline__ int qgen_thread_index() {
  unsigned int index;
  asm volatile("mov.u32 %0, %%tid.x;" : "=r"(index));
  return static_cast<int>(index);
}

// v itself, as an opaque copy made where it is used: what is derived from it (cols / 2, ...) is computed there, not
// hoisted out of the loop into a register (v is a kernel argument, which ptxas reads from constant memory).
__device__ __forceinline__ int64_t qgen_reread(int64_t v) {
  int64_t copy;
  asm volatile("mov.b64 %0, %1;" : "=l"(copy) : "l"(v));
  return copy;
}

struct qgen_segment {
  int64_t row;       // output row
  int64_t k0;        // first element along K
  int lane_in_unit;  // 0 .. L-1
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

// The step of a walk: (stride / P) divmod divisor, the same for every thread of a grid.
struct qgen_walk_step {
  int64_t quotient, remainder;
};

// A thread's items of a grid-stride loop (first, first + stride, ...; stride a multiple of P) as the quotient and
// remainder of item / P by a divisor, advanced by additions: one division per thread instead of one (a long
// instruction sequence) per item. offset = item % P is the same for every item of the walk.
template <int P>
struct qgen_item_walk {
  int64_t quotient, remainder;            // (item / P) divmod divisor
  int64_t step_quotient, step_remainder;  // (stride / P) divmod divisor
  int64_t divisor;
  int offset;

  __host__ __device__ __forceinline__ qgen_item_walk(int64_t item, int64_t stride, int64_t d) : divisor(d) {
    qgen_divmod(item / P, d, quotient, remainder);
    qgen_divmod(stride / P, d, step_quotient, step_remainder);
    offset = static_cast<int>(item % P);
  }
  __host__ __device__ __forceinline__ qgen_walk_step step() const { return {step_quotient, step_remainder}; }
  // By a step given by the caller (the walk's own, e.g. re-read from shared memory).
  __host__ __device__ __forceinline__ void advance(qgen_walk_step step) {
    quotient += step.quotient;
    remainder += step.remainder;
    if (remainder >= divisor) {
      remainder -= divisor;
      ++quotient;
    }
  }
  __host__ __device__ __forceinline__ void advance() { advance(step()); }
};

// Row-major order (inputs read along K): item = (row * units_per_row + unit) * L + lane; consecutive lanes read
// consecutive 16-byte pieces of a row. (item divmod segments per row = row, segment.)
template <int E, int L>
struct qgen_walk_row_major {
  qgen_item_walk<1> walk;
  __device__ __forceinline__ qgen_walk_row_major(int64_t item, int64_t stride, int64_t cols)
      : walk(item, stride, qgen_ceil_div(cols, E)) {}
  __device__ __forceinline__ qgen_segment segment() const {
    // item % L = segment % L: with L > 1, a row holds whole units (segments per row is a multiple of L)
    return {walk.quotient, walk.remainder * E, static_cast<int>(walk.remainder % L)};
  }
  __device__ __forceinline__ void advance() { walk.advance(); }
  __device__ __forceinline__ qgen_walk_step step() const { return walk.step(); }
  __device__ __forceinline__ void advance(qgen_walk_step step) { walk.advance(step); }
};

// Column-major order (inputs stored [K, rows]): item = (unit * rows + row) * L + lane; lanes of a warp cover
// consecutive rows, i.e. consecutive addresses of the transposed input.
template <int E, int L>
struct qgen_walk_column_major {
  qgen_item_walk<L> walk;  // (item / L) divmod rows = unit, row; lane = item % L
  __device__ __forceinline__ qgen_walk_column_major(int64_t item, int64_t stride, int64_t rows)
      : walk(item, stride, rows) {}
  __device__ __forceinline__ qgen_segment segment() const {
    return {walk.remainder, walk.quotient * (E * L) + walk.offset * E, walk.offset};
  }
  __device__ __forceinline__ void advance() { walk.advance(); }
  __device__ __forceinline__ qgen_walk_step step() const { return walk.step(); }
  __device__ __forceinline__ void advance(qgen_walk_step step) { walk.advance(step); }
};

// 16x16 blocks (NUMERICS §5.7, L = 1): item = ((row / 16) * segments_per_row + segment) * 16 + row % 16, so the 16
// rows of a block are lanes l ^ {1, 2, 4, 8}. Rows are padded to a multiple of 16; padding rows are inactive.
template <int E>
struct qgen_walk_block16 {
  qgen_item_walk<16> walk;  // (item / 16) divmod segments per row = block row, segment; row % 16 = item % 16
  __device__ __forceinline__ qgen_walk_block16(int64_t item, int64_t stride, int64_t cols)
      : walk(item, stride, qgen_ceil_div(cols, E)) {}
  __device__ __forceinline__ qgen_segment segment() const {
    return {walk.quotient * 16 + walk.offset, walk.remainder * E, 0};
  }
  __device__ __forceinline__ void advance() { walk.advance(); }
  __device__ __forceinline__ qgen_walk_step step() const { return walk.step(); }
  __device__ __forceinline__ void advance(qgen_walk_step step) { walk.advance(step); }
};

// The segment of one item (a walk that never advances).
template <int E, int L>
__device__ __forceinline__ qgen_segment qgen_segment_row_major(int64_t item, int64_t cols) {
  return qgen_walk_row_major<E, L>(item, 0, cols).segment();
}
template <int E, int L>
__device__ __forceinline__ qgen_segment qgen_segment_column_major(int64_t item, int64_t rows) {
  return qgen_walk_column_major<E, L>(item, 0, rows).segment();
}
template <int E>
__device__ __forceinline__ qgen_segment qgen_segment_block16(int64_t item, int64_t cols) {
  return qgen_walk_block16<E>(item, 0, cols).segment();
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

// n / d for 32-bit n by a divisor fixed for a whole loop, as a multiply-high, an add and two shifts (Granlund and
// Montgomery, "Division by invariant integers using multiplication", 1994, figure 4.1): with l = ceil(log2 d),
// m = floor(2^32 (2^l - d) / d) + 1, sh1 = min(l, 1), sh2 = max(l - 1, 0) and t = floor(m n / 2^32), the quotient is
// (t + ((n - t) >> sh1)) >> sh2 for every 0 <= n < 2^32 and 1 <= d < 2^32 (host test: test/quantizer-hot-paths).
// The constants take one 64-bit division, made once (they are block-uniform: a loop keeps them in shared memory).
struct qgen_udiv32 {
  uint32_t d, m, shifts;  // shifts = sh1 | sh2 << 8

  __host__ __device__ __forceinline__ static qgen_udiv32 of(uint32_t divisor) {
    uint32_t l = 0;
    while (l < 32 && (uint64_t{1} << l) < divisor) ++l;                         // ceil(log2 d); d = 1: 0
    const uint64_t m = ((((uint64_t{1} << l) - divisor) << 32) / divisor) + 1;  // < 2^32: 2^l - d < d
    return {divisor, static_cast<uint32_t>(m), (l < 1 ? l : 1u) | ((l > 1 ? l - 1 : 0u) << 8)};
  }
  __host__ __device__ __forceinline__ static uint32_t quotient(uint32_t n, uint32_t m, uint32_t shifts) {
#if defined(__CUDA_ARCH__)
    const uint32_t t = __umulhi(m, n);
#else
    const uint32_t t = static_cast<uint32_t>((static_cast<uint64_t>(m) * n) >> 32);
#endif
    return (t + ((n - t) >> (shifts & 0xFFu))) >> (shifts >> 8);
  }
};
