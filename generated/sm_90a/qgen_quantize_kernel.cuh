// qgen_quantize_kernel.cuh — the quantizer's passes and host entry as templates over a kernel configuration, NUMERICS
// §5. A generated quantizer defines `struct Config` (numbers, constants and one policy type per axis the plan
// decides) and thin __global__ wrappers; everything else is here:
//   Config::Mode      tensor-scale mode (§5.1): qgen_mode_computed | qgen_mode_caller | qgen_mode_one_pass |
//                     qgen_mode_none (MXFP4)
//   Config::Input     how the input is read: qgen_input_bf16_row | _bf16_row_prefetch | _bf16_transposed |
//                     _bf16_transposed_tile | _nvfp4_transposed | _nvfp4_transposed_tile
//   Config::Order     work order of items: qgen_order_row_major | _column_major | _block16 (§5.7)
//   Config::Rounding  qgen_rounding_rtn | _sr | _four_six | _ms_eden<per128> | _mx_rtn | _mx_sr (§5.3-§5.8)
//   Config::Rotation  qgen_rotation_none | qgen_rotation_hadamard (§4)
//   Config::Output    qgen_output_nvfp4 (codes and scales) | qgen_output_nvfp4_plane (qgen_quantize_plane.cuh:
//                     also the bf16 plane of §6.6) | qgen_output_nvfp4_dequantized_plane (also the plane of §6.7)
//   Config::E2M1, Config::ScaleLayout (qgen_e2m1.cuh, qgen_layout.cuh)
#pragma once
#include <cstdint>
#include <type_traits>
#include <cuda_runtime.h>
#include "qgen.h"
#include "qgen_host.cuh"
#include "qgen_segment.cuh"
#include "qgen_async.cuh"
#include "qgen_load_row.cuh"
#include "qgen_load_transposed.cuh"
#include "qgen_load_nvfp4.cuh"
#include "qgen_codes_io.cuh"
#include "qgen_reduce.cuh"
#include "qgen_hadamard.cuh"
#include "qgen_quantize.cuh"

// Workspace: the tensor-wide max word, padded to keep what follows aligned; then (one-pass) one bf16 proxy per
// 16-group.
constexpr size_t QGEN_MAX_WORD_BYTES = 256;

__host__ __device__ __forceinline__ unsigned int* qgen_max_word(void* workspace) {
  return static_cast<unsigned int*>(workspace);
}
__host__ __device__ __forceinline__ uint16_t* qgen_proxies(void* workspace) {
  return reinterpret_cast<uint16_t*>(static_cast<char*>(workspace) + QGEN_MAX_WORD_BYTES);
}

// NUMERICS §3.2: logical index of the 16-group holding element k0 + kGroupSize * g of the segment's row.
template <class C>
__device__ __forceinline__ uint64_t qgen_group_index(qgen_segment s, int g, int64_t cols) {
  return static_cast<uint64_t>(s.row) * static_cast<uint64_t>(cols / 16) +
         static_cast<uint64_t>(s.k0 / 16 + g * (C::kGroupSize / 16));
}

// ---------------------------------------------------------------------------------------------------------------
// Tensor-scale modes (§5.1): which passes run, the scale form of the quantize pass, what the workspace holds.

struct qgen_mode_computed {
  static constexpr bool kAmaxPass = true, kOnePass = false, kTensorScale = true, kWorkspace = true;
  // t = f32(amax / f32(T_ref * C)) from pass 1's max word; block 0 thread 0 writes it to tensor_scale.
  template <class C>
  __device__ __forceinline__ static qgen_tensor_form form(const qgen_quantize_args& args) {
    const float t = qgen_computed_tensor_scale(qgen_load_max_word(qgen_max_word(args.workspace)),
                                               C::Rounding::template target_ref<C>(), C::ceiling());
    if (blockIdx.x == 0 && threadIdx.x == 0) *args.tensor_scale = t;
    return {t};
  }
};

struct qgen_mode_caller {
  static constexpr bool kAmaxPass = false, kOnePass = false, kTensorScale = true, kWorkspace = false;
  template <class C>
  __device__ __forceinline__ static qgen_tensor_form form(const qgen_quantize_args& args) {
    return {*args.tensor_scale};
  }
};

struct qgen_rounding_four_six;  // below: the roundings that read the P4 reciprocal table
template <bool kPer128>
struct qgen_rounding_ms_eden;
struct qgen_mode_one_pass {
  static constexpr bool kAmaxPass = false, kOnePass = true, kTensorScale = true, kWorkspace = true;
  // The P4 reciprocal table (qgen_p4_reciprocal) in shared memory: its reads index it by the proxy's significand,
  // which differs between lanes (8 words in 8 banks: no conflicts, where the constant bank would serialise them).
  // Called by every thread of the block, once, before the loop.
  // Only the four-over-six sweep and the per-16 MS-EDEN magnitude path read it (software E2M1, sm_90a); other
  // kernels get no table and no barrier.
  template <class C>
  __device__ __forceinline__ static qgen_proxy_form form(const qgen_quantize_args&) {
    if constexpr ((std::is_same<typename C::Rounding, qgen_rounding_four_six>::value ||
                   std::is_same<typename C::Rounding, qgen_rounding_ms_eden<false>>::value) &&
                  std::is_same<typename C::E2M1, qgen_e2m1_software>::value) {
      __shared__ __align__(16) uint32_t reciprocals[8];
      static_assert(QGEN_P4_RECIPROCALS[0] == 0x7f000000u && QGEN_P4_RECIPROCALS[7] == 0x7ef88889u, "the table below");
      if (threadIdx.x == 0) {
        reinterpret_cast<uint4*>(reciprocals)[0] = make_uint4(0x7f000000u, 0x7ef38e39u, 0x7eeccccdu, 0x7eea2e8cu);
        reinterpret_cast<uint4*>(reciprocals)[1] = make_uint4(0x7eeaaaabu, 0x7eed89d9u, 0x7ef24925u, 0x7ef88889u);
      }
      __syncthreads();
      return {reciprocals};
    } else {
      return {nullptr};
    }
  }
};

// MXFP4 (§5.8): no tensor scale; the MX roundings take no form.
struct qgen_no_form {};
struct qgen_mode_none {
  static constexpr bool kAmaxPass = false, kOnePass = false, kTensorScale = false, kWorkspace = false;
  template <class C>
  __device__ __forceinline__ static qgen_no_form form(const qgen_quantize_args&) {
    return {};
  }
};

// ---------------------------------------------------------------------------------------------------------------
// Outputs: codes and scales only; the plane outputs (qgen_quantize_plane.cuh) also write a bf16 plane (§6.6, §6.7).

struct qgen_output_nvfp4 {
  static constexpr bool kPlane = false, kDequantizedPlane = false;
  template <class C, class Codes, class Scales>
  __device__ __forceinline__ static void store(const qgen_quantize_args&, qgen_segment, const Codes&, const Scales&) {}
};

// ---------------------------------------------------------------------------------------------------------------
// Work orders (qgen_segment.cuh segments).

struct qgen_order_row_major {
  static constexpr bool kBlock16 = false;
  template <class C>
  __device__ __forceinline__ static qgen_segment segment(const qgen_quantize_args& args, int64_t item) {
    return qgen_segment_row_major<C::kElems, C::kLanes>(item, args.cols);
  }
  template <class C>
  using Walk = qgen_walk_row_major<C::kElems, C::kLanes>;
  template <class C>
  __device__ __forceinline__ static Walk<C> walk(const qgen_quantize_args& args, int64_t first, int64_t stride) {
    return Walk<C>(first, stride, args.cols);
  }
  template <class C>
  static int64_t items(int64_t rows, int64_t cols) {
    return qgen_items_row_major(rows, cols, C::kElems);
  }
};

