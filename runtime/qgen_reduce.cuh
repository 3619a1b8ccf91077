// qgen_reduce.cuh — block reductions into global words.
#pragma once
#include <cstdint>
#include <cuda_runtime.h>

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
