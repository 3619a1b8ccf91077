// qgen_gemm_host.cuh — host side of the GEMM entry points (qgen.h qgen_gemm_args): argument checks shared by every
// arch, and the TMA tensor map of a packed FP4 operand (PTX-FACTS §4.6).
#pragma once
#include <cstdint>
#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_runtime.h>
#include "qgen.h"
#include "qgen_host.cuh"

// Shapes (NUMERICS §8): m >= 1; n a positive multiple of 16; k a positive multiple of `k_multiple`. Pointers: codes
// 16-byte aligned (TMA), scales 16-byte aligned (bulk copies of 512-byte blocks), tensor scales 4-byte aligned.
inline qgen_status qgen_gemm_check_args(const char* kKernelName, const qgen_gemm_args& a, int64_t k_multiple) {
  QGEN_REQUIRE(a.m >= 1 && a.m <= INT32_MAX, "m = %lld; allowed: 1 <= m <= 2^31 - 1", static_cast<long long>(a.m));
  QGEN_REQUIRE(a.n >= 16 && a.n % 16 == 0 && a.n <= INT32_MAX, "n = %lld; allowed: a positive multiple of 16",
               static_cast<long long>(a.n));
  QGEN_REQUIRE(a.k >= k_multiple && a.k % k_multiple == 0 && a.k <= INT32_MAX,
               "k = %lld; allowed: a positive multiple of %lld", static_cast<long long>(a.k),
               static_cast<long long>(k_multiple));
  QGEN_REQUIRE(a.a_codes != nullptr && qgen_aligned16(a.a_codes),
               "a_codes is NULL or not 16-byte aligned; allowed: a 16-byte aligned device pointer");
  QGEN_REQUIRE(a.b_codes != nullptr && qgen_aligned16(a.b_codes),
               "b_codes is NULL or not 16-byte aligned; allowed: a 16-byte aligned device pointer");
  QGEN_REQUIRE(a.a_scales != nullptr && qgen_aligned16(a.a_scales),
               "a_scales is NULL or not 16-byte aligned; allowed: a 16-byte aligned device pointer (128x4 layout)");
  QGEN_REQUIRE(a.b_scales != nullptr && qgen_aligned16(a.b_scales),
               "b_scales is NULL or not 16-byte aligned; allowed: a 16-byte aligned device pointer (128x4 layout)");
  QGEN_REQUIRE(a.a_tensor_scale != nullptr && (reinterpret_cast<uintptr_t>(a.a_tensor_scale) & 3u) == 0,
               "a_tensor_scale is NULL or misaligned; allowed: a device pointer to one float");
  QGEN_REQUIRE(a.b_tensor_scale != nullptr && (reinterpret_cast<uintptr_t>(a.b_tensor_scale) & 3u) == 0,
               "b_tensor_scale is NULL or misaligned; allowed: a device pointer to one float");
  QGEN_REQUIRE(a.c != nullptr && (reinterpret_cast<uintptr_t>(a.c) & 7u) == 0,
               "c is NULL or not 8-byte aligned; allowed: an 8-byte aligned device pointer");
  return qgen_ok();
}

// cuTensorMapEncodeTiled through the runtime's driver entry point (no -lcuda needed); looked up once.
inline PFN_cuTensorMapEncodeTiled_v12000 qgen_tensor_map_encoder() {
  static PFN_cuTensorMapEncodeTiled_v12000 fn = nullptr;
  if (!fn) {
    cudaDriverEntryPointQueryResult found;
    void* p = nullptr;
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &found) ==
            cudaSuccess &&
        found == cudaDriverEntryPointSuccess)
      fn = reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(p);
  }
  return fn;
}

// Tensor map over the packed codes of a [rows, k] FP4 operand seen as bytes [rows, k/2]; box: box_bytes (one K
// block or a 128-byte chunk of it) x box_rows rows, out-of-bounds rows and columns read as zero codes. `swizzle`:
// CU_TENSOR_MAP_SWIZZLE_NONE, or the 32/64/128-byte pattern matching box_bytes (qgen_swizzled_offset).
inline qgen_status qgen_fp4_tensor_map(const char* kKernelName, const char* what, CUtensorMap* map, const void* codes,
                                       int64_t rows, int64_t k, int box_rows, int box_bytes,
                                       CUtensorMapSwizzle swizzle = CU_TENSOR_MAP_SWIZZLE_NONE) {
  PFN_cuTensorMapEncodeTiled_v12000 encode = qgen_tensor_map_encoder();
  if (!encode)
    return qgen_fail(QGEN_LAUNCH_FAILED, kKernelName, "cuTensorMapEncodeTiled is not available from the driver");
  const cuuint64_t dims[2] = {static_cast<cuuint64_t>(k / 2), static_cast<cuuint64_t>(rows)};
  const cuuint64_t strides[1] = {static_cast<cuuint64_t>(k / 2)};
  const cuuint32_t box[2] = {static_cast<cuuint32_t>(box_bytes), static_cast<cuuint32_t>(box_rows)};
  const cuuint32_t element_strides[2] = {1u, 1u};
  const CUresult r = encode(map, CU_TENSOR_MAP_DATA_TYPE_UINT8, 2, const_cast<void*>(codes), dims, strides, box,
                            element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, swizzle, CU_TENSOR_MAP_L2_PROMOTION_L2_128B,
                            CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS)
    return qgen_fail(QGEN_INVALID_ARGUMENT, kKernelName, "%s: TMA descriptor rejected (CUresult %d)", what,
                     static_cast<int>(r));
  return qgen_ok();
}

// The TMA swizzle mode whose span is one box row of `box_bytes` (32, 64 or 128).
constexpr CUtensorMapSwizzle qgen_swizzle_for_row_bytes(int box_bytes) {
  return box_bytes == 128  ? CU_TENSOR_MAP_SWIZZLE_128B
         : box_bytes == 64 ? CU_TENSOR_MAP_SWIZZLE_64B
                           : CU_TENSOR_MAP_SWIZZLE_32B;
}