struct qgen_order_column_major {
  static constexpr bool kBlock16 = false;
  template <class C>
  __device__ __forceinline__ static qgen_segment segment(const qgen_quantize_args& args, int64_t item) {
    return qgen_segment_column_major<C::kElems, C::kLanes>(item, args.rows);
  }
  template <class C>
  using Walk = qgen_walk_column_major<C::kElems, C::kLanes>;
  template <class C>
  __device__ __forceinline__ static Walk<C> walk(const qgen_quantize_args& args, int64_t first, int64_t stride) {
    return Walk<C>(first, stride, args.rows);
  }
  template <class C>
  static int64_t items(int64_t rows, int64_t cols) {
    return qgen_items_column_major(rows, cols, C::kElems, C::kLanes);
  }
};

// NUMERICS §5.7: the group amax is taken over a 16x16 block held by 16 lanes.
struct qgen_order_block16 {
  static constexpr bool kBlock16 = true;
  template <class C>
  __device__ __forceinline__ static qgen_segment segment(const qgen_quantize_args& args, int64_t item) {
    return qgen_segment_block16<C::kElems>(item, args.cols);
  }
  template <class C>
  using Walk = qgen_walk_block16<C::kElems>;
  template <class C>
  __device__ __forceinline__ static Walk<C> walk(const qgen_quantize_args& args, int64_t first, int64_t stride) {
    return Walk<C>(first, stride, args.cols);
  }
  template <class C>
  static int64_t items(int64_t rows, int64_t cols) {
    return qgen_items_block16(rows, cols, C::kElems);
  }
};

// ---------------------------------------------------------------------------------------------------------------
// Input paths. kTile: staged through shared memory per block iteration (a block-uniform loop); kPrefetch: the next
// iteration's 16-byte loads are in flight during this one's arithmetic; kNvfp4: the input is an NVFP4 tensor read
// transposed (§5.9), t_in = *in_tensor_scale.

template <bool Tile, bool Prefetch, bool Nvfp4, bool Transposed>
struct qgen_input {
  static constexpr bool kTile = Tile, kPrefetch = Prefetch, kNvfp4 = Nvfp4, kTransposed = Transposed;
  template <class C>
  using TileOf = typename std::conditional<Nvfp4, qgen_nvfp4_transposed_tile<C::kElems, C::kLanes, C::kThreads>,
                                           qgen_transposed_tile<C::kElems, C::kLanes, C::kThreads>>::type;

  // block: the segment of the block's first item (column-major: its unit's first column and its first row).
  // kPrefetched: the loop prefetches the tile (qgen_tile_prefetch), which reads the NVFP4 scales as aligned words.
  template <class C, bool kPrefetched>
  __device__ __forceinline__ static bool tile_usable(const qgen_quantize_args& args, float t_in, int64_t block_item,
                                                     int64_t items, qgen_segment block) {
    if constexpr (Nvfp4)
      return qgen_nvfp4_tile_usable<C::kElems, C::kLanes, C::kThreads, typename C::ScaleLayout, kPrefetched>(
          args.in_codes, args.in_scales, t_in, block_item, items, args.rows, args.cols, block);
    else
      return qgen_transposed_tile_usable<C::kElems, C::kLanes, C::kThreads>(args.x, block_item, items, args.rows,
                                                                            args.cols, block);
  }

  // Loop-invariant (column-major order, checked once): true when the tile of every block whose items all exist is
  // usable (qgen_nvfp4_tile_always_usable); the bf16 tile keeps the per-block check.
  template <class C, bool kPrefetched>
  __device__ __forceinline__ static bool tile_always_usable(const qgen_quantize_args& args, float t_in) {
    if constexpr (Nvfp4)
      return qgen_nvfp4_tile_always_usable<C::kElems, C::kLanes, C::kThreads, typename C::ScaleLayout, kPrefetched>(
          args.in_codes, args.in_scales, t_in, args.rows, args.cols);
    else
      return false;
  }

  // Before the loop, every thread (the staged NVFP4 tile's per-thread constants; nothing for bf16).
  template <class C>
  __device__ __forceinline__ static void init_tile(const qgen_quantize_args& args, int thread,
                                                   typename TileOf<C>::Element* tile) {
    if constexpr (Nvfp4)
      qgen_nvfp4_tile_init<C::kElems, C::kLanes, C::kThreads, typename C::ScaleLayout>(args.rows, thread, tile);
  }

  // The prefetched tile (qgen_tile_prefetch): issues the cp.async copies of the thread's raw pieces of the block's
  // tile into one raw buffer (TileOf<C>::kRawVecs uint4). thread = threadIdx.x.
  template <class C>
  __device__ __forceinline__ static void fetch_tile(const qgen_quantize_args& args, qgen_segment block, int thread,
                                                    const typename TileOf<C>::Element* tile, uint4* raw) {
    if constexpr (Nvfp4)
      qgen_fetch_nvfp4_transposed_tile<C::kElems, C::kLanes, C::kThreads, typename C::ScaleLayout>(
          args.in_codes, args.in_scales, args.rows, block, thread, tile, raw);
    else
      qgen_fetch_bf16_transposed_tile<C::kElems, C::kLanes, C::kThreads>(args.x, args.rows, block, thread, raw);
  }

  // The staged values come sign-flipped where bit i of piece_signs is set (the thread's piece i; qgen_for_each_segment
  // sets the bits from the rotation's signs). thread = threadIdx.x. kPrefetched: the raw pieces are read from `raw`
  // (fetch_tile's buffer, waited for), else from global memory.
  template <class C, bool kPrefetched>
  __device__ __forceinline__ static void load_tile(const qgen_quantize_args& args, float t_in, qgen_segment block,
                                                   uint32_t piece_signs, int thread, const uint4* raw,
                                                   typename TileOf<C>::Element* tile, float (&x)[C::kElems]) {
    if constexpr (Nvfp4)
      qgen_load_nvfp4_transposed_tile<C::kElems, C::kLanes, C::kThreads, typename C::ScaleLayout, kPrefetched>(
          args.in_codes, args.in_scales, t_in, args.rows, block, piece_signs, thread, raw, tile, x);
    else
      qgen_load_bf16_transposed_tile<C::kElems, C::kLanes, C::kThreads, kPrefetched>(args.x, args.rows, block,
                                                                                     piece_signs, thread, raw, tile, x);
  }

  template <class C>
  __device__ __forceinline__ static void load(const qgen_quantize_args& args, qgen_segment s, bool active, float t_in,
                                              float (&x)[C::kElems]) {
    if constexpr (Nvfp4)
      qgen_load_nvfp4_transposed<C::kElems, typename C::ScaleLayout>(args.in_codes, args.in_scales, t_in, args.rows,
                                                                     args.cols, s, active, x);
    else if constexpr (Transposed)
      qgen_load_bf16_transposed<C::kElems>(args.x, args.rows, args.cols, s, active, x);
    else
      qgen_load_bf16_row<C::kElems>(args.x, args.cols, s, active, x);
  }
};

using qgen_input_bf16_row = qgen_input<false, false, false, false>;
using qgen_input_bf16_row_prefetch = qgen_input<false, true, false, false>;
using qgen_input_bf16_transposed = qgen_input<false, false, false, true>;
using qgen_input_bf16_transposed_tile = qgen_input<true, false, false, true>;
using qgen_input_nvfp4_transposed = qgen_input<false, false, true, true>;
using qgen_input_nvfp4_transposed_tile = qgen_input<true, false, true, true>;

// ---------------------------------------------------------------------------------------------------------------
// Rotations (§4): the sign vector and the rotation of a thread's segment.

struct qgen_rotation_none {
  __device__ __forceinline__ static uint4 signs(const qgen_quantize_args&) { return make_uint4(0u, 0u, 0u, 0u); }
  template <class C>
  __device__ __forceinline__ static void rotate(float (&)[C::kElems], uint4, qgen_segment, bool = false) {}
};

struct qgen_rotation_hadamard {
  __device__ __forceinline__ static uint4 signs(const qgen_quantize_args& args) {
    return qgen_hadamard_signs(args.sign_seed);
  }
  template <class C>
  __device__ __forceinline__ static void rotate(float (&x)[C::kElems], uint4 signs, qgen_segment s,
                                                bool signs_applied = false) {
    qgen_hadamard_segment<C::kElems, C::kHadamardSize>(x, signs, s.lane_in_unit % C::kHadamardLanes, C::inv_sqrt_n(),
                                                       signs_applied);
  }
};

