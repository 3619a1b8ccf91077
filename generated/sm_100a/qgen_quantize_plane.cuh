// qgen_quantize_plane.cuh — the bf16 planes a quantizer writes beside its codes and scales: outputs
// 'nvfp4+bf16-plane' here, 'nvfp4+dequantized-plane' (NUMERICS §6.7) below. The first (§6.6):
// plane[i] = bf16(e2m1(code i) * e4m3(scale of i's group)), no tensor scale. The product is exact in binary32 and in
// bf16 (§6.6), so this equals qgen_dequantize with t = 1 bit for bit. Config::Output of
// runtime/qgen_quantize_kernel.cuh selects qgen_output_nvfp4_plane; the plane is written where the group's final
// scale byte is known: by the quantize pass (computed, caller) or by pass B (one-pass, §5.1).
#pragma once
#include <cstdint>
#include <type_traits>
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
  // `stored`): one exact-when-kept bf16 multiply per pair, two 16-byte stores per group. Called by every lane of the
  // warp (`active`: the lane's segment exists; only active lanes store). Where the warp's lanes pair up (pairs(), a
  // grid-uniform decision), lanes 2j, 2j+1 write their two segments together so that each store instruction of the
  // pair fills one whole 32-byte sector (store_pairs); otherwise each lane writes its own segment, 16 bytes at a
  // 64-byte stride across the warp (store_own: every sector of an instruction half-filled).
  template <class C>
  __device__ __forceinline__ static void store_pass_a(const qgen_quantize_args& args, int64_t cols, qgen_segment s,
                                                      bool active, const uint2 (&codes)[C::kCodeWords],
                                                      const uint32_t (&proxy)[C::kGroupsPerThread]) {
    static_assert(C::kGroupSize == 16 && C::kCodeWords == C::kGroupsPerThread, "the plane is NVFP4 only");
    // a unit of an even number of lanes dividing the warp: lanes 2j, 2j + 1 in one unit (row), both active or neither
    static_assert(!pairs_static<C>() || (C::kLanes % 2 == 0 && 32 % C::kLanes == 0), "lane pairs must share a unit");
    if constexpr (pairs_possible<C>()) {
      if (pairs<C>(cols)) {
        store_pairs<C>(args, cols, s, active, codes, proxy);
        return;
      }
    }
    if (active) store_own<C>(args, cols, s, codes, proxy);
  }

  // Whether lanes 2j, 2j+1 of every warp hold segments s, s' of one row with s'.k0 = s.k0 + kElems, both whole
  // (every group inside cols) and both active or both inactive (qgen_quantize_kernel.cuh's orders and
  // qgen_for_each_segment; model: test/dqplane.test.ts). Lane = item % 32 (warps start at multiples of 32 items),
  // and the item counts below are even, so a pair's items are both < items or both not:
  // - a unit of kLanes >= 2 lanes (row-major, column-major, staged tile) lies in one row, lane l of it (= warp lane
  //   mod kLanes) at k0 = unit start + l * kElems, and is whole when kColsMultiple is a multiple of kElems * kLanes:
  //   static (pairs_static);
  // - row-major with kLanes = 1 (item = row * ceil(cols / kElems) + segment, no staged tile): pairs (2m, 2m+1) lie in
  //   one row, both whole, iff cols is a multiple of 2 * kElems: one test of cols (a kernel argument, uniform);
  // - column-major or 16x16 blocks with kLanes = 1: adjacent lanes are adjacent rows; never.
  template <class C>
  __device__ __forceinline__ static constexpr bool pairs_static() {
    return C::kLanes >= 2 && !C::Order::kBlock16 && C::kColsMultiple % (C::kElems * C::kLanes) == 0;
  }
  template <class C>
  __device__ __forceinline__ static constexpr bool pairs_possible() {
    return pairs_static<C>() ||
           (C::kLanes == 1 && std::is_same_v<typename C::Order, qgen_order_row_major> && !C::Input::kTile);
  }
  template <class C>
  __device__ __forceinline__ static bool pairs(int64_t cols) {
    return pairs_static<C>() || cols % (2 * C::kElems) == 0;
  }

  // (w_h, w_h) as bf16x2 from the 16-bit half h of w: ptxas folds it into the multiply's operand (.H0_H0, .H1_H1).
  __device__ __forceinline__ static uint32_t half_pair(uint32_t w, int h) {
    uint32_t out;
    if (h == 0)
      asm("{.reg .b16 a, b; mov.b32 {a, b}, %1; mov.b32 %0, {a, a};}" : "=r"(out) : "r"(w));
    else
      asm("{.reg .b16 a, b; mov.b32 {a, b}, %1; mov.b32 %0, {b, b};}" : "=r"(out) : "r"(w));
    return out;
  }

  // One lane's segment: pieces 2g, 2g + 1 (code words codes[g].x, .y, 8 values each) of group g at byte 32 g + 16 i.
  template <class C>
  __device__ __forceinline__ static void store_own(const qgen_quantize_args& args, int64_t cols, qgen_segment s,
                                                   const uint2 (&codes)[C::kCodeWords],
                                                   const uint32_t (&proxy)[C::kGroupsPerThread]) {
    uint4* const p = reinterpret_cast<uint4*>(static_cast<uint16_t*>(args.plane) + s.row * cols + s.k0);
#pragma unroll
    for (int g = 0; g < C::kGroupsPerThread; ++g) {
      if (s.k0 + 16 * g >= cols) break;
      const uint32_t c2 = half_pair(proxy[g], 0);  // (c_g, c_g) as bf16x2
      p[2 * g] = qgen_nvfp4_bf16_piece(codes[g].x, c2);
      p[2 * g + 1] = qgen_nvfp4_bf16_piece(codes[g].y, c2);
    }
  }

  // A lane pair's two segments (even lane a at byte A, odd lane b at A + 2 kElems), group by group: the first store
  // writes a's group g (a its piece 2g at A + 32g, b a's piece 2g + 1 at A + 32g + 16), the second b's group g (a b's
  // piece 2g at A + 2 kElems + 32g, b its piece 2g + 1 just above). The lanes exchange the builder's inputs, not the
  // pieces: per group one code word (b sends codes[g].x, a codes[g].y), and the proxies packed two per word. With
  // q = own base - (2 kElems - 16) * odd bytes (48 for kElems = 32), the stores go to q + 32g and q + 32g + 2 kElems.
  // Same bytes, same values as store_own; only which lane writes them changes.
  template <class C>
  __device__ __forceinline__ static void store_pairs(const qgen_quantize_args& args, int64_t cols, qgen_segment s,
                                                     bool active, const uint2 (&codes)[C::kCodeWords],
                                                     const uint32_t (&proxy)[C::kGroupsPerThread]) {
    constexpr int G = C::kGroupsPerThread, kProxyWords = (G + 1) / 2;
    const int parity = qgen_thread_index() & 1;  // the lane's (blocks are whole warps)
    const bool odd = parity != 0;
    uint32_t first[G], second[G];  // the code words of the two stores of group g
#pragma unroll
    for (int g = 0; g < G; ++g) {
      const uint32_t other = __shfl_xor_sync(0xFFFFFFFFu, odd ? codes[g].x : codes[g].y, 1);
      first[g] = odd ? other : codes[g].x;
      second[g] = odd ? codes[g].y : other;
    }
    uint32_t first_proxies[kProxyWords], second_proxies[kProxyWords];  // two bf16 proxies per word
#pragma unroll
    for (int w = 0; w < kProxyWords; ++w) {
      const uint32_t own = 2 * w + 1 < G ? qgen_prmt(proxy[2 * w], proxy[2 * w + 1], 0x5410u) : proxy[2 * w];
      const uint32_t other = __shfl_xor_sync(0xFFFFFFFFu, own, 1);
      first_proxies[w] = odd ? other : own;
      second_proxies[w] = odd ? own : other;
    }
    if (!active) return;
    uint4* const own = reinterpret_cast<uint4*>(static_cast<uint16_t*>(args.plane) + s.row * cols + s.k0);
    uint4* const q = own - parity * (C::kElems / 8 - 1);  // b: 2 kElems - 16 bytes below its segment (a's piece 1)
#pragma unroll
    for (int g = 0; g < G; ++g) {
      // never taken (k0 >= 0): a branch between the groups, so that ptxas 13.0 builds two pieces at a time (with all
      // four live it re-materialises the two E2M1 tables before each use: 16 SASS more per segment)
      if (g > 0 && qgen_reread(s.k0) < 0) break;
      q[2 * g] = qgen_nvfp4_bf16_piece(first[g], half_pair(first_proxies[g / 2], g % 2));
      q[2 * g + C::kElems / 8] = qgen_nvfp4_bf16_piece(second[g], half_pair(second_proxies[g / 2], g % 2));
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
