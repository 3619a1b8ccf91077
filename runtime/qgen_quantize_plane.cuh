// qgen_quantize_plane.cuh — the bf16 planes a quantizer writes beside its codes and scales: outputs
// 'nvfp4+bf16-plane' here, 'nvfp4+dequantized-plane' (NUMERICS §6.7) below. The first (§6.6):
// plane[i] = bf16(e2m1(code i) * e4m3(scale of i's group)), no tensor scale. The product is exact in binary32 and in
// bf16 (§6.6), so this equals qgen_dequantize with t = 1 bit for bit. Config::Output of
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
#include "qgen_quantize.cuh"

struct qgen_output_nvfp4_plane {
  static constexpr bool kPlane = true, kDequantizedPlane = false;

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

// outputs 'nvfp4+dequantized-plane' (NUMERICS §6.7, one-pass only): the plane of the dequantized tensor, tensor
// scale included. Pass A writes bf16(e2m1 * c_g) from the group's proxy c_g; pass B keeps a group where that is the
// definition's value and rewrites it from the codes where it is not (zero groups, E4M3-subnormal or twice-rounded
// scales, proxies outside [2^-120, 2^120]).
struct qgen_output_nvfp4_dequantized_plane {
  static constexpr bool kPlane = false, kDequantizedPlane = true;

  // Pass A: a segment's plane values from its groups' codes and proxies (c_g as bf16 bits, qgen_quantize_pass's
  // `stored`): one exact-when-kept bf16 multiply per pair, two 16-byte stores per group.
  template <class C>
  __device__ __forceinline__ static void store_pass_a(const qgen_quantize_args& args, int64_t cols, qgen_segment s,
                                                      const uint2 (&codes)[C::kCodeWords],
                                                      const uint32_t (&proxy)[C::kGroupsPerThread]) {
    static_assert(C::kGroupSize == 16 && C::kCodeWords == C::kGroupsPerThread, "the plane is NVFP4 only");
    uint4* const p = reinterpret_cast<uint4*>(static_cast<uint16_t*>(args.plane) + s.row * cols + s.k0);
#pragma unroll
    for (int g = 0; g < C::kGroupsPerThread; ++g) {
      if (s.k0 + 16 * g >= cols) break;
      const uint32_t c2 = proxy[g] * 0x10001u;  // (c_g, c_g) as bf16x2
      p[2 * g] = qgen_nvfp4_bf16_piece(codes[g].x, c2);
      p[2 * g + 1] = qgen_nvfp4_bf16_piece(codes[g].y, c2);
    }
  }

  // Pass B: whether pass A's 16 values of a group stand, from its final scale byte and its proxy: iff
  // 2^-120 <= c_g <= 2^120 and f32(e4m3(scale) * t) == c_g (then s_g * t = c_g exactly, §6.7). The loops of pass B
  // test every group inline and collect the others in a mask for rewrite_groups.
  __device__ __forceinline__ static bool keeps(uint32_t scale, uint32_t proxy_bf16, float t) {
    const float c = qgen_proxy_value(proxy_bf16);
    return c >= 0x1p-120f && c <= 0x1p120f && qgen_mul(qgen_e4m3_value(scale), t) == c;
  }

  // Pass B: rewrites group first + j of the flattened [rows, cols / 16] groups for every bit j of `rewrite`, as
  // bf16(f32(f32(e2m1 * scale) * t)) from its codes (8 bytes read, 32 written) and the scale byte this thread has
  // just stored (read back). A rolled loop: one copy of the rewrite in the kernel however many groups a step
  // tests (16 inlined copies made pass B's code outgrow the instruction cache: ncu, 58% of its stalls no-instruction).
  template <class C>
  __device__ __forceinline__ static void rewrite_groups(const qgen_quantize_args& args, int64_t first, uint32_t rewrite,
                                                        float t) {
    const int64_t cols = args.cols, groups_per_row = cols / 16;
#pragma unroll 1
    while (rewrite != 0u) {
      const int j = __ffs(static_cast<int>(rewrite)) - 1;
      rewrite &= rewrite - 1u;
      int64_t row, group;
      qgen_divmod(first + j, groups_per_row, row, group);
      const uint32_t scale = args.scales[C::ScaleLayout::offset(row, group, groups_per_row)];  // not __ldg: ours
      const uint2 w = __ldg(reinterpret_cast<const uint2*>(args.codes + row * (cols / 2) + group * 8));
      uint4* const p = reinterpret_cast<uint4*>(static_cast<uint16_t*>(args.plane) + row * cols + group * 16);
      p[0] = dequantized_piece(w.x, scale, t);
      p[1] = dequantized_piece(w.y, scale, t);
    }
  }

 private:
  // 8 values of one code word by the definition (§6's dequantize, then bf16 RNE).
  __device__ __forceinline__ static uint4 dequantized_piece(uint32_t word, uint32_t scale, float t) {
    float y[8];
    qgen_dequantize_nvfp4_8(word, scale, t, y);
    uint32_t h[4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
      h[i] = qgen_f32_to_bf16_bits(y[2 * i]) | (static_cast<uint32_t>(qgen_f32_to_bf16_bits(y[2 * i + 1])) << 16);
    return make_uint4(h[0], h[1], h[2], h[3]);
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
