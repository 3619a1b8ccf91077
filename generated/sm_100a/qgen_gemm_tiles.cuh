// qgen_gemm_tiles.cuh — arch-independent GEMM tiling facts shared by every lowering: which output tile a CTA
// visits next and how the fp32 result is written (NUMERICS §6). Scale blocks: qgen_layout.cuh.
#pragma once
#include <cstdint>
#include <cuda_bf16.h>
#include "qgen_layout.cuh"

enum qgen_tile_order { QGEN_TILES_ROW_MAJOR = 0, QGEN_TILES_COLUMN_MAJOR = 1, QGEN_TILES_SWIZZLE_8 = 2 };

struct qgen_gemm_grid {
  int32_t tiles_m, tiles_n;  // output tiles along M and N
  int32_t ksteps;            // K blocks of the CTA tile's depth
  int32_t kgroups;           // 16-element scale groups per row (K / 16)
  int32_t kblocks;           // 128x4 scale blocks along K (ceil(kgroups / 4))
};

// Output tile (tm, tn) of linear tile index t. swizzle-8: bands of 8 tile rows, column by column inside a band,
// so that consecutive CTAs share B tiles and a band's A rows stay in L2.
template <int kOrder>
__host__ __device__ __forceinline__ void qgen_tile_coords(const qgen_gemm_grid& g, int32_t t, int32_t& tm,
                                                          int32_t& tn) {
  if (kOrder == QGEN_TILES_ROW_MAJOR) {
    tm = t / g.tiles_n;
    tn = t % g.tiles_n;
  } else if (kOrder == QGEN_TILES_COLUMN_MAJOR) {
    tn = t / g.tiles_m;
    tm = t % g.tiles_m;
  } else {
    const int32_t band = t / (8 * g.tiles_n);
    const int32_t first = band * 8;
    const int32_t height = min(8, g.tiles_m - first);
    const int32_t inside = t - band * 8 * g.tiles_n;
    tm = first + inside % height;
    tn = inside / height;
  }
}

// The tile grid of an m x n x k problem for a bm x bn x bk CTA tile (host side, every arch).
inline qgen_gemm_grid qgen_make_gemm_grid(int64_t m, int64_t n, int64_t k, int bm, int bn, int bk) {
  qgen_gemm_grid g;
  g.tiles_m = static_cast<int32_t>((m + bm - 1) / bm);
  g.tiles_n = static_cast<int32_t>((n + bn - 1) / bn);
  g.ksteps = static_cast<int32_t>((k + bk - 1) / bk);
  g.kgroups = static_cast<int32_t>(k / 16);
  g.kblocks = (g.kgroups + 3) / 4;  // 64-wide K atoms of the scale layout
  return g;
}

// Where K block `step` of a persistent CTA's sequence lies: the CTA visits tiles blockIdx.x, blockIdx.x + gridDim.x,
// ... and each tile's K blocks in order; step counts K blocks over all of them.
struct qgen_step_place {
  int32_t tm, tn, kb;
};
template <int kOrder>
__device__ __forceinline__ qgen_step_place qgen_place_of(const qgen_gemm_grid& g, int32_t step) {
  qgen_step_place p;
  qgen_tile_coords<kOrder>(g, static_cast<int32_t>(blockIdx.x) + (step / g.ksteps) * static_cast<int32_t>(gridDim.x),
                           p.tm, p.tn);
  p.kb = step % g.ksteps;
  return p;
}

// Epilogue stores of two adjacent columns (c, c + 1) of one row: out = f32(acc * alpha), then the output type.
__device__ __forceinline__ void qgen_store_pair(__nv_bfloat16* c, int64_t offset, float x0, float x1) {
  uint32_t packed;
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(packed) : "f"(x1), "f"(x0));
  *reinterpret_cast<uint32_t*>(c + offset) = packed;
}
__device__ __forceinline__ void qgen_store_pair(float* c, int64_t offset, float x0, float x1) {
  *reinterpret_cast<float2*>(c + offset) = make_float2(x0, x1);
}
// Epilogue store of one element (the transposed epilogue of the operand-swapped sm_90a GEMM): the same rounding.
__device__ __forceinline__ void qgen_store_one(__nv_bfloat16* c, int64_t offset, float x) {
  c[offset] = __float2bfloat16_rn(x);
}
__device__ __forceinline__ void qgen_store_one(float* c, int64_t offset, float x) { c[offset] = x; }
