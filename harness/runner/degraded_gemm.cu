// A deliberately degraded NVFP4 GEMM for the accumulator probe's self-test on any GPU (qgen-gpu probe-selftest):
// one thread per output element decodes A and B exactly (e2m1 * e4m3 in fp32), adds the products in binary32 one at
// a time (k ascending, round to nearest) and, after every `step` products, cuts the accumulator to `bits`
// significant bits toward zero: the "Hopper FP8-like" accumulator the probe must recognise
// (reference/accumulator.ts, family periodic). Epilogue as NUMERICS §6.2: c = bf16(f32(acc * f32(tA * tB))).
// Served by the runner as "baseline:degraded_nvfp4_gemm" with the GEMM's 7 buffers; seed = bits | step << 8
// (0 means 14 bits every 32 products).
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <cstdint>
#include <cstdio>
#include "dispatch.h"

namespace {

__device__ float e2m1_value(uint32_t code) {
  const int e = (code >> 1) & 3, m = code & 1;  // bias 1, 0.m * 2^0 for e = 0
  const float mag = e == 0 ? 0.5f * m : ldexpf(1.f + 0.5f * m, e - 1);
  return (code & 8) ? -mag : mag;
}

__device__ float e4m3_value(uint32_t c) {
  const int e = (c >> 3) & 15, m = c & 7;
  return e == 0 ? ldexpf(static_cast<float>(m), -9) : ldexpf(static_cast<float>(8 + m), e - 10);
}

// 128x4 scale layout (NUMERICS §7).
__device__ int64_t scale_offset(int64_t r, int64_t kb, int64_t Kb) {
  return ((r / 128) * ((Kb + 3) / 4) + kb / 4) * 512 + (r % 32) * 16 + ((r % 128) / 32) * 4 + kb % 4;
}

__device__ float element(const uint8_t* codes, const uint8_t* scales, int64_t r, int64_t k, int64_t K) {
  const uint8_t byte = codes[r * (K / 2) + k / 2];
  return e2m1_value((k & 1) ? byte >> 4 : byte & 15) * e4m3_value(scales[scale_offset(r, k / 16, K / 16)]);
}

__global__ void degraded_gemm(const uint8_t* ac, const uint8_t* as, const float* at, const uint8_t* bc,
                              const uint8_t* bs, const float* bt, __nv_bfloat16* c, int64_t M, int64_t N, int64_t K,
                              int bits, int step) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= M * N) return;
  const int64_t m = i / N, n = i % N;
  const uint32_t keep = ~((1u << (24 - bits)) - 1u);  // cut a normal binary32 to `bits` significant bits
  float acc = 0.f;
  for (int64_t k = 0; k < K; ++k) {
    acc = __fadd_rn(acc, __fmul_rn(element(ac, as, m, k, K), element(bc, bs, n, k, K)));
    if ((k + 1) % step == 0) acc = __uint_as_float(__float_as_uint(acc) & keep);
  }
  c[i] = __float2bfloat16_rn(__fmul_rn(acc, __fmul_rn(*at, *bt)));
}

}  // namespace

qgen_status qgen_degraded_nvfp4_gemm(void** bufs, int nb, int64_t m, int64_t k, int64_t n, uint64_t seed, uint64_t,
                                     void*, size_t, cudaStream_t st) {
  qgen_status s;
  s.code = 0;
  s.message[0] = 0;
  const int bits = (seed & 0xff) ? static_cast<int>(seed & 0xff) : 14;
  const int step = ((seed >> 8) & 0xffff) ? static_cast<int>((seed >> 8) & 0xffff) : 32;
  if (nb != 7 || m < 1 || n < 1 || k < 16 || k % 16 || bits < 1 || bits > 24) {
    s.code = 2;
    snprintf(s.message, sizeof s.message, "baseline:degraded_nvfp4_gemm: 7 buffers, m, n >= 1, k a multiple of 16");
    return s;
  }
  const int64_t total = m * n;
  degraded_gemm<<<static_cast<unsigned>((total + 255) / 256), 256, 0, st>>>(
      static_cast<const uint8_t*>(bufs[0]), static_cast<const uint8_t*>(bufs[1]), static_cast<const float*>(bufs[2]),
      static_cast<const uint8_t*>(bufs[3]), static_cast<const uint8_t*>(bufs[4]), static_cast<const float*>(bufs[5]),
      static_cast<__nv_bfloat16*>(bufs[6]), m, n, k, bits, step);
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) {
    s.code = 2;
    snprintf(s.message, sizeof s.message, "baseline:degraded_nvfp4_gemm: %s", cudaGetErrorString(e));
  }
  return s;
}
