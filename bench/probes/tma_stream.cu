// tma_stream.cu — does the skinny GEMM's weight access pattern cap the memory rate? (a probe, issue 16)
//
// Every skinny sm_90a GEMM tried (1, 2 or 4 consumer chains; 2 or 4 CTAs per tile; 64- or 128-deep K blocks) stops at
// 32-34 us for n = k = 8192, i.e. its 37.7 MB of NVFP4 weights at ~1.15 TB/s (bench/NOTES.md, "Measured on the H100
// at 09dc096"). Per ring stage the kernels load, for a 64-row weight tile, one TMA box of 64 B (one 128-wide K block)
// from each of 64 rows 4 KB apart (tensor map with 128-byte L2 promotion), plus the K block's E4M3 scales as one
// 1 KB bulk copy (two 512-byte atoms of the 128x4 layout). This probe runs that load pipeline alone: one producer
// thread fills an 8-stage mbarrier ring, one consumer warp releases each stage after touching one byte, no math.
// Variants change one thing at a time: the L2 promotion (none / 128 B / 256 B), the box width (64 / 128 / 256 B of
// each row per request, i.e. 1 / 2 / 4 K blocks), the scale copies (on / off), CTAs per tile (1 / 2, contiguous K
// halves). If the 64-B/128-B-promotion row matches ~1.15 TB/s and another row is much faster, the kernels' limiter is
// their access pattern, and that row says what to change (same bits: where bytes land in L2 never changes a result).
// Build: nvcc -O2 -std=c++17 -arch=sm_90a -I runtime tma_stream.cu -o tma_stream; run: ./tma_stream [n k]
#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "qgen_async.cuh"

#define CHECK_CUDA(x)                                                             \
  do {                                                                            \
    cudaError_t e_ = (x);                                                         \
    if (e_ != cudaSuccess) {                                                      \
      fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, cudaGetErrorString(e_)); \
      exit(1);                                                                    \
    }                                                                             \
  } while (0)

namespace {

constexpr int kStages = 8;
constexpr int kRows = 64;                     // rows of one weight tile (the swapped kernels' W tile)
constexpr size_t kFlushBytes = 256ull << 20;  // > 5x the H100's 50 MiB L2
constexpr int kReps = 20;

struct Variant {
  const char* name;
  int box_bytes;  // bytes of each row per TMA request (64 = one 128-wide K block)
  CUtensorMapL2promotion promotion;
  bool scales;  // the K blocks' scale atoms as bulk copies, as the kernels do
  int ctas_per_tile;
};

__global__ void __launch_bounds__(64) stream(const __grid_constant__ CUtensorMap map, const uint8_t* scales,
                                             int steps, int box_bytes, int scale_bytes, int atoms_per_row,
                                             int ctas_per_tile, uint32_t* sink) {
  extern __shared__ __align__(1024) uint8_t smem[];
  __shared__ uint64_t full[kStages], empty[kStages];
  const int tile = blockIdx.x / ctas_per_tile, part = blockIdx.x % ctas_per_tile;
  const int s0 = part * steps / ctas_per_tile, s1 = (part + 1) * steps / ctas_per_tile;
  const int code_bytes = box_bytes * kRows;
  const int stage_bytes = (code_bytes + scale_bytes + 1023) / 1024 * 1024;
  const int atoms_per_step = box_bytes * 2 / 64;  // a scale atom covers 64 K elements of 128 rows
  if (threadIdx.x == 0) {
    for (int i = 0; i < kStages; ++i) {
      qgen_mbar_init(&full[i], 1);
      qgen_mbar_init(&empty[i], 1);
    }
    qgen_fence_mbar_init();
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int s = s0, i = 0; s < s1; ++s, ++i) {
      const int slot = i % kStages;
      if (i >= kStages) qgen_mbar_wait(&empty[slot], ((i / kStages) & 1) ^ 1);
      qgen_mbar_arrive_expect_tx(&full[slot], code_bytes + scale_bytes);
      qgen_tma_load_2d(smem + slot * stage_bytes, &map, s * box_bytes, tile * kRows, &full[slot]);
      if (scale_bytes) {
        const int64_t block = (static_cast<int64_t>(tile / 2) * atoms_per_row + s * atoms_per_step) * 512;
        qgen_bulk_load(smem + slot * stage_bytes + code_bytes, scales + block, scale_bytes, &full[slot]);
      }
    }
  } else if (threadIdx.x == 32) {
    uint32_t acc = 0;
    for (int s = s0, i = 0; s < s1; ++s, ++i) {
      const int slot = i % kStages;
      qgen_mbar_wait(&full[slot], (i / kStages) & 1);
      acc += smem[slot * stage_bytes + (i & 63)];
      qgen_mbar_arrive(&empty[slot]);
    }
    if (acc == 0xFFFFFFFFu) *sink = acc;  // never true for these inputs; keeps the reads
  }
}