// ---------------------------------------------------------------------------------------------------------------
// Roundings (§5.3-§5.8): one thread's groups into codes and stored values (scale bytes, or one-pass proxies).

// The group amax (§1.4), over a 16x16 block when the order says so (§5.7).
template <class C, int N>
__device__ __forceinline__ float qgen_amax_of_group(const float* xg) {
  // unrotated bf16 rows: each pair of values is one loaded word (qgen_group_amax_bf16)
  constexpr bool kBf16Pairs = !C::Input::kNvfp4 && !C::Input::kTransposed && C::kHadamardSize == 0;
  float amax = kBf16Pairs ? qgen_group_amax_bf16<N>(xg) : qgen_group_amax<N>(xg);
  if constexpr (C::Order::kBlock16) amax = qgen_block16x16_amax(amax);
  return amax;
}

// Roundings with one result per group: `group` gives the result of one group.
template <class Rounding>
struct qgen_rounding_per_group {
  template <class C, class Form>
  __device__ __forceinline__ static void quantize(const float (&x)[C::kElems], qgen_segment s,
                                                  const qgen_quantize_args& args, const qgen_philox_keys& keys,
                                                  Form form, uint2 (&codes)[C::kCodeWords],
                                                  uint32_t (&stored)[C::kGroupsPerThread]) {
#pragma unroll
    for (int g = 0; g < C::kGroupsPerThread; ++g) {
      const float* xg = x + C::kGroupSize * g;
      const float amax = qgen_amax_of_group<C, C::kGroupSize>(xg);
      const auto result = Rounding::template group<C>(xg, amax, form, args, keys, s, g);
      Rounding::template put<C>(result, g, codes, stored);
    }
  }
  // NVFP4 results: 16 codes and the stored value.
  template <class C, class Result>
  __device__ __forceinline__ static void put(const Result& result, int g, uint2 (&codes)[C::kCodeWords],
                                             uint32_t (&stored)[C::kGroupsPerThread]) {
    codes[g] = result.codes;
    stored[g] = qgen_stored(result);
  }
  template <class C>
  __device__ __forceinline__ static float target_ref() {
    return C::target();
  }
  static constexpr bool kCorrectsScales = false;
};

// Unrotated bf16 rows: each pair of values is one loaded word (qgen_group_amax_bf16, qgen_sign_nibbles8).
template <class C>
constexpr bool qgen_bf16_pairs = !C::Input::kNvfp4 && !C::Input::kTransposed && C::kHadamardSize == 0;

// Every element of a group finite (the RTN / SR magnitude paths), from the keys the group amax computes.
template <class C, int N>
__device__ __forceinline__ bool qgen_group_finite(const float* xg) {
  return qgen_bf16_pairs<C> ? qgen_group_all_finite_bf16<N>(xg) : qgen_group_all_finite<N>(xg);
}

struct qgen_rounding_rtn : qgen_rounding_per_group<qgen_rounding_rtn> {
  template <class C, class Form>
  __device__ __forceinline__ static typename Form::Result group(const float* xg, float amax, Form form,
                                                                const qgen_quantize_args&, const qgen_philox_keys&,
                                                                qgen_segment, int) {
    return qgen_rtn_group<typename C::E2M1, qgen_bf16_pairs<C>>(xg, amax, C::target(), form,
                                                                qgen_group_finite<C, C::kGroupSize>(xg));
  }
};

struct qgen_rounding_sr : qgen_rounding_per_group<qgen_rounding_sr> {
  template <class C, class Form>
  __device__ __forceinline__ static typename Form::Result group(const float* xg, float amax, Form form,
                                                                const qgen_quantize_args& args,
                                                                const qgen_philox_keys& keys, qgen_segment s, int g) {
    // The precomputed round keys in unrotated kernels; rotated ones keep the seed's form (the same words): with the
    // keys, tetrajet2_e_sr_rht32 spilled 28 bytes at its 64-register cap on sm_90a (ptxas 13.0).
    const uint64_t group = qgen_group_index<C>(s, g, args.cols);
    const bool finite = qgen_group_finite<C, C::kGroupSize>(xg);
    if constexpr (C::kHadamardSize == 0)
      return qgen_sr_group<typename C::E2M1, qgen_bf16_pairs<C>>(xg, amax, C::target(), form, keys, group, finite);
    else
      return qgen_sr_group<typename C::E2M1, qgen_bf16_pairs<C>>(xg, amax, C::target(), form, args.seed, group, finite);
  }
};

struct qgen_rounding_four_six : qgen_rounding_per_group<qgen_rounding_four_six> {
  template <class C, class Form>
  __device__ __forceinline__ static typename Form::Result group(const float* xg, float amax, Form form,
                                                                const qgen_quantize_args&, const qgen_philox_keys&,
                                                                qgen_segment, int) {
    return qgen_four_six_group<typename C::E2M1>(xg, amax, C::target6(), C::target4(), form);
  }
  template <class C>
  __device__ __forceinline__ static float target_ref() {
    return C::target6();
  }
};

// MXFP4 (§5.8): 32-groups, two code words and a UE8M0 byte per group.
template <class Rounding>
struct qgen_rounding_mx : qgen_rounding_per_group<Rounding> {
  template <class C>
  __device__ __forceinline__ static void put(const qgen_mx_group_result& result, int g, uint2 (&codes)[C::kCodeWords],
                                             uint32_t (&stored)[C::kGroupsPerThread]) {
    codes[2 * g] = result.codes[0];
    codes[2 * g + 1] = result.codes[1];
    stored[g] = result.scale;
  }
};

struct qgen_rounding_mx_rtn : qgen_rounding_mx<qgen_rounding_mx_rtn> {
  template <class C>
  __device__ __forceinline__ static qgen_mx_group_result group(const float* xg, float amax, qgen_no_form,
                                                               const qgen_quantize_args&, const qgen_philox_keys&,
                                                               qgen_segment, int) {
    return qgen_mx_rtn_group<typename C::E2M1>(xg, amax, C::target());
  }
};

struct qgen_rounding_mx_sr : qgen_rounding_mx<qgen_rounding_mx_sr> {
  template <class C>
  __device__ __forceinline__ static qgen_mx_group_result group(const float* xg, float amax, qgen_no_form,
                                                               const qgen_quantize_args& args,
                                                               const qgen_philox_keys& keys, qgen_segment s, int g) {
    return qgen_mx_sr_group(xg, amax, C::target(), keys, qgen_group_index<C>(s, g, args.cols));
  }
};

