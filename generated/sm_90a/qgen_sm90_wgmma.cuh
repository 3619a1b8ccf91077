// qgen_sm90_wgmma.cuh — Hopper warpgroup MMA bookkeeping (PTX-FACTS §6): the shared-memory descriptor of a K-major
// 128-byte-swizzled bf16 tile, and the fence / commit / wait that bracket asynchronous wgmma. The wgmma itself is
// generated per tile width by the lowering (its register list depends on N).
#pragma once
#include <cstdint>
#include "qgen_async.cuh"

// Byte offset of logical (row, byte b of the row's 128) in a 1024-byte aligned K-major SW128 tile (PTX-FACTS §6.2):
// 16-byte chunk index XOR (row mod 8).
__device__ __forceinline__ uint32_t qgen_sw128_offset(uint32_t row, uint32_t byte) {
  return qgen_swizzled_offset<128>(row, byte);
}

// Descriptor of a K-major SW128 bf16 tile (rows of 64 elements = 128 B; 8-row core groups 1024 B apart):
// start address >> 4 in bits 13:0, SBO = 1024 >> 4 in bits 45:32, layout 1 (128B swizzle) in bits 63:62.
// Advancing K by 16 elements (32 B) adds 2.
__device__ __forceinline__ uint64_t qgen_wgmma_desc_sw128(const void* tile) {
  return 0x4000004000000000ull | static_cast<uint64_t>((qgen_smem_addr(tile) & 0x3FFFFu) >> 4);
}

__device__ __forceinline__ void qgen_wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void qgen_wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory"); }
template <int kInFlight>
__device__ __forceinline__ void qgen_wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;" ::"n"(kInFlight) : "memory");
}
