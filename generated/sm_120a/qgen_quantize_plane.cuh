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

  // The 16 plane values of 16-group `group` (row-major index over [rows, cols/16]) from its codes, which the
  // quantize pass has written, and its final scale byte (one-pass pass B).
  __device__ __forceinline__ static void store_group(const qgen_quantize_args& args, int64_t group, uint32_t scale) {
    const uint2 word = reinterpret_cast<const uint2*>(args.codes)[group];
    uint4* out = reinterpret_cast<uint4*>(static_cast<uint16_t*>(args.plane) + 16 * group);
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      float y[8];
      qgen_dequantize_nvfp4_8(half == 0 ? word.x : word.y, scale, 1.0f, y);
      uint32_t w[4];
#pragma unroll
      for (int i = 0; i < 4; ++i)
        w[i] = qgen_f32_to_bf16_bits(y[2 * i]) | (static_cast<uint32_t>(qgen_f32_to_bf16_bits(y[2 * i + 1])) << 16);
      out[half] = make_uint4(w[0], w[1], w[2], w[3]);
    }
  }
};