// NUMERICS §5.6: RTN codes and the products v_i^2, v_i q_i of every group, then the correction S per 16-group or
// (kPer128) per 128-chunk from tree128 of the chunk's products, shared by its 8 groups; per-128 sums are taken in
// the input domain.
template <bool kPer128>
struct qgen_rounding_ms_eden {
  // Finiteness tested before the per-16 magnitude path (qgen_ms_eden_group16) where the input is not staged (the
  // row-input E, compiled for 80 registers: dsl/catalog.ts EDEN_ROW_TILING); the staged kernels fit 80 without it.
  template <class C>
  static constexpr bool kFiniteFirst = !C::Input::kTile;
  template <class C, class Form>
  __device__ __forceinline__ static void quantize(const float (&x)[C::kElems], qgen_segment s,
                                                  const qgen_quantize_args& args, const qgen_philox_keys& keys,
                                                  Form form, uint2 (&codes)[C::kCodeWords],
                                                  uint32_t (&stored)[C::kGroupsPerThread]) {
    if constexpr (kPer128) {
      float vv[C::kElems], vq[C::kElems];
      typename Form::Result group[C::kGroupsPerThread];
#pragma unroll
      for (int g = 0; g < C::kGroupsPerThread; ++g) {
        const float* xg = x + 16 * g;
        const float amax = qgen_amax_of_group<C, 16>(xg);
        group[g] = qgen_ms_eden_codes<typename C::E2M1, kPer128>(xg, amax, C::target(), form, vv + 16 * g, vq + 16 * g);
        codes[g] = group[g].codes;
      }
      const float correction =
          qgen_eden_ratio(qgen_chunk_tree<C::kElems, C::kLanes>(vv), qgen_chunk_tree<C::kElems, C::kLanes>(vq));
#pragma unroll
      for (int g = 0; g < C::kGroupsPerThread; ++g)
        stored[g] = qgen_ms_eden_corrected(group[g], correction, keys, qgen_group_index<C>(s, g, args.cols));
    } else {
      // Per-16: each group's sums and corrected value right after its codes, so only one group's products are live.
#pragma unroll
      for (int g = 0; g < C::kGroupsPerThread; ++g) {
        float sum_vv, sum_vq;
        const float* xg = x + 16 * g;
        const float amax = qgen_amax_of_group<C, 16>(xg);
        const typename Form::Result group =
            qgen_ms_eden_group16<typename C::E2M1, kFiniteFirst<C>>(xg, amax, C::target(), form, sum_vv, sum_vq);
        codes[g] = group.codes;
        const float correction = qgen_eden_ratio(sum_vv, sum_vq);
        stored[g] = qgen_ms_eden_corrected(group, correction, keys, qgen_group_index<C>(s, g, args.cols));
      }
    }
  }
  template <class C>
  __device__ __forceinline__ static float target_ref() {
    return C::target();
  }
  static constexpr bool kCorrectsScales = true;  // pass B rounds small corrected proxies stochastically (§5.6)
};

// ---------------------------------------------------------------------------------------------------------------
// Whether a staged tile's next-iteration raw pieces are prefetched with cp.async (qgen_for_each_segment): where the
// tile, its two raw buffers and the per-thread next-block words, with up to 1 KB of the kernel's other shared words,
// fit the 48 KB of static shared memory and still let kMinBlocksPerSm blocks (the register-bound occupancy) be
// resident in the SM's kSmemPerSm (1 KB per block reserved by the driver). In the catalog: the 128-thread MS-EDEN
// tilings on sm_90a / sm_100a (not in sm_120a's 100 KB) and the 256-thread NVFP4 requant on all three; not the
// 256-thread bf16 tiles (two 16 KB raw buffers pass 48 KB).
template <class C>
__host__ __device__ constexpr bool qgen_tile_prefetch() {
  using Tile = typename C::Input::template TileOf<C>;
  constexpr int kBytes =
      Tile::kElems * static_cast<int>(sizeof(typename Tile::Element)) + 2 * 16 * Tile::kRawVecs + 16 * C::kThreads;
  return kBytes + 1024 <= 48 * 1024 && (kBytes + 2048) * C::kMinBlocksPerSm <= C::kSmemPerSm;
}

