// qgen_hadamard.cuh — the randomized Hadamard transform of NUMERICS §4, in registers and warp shuffles.
//
// Each thread holds E consecutive elements of a row. A chunk of N points is either inside one thread (N <= E) or
// spread over N / E adjacent lanes (lane l of the chunk holds positions l*E .. l*E+E-1). Butterfly stages with
// h < E run in registers; stages with h >= E exchange with lane l ^ (h / E). Every output of every stage is one
// binary32 addition or subtraction of the same two operands as in §4.2, so the result does not depend on the mapping.
#pragma once
#include <cstdint>
#include <cuda_runtime.h>
#include "qgen_fp32.cuh"
#include "qgen_philox.cuh"

// NUMERICS §3.2: the N <= 128 signs of a call, bit j of the 128-bit block (word j >> 5, bit j & 31); set -> -1.
// Keyed by the sign seed (qgen_quantize_args::sign_seed, qgen_hadamard_args::seed), never by a quantizer's seed.
__device__ __forceinline__ uint4 qgen_hadamard_signs(uint64_t sign_seed) {
  return qgen_random_block(sign_seed, QGEN_STREAM_SIGNS, 0, 0);
}

__device__ __forceinline__ uint32_t qgen_sign_bit(uint4 signs, int j) {
  const uint32_t word = (j >> 5) == 0 ? signs.x : (j >> 5) == 1 ? signs.y : (j >> 5) == 2 ? signs.z : signs.w;
  return (word >> (j & 31)) & 1u;
}

// The sign bits of positions base .. base + 31 of the 128-bit sign block, bit i of the result for position base + i
// (base a multiple of 16; bits past position 127 are 0).
__device__ __forceinline__ uint32_t qgen_sign_run(uint4 signs, int base) {
  const int word = base >> 5;
  const uint32_t w0 = word == 0 ? signs.x : word == 1 ? signs.y : word == 2 ? signs.z : signs.w;
  const uint32_t w1 = word == 0 ? signs.y : word == 1 ? signs.z : word == 2 ? signs.w : 0u;
  return (base & 16) ? (w0 >> 16) | (w1 << 16) : w0;
}

// NUMERICS §4.1-§4.3 on the E values of one thread. lane_in_chunk: this thread's index among the N / E lanes that
// share a chunk (0 when N <= E). All lanes of the warp must call this together when N > E. signs_applied: the input
// already holds a_j = eps_j * x_j (a staged input flipped them), so §4.1 is skipped.
template <int E, int N>
__device__ __forceinline__ void qgen_hadamard_segment(float (&v)[E], uint4 signs, int lane_in_chunk, float inv_sqrt_n,
                                                      bool signs_applied = false) {
  static_assert((N & (N - 1)) == 0 && N >= 16 && N <= 128, "Hadamard size is 16, 32, 64 or 128");
  static_assert(N <= E ? E % N == 0 : N % E == 0, "a chunk is whole threads or whole lanes");
  // §4.1: a_j = eps_j * x_j, a sign flip. Positions are j % N inside a thread, lane_in_chunk * E + j across lanes:
  // the thread's sign bits are read once as 32-bit runs (E is 16, 32 or 64 when N > E).
  if (signs_applied) {
    // §4.1 was done by the input.
  } else if constexpr (N <= E) {
#pragma unroll
    for (int j = 0; j < E; ++j) v[j] = __uint_as_float(__float_as_uint(v[j]) ^ (qgen_sign_bit(signs, j % N) << 31));
  } else {
    uint32_t run[(E + 31) / 32];
#pragma unroll
    for (int k = 0; k < (E + 31) / 32; ++k) run[k] = qgen_sign_run(signs, lane_in_chunk * E + 32 * k);
#pragma unroll
    for (int j = 0; j < E; ++j)
      v[j] = __uint_as_float(__float_as_uint(v[j]) ^ ((run[j / 32] << (31 - j % 32)) & 0x80000000u));
  }
  // §4.2: stages h = 1, 2, ..., N/2; pair (i, i+h) with (i & h) == 0 becomes (a_i + a_(i+h), a_i - a_(i+h)).
#pragma unroll
  for (int h = 1; h < N; h *= 2) {
    if (h < E) {
#pragma unroll
      for (int j = 0; j < E; ++j) {
        if ((j & h) == 0) {
          const float a = v[j], b = v[j + h];
          v[j] = qgen_add(a, b);
          v[j + h] = qgen_sub(a, b);
        }
      }
    } else {
      // The lane holding a_i computes partner + v = a_i + a_(i+h), its partner partner - v = a_i - a_(i+h): one FMA
      // by +-1 (an exact product, so the same single rounding as the addition or subtraction).
      const int lane_mask = h / E;
      const float direction = (lane_in_chunk & lane_mask) == 0 ? 1.0f : -1.0f;
#pragma unroll
      for (int j = 0; j < E; ++j) {
        const float partner = __shfl_xor_sync(0xffffffffu, v[j], lane_mask);
        v[j] = qgen_fma_exact_product(direction, v[j], partner);
      }
    }
  }
  // §4.3: y_j = a_j * inv_sqrt_n, natural order.
#pragma unroll
  for (int j = 0; j < E; ++j) v[j] = qgen_mul(v[j], inv_sqrt_n);
}
