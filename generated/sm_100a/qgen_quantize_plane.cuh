// qgen_quantize_plane.cuh — the bf16 plane a quantizer with outputs 'nvfp4+bf16-plane' writes beside its codes and
// scales (NUMERICS §6.6): plane[i] = bf16(e2m1(code i) * e4m3(scale of i's group)), no tensor scale. The product is
// exact in binary32 and in bf16 (§6.6), so this equals qgen_dequantize with t = 1 bit for bit. Config::Output of
// runtime/qgen_quantize_kernel.cuh selects qgen_output_nvfp4_plane; the plane is written where the group's final
// scale byte is known: by the quantize pass (computed, caller) or by pass B (one-pass, §5.1).
#pragma once
#include <cstdint>
#include <cuda_runtime.h>
#include "qgen.h"
#include "qgen_fp32.cuh"
#include "qgen_segment.cuh"
#include "qgen_store_row.cuh"
#include "qgen_dequantize.cuh"

struct qgen_output_nvfp4_plane {
  static constexpr bool kPlane = true;

  // A segment's kElems plane values from its 16-groups' codes and scale bytes (quantize pass).
  template <class C>
  __device__ __forceinline__ static void store(const qgen_quantize_args& args, qgen_segment s,
                                               const uint2 (&codes)[C::kCodeWords],
                                               const uint32_t (&scales)[C::kGroupsPerThread]) {
    static_assert(C::kGroupSize == 16 && C::kCodeWords == C::kGroupsPerThread, "the plane is NVFP4 only");
    float v[C::kElems];
#pragma unroll
    for (int g = 0; g < C::kGroupsPerThread; ++g) {
      float y[8];
      qgen_dequantize_nvfp4_8(codes[g].x, scales[g], 1.0f, y);
#pragma unroll
      for (int i = 0; i < 8; ++i) v[16 * g + i] = y[i];
      qgen_dequantize_nvfp4_8(codes[g].y, scales[g], 1.0f, y);
#pragma unroll
      for (int i = 0; i < 8; ++i) v[16 * g + 8 + i] = y[i];
    }
    qgen_store_bf16_row<C::kElems>(args.plane, args.cols, s, v);
  }

  // The 8 plane values (one 16-byte store) of one code word and its group's final scale byte (one-pass pass B,
  // runtime/qgen_quantize_kernel.cuh qgen_one_pass_finalize_plane).
  __device__ __forceinline__ static uint4 piece(uint32_t word, uint32_t scale) {
    return qgen_nvfp4_bf16_piece(word, qgen_bf16x2_of_e4m3(scale));
  }
};

// Host: blocks of `kernel` resident per SM at `threads` per block (the plane-writing pass B's grid is one wave of
// them: its registers, hence its occupancy, depend on the arch and ptxas); `fallback` where the query fails.
template <class Kernel>
inline int qgen_resident_blocks_per_sm(Kernel kernel, int threads, int fallback) {
  int blocks = 0;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, threads, 0) != cudaSuccess || blocks < 1) {
    (void)cudaGetLastError();  // the query's error must not be read as the launches' by qgen_launch_status
    return fallback;
  }
  return blocks;
}
