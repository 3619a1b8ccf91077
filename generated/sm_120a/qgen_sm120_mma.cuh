// qgen_sm120_mma.cuh — GeForce Blackwell (sm_120a) warp-level block-scaled MMA (PTX-FACTS §5): the m16n8k64 NVFP4
// mma.sync and the ldmatrix that fills its fragments from shared memory. One PTX instruction per function.
// Compiled and SASS-inspected only: no sm_120 GPU has run them (see README "What has been verified where").
#pragma once
#include <cstdint>
#include "qgen_async.cuh"

// Four 8x8 matrices of 16-bit elements (here: 8 rows x 16 bytes of packed FP4 each); lane l supplies the row address
// of matrix l / 8, and register j of every thread receives word (lane mod 4) of row (lane / 4) of matrix j.
__device__ __forceinline__ void qgen_ldmatrix_x4(uint32_t (&r)[4], uint32_t smem_addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr));
}

// D[16 x 8] += A[16 x 64] . B[8 x 64]^T with E2M1 operands and one UE4M3 scale per 16 K-elements
// (PTX-FACTS §5.1, §5.2):
// a: rows g and g + 8 (g = lane / 4), K bytes 4c..4c+3 and 16+4c.. (c = lane mod 4); b: column g, same K bytes;
// sfa: the four scales of row g + 8 * (lane mod 2); sfb: the four scales of column g. Every lane holds its row's
// (column's) scales, so the selectors {byte 0, thread 0} read valid data whichever lane they pick.
__device__ __forceinline__ void qgen_mma_nvfp4_m16n8k64(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1,
                                                        uint32_t sfa, uint32_t sfb) {
  asm volatile(
      "mma.sync.aligned.m16n8k64.row.col.kind::mxf4nvf4.block_scale.scale_vec::4X.f32.e2m1.e2m1.f32.ue4m3 "
      "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3}, %10, {0, 0}, %11, {0, 0};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1), "r"(sfa), "r"(sfb));
}
