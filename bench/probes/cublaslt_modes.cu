// cublaslt_modes.cu — why the two-pass GEMM's bf16 half is slower than cuBLAS bf16 on K-heavy shapes (a probe).
//
// The two-pass path (NUMERICS §6.4, runtime/torch/qgen_torch/csrc/qgen_two_pass.h) calls cuBLASLt with alpha and
// beta as device pointers, so that alpha = f32(tA * tB) never syncs with the host. `qgen tune` at 4e03bc1 measured it
// at 0.69-0.74x cuBLAS bf16 on the shapes with k >> n, where the dequantize passes explain only a fifth of the gap.
// This probe times the same TN bf16 GEMM (C [m, n] = alpha . A [m, k] . B [n, k]^T, fp32 accumulation) under:
//   host      alpha, beta host scalars, the heuristic's first algorithm (what the cuBLAS bf16 baseline runs)
//   device    alpha, beta device pointers, the heuristic asked with that descriptor (what qgen_two_pass.h runs)
//   dev+host  device pointers, running the algorithm the heuristic picked for the host descriptor (after
//             cublasLtMatmulAlgoCheck accepts it for the device descriptor)
// At 2c4538a on the H100 the heuristic picked the same algorithm in both modes for every llama-7b shape (NOTES).
// and prints, per shape, the median time of each, the algorithm (id, tile, split-K) and whether dev+host gives the
// same bits as host (it should: same algorithm, same alpha value).
// Build: nvcc -O2 -std=c++17 -arch=sm_90a cublaslt_modes.cu -lcublasLt -o modes; run: ./modes m,n,k [m,n,k ...]
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#define CHECK_CUDA(x)                                                               \
  do {                                                                              \
    cudaError_t e_ = (x);                                                           \
    if (e_ != cudaSuccess) {                                                        \
      fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, cudaGetErrorString(e_));   \
      exit(1);                                                                      \
    }                                                                               \
  } while (0)

namespace {

constexpr size_t kWorkspaceBytes = 64ull << 20;
constexpr size_t kFlushBytes = 256ull << 20;  // > 5x the H100's 50 MiB L2
constexpr int kReps = 20;

struct Gemm {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
};

Gemm describe(int64_t m, int64_t n, int64_t k, cublasLtPointerMode_t mode) {
  Gemm g;
  cublasLtMatmulDescCreate(&g.op, CUBLAS_COMPUTE_32F, CUDA_R_32F);
  const cublasOperation_t t = CUBLAS_OP_T, nn = CUBLAS_OP_N;
  cublasLtMatmulDescSetAttribute(g.op, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof t);
  cublasLtMatmulDescSetAttribute(g.op, CUBLASLT_MATMUL_DESC_TRANSB, &nn, sizeof nn);
  cublasLtMatmulDescSetAttribute(g.op, CUBLASLT_MATMUL_DESC_POINTER_MODE, &mode, sizeof mode);
  cublasLtMatrixLayoutCreate(&g.a, CUDA_R_16BF, k, n, k);  // B [n, k] row-major, transposed (cuBLAS's "A")
  cublasLtMatrixLayoutCreate(&g.b, CUDA_R_16BF, k, m, k);  // A [m, k] row-major
  cublasLtMatrixLayoutCreate(&g.c, CUDA_R_16BF, n, m, n);  // C [m, n] row-major
  return g;
}

bool heuristic(cublasLtHandle_t h, const Gemm& g, cublasLtMatmulAlgo_t* algo) {
  cublasLtMatmulPreference_t pref;
  cublasLtMatmulPreferenceCreate(&pref);
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &kWorkspaceBytes,
                                       sizeof kWorkspaceBytes);
  cublasLtMatmulHeuristicResult_t r{};
  int found = 0;
  const cublasStatus_t s = cublasLtMatmulAlgoGetHeuristic(h, g.op, g.a, g.b, g.c, g.c, pref, 1, &r, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  if (s != CUBLAS_STATUS_SUCCESS || found == 0) return false;
  *algo = r.algo;
  return true;
}

void describe_algo(const cublasLtMatmulAlgo_t& algo, char* out, size_t size) {
  int id = -1, tile = -1, splitk = -1;
  size_t w = 0;
  cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_ID, &id, sizeof id, &w);
  cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_TILE_ID, &tile, sizeof tile, &w);
  cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &splitk, sizeof splitk, &w);
  snprintf(out, size, "id %d tile %d splitK %d", id, tile, splitk);
}

__global__ void fill(__nv_bfloat16* p, size_t count, uint32_t seed) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < count; i += size_t(gridDim.x) * blockDim.x) {
    uint32_t x = uint32_t(i) * 2654435761u ^ seed;
    x ^= x >> 15;
    x *= 2246822519u;
    x ^= x >> 13;
    p[i] = __float2bfloat16(float(int(x % 2001u) - 1000) / 1000.0f);
  }
}

