// qgen_sm100_tcgen05.cuh — Blackwell (sm_100a) tensor-core primitives (PTX-FACTS §4): tensor-memory allocation, shared-
// memory descriptors, scale copies into tensor memory, the block-scaled NVFP4 MMA, commit to an mbarrier and
// tensor-memory loads. One PTX instruction per function. Compiled and SASS-inspected only: no Blackwell GPU has run
// them (see README "What has been verified where").
#pragma once
#include <cstdint>
#include "qgen_async.cuh"

// Tensor-memory address: lane in bits 31:16, column in bits 15:0 (PTX-FACTS §4.1).
__device__ __forceinline__ uint32_t qgen_tmem_addr(uint32_t base, uint32_t lane, uint32_t column) {
  return base + (lane << 16) + column;
}

// Whole warp: allocate kColumns columns (a power of two in 32..512); the base address is written to *slot.
template <uint32_t kColumns>
__device__ __forceinline__ void qgen_tmem_alloc(uint32_t* slot) {
  asm volatile("tcgen05.alloc.cta_group::1.sync.aligned.shared::cta.b32 [%0], %1;" ::"r"(qgen_smem_addr(slot)),
               "n"(kColumns)
               : "memory");
}
// Whole warp: this CTA will not allocate again (lets the next CTA on the SM allocate).
__device__ __forceinline__ void qgen_tmem_relinquish() {
  asm volatile("tcgen05.relinquish_alloc_permit.cta_group::1.sync.aligned;" ::: "memory");
}
// Whole warp (the one that allocated): free the columns before the CTA exits.
template <uint32_t kColumns>
__device__ __forceinline__ void qgen_tmem_dealloc(uint32_t base) {
  asm volatile("tcgen05.dealloc.cta_group::1.sync.aligned.b32 %0, %1;" ::"r"(base), "n"(kColumns) : "memory");
}

// Order tcgen05 operations across a thread synchronisation (barrier or mbarrier wait).
__device__ __forceinline__ void qgen_tcgen05_fence_before_sync() {
  asm volatile("tcgen05.fence::before_thread_sync;" ::: "memory");
}
__device__ __forceinline__ void qgen_tcgen05_fence_after_sync() {
  asm volatile("tcgen05.fence::after_thread_sync;" ::: "memory");
}

// Descriptor of a K-major FP4 tile written by TMA with 128-byte swizzle: rows of 128 B (256 elements), 8-row groups
// 1024 B apart (SBO), version 1, layout SWIZZLE_128B; tile 1024-byte aligned (PTX-FACTS §4.4). Advancing K by 64
// elements (32 B) inside the row adds 2.
__device__ __forceinline__ uint64_t qgen_umma_desc_sw128(const void* tile) {
  return static_cast<uint64_t>((qgen_smem_addr(tile) >> 4) & 0x3FFFu) | (static_cast<uint64_t>(1024 >> 4) << 32) |
         (1ull << 46) | (2ull << 61);
}
// Descriptor of one 512-byte 128x4 scale block as tcgen05.cp reads it: 32 rows of 16 B, no swizzle, SBO 128 B
// (PTX-FACTS §4.5).
__device__ __forceinline__ uint64_t qgen_umma_desc_scales(const void* block) {
  return static_cast<uint64_t>((qgen_smem_addr(block) >> 4) & 0x3FFFu) | (8ull << 32) | (1ull << 46);
}

// One thread: copy a 512-byte 128x4 scale block into 32 lanes x 4 columns at `taddr`, broadcast to the four 32-lane
// sub-partitions; row r's four scales land in lane r mod 32, column + r / 32 (PTX-FACTS §4.5).
__device__ __forceinline__ void qgen_tcgen05_copy_scales(uint32_t taddr, uint64_t scales_desc) {
  asm volatile("tcgen05.cp.cta_group::1.32x128b.warpx4 [%0], %1;" ::"r"(taddr), "l"(scales_desc) : "memory");
}

// One thread: D[128 x N] (tensor memory, fp32) = (accumulate ? D : 0) + A[128 x 64] . B[N x 64]^T, A and B E2M1 in
// shared memory, their 16-element UE4M3 block scales in tensor memory (PTX-FACTS §4.2, §4.3).
__device__ __forceinline__ void qgen_tcgen05_mma_nvfp4(uint32_t d_tmem, uint64_t a_desc, uint64_t b_desc,
                                                       uint32_t idesc, uint32_t sfa_tmem, uint32_t sfb_tmem,
                                                       bool accumulate) {
  asm volatile(
      "{\n"
      ".reg .pred accumulate;\n"
      "setp.ne.b32 accumulate, %6, 0;\n"
      "tcgen05.mma.cta_group::1.kind::mxf4nvf4.block_scale.block16 [%0], %1, %2, %3, [%4], [%5], accumulate;\n"
      "}\n" ::"r"(d_tmem),
      "l"(a_desc), "l"(b_desc), "r"(idesc), "r"(sfa_tmem), "r"(sfb_tmem), "r"(accumulate ? 1u : 0u)
      : "memory");
}

// One thread: one arrival on `bar` once every tcgen05 operation this thread issued so far has completed.
__device__ __forceinline__ void qgen_tcgen05_commit(uint64_t* bar) {
  asm volatile("tcgen05.commit.cta_group::1.mbarrier::arrive::one.shared::cluster.b64 [%0];" ::"r"(qgen_smem_addr(bar))
               : "memory");
}

// Whole warp: 32 lanes x 32 consecutive fp32 columns from `taddr` (lane field = 32 * (warp mod 4)); thread i gets lane
// base + i. The values are valid after qgen_tmem_load_wait().
__device__ __forceinline__ void qgen_tmem_load_32x32(uint32_t taddr, uint32_t (&v)[32]) {
  asm volatile(
      "tcgen05.ld.sync.aligned.32x32b.x32.b32 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, [%32];"
      : "=r"(v[0]), "=r"(v[1]), "=r"(v[2]), "=r"(v[3]), "=r"(v[4]), "=r"(v[5]), "=r"(v[6]), "=r"(v[7]), "=r"(v[8]),
        "=r"(v[9]), "=r"(v[10]), "=r"(v[11]), "=r"(v[12]), "=r"(v[13]), "=r"(v[14]), "=r"(v[15]), "=r"(v[16]),
        "=r"(v[17]), "=r"(v[18]), "=r"(v[19]), "=r"(v[20]), "=r"(v[21]), "=r"(v[22]), "=r"(v[23]), "=r"(v[24]),
        "=r"(v[25]), "=r"(v[26]), "=r"(v[27]), "=r"(v[28]), "=r"(v[29]), "=r"(v[30]), "=r"(v[31])
      : "r"(taddr)
      : "memory");
}
__device__ __forceinline__ void qgen_tmem_load_wait() { asm volatile("tcgen05.wait::ld.sync.aligned;" ::: "memory"); }
