// Baselines the GEMM benchmarks compare against, served by the runner like generated kernels ("baseline:<name>"),
// with the same launch signature (rows = m, cols = k, depth = n) so that they are timed the same way:
//   baseline:cublas_bf16          A bf16 [m, k], B bf16 [n, k], C bf16 [m, n]: C = A . B^T (cuBLASLt, fp32 accumulate)
//   baseline:cublas_fp8           A e4m3 [m, k], B e4m3 [n, k], C bf16 [m, n]: the same in FP8 (context only)
//   baseline:dequant_cublas_bf16  the NVFP4 GEMM's 7 buffers: dequantize A and B to bf16 with the generated
//                                 dequantize_nvfp4_bf16 kernel (tensor scale folded in), then baseline:cublas_bf16
//   baseline:two_pass             the NVFP4 GEMM's 7 buffers: the package's exact two-pass GEMM (NUMERICS §6.4):
//                                 dequantize_nvfp4_bf16 with tensor scale 1, then qgen_two_pass.h's cuBLASLt bf16
//                                 call with alpha = f32(tA * tB) on the device; checked against the reference like
//                                 the kernels
//   baseline:cublaslt_nvfp4       the NVFP4 GEMM's 7 buffers: the vendor block-scaled NVFP4 GEMM (cuBLASLt, E2M1 with
//                                 VEC16_UE4M3 scales in the same 128x4 layout; alpha 1, timing only). Blackwell only:
//                                 elsewhere cuBLASLt finds no algorithm and the call fails with status 2.
//   baseline:degraded_nvfp4_gemm  the NVFP4 GEMM's 7 buffers: a deliberately degraded accumulation for the
//                                 accumulator probe's self-test (degraded_gemm.cu), not a speed baseline
// cuBLAS works column-major: row-major C [m, n] = A . B^T is column-major C^T [n, m] = op_T(B) . A, i.e. the "TN"
// call with (m, n) swapped, which is also the layout cuBLASLt requires for FP8.
#include <cublasLt.h>
#include <cuda_runtime.h>
#include <cstdio>
#include <cstring>
#include <map>
#include <tuple>
#include "dispatch.h"
#include "../../runtime/torch/qgen_torch/csrc/qgen_two_pass.h"

qgen_status qgen_degraded_nvfp4_gemm(void** bufs, int nb, int64_t m, int64_t k, int64_t n, uint64_t seed, uint64_t,
                                     void*, size_t, cudaStream_t st);

namespace {

qgen_status fail(const char* what, int code) {
  qgen_status st;
  st.code = 2;
  snprintf(st.message, sizeof st.message, "%s failed (%d)", what, code);
  return st;
}
qgen_status ok() {
  qgen_status st;
  st.code = 0;
  st.message[0] = 0;
  return st;
}

struct Plan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
};

cublasLtHandle_t handle() {
  static cublasLtHandle_t h = nullptr;
  if (!h) cublasLtCreate(&h);
  return h;
}

constexpr size_t kWorkspaceBytes = 64ull << 20;
void* workspace() {
  static void* w = nullptr;
  if (!w) cudaMalloc(&w, kWorkspaceBytes);
  return w;
}

// One plan per (input type, m, n, k), built on first use (host work outside the timed region after warm-up).
qgen_status plan_for(cudaDataType_t in, int64_t m, int64_t n, int64_t k, Plan*& out) {
  static std::map<std::tuple<int, int64_t, int64_t, int64_t>, Plan> plans;
  auto key = std::make_tuple(static_cast<int>(in), m, n, k);
  auto it = plans.find(key);
  if (it != plans.end()) {
    out = &it->second;
    return ok();
  }
  Plan p;
  cublasStatus_t s = cublasLtMatmulDescCreate(&p.op, CUBLAS_COMPUTE_32F, CUDA_R_32F);
  if (s != CUBLAS_STATUS_SUCCESS) return fail("cublasLtMatmulDescCreate", s);
  const cublasOperation_t t = CUBLAS_OP_T, nn = CUBLAS_OP_N;
  cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof t);
  cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSB, &nn, sizeof nn);
  if (in == CUDA_R_4F_E2M1) {  // 16-element UE4M3 block scales on both operands
    const cublasLtMatmulMatrixScale_t vec16 = CUBLASLT_MATMUL_MATRIX_SCALE_VEC16_UE4M3;
    cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &vec16, sizeof vec16);
    cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &vec16, sizeof vec16);
  }
  cublasLtMatrixLayoutCreate(&p.a, in, k, n, k);           // B [n, k] row-major = k x n column-major, transposed
  cublasLtMatrixLayoutCreate(&p.b, in, k, m, k);           // A [m, k] row-major = k x m column-major
  cublasLtMatrixLayoutCreate(&p.c, CUDA_R_16BF, n, m, n);  // C [m, n] row-major = n x m column-major
  cublasLtMatmulPreference_t pref;
  cublasLtMatmulPreferenceCreate(&pref);
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &kWorkspaceBytes,
                                       sizeof kWorkspaceBytes);
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  s = cublasLtMatmulAlgoGetHeuristic(handle(), p.op, p.a, p.b, p.c, p.c, pref, 1, &result, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  if (s != CUBLAS_STATUS_SUCCESS || found == 0) return fail("cublasLtMatmulAlgoGetHeuristic", s);
  p.algo = result.algo;
  out = &(plans[key] = p);
  return ok();
}