// Median of kReps launches, each after a write of kFlushBytes (L2 holds nothing of A, B, C when the GEMM starts).
template <typename Launch>
float median_us(Launch launch, void* flush, cudaStream_t st) {
  cudaEvent_t t0, t1;
  cudaEventCreate(&t0);
  cudaEventCreate(&t1);
  std::vector<float> us;
  for (int rep = -2; rep < kReps; ++rep) {  // two warm-up launches
    CHECK_CUDA(cudaMemsetAsync(flush, rep & 0xff, kFlushBytes, st));
    cudaEventRecord(t0, st);
    if (launch() != CUBLAS_STATUS_SUCCESS) return -1.0f;
    cudaEventRecord(t1, st);
    CHECK_CUDA(cudaEventSynchronize(t1));
    float ms = 0;
    cudaEventElapsedTime(&ms, t0, t1);
    if (rep >= 0) us.push_back(ms * 1000.0f);
  }
  cudaEventDestroy(t0);
  cudaEventDestroy(t1);
  std::sort(us.begin(), us.end());
  return us[us.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s m,n,k [m,n,k ...]\n", argv[0]);
    return 2;
  }
  cublasLtHandle_t h;
  cublasLtCreate(&h);
  cudaStream_t st;
  CHECK_CUDA(cudaStreamCreate(&st));
  void *workspace = nullptr, *flush = nullptr;
  float* scalars = nullptr;  // alpha, beta on the device
  CHECK_CUDA(cudaMalloc(&workspace, kWorkspaceBytes));
  CHECK_CUDA(cudaMalloc(&flush, kFlushBytes));
  CHECK_CUDA(cudaMalloc(&scalars, 2 * sizeof(float)));
  const float alpha = 0.7109375f, beta = 0.0f;  // an alpha with few bits, as tA * tB often is not: any value works
  const float host_scalars[2] = {alpha, beta};
  CHECK_CUDA(cudaMemcpy(scalars, host_scalars, sizeof host_scalars, cudaMemcpyHostToDevice));
  printf("| m x n x k | host us | device us | dev+host us | device / host | dev+host / host | host algorithm |"
         " device algorithm | dev+host bits = host |\n|---|---:|---:|---:|---:|---:|---|---|---|\n");
  for (int i = 1; i < argc; ++i) {
    long long m = 0, n = 0, k = 0;
    if (sscanf(argv[i], "%lld,%lld,%lld", &m, &n, &k) != 3 || m < 1 || n < 1 || k < 1) {
      fprintf(stderr, "shape '%s': expected m,n,k (positive integers)\n", argv[i]);
      return 2;
    }
    __nv_bfloat16 *a, *b, *c_host, *c_dev;
    CHECK_CUDA(cudaMalloc(&a, size_t(m) * k * 2));
    CHECK_CUDA(cudaMalloc(&b, size_t(n) * k * 2));
    CHECK_CUDA(cudaMalloc(&c_host, size_t(m) * n * 2));
    CHECK_CUDA(cudaMalloc(&c_dev, size_t(m) * n * 2));
    fill<<<1024, 256, 0, st>>>(a, size_t(m) * k, 1u);
    fill<<<1024, 256, 0, st>>>(b, size_t(n) * k, 2u);
    const Gemm gh = describe(m, n, k, CUBLASLT_POINTER_MODE_HOST);
    const Gemm gd = describe(m, n, k, CUBLASLT_POINTER_MODE_DEVICE);
    cublasLtMatmulAlgo_t ah{}, ad{};
    char host_name[64] = "none", dev_name[64] = "none";
    const bool have_h = heuristic(h, gh, &ah), have_d = heuristic(h, gd, &ad);
    if (have_h) describe_algo(ah, host_name, sizeof host_name);
    if (have_d) describe_algo(ad, dev_name, sizeof dev_name);
    cublasLtMatmulHeuristicResult_t check{};
    const bool host_algo_ok_on_device =
        have_h && cublasLtMatmulAlgoCheck(h, gd.op, gd.a, gd.b, gd.c, gd.c, &ah, &check) == CUBLAS_STATUS_SUCCESS;
    auto run = [&](const Gemm& g, const cublasLtMatmulAlgo_t& algo, const void* al, const void* be, void* c) {
      return cublasLtMatmul(h, g.op, al, b, g.a, a, g.b, be, c, g.c, c, g.c, &algo, workspace, kWorkspaceBytes, st);
    };
    const float t_host = have_h ? median_us([&] { return run(gh, ah, &alpha, &beta, c_host); }, flush, st) : -1;
    const float t_dev = have_d ? median_us([&] { return run(gd, ad, scalars, scalars + 1, c_dev); }, flush, st) : -1;
    float t_mix = -1;
    const char* same = "n/a (host algorithm refused)";
    if (host_algo_ok_on_device) {
      t_mix = median_us([&] { return run(gd, ah, scalars, scalars + 1, c_dev); }, flush, st);
      std::vector<uint16_t> x(size_t(m) * n), y(size_t(m) * n);
      CHECK_CUDA(cudaMemcpy(x.data(), c_host, x.size() * 2, cudaMemcpyDeviceToHost));
      CHECK_CUDA(cudaMemcpy(y.data(), c_dev, y.size() * 2, cudaMemcpyDeviceToHost));
      same = memcmp(x.data(), y.data(), x.size() * 2) == 0 ? "yes" : "NO";
    }
    printf("| %lldx%lldx%lld | %.1f | %.1f | %.1f | %.2f | %.2f | %s | %s | %s |\n", m, n, k, t_host, t_dev, t_mix,
           t_host > 0 && t_dev > 0 ? t_dev / t_host : 0.0, t_host > 0 && t_mix > 0 ? t_mix / t_host : 0.0, host_name,
           dev_name, same);
    fflush(stdout);
    for (const Gemm* g : {&gh, &gd}) {
      cublasLtMatrixLayoutDestroy(g->a);
      cublasLtMatrixLayoutDestroy(g->b);
      cublasLtMatrixLayoutDestroy(g->c);
      cublasLtMatmulDescDestroy(g->op);
    }
    cudaFree(a);
    cudaFree(b);
    cudaFree(c_host);
    cudaFree(c_dev);
  }
  cublasLtDestroy(h);
  return 0;
}
