// qgen_async.cuh — asynchronous-copy primitives of sm_90 and later (Hopper, Blackwell sm_100a and sm_120a): mbarriers,
// TMA tensor and bulk loads, proxy fences, the TMA swizzle pattern. One PTX instruction per function (PTX-FACTS §4.6,
// §6.4).
#pragma once
#include <cstdint>
#include <cuda.h>  // CUtensorMap

__device__ __forceinline__ uint32_t qgen_smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// mbarrier: init with an arrival count; fence the inits before any other thread or the async proxy uses them.
__device__ __forceinline__ void qgen_mbar_init(uint64_t* bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(qgen_smem_addr(bar)), "r"(count) : "memory");
}
__device__ __forceinline__ void qgen_fence_mbar_init() {
  asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
}
// One arrival that also announces `bytes` of asynchronous (TMA) writes this phase must wait for.
__device__ __forceinline__ void qgen_mbar_arrive_expect_tx(uint64_t* bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(qgen_smem_addr(bar)), "r"(bytes)
               : "memory");
}
// One arrival (release semantics: this thread's earlier shared-memory accesses are ordered before it).
__device__ __forceinline__ void qgen_mbar_arrive(uint64_t* bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(qgen_smem_addr(bar)) : "memory");
}
// Spin until the phase with the given parity has completed.
__device__ __forceinline__ void qgen_mbar_wait(uint64_t* bar, uint32_t parity) {
  asm volatile(
      "{\n"
      "  .reg .pred done;\n"
      "qgen_mbar_wait_retry:\n"
      "  mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      "  @!done bra qgen_mbar_wait_retry;\n"
      "}\n" ::"r"(qgen_smem_addr(bar)),
      "r"(parity)
      : "memory");
}

// TMA: a 2-D box of the tensor map at coordinates (x innermost, y), completion counted on `bar` in bytes.
// Destination .shared::cta (no clusters here): with .shared::cluster, ptxas for sm_120a (no cluster hardware)
// keeps an 8-byte stack frame in the issuing loop.
// Out-of-bounds parts of the box are written as zeros (and still counted).
__device__ __forceinline__ void qgen_tma_load_2d(void* dst, const CUtensorMap* map, int32_t x, int32_t y,
                                                 uint64_t* bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cta.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];" ::"r"(
          qgen_smem_addr(dst)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(x), "r"(y), "r"(qgen_smem_addr(bar))
      : "memory");
}
// Bulk copy of `bytes` contiguous bytes (16-byte aligned, a multiple of 16), completion counted on `bar`.
__device__ __forceinline__ void qgen_bulk_load(void* dst, const void* src, uint32_t bytes, uint64_t* bar) {
  asm volatile(
      "cp.async.bulk.shared::cta.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(qgen_smem_addr(dst)),
      "l"(src), "r"(bytes), "r"(qgen_smem_addr(bar))
      : "memory");
}
// Makes this thread's generic-proxy shared-memory writes visible to the async proxy (wgmma / TMA reads).
__device__ __forceinline__ void qgen_fence_proxy_async() {
  asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
}

// Byte offset of logical (row, byte b of the row) in a tile that TMA wrote with swizzle span kSpan (32, 64 or 128
// bytes, = the row length; tile base aligned to 1024): the 16-byte chunk index is XORed with address bits 7 and up
// (CU_TENSOR_MAP_SWIZZLE_32B / 64B / 128B). For kSpan = 128 that is chunk ^ (row mod 8).
template <uint32_t kSpan>
__device__ __forceinline__ uint32_t qgen_swizzled_offset(uint32_t row, uint32_t byte) {
  static_assert(kSpan == 32 || kSpan == 64 || kSpan == 128, "TMA swizzle spans are 32, 64 or 128 bytes");
  const uint32_t linear = row * kSpan + byte;
  return linear ^ (((linear >> 7) & (kSpan / 16 - 1)) << 4);
}

// cp.async (LDGSTS): one thread's copy of global bytes into shared memory, completed per commit group. .cg (16 bytes
// only) caches in L2, not L1; the 4-byte form needs .ca. Source and destination aligned to the size. A thread's own
// copies become visible to it at qgen_cp_async_wait (to other threads only through a barrier after that wait).
__device__ __forceinline__ void qgen_cp_async_16(void* dst, const void* src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(qgen_smem_addr(dst)), "l"(src) : "memory");
}
// The 16-byte copy, or (zero) 16 zero bytes written without reading the source (the ignore-src operand).
__device__ __forceinline__ void qgen_cp_async_16_or_zero(void* dst, const void* src, bool zero) {
  asm volatile(
      "{\n"
      "  .reg .pred z;\n"
      "  setp.ne.b32 z, %2, 0;\n"
      "  cp.async.cg.shared.global [%0], [%1], 16, z;\n"
      "}\n" ::"r"(qgen_smem_addr(dst)),
      "l"(src), "r"(static_cast<uint32_t>(zero))
      : "memory");
}
__device__ __forceinline__ void qgen_cp_async_4(void* dst, const void* src) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;" ::"r"(qgen_smem_addr(dst)), "l"(src) : "memory");
}
// Closes the thread's copies issued since the last commit into one group (an empty group completes at once).
__device__ __forceinline__ void qgen_cp_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
// Waits until at most `kPending` of the thread's most recent groups are still in flight.
template <int kPending>
__device__ __forceinline__ void qgen_cp_async_wait() {
  asm volatile("cp.async.wait_group %0;" ::"n"(kPending) : "memory");
}