qgen_status matmul(cudaDataType_t in, const void* a, const void* b, void* c, int64_t m, int64_t n, int64_t k,
                   cudaStream_t st) {
  Plan* p = nullptr;
  qgen_status r = plan_for(in, m, n, k, p);
  if (r.code) return r;
  const float one = 1.0f, zero = 0.0f;
  cublasStatus_t s = cublasLtMatmul(handle(), p->op, &one, b, p->a, a, p->b, &zero, c, p->c, c, p->c, &p->algo,
                                    workspace(), kWorkspaceBytes, st);
  return s == CUBLAS_STATUS_SUCCESS ? ok() : fail("cublasLtMatmul", s);
}

qgen_status cublas_bf16(void** bufs, int nb, int64_t rows, int64_t cols, int64_t depth, uint64_t, uint64_t, void*,
                        size_t, cudaStream_t st) {
  if (nb != 3) return fail("baseline:cublas_bf16 expects 3 buffers", nb);
  return matmul(CUDA_R_16BF, bufs[0], bufs[1], bufs[2], rows, depth, cols, st);
}
qgen_status cublas_fp8(void** bufs, int nb, int64_t rows, int64_t cols, int64_t depth, uint64_t, uint64_t, void*,
                       size_t, cudaStream_t st) {
  if (nb != 3) return fail("baseline:cublas_fp8 expects 3 buffers", nb);
  return matmul(CUDA_R_8F_E4M3, bufs[0], bufs[1], bufs[2], rows, depth, cols, st);
}

// Scratch for the dequantized operands, grown on demand (during the benchmark's warm-up launches).
void* scratch(size_t bytes) {
  static void* p = nullptr;
  static size_t have = 0;
  if (bytes > have) {
    if (p) cudaFree(p);
    p = nullptr;
    have = 0;
    if (cudaMalloc(&p, bytes) == cudaSuccess) have = bytes;
  }
  return p;
}

qgen_status dequant_cublas_bf16(void** bufs, int nb, int64_t m, int64_t k, int64_t n, uint64_t seed, uint64_t sign_seed,
                                void*, size_t, cudaStream_t st) {
  if (nb != 7) return fail("baseline:dequant_cublas_bf16 expects the GEMM's 7 buffers", nb);
  const qgen_dispatch_entry* dq = qgen_find_kernel("dequantize_nvfp4_bf16");
  if (!dq) return fail("baseline:dequant_cublas_bf16 needs the dequantize_nvfp4_bf16 kernel in the runner", 0);
  uint8_t* a16 = static_cast<uint8_t*>(scratch(static_cast<size_t>((m + n) * k * 2)));
  if (!a16) return fail("cudaMalloc of the dequantized operands", 0);
  uint8_t* b16 = a16 + m * k * 2;
  void* da[4] = {bufs[0], bufs[1], bufs[2], a16};
  void* db[4] = {bufs[3], bufs[4], bufs[5], b16};
  qgen_status r = dq->launch(da, 4, m, k, 0, seed, sign_seed, nullptr, 0, st);
  if (r.code) return r;
  r = dq->launch(db, 4, n, k, 0, seed, sign_seed, nullptr, 0, st);
  if (r.code) return r;
  return matmul(CUDA_R_16BF, a16, b16, bufs[6], m, n, k, st);
}

