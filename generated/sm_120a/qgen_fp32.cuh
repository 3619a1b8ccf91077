// qgen_fp32.cuh — binary32 arithmetic exactly as NUMERICS §1 defines it.
//
// Every floating-point operation of the numerics contract is one IEEE-754 binary32 operation, rounded to nearest
// even, never fused or reassociated (NUMERICS §1.1). nvcc never contracts the __f*_rn intrinsics into FMAs, so the
// helpers below are the only way qgen kernels spell +, -, *, / on data values.
#pragma once
#include <cstdint>
#include <cuda_runtime.h>
#include <cuda_bf16.h>

// NUMERICS §1.1: one correctly rounded binary32 operation each. (The host spellings exist so that host-side
// known-answer tests can run the same header code; host x86-64 binary32 arithmetic is IEEE RNE without contraction
// of a single operation.)
#if defined(__CUDA_ARCH__)
__device__ __forceinline__ float qgen_add(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ float qgen_sub(float a, float b) { return __fsub_rn(a, b); }
__device__ __forceinline__ float qgen_mul(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ float qgen_div(float a, float b) { return __fdiv_rn(a, b); }
// f32(a * b + c) with one rounding. Not a NUMERICS §1.1 operation: used only where a * b is exact, so that it equals
// qgen_add(qgen_mul(a, b), c) (each use says why the product is exact).
__device__ __forceinline__ float qgen_fma_exact_product(float a, float b, float c) { return __fmaf_rn(a, b, c); }
#else
inline float qgen_add(float a, float b) { return a + b; }
inline float qgen_sub(float a, float b) { return a - b; }
inline float qgen_mul(float a, float b) { return a * b; }
inline float qgen_div(float a, float b) { return a / b; }
inline float qgen_fma_exact_product(float a, float b, float c) { return __builtin_fmaf(a, b, c); }
#endif

// The binary32 number with the given bit pattern (host and device).
__host__ __device__ __forceinline__ float qgen_f32_from_bits(uint32_t bits) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(bits);
#else
  float f;
  __builtin_memcpy(&f, &bits, 4);
  return f;
#endif
}

// The bit pattern of a binary32 number (host and device).
__host__ __device__ __forceinline__ uint32_t qgen_f32_bits(float x) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(x);
#else
  uint32_t b;
  __builtin_memcpy(&b, &x, 4);
  return b;
#endif
}

// NUMERICS §1.2: a bf16 value widened to binary32 (exact: bf16 is the top half of a binary32).
__host__ __device__ __forceinline__ float qgen_bf16_bits_to_f32(uint32_t bits16) {
  return qgen_f32_from_bits(bits16 << 16);
}

// NUMERICS §2.8: a binary32 value rounded to bf16 (RNE; NaN stays NaN), as its 16 bits.
__device__ __forceinline__ uint16_t qgen_f32_to_bf16_bits(float x) {
  return __bfloat16_as_ushort(__float2bfloat16_rn(x));
}

// NUMERICS §1.4: |x| when x is finite, else 0, so that a max over these values skips NaN and ±Inf.
__device__ __forceinline__ float qgen_finite_abs(float x) {
  const float a = fabsf(x);
  return a <= 3.402823466e38f ? a : 0.0f;  // false for NaN and +Inf
}

// NUMERICS §1.3: tree16 — pairwise sum with halving strides 8, 4, 2, 1; the result is a_0.
__host__ __device__ __forceinline__ float qgen_tree16(const float* a) {
  float s[8];
#pragma unroll
  for (int i = 0; i < 8; ++i) s[i] = qgen_add(a[i], a[i + 8]);
#pragma unroll
  for (int i = 0; i < 4; ++i) s[i] = qgen_add(s[i], s[i + 4]);
#pragma unroll
  for (int i = 0; i < 2; ++i) s[i] = qgen_add(s[i], s[i + 2]);
  return qgen_add(s[0], s[1]);
}

// NUMERICS §1.3: the same halving-stride tree over the N values held by one thread (N a power of two, in place).
template <int N>
__device__ __forceinline__ float qgen_tree_in_place(float (&a)[N]) {
  static_assert(N >= 1 && (N & (N - 1)) == 0, "a power of two");
  // Fixed trip counts (stride = N >> (level + 1)) so that every index is a compile-time constant after unrolling and
  // the array stays in registers.
#pragma unroll
  for (int level = 0; (N >> (level + 1)) >= 1; ++level) {
#pragma unroll
    for (int i = 0; i < N / 2; ++i)
      if (i < (N >> (level + 1))) a[i] = qgen_add(a[i], a[i + (N >> (level + 1))]);
  }
  return a[0];
}

// NUMERICS §1.3 (tree128 and other chunk trees): the halving-stride tree over a chunk of E * LANES consecutive
// values spread over LANES adjacent lanes, each holding E consecutive values (lane l holds positions l*E .. l*E+E-1).
// The strides >= E pair values of different lanes: a_i += a_(i+stride) for i < stride, so only lanes
// l < stride / E keep meaningful partial sums, which a butterfly exchange provides. The remaining strides run in the
// registers of the chunk's first lane; the total is then broadcast to every lane of the chunk. All lanes of the warp
// must call this together.
template <int E, int LANES>
__device__ __forceinline__ float qgen_chunk_tree(float (&a)[E]) {
  const unsigned lane = threadIdx.x & 31u;
#pragma unroll
  for (int level = 0; (LANES >> (level + 1)) >= 1; ++level) {
    const int lane_stride = LANES >> (level + 1);
#pragma unroll
    for (int i = 0; i < E; ++i) a[i] = qgen_add(a[i], __shfl_xor_sync(0xffffffffu, a[i], lane_stride));
  }
  const float total = qgen_tree_in_place<E>(a);
  return __shfl_sync(0xffffffffu, total, static_cast<int>(lane & ~static_cast<unsigned>(LANES - 1)));
}