// ---------------------------------------------------------------------------------------------------------------
// The grid-stride loop over work items: calls body(s, active, x) with the thread's kElems input values of output
// row s.row from column s.k0, rotated when the config rotates. Whole warps advance together, so the lanes of a chunk
// always exchange values with each other; a staged input runs a block-uniform loop (the tile load synchronises the
// block): every warp runs every iteration, lanes past the end are inactive.
// kRecomputeLoopState: per-thread loop state re-read in every iteration instead of kept in registers (see the two
// loops below; the quantize passes follow the plan, C::kLoopStateRecomputed; the amax pass, with few registers live,
// keeps the registers).
template <class C, bool kRecomputeLoopState, class Body>
__device__ __forceinline__ void qgen_for_each_segment(const qgen_quantize_args& args, int64_t items, Body&& body) {
  using Input = typename C::Input;
  const uint4 signs = C::Rotation::signs(args);
  float t_in = 1.0f;
  if constexpr (Input::kNvfp4) t_in = *args.in_tensor_scale;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * C::kThreads + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * C::kThreads;
  if constexpr (Input::kTile) {
    using Tile = typename Input::template TileOf<C>;
    __shared__ __align__(16) typename Tile::Element tile[Tile::kElems];
    // NUMERICS §4.1 applied while staging: each of the thread's tile pieces is one column of the unit, i.e. one chunk
    // position with one sign, the same in every iteration (the rotation then skips its own flip). Iterations that
    // read x directly take the signs from shared memory (not a register kept live through the loop). With
    // kRecomputeLoopState the thread's piece signs are read from shared memory too, and the thread index in place
    // (qgen_thread_index), in every iteration: fewer registers live through the loop, a few more instructions.
    constexpr bool kRecomputed = kRecomputeLoopState;
    uint32_t piece_signs = 0;
    __shared__ uint32_t thread_piece_signs[kRecomputed && C::kHadamardSize > 0 ? C::kThreads : 1];
    __shared__ uint4 direct_signs;
    // The block's first segment locates the tile and, when the tile is used, every thread's segment: one block-uniform
    // division per iteration. Column-major order with block_item / L and rows below 2^32 (the usual case): by a
    // multiply-high with constants made once (qgen_udiv32, d = rows; d = 0 marks the general division below). The
    // fourth word: the tile is usable for every block whose items all exist (Input::tile_always_usable).
    static_assert(C::kThreads % C::kLanes == 0, "a block's first item is a unit's first lane");
    constexpr bool kColumnMajor = std::is_same_v<typename C::Order, qgen_order_column_major>;
    // the prefetch (below): in the quantize passes (kRecomputeLoopState, the plan's loop state) only
    constexpr bool kPrefetch = kRecomputeLoopState && qgen_tile_prefetch<C>();
    __shared__ uint4 block_divisor;
    if (threadIdx.x == 0) {
      const bool fast = kColumnMajor && (static_cast<uint64_t>(args.rows) >> 32) == 0 &&
                        (static_cast<uint64_t>(items - 1) / C::kLanes) >> 32 == 0;
      const qgen_udiv32 divisor = qgen_udiv32::of(fast ? static_cast<uint32_t>(args.rows) : 1u);
      const bool always = fast && Input::template tile_always_usable<C, kPrefetch>(args, t_in);
      block_divisor = make_uint4(fast ? divisor.d : 0u, divisor.m, divisor.shifts, always ? 1u : 0u);
    }
    Input::template init_tile<C>(args, static_cast<int>(threadIdx.x), tile);
    if constexpr (C::kHadamardSize > 0) {
      const int thread = static_cast<int>(threadIdx.x);
#pragma unroll
      for (int i = 0; i < Tile::kPiecesPerThread; ++i)
        piece_signs |= qgen_sign_bit(signs, Tile::column(i, thread) % (C::kHadamardSize > 0 ? C::kHadamardSize : 1))
                       << i;
      if constexpr (kRecomputed) thread_piece_signs[thread] = piece_signs;
      if (threadIdx.x == 0) direct_signs = signs;
    }
    // The segment of the block whose items start at block_item (< items) and whether it uses the tile.
    const auto locate = [&](int64_t block_item, qgen_segment& block) -> bool {
      // volatile: read in every iteration, not kept in registers through the loop
      const volatile uint32_t* const divisor = reinterpret_cast<const volatile uint32_t*>(&block_divisor);
      const uint32_t d = divisor[0];
      if (kColumnMajor && d != 0) {
        // qgen_segment_column_major of block_item (a multiple of L: lane 0): (block_item / L) divmod rows = unit, row
        const uint32_t n = static_cast<uint32_t>(static_cast<uint64_t>(block_item) / C::kLanes);
        const uint32_t unit = qgen_udiv32::quotient(n, divisor[1], divisor[2]);
        block = {static_cast<int64_t>(n - unit * d), static_cast<int64_t>(unit) * (C::kElems * C::kLanes), 0};
      } else {
        block = C::Order::template segment<C>(args, block_item);
      }
      return kColumnMajor && Input::kNvfp4 && divisor[3] != 0
                 ? block_item + C::kThreads <= items
                 : Input::template tile_usable<C, kPrefetch>(args, t_in, block_item, items, block);
    };
    // The prefetch (qgen_tile_prefetch): each iteration first issues the cp.async copies of the next iteration's raw
    // pieces (when that block uses the tile) into the other raw buffer and commits them as one group (empty otherwise),
    // then waits for all but that group: its own pieces, issued an iteration earlier, are in its buffer. The buffer
    // index is the iteration's parity. Each thread reads back only the raw pieces it copied, so the buffers need no
    // barrier: a buffer is written again in the iteration after the one that read it, by the same thread. The next
    // block's segment and tile decision (locate, needed for the copies) go to the thread's word of next_block, where
    // the next iteration reads them instead of locating its block again (and not kept in registers through the body):
    // {row, k0}, row -1 when the block does not use the tile. In the quantize passes only: the amax pass keeps the
    // direct loads (with the prefetch, ptxas 13.0 gave tetrajet2_wt_rq_sr_rht32's amax pass 95 registers instead of
    // 79 on sm_100a, one resident block fewer).
    constexpr int kRawVecs = kPrefetch ? Tile::kRawVecs : 0;
    __shared__ __align__(16) uint4 raw[kPrefetch ? 2 * kRawVecs : 1];
    __shared__ longlong2 next_block[kPrefetch ? C::kThreads : 1];
    // volatile: stored and read back through shared memory in every iteration, not forwarded in registers
    volatile longlong2* const next_blocks = next_block;
    const auto prefetch = [&](int64_t block_item, uint32_t buffer, int thread) {
      if constexpr (kPrefetch) {
        qgen_segment block{-1, 0, 0};
        if (block_item < items && locate(block_item, block))
          Input::template fetch_tile<C>(args, block, thread, tile, raw + buffer * kRawVecs);
        else
          block.row = -1;
        qgen_cp_async_commit();
        next_blocks[thread].x = block.row;
        next_blocks[thread].y = block.k0;
      }
    };
    __syncthreads();
    prefetch(static_cast<int64_t>(blockIdx.x) * C::kThreads, 0u, static_cast<int>(threadIdx.x));
    uint32_t buffer = 0;  // the raw buffer of this iteration's pieces
    for (int64_t block_item = static_cast<int64_t>(blockIdx.x) * C::kThreads; block_item < items;
         block_item += stride, buffer ^= 1u) {
      const int thread = kRecomputed ? qgen_thread_index() : static_cast<int>(threadIdx.x);
      qgen_segment block;
      bool use_tile;
      if constexpr (kPrefetch) {
        block = {next_blocks[thread].x, next_blocks[thread].y, 0};  // the previous iteration's (or the prologue's)
        use_tile = block.row >= 0;
        prefetch(block_item + stride, buffer ^ 1u, thread);
      } else {
        use_tile = locate(block_item, block);
      }
      const int64_t item = block_item + thread;
      // A usable tile's kRows rows lie in one unit: the thread's segment follows from the block's.
      const int lane = static_cast<int>(static_cast<uint32_t>(thread) % C::kLanes);  // unsigned: no sign fix-ups
      const qgen_segment s = use_tile ? qgen_segment{block.row + static_cast<uint32_t>(thread) / C::kLanes,
                                                     block.k0 + lane * C::kElems, lane}
                                      : C::Order::template segment<C>(args, item);
      const bool active = item < items && s.row < args.rows;
      float x[C::kElems];
      if (use_tile) {
        const uint32_t signs_of_pieces = kRecomputed && C::kHadamardSize > 0 ? thread_piece_signs[thread] : piece_signs;
        if constexpr (kPrefetch) qgen_cp_async_wait<1>();  // this iteration's pieces (the next ones may be in flight)
        Input::template load_tile<C, kPrefetch>(args, t_in, block, signs_of_pieces, thread, raw + buffer * kRawVecs,
                                                tile, x);
      } else {
        Input::template load<C>(args, s, active, t_in, x);
      }
      uint4 iteration_signs = make_uint4(0u, 0u, 0u, 0u);
      if constexpr (C::kHadamardSize > 0)
        if (!use_tile) iteration_signs = direct_signs;
      C::Rotation::template rotate<C>(x, iteration_signs, s, use_tile);
      body(s, active, x);
    }
    // the last group is empty (it prefetched past the end); waiting costs nothing and keeps the exit safe
    if constexpr (kPrefetch) qgen_cp_async_wait<0>();
  } else {
    // With kRecomputeLoopState (not with a prefetch, which needs the next segment early): the walk advances after
    // the body (its segment is the body's, not a second copy kept live through it), its step and the rotation signs
    // are re-read from shared memory and the lane in place, in every iteration.
    constexpr bool kRecomputed = kRecomputeLoopState && !Input::kPrefetch;
    auto walk = C::Order::template walk<C>(args, first, stride);  // the segment of item, then of item + stride, ...
    __shared__ qgen_walk_step shared_step;
    __shared__ uint4 shared_signs;
    if constexpr (kRecomputed) {
      if (threadIdx.x == 0) {
        shared_step = walk.step();  // the same in every thread: stride is the grid's
        shared_signs = signs;
      }
      __syncthreads();
    }
    uint4 raw[Input::kPrefetch ? C::kElems / 8 : 1];
    if constexpr (Input::kPrefetch) {
      const qgen_segment s = walk.segment();
      qgen_fetch_bf16_row<C::kElems>(args.x, args.cols, s, first < items && s.row < args.rows, raw);
    }
    for (int64_t warp_item = static_cast<int64_t>(blockIdx.x) * C::kThreads + (threadIdx.x & ~31u); warp_item < items;
         warp_item += stride) {
      const int lane = (kRecomputed ? qgen_thread_index() : static_cast<int>(threadIdx.x)) & 31;
      const int64_t item = warp_item + lane;
      const qgen_segment s = walk.segment();
      if constexpr (!kRecomputed) walk.advance();
      const bool active = item < items && s.row < args.rows;
      float x[C::kElems];
      if constexpr (Input::kPrefetch) {
        qgen_unpack_bf16_row<C::kElems>(raw, x);
        const int64_t next = item + stride;
        const qgen_segment next_s = walk.segment();
        qgen_fetch_bf16_row<C::kElems>(args.x, args.cols, next_s, next < items && next_s.row < args.rows, raw);
      } else {
        Input::template load<C>(args, s, active, t_in, x);
      }
      if constexpr (kRecomputed) {
        // volatile: read in every iteration, not hoisted out of the loop
        const volatile uint32_t* const words = reinterpret_cast<const volatile uint32_t*>(&shared_signs);
        C::Rotation::template rotate<C>(x, make_uint4(words[0], words[1], words[2], words[3]), s);
      } else {
        C::Rotation::template rotate<C>(x, signs, s);
      }
      body(s, active, x);
      if constexpr (kRecomputed) {
        const volatile int64_t* const step = reinterpret_cast<const volatile int64_t*>(&shared_step);
        walk.advance(qgen_walk_step{step[0], step[1]});
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Passes

// Pass 1 (§5.1 computed): amax of the (rotated) tensor into the workspace max word.
template <class C>
__device__ __forceinline__ void qgen_amax_pass(const qgen_quantize_args& args, int64_t items) {
  float local_max = 0.0f;
  qgen_for_each_segment<C, false>(args, items, [&](qgen_segment, bool, const float(&x)[C::kElems]) {
    // inactive lanes and groups hold zeros
    constexpr bool kBf16Pairs = !C::Input::kNvfp4 && !C::Input::kTransposed && C::kHadamardSize == 0;
    local_max = fmaxf(local_max, kBf16Pairs ? qgen_group_amax_bf16<C::kElems>(x) : qgen_group_amax<C::kElems>(x));
  });
  qgen_block_max_to_global(local_max, qgen_max_word(args.workspace));
}

// The scale bytes of a segment's groups. A segment starts at a group index that is a multiple of kGroupsPerThread,
// and groups kb, kb + 1 (kb even) of a row are adjacent bytes in both layouts (§7): a whole pair is one 16-bit
// store where its address is even (one layout offset instead of two), else byte stores.
template <class C>
__device__ __forceinline__ void qgen_store_scales(const qgen_quantize_args& args, qgen_segment s,
                                                  const uint32_t (&stored)[C::kGroupsPerThread]) {
  const int64_t groups_per_row = args.cols / C::kGroupSize;
  if constexpr (C::kGroupsPerThread == 2) {
    uint8_t* const pair = args.scales + C::ScaleLayout::offset(s.row, s.k0 / C::kGroupSize, groups_per_row);
    if (s.k0 + 2 * C::kGroupSize <= args.cols && (reinterpret_cast<uintptr_t>(pair) & 1u) == 0) {
      *reinterpret_cast<uint16_t*>(pair) = static_cast<uint16_t>(stored[0] | (stored[1] << 8));
      return;
    }
  }
#pragma unroll
  for (int g = 0; g < C::kGroupsPerThread; ++g) {
    if (s.k0 + C::kGroupSize * g >= args.cols) break;
    args.scales[C::ScaleLayout::offset(s.row, s.k0 / C::kGroupSize + g, groups_per_row)] =
        static_cast<uint8_t>(stored[g]);
  }
}

// The quantize pass (§5): codes and scales, or (one-pass pass A) codes, proxies and their maximum. keys: the round
// keys of args.seed (qgen_philox_key_schedule, computed by the host entry), read by every draw of the pass.
template <class C>
__device__ __forceinline__ void qgen_quantize_pass(const qgen_quantize_args& args, int64_t items,
                                                   const qgen_philox_keys& keys) {
  using Mode = typename C::Mode;
  if constexpr (!Mode::kOnePass)
    qgen_zero_scale_padding<typename C::ScaleLayout>(args.scales, args.rows, args.cols / C::kGroupSize);
  const auto form = Mode::template form<C>(args);
  float local_max = 0.0f;
  constexpr bool kRecompute = C::kLoopStateRecomputed;
  qgen_for_each_segment<C, kRecompute>(args, items, [&](qgen_segment s, bool active, const float(&x)[C::kElems]) {
    uint2 codes[C::kCodeWords];
    uint32_t stored[C::kGroupsPerThread];  // scale bytes, or c_g as bf16 bits (one-pass)
    C::Rounding::template quantize<C>(x, s, args, keys, form, codes, stored);
    if (active) {
      qgen_store_codes<C::kElems>(args.codes, kRecompute ? qgen_reread(args.cols) : args.cols, s, codes);
      if constexpr (!Mode::kOnePass) C::Output::template store<C>(args, s, codes, stored);
      if constexpr (Mode::kOnePass) {
        // cols re-read for the proxy index in row loops (four-over-six at 64 registers spills 4 bytes without it;
        // the staged-tile requant at 80 spills 8 bytes with it: ptxas 13.0)
        const int64_t cols = kRecompute && !C::Input::kTile ? qgen_reread(args.cols) : args.cols;
#pragma unroll
        for (int g = 0; g < C::kGroupsPerThread; ++g) {
          if (s.k0 + C::kGroupSize * g >= cols) break;
          qgen_proxies(args.workspace)[qgen_group_index<C>(s, g, cols)] = static_cast<uint16_t>(stored[g]);
          local_max = fmaxf(local_max, qgen_proxy_value(stored[g]));
        }
      } else {
        qgen_store_scales<C>(args, s, stored);
      }
    }
    // every lane of the warp: lane pairs exchange code words and proxies (store_pass_a), inactive lanes store nothing
    if constexpr (Mode::kOnePass && C::Output::kDequantizedPlane) {
      const int64_t cols = kRecompute && !C::Input::kTile ? qgen_reread(args.cols) : args.cols;
      C::Output::template store_pass_a<C>(args, cols, s, active, codes, stored);
    }
  });
  if constexpr (Mode::kOnePass) qgen_block_max_to_global(local_max, qgen_max_word(args.workspace));
}

// Pass B (§5.1 one-pass): the power-of-two tensor scale from the maximum proxy, then every group's scale.
// A thread takes 8 consecutive groups of the flattened [rows, Kb] proxy array per grid step: one 16-byte proxy load
// and, where Kb is a multiple of 4 and the scale array 4-byte aligned, one 32-bit store per 4 groups (a row's groups
// 4j..4j+3 are 4 consecutive bytes in both layouts, §7); otherwise (and for a partial last chunk) byte stores.
constexpr int QGEN_FINALIZE_GROUPS = 8;  // groups per thread per grid step (scripts/sass-count.mjs reads this line)
static_assert(QGEN_FINALIZE_GROUPS == 8, "the step is one 16-byte proxy load and two 32-bit scale words");

template <class C>
__device__ __forceinline__ uint32_t qgen_finalize_group(uint32_t proxy_bf16, float t, float inv_t,
                                                        const qgen_quantize_args& args, int64_t group) {
  if constexpr (C::Rounding::kCorrectsScales)
    return qgen_finalize_proxy_eden(proxy_bf16, t, inv_t, args.seed, static_cast<uint64_t>(group));
  else
    return qgen_finalize_proxy_rn(proxy_bf16, t, inv_t);
}

// qgen_finalize_group without a Philox draw: its byte wherever `stochastic` comes back false (always with RN scales);
// the caller finalizes the others with qgen_finalize_group.
template <class C>
__device__ __forceinline__ uint32_t qgen_finalize_group_deterministic(uint32_t proxy_bf16, float t, float inv_t,
                                                                      bool& stochastic) {
  if constexpr (C::Rounding::kCorrectsScales) {
    return qgen_finalize_proxy_eden_deterministic(proxy_bf16, t, inv_t, stochastic);
  } else {
    stochastic = false;
    return qgen_finalize_proxy_rn(proxy_bf16, t, inv_t);
  }
}

// The final scale bytes of groups i0 .. i0 + 7 (past `groups`: a zero group's, never stored).
template <class C>
__device__ __forceinline__ void qgen_finalize_step_scales(const qgen_quantize_args& args, const uint16_t* proxy,
                                                          int64_t i0, int64_t groups, float t, float inv_t,
                                                          uint32_t (&scale)[QGEN_FINALIZE_GROUPS]) {
  uint32_t proxies[QGEN_FINALIZE_GROUPS];
  if (i0 + QGEN_FINALIZE_GROUPS <= groups) {
    const uint4 raw = __ldg(reinterpret_cast<const uint4*>(proxy + i0));  // i0 % 8 == 0: 16-byte aligned
    const uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      proxies[2 * j] = words[j] & 0xFFFFu;
      proxies[2 * j + 1] = words[j] >> 16;
    }
  } else {
#pragma unroll
    for (int j = 0; j < QGEN_FINALIZE_GROUPS; ++j) proxies[j] = i0 + j < groups ? proxy[i0 + j] : QGEN_ZERO_GROUP_PROXY;
  }
#pragma unroll
  for (int j = 0; j < QGEN_FINALIZE_GROUPS; ++j) scale[j] = qgen_finalize_group<C>(proxies[j], t, inv_t, args, i0 + j);
}

// Stores the scale bytes of groups i0 .. i0 + 7 (those < groups); walk = (row, group) of i0.
template <class C>
__device__ __forceinline__ void qgen_store_finalized_scales(const qgen_quantize_args& args, int64_t i0, int64_t groups,
                                                            int64_t groups_per_row, bool word_stores,
                                                            const qgen_item_walk<1>& walk,
                                                            const uint32_t (&scale)[QGEN_FINALIZE_GROUPS]) {
  if (word_stores && i0 + QGEN_FINALIZE_GROUPS <= groups) {
    int64_t row = walk.quotient, group = walk.remainder;  // group % 4 == 0: each quad is in one row
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      *reinterpret_cast<uint32_t*>(args.scales + C::ScaleLayout::offset(row, group, groups_per_row)) =
          scale[4 * h] | (scale[4 * h + 1] << 8) | (scale[4 * h + 2] << 16) | (scale[4 * h + 3] << 24);
      group += 4;  // <= groups_per_row, a multiple of 4
      if (group == groups_per_row) {
        group = 0;
        ++row;
      }
    }
  } else {
#pragma unroll
    for (int j = 0; j < QGEN_FINALIZE_GROUPS; ++j) {
      if (i0 + j >= groups) break;
      int64_t row, group;
      qgen_divmod(i0 + j, groups_per_row, row, group);
      args.scales[C::ScaleLayout::offset(row, group, groups_per_row)] = static_cast<uint8_t>(scale[j]);
    }
  }
}

// Pass B of a plane-writing kernel (NUMERICS §6.6): the same groups per thread and the same scale stores as below,
// and the warp's 256 groups (512 pieces of 8 elements) written to the plane in the bandwidth form: piece 32 k + lane
// of the warp's run for k = 0..15, so every 16-byte plane store of the warp is 512 contiguous bytes and every
// 32-bit code load 128 (all 16 loads of a lane in flight together). A piece's scale byte comes from the
// lane that finalized its group, through 256 bytes of shared memory per warp. The loop runs per warp (all lanes
// take every step; a lane whose groups lie past the end computes nothing and stores nothing).
constexpr int QGEN_PLANE_PIECES = 2 * QGEN_FINALIZE_GROUPS;  // plane pieces per lane per step (16)

template <class C>
__device__ __forceinline__ void qgen_one_pass_finalize_plane(const qgen_quantize_args& args, float t, float inv_t) {
  static_assert(C::kThreads % 32 == 0, "whole warps");
  constexpr int kWarpGroups = 32 * QGEN_FINALIZE_GROUPS;
  __shared__ uint32_t exchanged[C::kThreads / 32][kWarpGroups / 4];  // the warp's scale bytes, group order
  const int64_t groups_per_row = args.cols / 16, groups = args.rows * groups_per_row, pieces = 2 * groups;
  const uint16_t* proxy = qgen_proxies(args.workspace);
  const bool word_stores = groups_per_row % 4 == 0 && (reinterpret_cast<uintptr_t>(args.scales) & 3u) == 0;
  const uint32_t lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
  const int64_t warp_first =
      (static_cast<int64_t>(blockIdx.x) * C::kThreads + (threadIdx.x & ~31u)) * QGEN_FINALIZE_GROUPS;
  const int64_t first = warp_first + QGEN_FINALIZE_GROUPS * lane;  // = pass B's first group without a plane
  const int64_t step = static_cast<int64_t>(gridDim.x) * C::kThreads * QGEN_FINALIZE_GROUPS;
  const uint32_t* code_words = reinterpret_cast<const uint32_t*>(args.codes);
  uint4* plane = reinterpret_cast<uint4*>(args.plane);
  const uint8_t* scale_bytes = reinterpret_cast<const uint8_t*>(exchanged[warp]);
  qgen_item_walk<1> walk(first, step, groups_per_row);  // (row, group) of i0, advanced with i0
  for (int64_t w0 = warp_first; w0 < groups; w0 += step, walk.advance()) {
    const int64_t i0 = w0 + QGEN_FINALIZE_GROUPS * lane, p0 = 2 * w0 + lane;
    uint32_t scale[QGEN_FINALIZE_GROUPS];
    if (i0 < groups) {
      qgen_finalize_step_scales<C>(args, proxy, i0, groups, t, inv_t, scale);
      *reinterpret_cast<uint2*>(&exchanged[warp][2 * lane]) =
          make_uint2(scale[0] | (scale[1] << 8) | (scale[2] << 16) | (scale[3] << 24),
                     scale[4] | (scale[5] << 8) | (scale[6] << 16) | (scale[7] << 24));
    }
    if (i0 < groups) qgen_store_finalized_scales<C>(args, i0, groups, groups_per_row, word_stores, walk, scale);
    // The codes after the scales are stored (live through the finalize they made cov_four_six_onepass_plane spill 8
    // bytes on sm_120a; live through the scale stores they cost E 96 registers instead of 70), all 16 before the
    // first plane store.
    uint32_t code[QGEN_PLANE_PIECES];
#pragma unroll
    for (int k = 0; k < QGEN_PLANE_PIECES; ++k) code[k] = p0 + 32 * k < pieces ? __ldg(code_words + p0 + 32 * k) : 0u;
    __syncwarp();
#pragma unroll
    for (int k = 0; k < QGEN_PLANE_PIECES; ++k) {
      // piece 32 k + lane of the run is in the run's group 16 k + lane / 2
      if (p0 + 32 * k < pieces) plane[p0 + 32 * k] = C::Output::piece(code[k], scale_bytes[16 * k + (lane >> 1)]);
    }
    __syncwarp();  // the next step overwrites the exchanged bytes
  }
}

// Pass B without a plane, 128x4 scales, Kb a multiple of 16 and a 4-byte aligned scale array: the same groups and
// values as the loop below, mapped so that every scale store of a warp writes 128 contiguous bytes (the loop's warp
// store touches 32 blocks of 512 bytes, one 32-byte sector per 4 bytes). A warp item is (128-row block rb, row
// octet o, 16-group chunk c); lane L takes row q = 8 o + L % 8 + 32 (L / 8) of the block and the chunk's 16 groups
// (two 16-byte proxy loads, one 32-byte sector); its quad j goes to byte (q % 32) * 16 + (q / 32) * 4 of block
// (rb, 4 c + j), so the warp's 32 words of quad j are bytes 128 o .. 128 o + 127 of that block. Rows past the
// tensor are skipped (qgen_zero_scale_padding writes them). Philox keys stay the logical group index (§3).
template <class C>
__device__ __forceinline__ void qgen_one_pass_finalize_blocked(const qgen_quantize_args& args, float t, float inv_t) {
  const int64_t groups_per_row = args.cols / 16, chunks = groups_per_row / 16;
  const int64_t items = (args.rows + 127) / 128 * 4 * chunks;
  const uint16_t* proxy = qgen_proxies(args.workspace);
  const uint32_t lane = threadIdx.x & 31u;
  const uint32_t q = lane % 8u + 32u * (lane / 8u);  // row in the block, before the octet's 8 o
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (C::kThreads / 32);
  for (int64_t item = (static_cast<int64_t>(blockIdx.x) * C::kThreads + threadIdx.x) / 32; item < items;
       item += warps) {
    const int64_t c = item % chunks, ro = item / chunks;  // ro = 4 rb + o
    const uint32_t r_in = q + 8u * static_cast<uint32_t>(ro % 4);
    const int64_t row = ro / 4 * 128 + r_in;
    if (row >= args.rows) continue;
    const int64_t g0 = row * groups_per_row + 16 * c;  // 16-aligned: 32-byte aligned proxies
    const uint4 lo = __ldg(reinterpret_cast<const uint4*>(proxy + g0));
    const uint4 hi = __ldg(reinterpret_cast<const uint4*>(proxy + g0 + 8));
    const uint32_t words[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
    uint8_t* block = args.scales + (ro / 4 * (groups_per_row / 4) + 4 * c) * 512 + qgen_scale_row_in_block(r_in);
    // Bit j of `stochastic`: group g0 + j is finalized after the unrolled loop by qgen_finalize_group in a rolled
    // one (its Philox draw in one copy: sixteen inlined copies made this loop outgrow the instruction cache). Bit j
    // of `rewrite`: the group's dequantized-plane values from pass A do not stand.
    uint32_t stochastic = 0, rewrite = 0;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      uint32_t s[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const uint32_t proxy_bf16 = (words[2 * j + i / 2] >> (16 * (i % 2))) & 0xFFFFu;
        bool later;
        s[i] = qgen_finalize_group_deterministic<C>(proxy_bf16, t, inv_t, later);
        stochastic |= (later ? 1u : 0u) << (4 * j + i);
        if constexpr (C::Output::kDequantizedPlane)
          rewrite |= (C::Output::keeps(s[i], proxy_bf16, t) ? 0u : 1u) << (4 * j + i);
      }
      *reinterpret_cast<uint32_t*>(block + 512 * j) = s[0] | (s[1] << 8) | (s[2] << 16) | (s[3] << 24);
    }
#pragma unroll 1
    while (stochastic != 0u) {  // rare: w < 2^-6 (§5.6); its byte replaces the placeholder the word store wrote
      const int j = __ffs(static_cast<int>(stochastic)) - 1;
      stochastic &= stochastic - 1u;
      const uint32_t proxy_bf16 = proxy[g0 + j];
      const uint32_t s = qgen_finalize_group<C>(proxy_bf16, t, inv_t, args, g0 + j);
      block[512 * (j / 4) + j % 4] = static_cast<uint8_t>(s);
      if constexpr (C::Output::kDequantizedPlane)
        rewrite = (rewrite & ~(1u << j)) | ((C::Output::keeps(s, proxy_bf16, t) ? 0u : 1u) << j);
    }
    if constexpr (C::Output::kDequantizedPlane)
      if (rewrite != 0u) C::Output::template rewrite_groups<C>(args, g0, rewrite, t);
  }
}

template <class C>
__device__ __forceinline__ void qgen_one_pass_finalize(const qgen_quantize_args& args) {
  qgen_zero_scale_padding<typename C::ScaleLayout>(args.scales, args.rows, args.cols / 16);
  const float t = qgen_one_pass_tensor_scale(qgen_load_max_word(qgen_max_word(args.workspace)), C::ceiling());
  if (blockIdx.x == 0 && threadIdx.x == 0) *args.tensor_scale = t;
  const float inv_t = qgen_power_of_two_inverse(t);
  if constexpr (C::Output::kPlane) {
    qgen_one_pass_finalize_plane<C>(args, t, inv_t);
  } else {
    if constexpr (std::is_same_v<typename C::ScaleLayout, qgen_layout_128x4>) {
      if (args.cols % 256 == 0 && (reinterpret_cast<uintptr_t>(args.scales) & 3u) == 0) {
        qgen_one_pass_finalize_blocked<C>(args, t, inv_t);
        return;
      }
    }
    const int64_t groups_per_row = args.cols / 16, groups = args.rows * groups_per_row;
    const uint16_t* proxy = qgen_proxies(args.workspace);
    const bool word_stores = groups_per_row % 4 == 0 && (reinterpret_cast<uintptr_t>(args.scales) & 3u) == 0;
    const int64_t first = (static_cast<int64_t>(blockIdx.x) * C::kThreads + threadIdx.x) * QGEN_FINALIZE_GROUPS;
    const int64_t step = static_cast<int64_t>(gridDim.x) * C::kThreads * QGEN_FINALIZE_GROUPS;
    qgen_item_walk<1> walk(first, step, groups_per_row);  // (row, group) of i0, advanced with i0
    for (int64_t i0 = first; i0 < groups; i0 += step, walk.advance()) {
      uint32_t scale[QGEN_FINALIZE_GROUPS];
      qgen_finalize_step_scales<C>(args, proxy, i0, groups, t, inv_t, scale);
      qgen_store_finalized_scales<C>(args, i0, groups, groups_per_row, word_stores, walk, scale);
      if constexpr (C::Output::kDequantizedPlane) {
        uint32_t rewrite = 0;  // the step's groups pass A's values do not stand for (bit per group)
#pragma unroll
        for (int j = 0; j < QGEN_FINALIZE_GROUPS; ++j)
          if (i0 + j < groups && !C::Output::keeps(scale[j], proxy[i0 + j], t)) rewrite |= 1u << j;
        if (rewrite != 0u) C::Output::template rewrite_groups<C>(args, i0, rewrite, t);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Host side (qgen.h)

// Workspace bytes: none (caller, MXFP4), the amax word (computed), the max word and one bf16 proxy per 16-group
// (one-pass).
template <class C>
inline size_t qgen_quantize_workspace_bytes(int64_t rows, int64_t cols) {
  if constexpr (C::Mode::kOnePass) {
    if (rows < 1 || cols < 16) return QGEN_MAX_WORD_BYTES;
    const size_t proxy_bytes = static_cast<size_t>(rows) * static_cast<size_t>(cols / 16) * sizeof(uint16_t);
    return QGEN_MAX_WORD_BYTES + (proxy_bytes + 255) / 256 * 256;
  } else {
    (void)rows;
    (void)cols;
    return C::Mode::kWorkspace ? QGEN_MAX_WORD_BYTES : 0;
  }
}

// Every argument check of the host entry, before any launch (NUMERICS §8 shapes).
template <class C>
inline qgen_status qgen_quantize_check(const qgen_quantize_args& a) {
  const char* const kKernelName = C::kKernelName;
  QGEN_REQUIRE(a.rows >= 1, "rows = %lld; allowed: rows >= 1", static_cast<long long>(a.rows));
  QGEN_REQUIRE(a.cols >= 1 && a.cols % C::kColsMultiple == 0, "cols = %lld; allowed: a positive multiple of %lld",
               static_cast<long long>(a.cols), static_cast<long long>(C::kColsMultiple));
  if constexpr (C::Input::kNvfp4) {
    QGEN_REQUIRE(a.rows % 16 == 0,
                 "rows = %lld; allowed: a multiple of 16 (the NVFP4 input [cols, rows] is quantized along rows)",
                 static_cast<long long>(a.rows));
    QGEN_REQUIRE(a.in_codes != nullptr, "in_codes is NULL; allowed: the NVFP4 input codes [cols, rows/2]");
    QGEN_REQUIRE(a.in_scales != nullptr, "in_scales is NULL; allowed: the NVFP4 input scales");
    QGEN_REQUIRE(a.in_tensor_scale != nullptr, "in_tensor_scale is NULL; allowed: a device pointer to t_in");
  } else {
    QGEN_REQUIRE(a.x != nullptr, "x is NULL; allowed: a device pointer to the bf16 input");
    if constexpr (C::Input::kTransposed)
      QGEN_REQUIRE((reinterpret_cast<uintptr_t>(a.x) & 1u) == 0, "x is not 2-byte aligned; allowed: a bf16 array");
    else
      QGEN_REQUIRE(qgen_aligned16(a.x), "x is not 16-byte aligned; allowed: a 16-byte aligned device pointer");
  }
  QGEN_REQUIRE(a.codes != nullptr && qgen_aligned16(a.codes),
               "codes is NULL or not 16-byte aligned; allowed: a 16-byte aligned device pointer");
  QGEN_REQUIRE(a.scales != nullptr, "scales is NULL; allowed: a device pointer to the scale array");
  if constexpr (C::Output::kPlane || C::Output::kDequantizedPlane)
    QGEN_REQUIRE(a.plane != nullptr && qgen_aligned16(a.plane),
                 "plane is NULL or not 16-byte aligned; allowed: a 16-byte aligned device pointer, bf16 [rows, cols]");
  if constexpr (C::Mode::kTensorScale)
    QGEN_REQUIRE(a.tensor_scale != nullptr && (reinterpret_cast<uintptr_t>(a.tensor_scale) & 3u) == 0,
                 "tensor_scale is NULL or misaligned; allowed: a device pointer to one float");
  if constexpr (C::Mode::kWorkspace) {
    const size_t workspace_needed = qgen_quantize_workspace_bytes<C>(a.rows, a.cols);
    QGEN_REQUIRE(a.workspace != nullptr && qgen_aligned16(a.workspace),
                 "workspace is NULL or not 16-byte aligned; allowed: a 16-byte aligned device pointer");
    QGEN_REQUIRE(a.workspace_bytes >= workspace_needed,
                 "workspace_bytes = %zu; allowed: at least qgen_%s_workspace_bytes(rows, cols) = %zu",
                 a.workspace_bytes, C::kKernelName, workspace_needed);
  }
  return qgen_ok();
}

// Zeroes the max word a pass accumulates into (atomicMax on bit patterns) on the caller's stream.
inline bool qgen_clear_max_word(const qgen_quantize_args& a, cudaStream_t stream) {
  return cudaMemsetAsync(qgen_max_word(a.workspace), 0, sizeof(unsigned int), stream) == cudaSuccess;
}
