/* qgen.h — the C ABI of qgen's generated host entry points.
 *
 * Every entry point validates its arguments first and returns a qgen_status; when code != 0 nothing was launched and
 * `message` names the argument and what is allowed. Work is enqueued on the caller's stream; no entry point
 * synchronises the host. Numerics: runtime/NUMERICS.md. Shapes (NUMERICS §8): rows >= 1; cols a multiple of 16
 * (32 for MXFP4) and of the Hadamard size when the kernel rotates.
 */
#ifndef QGEN_H
#define QGEN_H

#include <stddef.h>
#include <stdint.h>
#include <cuda_runtime.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int code; /* 0 = ok; otherwise nothing was launched (or the launch itself failed: code 2) */
  char message[256];
} qgen_status;

enum { QGEN_OK = 0, QGEN_INVALID_ARGUMENT = 1, QGEN_LAUNCH_FAILED = 2 };

#if defined(__CUDACC__)
#define QGEN_HOST_DEVICE __host__ __device__
#else
#define QGEN_HOST_DEVICE
#endif

/* Bytes to allocate for the scales of a [rows, groups_per_row] scale grid (NUMERICS §7), for callers and kernels alike:
 * 128x4 layout: rows padded to 128, groups to 4 (the padding bytes are written as 0); row-major: no padding. */
static inline QGEN_HOST_DEVICE int64_t qgen_scale_bytes_128x4(int64_t rows, int64_t groups_per_row) {
  return ((rows + 127) / 128) * 128 * ((groups_per_row + 3) / 4) * 4;
}
static inline QGEN_HOST_DEVICE int64_t qgen_scale_bytes_row_major(int64_t rows, int64_t groups_per_row) {
  return rows * groups_per_row;
}

/* Quantize: C ABI `qgen_status qgen_<name>(const qgen_quantize_args* args, cudaStream_t stream);` and
 * `size_t qgen_<name>_workspace_bytes(int64_t rows, int64_t cols);`. */
typedef struct {
  /* Input, one of:
   *  - x: bf16 [rows, cols] row-major, or [cols, rows] row-major when the kernel reads its input transposed;
   *  - requant (NUMERICS §5.9): an NVFP4 tensor A [cols, rows] quantized along rows: in_codes [cols, rows/2],
   *    in_scales in the kernel's scale layout for a [cols, rows/16] grid, *in_tensor_scale = t_in. */
  const void* x;
  const uint8_t* in_codes;
  const uint8_t* in_scales;
  const float* in_tensor_scale;
  int64_t rows, cols;  /* OUTPUT shape; quantized along cols (K) */
  uint8_t* codes;      /* packed E2M1 [rows, cols/2], element 2i in the low nibble of byte i */
  uint8_t* scales;     /* per the kernel's scale layout (NUMERICS §7); 128x4 padding bytes are written as 0 */
  float* tensor_scale; /* device pointer: written (computed / one-pass) or read (caller); unused for MXFP4 */
  uint64_t seed;       /* Philox key of every stochastic rounding draw (SR element bits, MS-EDEN scale roundings),
                        * word(seed, STREAM_ELEMENT_SR / STREAM_SCALE_SR, g, ...); the signs use sign_seed (NUMERICS §3.2) */
  void* workspace;     /* device scratch, at least qgen_<name>_workspace_bytes(rows, cols), 256-byte aligned */
  size_t workspace_bytes;
  uint64_t sign_seed; /* key of the Hadamard sign vector: sign j is bit j & 31 of word(sign_seed, STREAM_SIGNS, 0, j >>
                       * 5) (NUMERICS §3.2); ignored by kernels that do not rotate. The operands of one GEMM pass the
                       * SAME sign_seed (their rotations cancel) and DIFFERENT seeds (independent noise; shared noise
                       * would correlate Q(A) and Q(B) and bias A.B^T). */
  void* plane;        /* kernels with outputs 'nvfp4+bf16-plane' only (NULL otherwise): bf16 [rows, cols], 16-byte
                       * aligned, written with plane[i] = bf16(e2m1(code i) * scale(group of i)), no tensor scale
                       * (NUMERICS §6.6) */
} qgen_quantize_args;

/* Dequantize: `qgen_status qgen_<name>(const qgen_dequantize_args* args, cudaStream_t stream);`
 * y [rows, cols] = f32(f32(e2m1 * scale) * t) as bf16 or f32 (NUMERICS §6). */
typedef struct {
  const uint8_t* codes;      /* [rows, cols/2] */
  const uint8_t* scales;     /* per the kernel's scale layout */
  const float* tensor_scale; /* device pointer to t (NVFP4); may be NULL for MXFP4 */
  int64_t rows, cols;
  void* y; /* [rows, cols] bf16 or f32 */
} qgen_dequantize_args;

/* Randomized Hadamard transform along cols (NUMERICS §4): `qgen_status qgen_<name>(const qgen_hadamard_args*,
 * cudaStream_t);` */
typedef struct {
  const void* x; /* [rows, cols] bf16 or f32 */
  void* y;       /* [rows, cols] bf16 or f32 */
  int64_t rows, cols;
  uint64_t seed; /* the sign seed: sign j is bit j & 31 of word(seed, STREAM_SIGNS, 0, j >> 5) (NUMERICS §3.2); to
                  * rotate like a quantizer, pass that quantizer's sign_seed */
} qgen_hadamard_args;

/* amax over the finite elements (NUMERICS §1.4): `qgen_status qgen_<name>(const qgen_amax_args*, cudaStream_t);`
 * and `size_t qgen_<name>_workspace_bytes(int64_t rows, int64_t cols);` (0: the result word is the accumulator). */
typedef struct {
  const void* x; /* [rows, cols] bf16 or f32 */
  float* amax;   /* device pointer, written */
  int64_t rows, cols;
  void* workspace;
  size_t workspace_bytes;
} qgen_amax_args;

/* GEMM (NUMERICS §6.2): `qgen_status qgen_<name>(const qgen_gemm_args* args, cudaStream_t stream);`
 * C [m, n] = alpha * A . B^T with alpha = *a_tensor_scale * *b_tensor_scale (binary32), A [m, k] and B [n, k] NVFP4,
 * both K-major (packed codes, element 2i in the low nibble of byte i; E4M3 16-group scales in the 128x4 layout). */
typedef struct {
  const uint8_t* a_codes;      /* [m, k/2] */
  const uint8_t* a_scales;     /* 128x4 layout for an [m, k/16] grid */
  const float* a_tensor_scale; /* device pointer to tA */
  const uint8_t* b_codes;      /* [n, k/2] */
  const uint8_t* b_scales;     /* 128x4 layout for an [n, k/16] grid */
  const float* b_tensor_scale; /* device pointer to tB */
  int64_t m, n, k;
  void* c; /* [m, n] row-major, bf16 or f32 per the kernel */
} qgen_gemm_args;

#ifdef __cplusplus
}
#endif

#endif /* QGEN_H */