PFN_cuTensorMapEncodeTiled_v12000 encoder() {
  void* p = nullptr;
  cudaDriverEntryPointQueryResult found;
  CHECK_CUDA(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &found));
  if (found != cudaDriverEntryPointSuccess || !p) {
    fprintf(stderr, "cuTensorMapEncodeTiled not available\n");
    exit(1);
  }
  return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(p);
}

float median(std::vector<float> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t n = argc > 2 ? atoll(argv[1]) : 8192, k = argc > 2 ? atoll(argv[2]) : 8192;
  if (n % 128 || k % 512 || n <= 0 || k <= 0) {
    fprintf(stderr, "tma_stream: n = %lld, k = %lld; allowed: n a multiple of 128, k a multiple of 512\n",
            static_cast<long long>(n), static_cast<long long>(k));
    return 2;
  }
  const size_t code_bytes = static_cast<size_t>(n * k / 2), scale_bytes = static_cast<size_t>(n * k / 16);
  uint8_t *codes, *scales, *flush, *copy_dst;
  uint32_t* sink;
  CHECK_CUDA(cudaMalloc(&codes, code_bytes));
  CHECK_CUDA(cudaMalloc(&scales, scale_bytes));
  CHECK_CUDA(cudaMalloc(&copy_dst, code_bytes + scale_bytes));
  CHECK_CUDA(cudaMalloc(&flush, kFlushBytes));
  CHECK_CUDA(cudaMalloc(&sink, 4));
  CHECK_CUDA(cudaMemset(codes, 0x11, code_bytes));
  CHECK_CUDA(cudaMemset(scales, 0x38, scale_bytes));
  CHECK_CUDA(cudaFuncSetAttribute(stream, cudaFuncAttributeMaxDynamicSharedMemorySize, 200 * 1024));
  cudaEvent_t e0, e1;
  CHECK_CUDA(cudaEventCreate(&e0));
  CHECK_CUDA(cudaEventCreate(&e1));
  auto timed = [&](auto&& launch) {
    std::vector<float> ms;
    for (int r = 0; r < kReps + 2; ++r) {
      CHECK_CUDA(cudaMemsetAsync(flush, r, kFlushBytes));
      CHECK_CUDA(cudaEventRecord(e0));
      launch();
      CHECK_CUDA(cudaEventRecord(e1));
      CHECK_CUDA(cudaEventSynchronize(e1));
      float t = 0;
      CHECK_CUDA(cudaEventElapsedTime(&t, e0, e1));
      if (r >= 2) ms.push_back(t * 1000.0f);
    }
    CHECK_CUDA(cudaGetLastError());
    return median(ms);
  };
  const float copy_us = timed([&] {
    CHECK_CUDA(cudaMemcpyAsync(copy_dst, codes, code_bytes, cudaMemcpyDeviceToDevice));
    CHECK_CUDA(cudaMemcpyAsync(copy_dst + code_bytes, scales, scale_bytes, cudaMemcpyDeviceToDevice));
  });
  const Variant variants[] = {
      {"kernels today: 64 B/row, promotion 128 B, scales", 64, CU_TENSOR_MAP_L2_PROMOTION_L2_128B, true, 1},
      {"promotion none", 64, CU_TENSOR_MAP_L2_PROMOTION_NONE, true, 1},
      {"promotion 256 B", 64, CU_TENSOR_MAP_L2_PROMOTION_L2_256B, true, 1},
      {"no scale copies", 64, CU_TENSOR_MAP_L2_PROMOTION_L2_128B, false, 1},
      {"128 B/row (2 K blocks), promotion 128 B", 128, CU_TENSOR_MAP_L2_PROMOTION_L2_128B, true, 1},
      {"128 B/row, promotion 256 B", 128, CU_TENSOR_MAP_L2_PROMOTION_L2_256B, true, 1},
      {"256 B/row (4 K blocks), promotion 256 B", 256, CU_TENSOR_MAP_L2_PROMOTION_L2_256B, true, 1},
      {"2 CTAs per tile, 64 B/row, promotion 128 B", 64, CU_TENSOR_MAP_L2_PROMOTION_L2_128B, true, 2},
      {"2 CTAs per tile, 64 B/row, promotion 256 B", 64, CU_TENSOR_MAP_L2_PROMOTION_L2_256B, true, 2},
      {"2 CTAs per tile, 128 B/row, promotion 256 B", 128, CU_TENSOR_MAP_L2_PROMOTION_L2_256B, true, 2},
  };
  const double bytes = static_cast<double>(code_bytes + scale_bytes);
  printf("n = %lld, k = %lld: %.1f MB of codes + scales; device copy of them %.1f us (%.2f TB/s read + write)\n\n",
         static_cast<long long>(n), static_cast<long long>(k), bytes / 1e6, copy_us, 2 * bytes / copy_us / 1e6);
  printf("| variant | CTAs | stage (KB) | time (us) | read TB/s | x copy time |\n|---|---:|---:|---:|---:|---:|\n");
  const PFN_cuTensorMapEncodeTiled_v12000 encode = encoder();
  for (const Variant& v : variants) {
    CUtensorMap map;
    const cuuint64_t dims[2] = {static_cast<cuuint64_t>(k / 2), static_cast<cuuint64_t>(n)};
    const cuuint64_t strides[1] = {static_cast<cuuint64_t>(k / 2)};
    const cuuint32_t box[2] = {static_cast<cuuint32_t>(v.box_bytes), static_cast<cuuint32_t>(kRows)};
    const cuuint32_t estrides[2] = {1u, 1u};
    const CUresult r = encode(&map, CU_TENSOR_MAP_DATA_TYPE_UINT8, 2, codes, dims, strides, box, estrides,
                              CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_NONE, v.promotion,
                              CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    if (r != CUDA_SUCCESS) {
      fprintf(stderr, "%s: tensor map rejected (%d)\n", v.name, static_cast<int>(r));
      return 1;
    }
    const int steps = static_cast<int>(k / 2 / v.box_bytes);
    const int sbytes = v.scales ? v.box_bytes * 2 / 64 * 512 : 0;
    const int stage = (v.box_bytes * kRows + sbytes + 1023) / 1024 * 1024;
    const int ctas = static_cast<int>(n / kRows) * v.ctas_per_tile;
    const float us = timed([&] {
      stream<<<ctas, 64, stage * kStages>>>(map, scales, steps, v.box_bytes, sbytes, static_cast<int>(k / 64),
                                            v.ctas_per_tile, sink);
    });
    const double read = static_cast<double>(code_bytes + (v.scales ? scale_bytes : 0));  // bytes of the tensors
    printf("| %s | %d | %d | %.1f | %.2f | %.2f |\n", v.name, ctas, stage / 1024, us, read / us / 1e6, us / copy_us);
  }
  printf("\nread TB/s: the tensors' bytes over the time (each 64-row tile copies its 128-row scale atoms, so the\n"
         "scales cross L2 twice, DRAM once at best). The GEMMs add the activation rows and the MMAs to this.\n");
  return 0;
}