__global__ void two_pass_scalars(const float* ta, const float* tb, float* scalars) {
  scalars[0] = __fmul_rn(*ta, *tb);  // alpha = f32(tA * tB), as the fused epilogue (NUMERICS §6.2)
  scalars[1] = 0.0f;                 // beta
  scalars[2] = 1.0f;                 // the tensor scale of an exact dequantization
}

qgen_status two_pass(void** bufs, int nb, int64_t m, int64_t k, int64_t n, uint64_t seed, uint64_t sign_seed, void*,
                     size_t, cudaStream_t st) {
  if (nb != 7) return fail("baseline:two_pass expects the GEMM's 7 buffers", nb);
  const qgen_dispatch_entry* dq = qgen_find_kernel("dequantize_nvfp4_bf16");
  if (!dq) return fail("baseline:two_pass needs the dequantize_nvfp4_bf16 kernel in the runner", 0);
  static float* scalars = nullptr;
  if (!scalars && cudaMalloc(&scalars, 4 * sizeof(float)) != cudaSuccess) return fail("cudaMalloc of the scalars", 0);
  uint8_t* a16 = static_cast<uint8_t*>(scratch(static_cast<size_t>((m + n) * k * 2)));
  if (!a16) return fail("cudaMalloc of the dequantized operands", 0);
  uint8_t* b16 = a16 + m * k * 2;
  two_pass_scalars<<<1, 1, 0, st>>>(static_cast<const float*>(bufs[2]), static_cast<const float*>(bufs[5]), scalars);
  void* da[4] = {bufs[0], bufs[1], scalars + 2, a16};
  void* db[4] = {bufs[3], bufs[4], scalars + 2, b16};
  qgen_status r = dq->launch(da, 4, m, k, 0, seed, sign_seed, nullptr, 0, st);
  if (r.code) return r;
  r = dq->launch(db, 4, n, k, 0, seed, sign_seed, nullptr, 0, st);
  if (r.code) return r;
  qgen_status out = ok();
  const int s = qgen_two_pass::gemm_bf16(handle(), a16, b16, bufs[6], m, n, k, scalars, scalars + 1, workspace(),
                                         kWorkspaceBytes, st, out.message);
  if (s != 0) out.code = 2;
  return out;
}

// cuBLAS's "A" is our B (see the column-major note at the top), so its scale pointers swap too.
qgen_status cublaslt_nvfp4(void** bufs, int nb, int64_t m, int64_t k, int64_t n, uint64_t, uint64_t, void*, size_t,
                           cudaStream_t st) {
  if (nb != 7) return fail("baseline:cublaslt_nvfp4 expects the GEMM's 7 buffers", nb);
  Plan* p = nullptr;
  qgen_status r = plan_for(CUDA_R_4F_E2M1, m, n, k, p);
  if (r.code) return r;
  const void* a_scales = bufs[4];
  const void* b_scales = bufs[1];
  cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &a_scales, sizeof a_scales);
  cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &b_scales, sizeof b_scales);
  const float one = 1.0f, zero = 0.0f;
  cublasStatus_t s = cublasLtMatmul(handle(), p->op, &one, bufs[3], p->a, bufs[0], p->b, &zero, bufs[6], p->c, bufs[6],
                                    p->c, &p->algo, workspace(), kWorkspaceBytes, st);
  return s == CUBLAS_STATUS_SUCCESS ? ok() : fail("cublasLtMatmul (NVFP4)", s);
}

const qgen_dispatch_entry kBaselines[] = {
    {"baseline:cublas_bf16", cublas_bf16, nullptr},
    {"baseline:cublas_fp8", cublas_fp8, nullptr},
    {"baseline:dequant_cublas_bf16", dequant_cublas_bf16, nullptr},
    {"baseline:cublaslt_nvfp4", cublaslt_nvfp4, nullptr},
    {"baseline:two_pass", two_pass, nullptr},
    {"baseline:degraded_nvfp4_gemm", qgen_degraded_nvfp4_gemm, nullptr},
};

}  // namespace

const qgen_dispatch_entry* qgen_find_baseline(const char* name) {
  for (const qgen_dispatch_entry& e : kBaselines)
    if (strcmp(e.name, name) == 0) return &e;
  return nullptr;
}
