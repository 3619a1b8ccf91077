// qgen_quantize.cuh — per-group quantization building blocks shared by every arch, NUMERICS §5.
//
// A group is 16 consecutive binary32 values along K (32 for MXFP4). Each rounding is written once over a scale form
// (qgen_tensor_form: the tensor scale t is known; qgen_proxy_form: one-pass pass A, whose proxies pass B
// (qgen_finalize_proxy_*) turns into scales once the tensor-wide maximum is known), §5.1.
// E2M1 is a policy (qgen_e2m1_software / qgen_e2m1_hardware) that packs two RN codes into a byte.
#pragma once
#include <cstdint>
#include <type_traits>
#include <cuda_runtime.h>
#include "qgen_fp32.cuh"
#include "qgen_e2m1.cuh"
#include "qgen_e4m3.cuh"
#include "qgen_ue8m0.cuh"
#include "qgen_philox.cuh"
#include "qgen_layout.cuh"

// The one-pass proxy of a zero group (§5.2): 0. A group is a zero group in one-pass mode when its amax is 0 or its
// proxy rounds to 0 (the analogue of "a scale that rounds to 0" in computed/caller mode; it makes every stored
// c_g = 0 a zero group, so pass B needs no other marker).
constexpr uint32_t QGEN_ZERO_GROUP_PROXY = 0x0000u;

// ---------------------------------------------------------------------------------------------------------------
// Group statistics

// NUMERICS §1.4: max |x| over the finite values of a group; 0 when none.
// sm_90a and the host (test/compile.test.ts checks it there): on bit patterns, two integer operations per element
// and no second pass. k(x) = (bits(x) << 1) + 2^24 (mod 2^32) drops the sign and maps the finite magnitudes
// monotonically onto [2^24, 2^32 - 2], ±Inf onto 0 and NaN onto [2, 2^24 - 2]; an unsigned max started at
// k(0) = 2^24 skips the non-finite values, and (max - 2^24) >> 1 is the bit pattern of the largest finite |x|.
// (The float form below, a max over |x| with a rescan when it is not finite, is if-converted by the compiler into
// both scans, every time: ~3 more instructions per element.)
// sm_100a / sm_120a: the float form; the integer one spilled four-over-six at its 80-register cap there
// (ptxas 13.0). Both give the same value.
template <int N>
__host__ __device__ __forceinline__ float qgen_group_amax(const float* x) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ < 1000
  uint32_t m = 0x01000000u;
#pragma unroll
  for (int i = 0; i < N; ++i) {
    const uint32_t k = (qgen_f32_bits(x[i]) << 1) + 0x01000000u;
    m = m > k ? m : k;
  }
  return qgen_f32_from_bits((m - 0x01000000u) >> 1);
#else
  float m = 0.0f;
#pragma unroll
  for (int i = 0; i < N; ++i) m = fmaxf(m, fabsf(x[i]));
  if (!(m <= 3.402823466e38f)) {
    m = 0.0f;
#pragma unroll
    for (int i = 0; i < N; ++i) m = fmaxf(m, qgen_finite_abs(x[i]));
  }
  return m;
#endif
}

// The same maximum for values that are bf16 (every pattern's low 16 bits are 0), taken as the 32-bit words the row
// loads hold (element 2i in the low half, 2i + 1 in the high half; qgen_unpack_bf16_row), one instruction per key
// (sm_90a and the host): the key of the low half is (word << 17) + 2^24, exactly k(x_2i); (word << 1) + 2^24 is
// k(x_2i+1) plus the low half shifted, a junk term j < 2^17 (no wrap: k <= 0xFFFE0000 for a finite value, and the
// wrapped keys of ±Inf and NaN stay below 0x00FE0000 + j < 2^24). The keys of two bf16 values differ by a multiple
// of 2^17, so j never reorders them, and ((max - 2^24) >> 1) & 0xFFFF0000 drops it. (From the float form the
// compiler spends three instructions on the key of an odd element: shift, mask, add.) Only for unrotated bf16 row
// inputs (qgen_amax_of_group), whose pairs come from one word; test/compile.test.ts checks it on bf16 groups.
template <int N>
__host__ __device__ __forceinline__ float qgen_group_amax_bf16(const float* x) {
  static_assert(N % 2 == 0, "pairs");
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ < 1000
  uint32_t m = 0x01000000u;
#pragma unroll
  for (int i = 0; i < N; i += 2) {
    const uint32_t word = qgen_f32_bits(x[i + 1]) | (qgen_f32_bits(x[i]) >> 16);  // the loaded word itself
    const uint32_t k0 = (word << 17) + 0x01000000u, k1 = (word << 1) + 0x01000000u;
    m = m > k0 ? m : k0;
    m = m > k1 ? m : k1;
  }
  return qgen_f32_from_bits(((m - 0x01000000u) >> 1) & 0xFFFF0000u);
#else
  return qgen_group_amax<N>(x);
#endif
}

// True when every x_i is finite: the keys k of qgen_group_amax lie below 2^24 exactly for ±Inf and NaN. The bf16 form
// takes the loaded-word keys of qgen_group_amax_bf16 (a junk term below 2^17 keeps a non-finite key below 2^24 and a
// finite one above), so the compiler shares them with the amax (one more three-way min per pair).
template <int N>
__host__ __device__ __forceinline__ bool qgen_group_all_finite(const float* x) {
  uint32_t m = 0xFFFFFFFFu;
#pragma unroll
  for (int i = 0; i < N; ++i) {
    const uint32_t k = (qgen_f32_bits(x[i]) << 1) + 0x01000000u;
    m = m < k ? m : k;
  }
  return m >= 0x01000000u;
}
template <int N>
__host__ __device__ __forceinline__ bool qgen_group_all_finite_bf16(const float* x) {
  uint32_t m = 0xFFFFFFFFu;
#pragma unroll
  for (int i = 0; i < N; i += 2) {
    const uint32_t word = qgen_f32_bits(x[i + 1]) | (qgen_f32_bits(x[i]) >> 16);
    const uint32_t k0 = (word << 17) + 0x01000000u, k1 = (word << 1) + 0x01000000u;
    m = m < k0 ? m : k0;
    m = m < k1 ? m : k1;
  }
  return m >= 0x01000000u;
}

// NUMERICS §5.7: the amax of a 16x16 block whose 16 rows are held by lanes l ^ {1, 2, 4, 8}.
__device__ __forceinline__ float qgen_block16x16_amax(float group_amax) {
#pragma unroll
  for (int mask = 1; mask <= 8; mask *= 2)
    group_amax = fmaxf(group_amax, __shfl_xor_sync(0xffffffffu, group_amax, mask));
  return group_amax;
}

// prmt.b32 (default mode) with a selector whose nibbles may set bit 3: output byte i is source byte
// (selector >> 4i) & 7 of the pool hi:lo, or, when bit 3 of that nibble is set, that byte's sign bit replicated over
// all 8 bits (PTX ISA, prmt). The host spelling is the definition (test/compile.test.ts compares both on the device
// kernels' use through the four-over-six sweep, and checks the host spelling against the ISA's words).
__host__ __device__ __forceinline__ uint32_t qgen_prmt_sign(uint32_t lo, uint32_t hi, uint32_t selector) {
#if defined(__CUDA_ARCH__)
  uint32_t out;
  asm("prmt.b32 %0, %1, %2, %3;" : "=r"(out) : "r"(lo), "r"(hi), "r"(selector));
  return out;
#else
  const uint64_t pool = (static_cast<uint64_t>(hi) << 32) | lo;
  uint32_t out = 0;
  for (int i = 0; i < 4; ++i) {
    const uint32_t nibble = (selector >> (4 * i)) & 0xFu;
    uint32_t byte = static_cast<uint32_t>(pool >> (8 * (nibble & 7u))) & 0xFFu;
    if (nibble & 8u) byte = (byte & 0x80u) ? 0xFFu : 0x00u;
    out |= byte << (8 * i);
  }
  return out;
#endif
}

// The sign bits of 8 values as the top bits of their code nibbles (bit 4j+3 = sign of x_j), every other bit of
// each nibble set alike (mask with 0x88888888). The bf16 words w_m = (bits(x_2m+1) & 0xFFFF0000) | (bits(x_2m) >> 16)
// hold the signs in bits 15 and 31 whatever the low bits of x are; for values loaded as bf16 pairs the compiler folds
// w_m into the loaded word. Sign-replicating byte permutes: A = the signs of x_0..x_3 as bytes 0x00 / 0xFF, B those
// of x_4..x_7, then the even and the odd elements' bytes, merged a nibble each: 4 PRMT + 1 LOP3 for 8 values instead
// of a mask and a shift-add per value.
__host__ __device__ __forceinline__ uint32_t qgen_sign_nibbles8(const float* x) {
  uint32_t w[4];
#pragma unroll
  for (int m = 0; m < 4; ++m) w[m] = (qgen_f32_bits(x[2 * m + 1]) & 0xFFFF0000u) | (qgen_f32_bits(x[2 * m]) >> 16);
  const uint32_t a = qgen_prmt_sign(w[0], w[1], 0xFDB9u), b = qgen_prmt_sign(w[2], w[3], 0xFDB9u);
  const uint32_t even = qgen_prmt_sign(a, b, 0x6420u), odd = qgen_prmt_sign(a, b, 0x7531u);
  return (even & 0x0F0F0F0Fu) | (odd & 0xF0F0F0F0u);
}

// The same nibbles for values that are not bf16 pairs of one word (rotated, transposed or dequantized inputs): the
// sign bytes straight from each value's top byte, E = (x_0, x_2, x_4, x_6) and O = (x_1, x_3, x_5, x_7) by three
// sign-replicating permutes each, then one LOP3: 7 instructions for 8 values, where building the words first costs 13.
__host__ __device__ __forceinline__ uint32_t qgen_sign_nibbles8_f32(const float* x) {
  uint32_t b[8];
#pragma unroll
  for (int i = 0; i < 8; ++i) b[i] = qgen_f32_bits(x[i]);
  const uint32_t even =
      qgen_prmt_sign(qgen_prmt_sign(b[0], b[2], 0xFFFBu), qgen_prmt_sign(b[4], b[6], 0xFFFBu), 0x5410u);
  const uint32_t odd =
      qgen_prmt_sign(qgen_prmt_sign(b[1], b[3], 0xFFFBu), qgen_prmt_sign(b[5], b[7], 0xFFFBu), 0x5410u);
  return (even & 0x0F0F0F0Fu) | (odd & 0xF0F0F0F0u);
}

// The sign nibbles of 8 values in the cheaper form for the input (kBf16Pairs: values loaded as bf16 pairs).
template <bool kBf16Pairs>
__host__ __device__ __forceinline__ uint32_t qgen_sign_nibbles(const float* x) {
  return kBf16Pairs ? qgen_sign_nibbles8(x) : qgen_sign_nibbles8_f32(x);
}

// ---------------------------------------------------------------------------------------------------------------
// Codes of 16 values (8 bytes: element i in bits 4i+3..4i, §2.7)

// NUMERICS §5.3: q_i = RN_E2M1(f32(x_i * inv)).
template <class E2M1>
__host__ __device__ __forceinline__ uint2 qgen_rtn_codes16(const float* x, float inv) {
  float lo[8], hi[8];
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    lo[i] = qgen_mul(x[i], inv);
    hi[i] = qgen_mul(x[8 + i], inv);
  }
  return make_uint2(E2M1::pack8(lo), E2M1::pack8(hi));
}

// NUMERICS §5.4 and §3.2: q_i = SR_E2M1(f32(x_i * inv), r16_i); element e of group g uses bits 15:0 (even e) or
// 31:16 (odd e) of word(seed, STREAM_ELEMENT_SR, g, e >> 1).
// seed: the key (uint64_t) or its precomputed round keys (qgen_philox_keys); the same words.
template <class Key>
__host__ __device__ __forceinline__ uint2 qgen_sr_codes16(const float* x, float inv, const Key& seed, uint64_t group) {
  const uint4 w0 = qgen_random_block(seed, QGEN_STREAM_ELEMENT_SR, group, 0);  // words 0..3: elements 0..7
  const uint4 w1 = qgen_random_block(seed, QGEN_STREAM_ELEMENT_SR, group, 1);  // words 4..7: elements 8..15
  const uint32_t words[8] = {w0.x, w0.y, w0.z, w0.w, w1.x, w1.y, w1.z, w1.w};
  uint32_t codes[2] = {0u, 0u};
#pragma unroll
  for (int i = 0; i < 16; ++i) {
    // r16 << 16: bits 15:0 of the word (even i) moved up, or bits 31:16 (odd i) in place.
    const uint32_t draw_hi = i % 2 == 0 ? words[i / 2] << 16 : words[i / 2] & 0xFFFF0000u;
    codes[i / 8] = qgen_add_nibble(codes[i / 8], qgen_sr_e2m1_top(qgen_mul(x[i], inv), draw_hi), i % 8);
  }
  return make_uint2(codes[0], codes[1]);
}

// NUMERICS §5.2: codes of a zero group (and of a computed/caller group whose scale rounds to 0): finite elements
// give ±0 (0x0 / 0x8), non-finite ones RN_E2M1 (±Inf -> ±6, NaN -> 0x7). For an all-±0 group this is RN_E2M1(x_i).
template <class E2M1>
__host__ __device__ __forceinline__ uint2 qgen_zero_group_codes16(const float* x) {
  uint32_t bytes[8];
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const float lo = isfinite(x[2 * i]) ? copysignf(0.0f, x[2 * i]) : x[2 * i];
    const float hi = isfinite(x[2 * i + 1]) ? copysignf(0.0f, x[2 * i + 1]) : x[2 * i + 1];
    bytes[i] = E2M1::pack2(lo, hi);
  }
  return qgen_pack_code_bytes(bytes);
}

// The decoded value of element i of 16 packed codes.
__host__ __device__ __forceinline__ float qgen_code_value(uint2 codes, int i) {
  const uint32_t word = i < 8 ? codes.x : codes.y;
  return qgen_e2m1_value((word >> (4 * (i & 7))) & 0xFu);
}

// NUMERICS §5.3 and §5.5 in one sweep: q_i = RN_E2M1(f32(x_i * inv)) (codes returned) and the candidate's error
// e = tree16(f32(d_i * d_i)), d_i = f32(x_i - f32(q_i * D)), with q_i's value taken from the rounding itself.
// kExactProduct (the proxy form, D a P4 value): q_i * D has at most 2 + 4 significant bits and is exact (or beyond
// the binary32 range, where both spellings give d_i^2 = +Inf: |x_i| <= FLT_MAX < q_i * D leaves |d_i| >= 2^104), so
// d_i is one FMA, equal to the two-step form.
template <bool kExactProduct>
__host__ __device__ __forceinline__ uint2 qgen_rtn_codes16_error(const float* x, float inv, float dequant_scale,
                                                                 float& error) {
  uint32_t words[2] = {0u, 0u};
  float sq[16];
#pragma unroll
  for (int i = 0; i < 16; ++i) {
    const qgen_e2m1_nibble q = qgen_rn_e2m1_top(qgen_mul(x[i], inv));
    words[i / 8] = qgen_add_nibble(words[i / 8], q.top, i % 8);
    const float d = kExactProduct ? qgen_fma_exact_product(-q.value, dequant_scale, x[i])
                                  : qgen_sub(x[i], qgen_mul(q.value, dequant_scale));
    sq[i] = qgen_mul(d, d);
  }
  error = qgen_tree16(sq);
  return make_uint2(words[0], words[1]);
}

// NUMERICS §5.5: e = tree16(f32(d_i * d_i)), d_i = f32(x_i - f32(q_i * D)) for given codes (the rare zero-group
// candidate).
__host__ __device__ __forceinline__ float qgen_group_error16(const float* x, uint2 codes, float dequant_scale) {
  float sq[16];
#pragma unroll
  for (int i = 0; i < 16; ++i) {
    const float d = qgen_sub(x[i], qgen_mul(qgen_code_value(codes, i), dequant_scale));
    sq[i] = qgen_mul(d, d);
  }
  return qgen_tree16(sq);
}

// ---------------------------------------------------------------------------------------------------------------
// Scale forms (§5.1): how a group's scale is formed, one policy per form; every rounding below is written once over
// a form.
//   qgen_tensor_form : the tensor scale t is known (modes computed and caller); s_g = RN_E4M3(f32(amax_g / f32(T t))),
//                      D_g = f32(s_g * t); the result carries the E4M3 scale byte.
//   qgen_proxy_form  : one-pass pass A; the proxy p_g = RN_P4(f32(amax_g / T)) replaces s_g * t (D_g = p_g); the
//                      result carries the proxy (or MS-EDEN's corrected proxy) as bf16 bits, 0 for a zero group.

struct qgen_group_result {
  uint2 codes;     // 16 packed codes
  uint32_t scale;  // E4M3 byte (for MS-EDEN: the RN scale s_g before the correction)
  bool zero;       // a zero group (§5.2): scale 1.0 stored, no correction
};

struct qgen_proxy_result {
  uint2 codes;
  float proxy;          // p_g (for MS-EDEN: before the correction); 0 for a zero group
  uint32_t proxy_bf16;  // c_g as bf16 bits (exact: a P4 value), or QGEN_ZERO_GROUP_PROXY
};

// f32(1 / d): the correctly rounded reciprocal, the same value as the division 1 / d (rcp.rn is IEEE-rounded like
// div.rn, subnormals included) in fewer instructions on the device.
__host__ __device__ __forceinline__ float qgen_reciprocal(float d) {
#if defined(__CUDA_ARCH__)
  return __frcp_rn(d);
#else
  return qgen_div(1.0f, d);
#endif
}

// NUMERICS §5.1: s_g = RN_E4M3(f32(amax_g / f32(T * t))).
__device__ __forceinline__ uint32_t qgen_group_scale(float amax, float target, float t) {
  return qgen_rn_e4m3(qgen_div(amax, qgen_mul(target, t)));
}

// NUMERICS §5.3: inv_g = f32(1 / f32(s_g * t)).
__device__ __forceinline__ float qgen_inverse_scale(uint32_t scale, float t) {
  return qgen_reciprocal(qgen_mul(qgen_e4m3_value(scale), t));
}

// Targets T of the one-pass proxies whose quotient f32(a / T) is also a product and an FMA: with H = f32(1 / T) and
// L = f32(1 / T - H) (the binary64 difference), f32(a * H + f32(a * L)) (one rounding for the FMA) equals f32(a / T)
// for every a in [2^-100, FLT_MAX] (QGEN_DIV_FMA_MIN; test/quantizer-hot-paths.test.ts compares all 2^31 such floats
// with the division, and finds it wrong below: subnormal products a * L lose bits, e.g. T = s_eden at a ~ 1.4 2^-102).
// T: 6 (four-over-six) and s_eden = 0x40c24eb2 (MS-EDEN, dsl/constants.ts); any other target divides.
struct qgen_target_reciprocal {
  uint32_t target, hi, lo;  // bit patterns of T, H, L; target 0: none
};
constexpr int QGEN_TARGET_RECIPROCAL_COUNT = 2;
__host__ __device__ __forceinline__ constexpr qgen_target_reciprocal qgen_target_reciprocal_at(int i) {
  return i == 0   ? qgen_target_reciprocal{0x40c00000u, 0x3e2aaaabu, 0xb1aaaaabu}  // 6
         : i == 1 ? qgen_target_reciprocal{0x40c24eb2u, 0x3e28a3d7u, 0xb1108b43u}  // s_eden
                  : qgen_target_reciprocal{0u, 0u, 0u};
}
constexpr float QGEN_DIV_FMA_MIN = 7.88860905e-31f;  // 2^-100

// f32(a * H + f32(a * L)) with one rounding of the sum: f32(a / T) for a in [2^-100, FLT_MAX] (above), any a else.
__host__ __device__ __forceinline__ float qgen_div_fma_unguarded(float a, qgen_target_reciprocal r) {
#if defined(__CUDA_ARCH__)
  return __fmaf_rn(a, qgen_f32_from_bits(r.hi), qgen_mul(a, qgen_f32_from_bits(r.lo)));
#else
  return __builtin_fmaf(a, qgen_f32_from_bits(r.hi), qgen_mul(a, qgen_f32_from_bits(r.lo)));
#endif
}

// f32(a / b). For b a power of two with a normal inverse (the target 4 of four-over-six) it is a * (1 / b): both
// round the same exact value a * 2^-k once, and the product is one instruction instead of a division sequence. For a
// target of qgen_target_reciprocal_at, the product and FMA where a lies in [2^-100, FLT_MAX] (smaller a, +-Inf and NaN
// divide). The tests on b fold away for the compile-time targets.
__host__ __device__ __forceinline__ float qgen_div_by_target(float a, float b) {
  const uint32_t bits = qgen_f32_bits(b);
  if ((bits & 0x807FFFFFu) == 0u && bits >= (1u << 23) && bits <= (253u << 23))
    return qgen_mul(a, qgen_f32_from_bits((254u << 23) - bits));
#pragma unroll
  for (int i = 0; i < QGEN_TARGET_RECIPROCAL_COUNT; ++i)
    if (bits == qgen_target_reciprocal_at(i).target)
      return a >= QGEN_DIV_FMA_MIN && a <= 3.402823466e38f ? qgen_div_fma_unguarded(a, qgen_target_reciprocal_at(i))
                                                           : qgen_div(a, b);
  return qgen_div(a, b);
}

// The unguarded quotient for a target of qgen_target_reciprocal_at (the product and FMA for every a), else
// qgen_div_by_target. The fast paths round it to a proxy p_u = RN_P4(q_u) and take it only when p_u >= 2^-98: then a
// >= 2^-100 (below, f32(a * H + f32(a * L)) < 2^-102 (1 + 2^-20) whatever the subnormal product, and RN_P4 of it <
// 2^-98), so q_u is f32(a / T) and p_u the proxy (qgen_proxy_fast_scale).
__host__ __device__ __forceinline__ float qgen_div_by_target_unguarded(float a, float b) {
  const uint32_t bits = qgen_f32_bits(b);
#pragma unroll
  for (int i = 0; i < QGEN_TARGET_RECIPROCAL_COUNT; ++i)
    if (bits == qgen_target_reciprocal_at(i).target) return qgen_div_fma_unguarded(a, qgen_target_reciprocal_at(i));
  return qgen_div_by_target(a, b);
}

// NUMERICS §5.3: f32(1 / p) for a P4 value p (§2.5) by a table of its 8 significands: p = (1 + k/8) 2^(E-127) has
// the bits E << 23 | k << 20, and f32(1 / p) = f32(1 / (1 + k/8)) 2^(127-E) exactly (a power-of-two scaling of a
// normal result). With T_k the bits of f32(1 / (1 + k/8)) (exponent field 127 for k = 0, 126 otherwise) and
// QGEN_P4_RECIPROCALS[k] = T_k + (127 << 23) + (k << 20), the reciprocal's bits are QGEN_P4_RECIPROCALS[k] - bits(p):
// one table read and one subtraction instead of a reciprocal with its range checks. Exact where the result is
// normal: E in [1, 252], or E = 253 with k = 0 (qgen_p4_reciprocal_in_table; test/compile.test.ts checks every P4
// value there against 1 / p, and that the table form is wrong just outside).
constexpr uint32_t QGEN_P4_RECIPROCALS[8] = {0x7f000000u, 0x7ef38e39u, 0x7eeccccdu, 0x7eea2e8cu,
                                             0x7eeaaaabu, 0x7eed89d9u, 0x7ef24925u, 0x7ef88889u};

__host__ __device__ __forceinline__ bool qgen_p4_reciprocal_in_table(float p) {
  const uint32_t bits = qgen_f32_bits(p);
  return bits - (1u << 23) < (252u << 23) || bits == (253u << 23);  // E in [1, 252] (any sign bit fails), or 2^126
}

// table: QGEN_P4_RECIPROCALS (the host) or its copy in shared memory (the kernels, qgen_p4_reciprocal_table).
__host__ __device__ __forceinline__ float qgen_p4_reciprocal(float p, const uint32_t* table) {
  const uint32_t bits = qgen_f32_bits(p);
  return qgen_f32_from_bits(table[(bits >> 20) & 7u] - bits);
}

__host__ __device__ __forceinline__ float qgen_proxy_scale(float amax, float target) {
  return qgen_rn_p4(qgen_div_by_target(amax, target));
}

// The fast paths' proxy test: p_u = RN_P4(qgen_div_by_target_unguarded(amax, T)) for a finite amax >= 0 and T > 4
// (6, s_eden). When p_u >= 2^-98 (returned true) p_u is the proxy qgen_proxy_scale(amax, T) (see
// qgen_div_by_target_unguarded), normal and non-zero, and amax > 0; otherwise the caller takes its general path,
// which forms the proxy with the guard.
__host__ __device__ __forceinline__ bool qgen_proxy_fast_scale(float amax, float target, float& p) {
  p = qgen_rn_p4(qgen_div_by_target_unguarded(amax, target));
  return p >= 3.15544362e-30f /* 2^-98 */;
}

__host__ __device__ __forceinline__ uint32_t qgen_p4_to_bf16_bits(float p4) { return qgen_f32_bits(p4) >> 16; }

struct qgen_tensor_form {
  float t;
  static constexpr bool kExactDequantProducts = false;  // D_g = f32(s_g * t) has any number of significant bits
  using Result = qgen_group_result;
  using Scale = uint32_t;  // the E4M3 byte
  __device__ __forceinline__ Scale scale(float amax, float target) const { return qgen_group_scale(amax, target, t); }
  __device__ __forceinline__ static bool rounds_to_zero(Scale s) { return s == 0u; }
  __device__ __forceinline__ float inverse(Scale s) const { return qgen_inverse_scale(s, t); }
  __device__ __forceinline__ float dequant(Scale s) const { return qgen_mul(qgen_e4m3_value(s), t); }
  template <class E2M1>
  __device__ __forceinline__ static Result zero_result(const float* x) {
    return {qgen_zero_group_codes16<E2M1>(x), QGEN_E4M3_ONE, true};
  }
  __device__ __forceinline__ static Result result(uint2 codes, Scale s) { return {codes, s, false}; }
};

struct qgen_proxy_form {
  static constexpr bool kExactDequantProducts = true;  // D_g = p_g, a P4 value (4 significant bits)
  using Result = qgen_proxy_result;
  using Scale = float;          // p_g
  const uint32_t* reciprocals;  // QGEN_P4_RECIPROCALS (or its shared-memory copy), for qgen_p4_reciprocal
  __host__ __device__ __forceinline__ Scale scale(float amax, float target) const {
    return qgen_proxy_scale(amax, target);
  }
  __host__ __device__ __forceinline__ static bool rounds_to_zero(Scale p) { return p == 0.0f; }
  __host__ __device__ __forceinline__ float inverse(Scale p) const { return qgen_reciprocal(p); }
  // The same value by the table (qgen_p4_reciprocal) where the caller knows p lies in its range (the four-over-six
  // sweep; the rare paths keep inverse: the table's index registers spilled four-over-six's general path at its
  // 64-register cap).
  __host__ __device__ __forceinline__ float inverse_in_table(Scale p) const {
    return qgen_p4_reciprocal(p, reciprocals);
  }
  __host__ __device__ __forceinline__ float dequant(Scale p) const { return p; }
  template <class E2M1>
  __host__ __device__ __forceinline__ static Result zero_result(const float* x) {
    return {qgen_zero_group_codes16<E2M1>(x), 0.0f, QGEN_ZERO_GROUP_PROXY};
  }
  __host__ __device__ __forceinline__ static Result result(uint2 codes, Scale p) {
    return {codes, p, qgen_p4_to_bf16_bits(p)};
  }
};

// NUMERICS §5.3 for a group whose elements are all finite and whose f32(amax * inv) is below 7 (the caller checks):
// then every a_i = f32(|x_i| * inv) = |v_i| lies below 7 (rounding is monotonic, |x_i| <= amax), where
// qgen_rn_e2m1_magnitude is RN_E2M1 with no clamp (6 up to 7 exclusive rounds to 6, the saturated result); inv > 0, so
// v_i has the sign of x_i (-0 included), put in by qgen_sign_nibbles8. test/compile.test.ts compares it with
// qgen_rtn_codes16 on the host, inverses either side of the bound included.
template <bool kBf16Pairs = false>
__host__ __device__ __forceinline__ uint2 qgen_rtn_magnitudes16(const float* x, float inv) {
  uint32_t words[2] = {0u, 0u};
#pragma unroll
  for (int i = 0; i < 16; ++i)
    words[i / 8] =
        qgen_add_code22(words[i / 8], qgen_e2m1_magnitude22(qgen_rn_e2m1_magnitude(qgen_mul(fabsf(x[i]), inv))), i % 8);
  return make_uint2(words[0] | (qgen_sign_nibbles<kBf16Pairs>(x) & 0x88888888u),
                    words[1] | (qgen_sign_nibbles<kBf16Pairs>(x + 8) & 0x88888888u));
}

// NUMERICS §5.4 likewise for finite elements with f32(amax * inv) <= 6: a_i = |v_i| <= 6 needs no clamp (a = 6 gives
// code 7 with a zero fraction, no draw taken, as §2.2's a >= 6 rule), the code is qgen_sr_e2m1_top's without the sign
// (added by qgen_sign_nibbles8), by an addition instead of a comparison (qgen_sr_e2m1_magnitude_code_d).
template <bool kBf16Pairs = false, class Key>
__host__ __device__ __forceinline__ uint2 qgen_sr_magnitudes16(const float* x, float inv, const Key& seed,
                                                               uint64_t group) {
  const uint4 w0 = qgen_random_block(seed, QGEN_STREAM_ELEMENT_SR, group, 0);  // words 0..3: elements 0..7
  const uint4 w1 = qgen_random_block(seed, QGEN_STREAM_ELEMENT_SR, group, 1);  // words 4..7: elements 8..15
  const uint32_t words[8] = {w0.x, w0.y, w0.z, w0.w, w1.x, w1.y, w1.z, w1.w};
  uint32_t codes[2] = {0u, 0u};
#pragma unroll
  for (int i = 0; i < 16; ++i) {
    // r16 << 8: bits 15:0 (even i) or 31:16 (odd i) of the word moved to bits 23:8, one byte permute (zero bytes
    // from the second operand)
    const uint32_t d = qgen_prmt_sign(words[i / 2], 0u, i % 2 == 0 ? 0x4104u : 0x4324u);
    codes[i / 8] += qgen_sr_e2m1_magnitude_code_d(qgen_mul(fabsf(x[i]), inv), d) << (4 * (i % 8));
  }
  return make_uint2(codes[0] | (qgen_sign_nibbles<kBf16Pairs>(x) & 0x88888888u),
                    codes[1] | (qgen_sign_nibbles<kBf16Pairs>(x + 8) & 0x88888888u));
}

// NUMERICS §5.3: RTN with target T. finite: every element finite (qgen_group_all_finite); with the software E2M1
// policy and bf16-pair inputs (kBf16Pairs: unrotated rows) qgen_rtn_magnitudes16 where f32(amax * inv) < 7 (for
// other inputs the extra finite keys and sign bytes spilled cov_rtn_16x16_transposed_onepass and tetrajet2_e_sr_rht32
// at their register caps, ptxas 13.0).
template <class E2M1, bool kBf16Pairs = false, class Form>
__device__ __forceinline__ typename Form::Result qgen_rtn_group(const float* x, float amax, float target, Form form,
                                                                bool finite = false) {
  const typename Form::Scale scale = form.scale(amax, target);
  if (amax == 0.0f || Form::rounds_to_zero(scale)) return Form::template zero_result<E2M1>(x);
  const float inv = form.inverse(scale);
  if constexpr (std::is_same<E2M1, qgen_e2m1_software>::value && kBf16Pairs)
    if (finite && qgen_mul(amax, inv) < 7.0f) return Form::result(qgen_rtn_magnitudes16<kBf16Pairs>(x, inv), scale);
  return Form::result(qgen_rtn_codes16<E2M1>(x, inv), scale);
}

// NUMERICS §5.4: SR with target T (V_sr in the catalog); on sm_90a qgen_sr_magnitudes16 where it applies.
template <class E2M1, bool kBf16Pairs = false, class Form, class Key>
__device__ __forceinline__ typename Form::Result qgen_sr_group(const float* x, float amax, float target, Form form,
                                                               const Key& seed, uint64_t group, bool finite = false) {
  const typename Form::Scale scale = form.scale(amax, target);
  if (amax == 0.0f || Form::rounds_to_zero(scale)) return Form::template zero_result<E2M1>(x);
  const float inv = form.inverse(scale);
  if constexpr (std::is_same<E2M1, qgen_e2m1_software>::value && kBf16Pairs)
    if (finite && qgen_mul(amax, inv) <= 6.0f)
      return Form::result(qgen_sr_magnitudes16<kBf16Pairs>(x, inv, seed, group), scale);
  return Form::result(qgen_sr_codes16(x, inv, seed, group), scale);
}

// One candidate of §5.5 with its error; a scale that rounds to 0 gives zero-group codes and D_c = 0.
template <class E2M1, class Form>
__host__ __device__ __forceinline__ typename Form::Result qgen_four_six_candidate(const float* x,
                                                                                  typename Form::Scale scale, Form form,
                                                                                  float& error) {
  const float dequant_scale = form.dequant(scale);
  if (Form::rounds_to_zero(scale)) {
    const typename Form::Result zero = Form::template zero_result<E2M1>(x);
    error = qgen_group_error16(x, zero.codes, dequant_scale);
    return zero;
  }
  return Form::result(qgen_rtn_codes16_error<Form::kExactDequantProducts>(x, form.inverse(scale), dequant_scale, error),
                      scale);
}

// NUMERICS §5.5, both candidates in one sweep, for finite non-zero inverses (the common case; the caller checks).
// Then v = f32(x_i * inv_c) is NaN only for a NaN x_i and otherwise has the sign of x_i, so each candidate rounds
// |x_i| (one min against 6 clamps and maps NaN to 6) and the sign bits of x are put into the code words once for
// both. d_i = |x_i| - r_i D_c (r_i = |q_i|) is the §5.5 difference up to its sign (RN is symmetric), so d_i^2, the
// errors and the choice are the same. A NaN x_i makes e_6 NaN (no other difference can: every d_i^2 is >= 0 or
// +Inf); the caller then takes the general path, which gives NaN its positive code.
// kClamp = false (the proxy form with a normal p_6, qgen_four_six_group): no min against 6. The magnitude rounding
// of qgen_rn_e2m1_magnitude gives RN_E2M1 for every a < 7 (in [4, 7) the grid spacing of a + 2^24 is 2: 6 up to
// 7 exclusive rounds to 6, the saturated result), and a finite x_i gives a < 7 there: |x_i| <= amax, p_c =
// RN_P4(f32(amax / c)) >= f32(amax / c) / (1 + 2^-4) for a normal p_c (4 significant bits), so a <= c * 1.0625 *
// (1 + 2^-24)^3 < 6.4 (p_4 >= p_6 is normal too). A non-finite x_i gives a = +Inf or NaN, r_i = NaN and e_6 = NaN:
// the caller's general path, as for a NaN with the clamp.
template <bool kExactProduct, bool kClamp = true>
__host__ __device__ __forceinline__ void qgen_four_six_sweep(const float* x, float inv6, float dequant6, float inv4,
                                                             float dequant4, uint2& codes6, uint2& codes4,
                                                             float& error6, float& error4) {
  uint32_t words6[2] = {0u, 0u}, words4[2] = {0u, 0u};
  float sq6[16], sq4[16];
  const float inv[2] = {inv6, inv4}, dequant[2] = {dequant6, dequant4};
#pragma unroll
  for (int i = 0; i < 16; ++i) {
    const float ax = fabsf(x[i]);
#pragma unroll
    for (int c = 0; c < 2; ++c) {
      const float a = qgen_mul(ax, inv[c]);
      const float r = qgen_rn_e2m1_magnitude(kClamp ? fminf(a, 6.0f) : a);
      uint32_t* words = c == 0 ? words6 : words4;
      words[i / 8] = qgen_add_code22(words[i / 8], qgen_e2m1_magnitude22(r), i % 8);
      const float d =
          kExactProduct ? qgen_fma_exact_product(-r, dequant[c], ax) : qgen_sub(ax, qgen_mul(r, dequant[c]));
      (c == 0 ? sq6 : sq4)[i] = qgen_mul(d, d);
    }
  }
  const uint32_t signs[2] = {qgen_sign_nibbles8(x) & 0x88888888u, qgen_sign_nibbles8(x + 8) & 0x88888888u};
  codes6 = make_uint2(words6[0] | signs[0], words6[1] | signs[1]);
  codes4 = make_uint2(words4[0] | signs[0], words4[1] | signs[1]);
  error6 = qgen_tree16(sq6);
  error4 = qgen_tree16(sq4);
}

// NUMERICS §5.5: four-over-six. Candidate c in {6, 4}: s_c = RN_E4M3(amax / (c t)) (one-pass: p_c =
// RN_P4(f32(amax / c))), codes RTN, D_c = f32(s_c * t) (p_c). A candidate whose scale rounds to 0 has zero-group
// codes (its D_c is 0, so d_i = x_i). Keep 6 iff e_6 <= e_4, i.e. unless e_4 < e_6 (ties and NaN keep 6).
// qgen_four_six_general: every case, one candidate at a time; qgen_four_six_group: the sweep above where it applies
// (test/compile.test.ts checks the two equal on the host).
template <class E2M1, class Form>
__host__ __device__ __forceinline__ typename Form::Result qgen_four_six_general(const float* x,
                                                                                typename Form::Scale scale6,
                                                                                typename Form::Scale scale4,
                                                                                Form form) {
  float error6, error4;
  const typename Form::Result six = qgen_four_six_candidate<E2M1>(x, scale6, form, error6);
  const typename Form::Result four = qgen_four_six_candidate<E2M1>(x, scale4, form, error4);
  return error4 < error6 ? four : six;
}

template <class E2M1, class Form>
__host__ __device__ __forceinline__ typename Form::Result qgen_four_six_group(const float* x, float amax, float target6,
                                                                              float target4, Form form) {
  // The sweep spells E2M1 RN in software: sm_90a (sm_100a / sm_120a round by hardware, one candidate at a time).
  constexpr bool kSweep = std::is_same<E2M1, qgen_e2m1_software>::value;
  if constexpr (kSweep && std::is_same<Form, qgen_proxy_form>::value) {
    // p_6 >= 2^-98 by the unguarded quotient (qgen_proxy_fast_scale: then it is the proxy, amax > 0): p_6 is normal
    // (then p_4 >= p_6 is normal, both are finite since amax is, and both inverses are finite and non-zero): the
    // sweep without the clamp (see qgen_four_six_sweep). Both proxies lie in the reciprocal table's range: p_6 <=
    // RN_P4(FLT_MAX / 6) < 2^126 and p_4 <= RN_P4(f32(FLT_MAX / 4)) = 2^126. Else the general path below.
    float scale6;
    if (qgen_proxy_fast_scale(amax, target6, scale6)) {
      const float scale4 = form.scale(amax, target4);
      uint2 codes6, codes4;
      float error6, error4;
      qgen_four_six_sweep<true, false>(x, form.inverse_in_table(scale6), scale6, form.inverse_in_table(scale4), scale4,
                                       codes6, codes4, error6, error4);
      if (error6 == error6) return error4 < error6 ? Form::result(codes4, scale4) : Form::result(codes6, scale6);
    }
  }
  if (amax == 0.0f) return Form::template zero_result<E2M1>(x);
  const typename Form::Scale scale6 = form.scale(amax, target6);
  const typename Form::Scale scale4 = form.scale(amax, target4);
  if constexpr (!std::is_same<Form, qgen_proxy_form>::value) {
    if (kSweep && !Form::rounds_to_zero(scale6) && !Form::rounds_to_zero(scale4)) {
      const float inv6 = form.inverse(scale6), inv4 = form.inverse(scale4);
      if (inv6 > 0.0f && inv6 <= 3.402823466e38f && inv4 > 0.0f && inv4 <= 3.402823466e38f) {
        uint2 codes6, codes4;
        float error6, error4;
        qgen_four_six_sweep<Form::kExactDequantProducts>(x, inv6, form.dequant(scale6), inv4, form.dequant(scale4),
                                                         codes6, codes4, error6, error4);
        if (error6 == error6) return error4 < error6 ? Form::result(codes4, scale4) : Form::result(codes6, scale6);
      }
    }
  }
  return qgen_four_six_general<E2M1>(x, scale6, scale4, form);
}

// The products a zero group contributes to a per-128 correction: its elements in scaled units are taken as v = ±0
// for finite x and v = x otherwise (so a non-finite element makes S non-finite, hence 1, as in any other group).
__host__ __device__ __forceinline__ void qgen_zero_group_products(const float* x, uint2 codes, float* vv, float* vq) {
#pragma unroll
  for (int i = 0; i < 16; ++i) {
    const float v = isfinite(x[i]) ? 0.0f : x[i];
    vv[i] = qgen_mul(v, v);
    vq[i] = qgen_mul(v, qgen_code_value(codes, i));
  }
}

// NUMERICS §5.6, first half, for a non-zero group: RTN codes q_i = RN_E2M1(v_i), v_i = f32(x_i * inv), and the
// products of the correction sums:
//   per-16 (kInputDomain = false): f32(v_i * v_i) and f32(v_i * q_i) in scaled units;
//   per-128 (kInputDomain = true): f32(y_i * y_i) and f32(y_i * f32(q_i * D_g)) in the input domain (y = x here).
template <bool kInputDomain>
__host__ __device__ __forceinline__ uint2 qgen_ms_eden_codes16(const float* x, float inv, float dequant_scale,
                                                               float* vv, float* vq) {
  // sm_90a: codes added from the top nibble, one LEA.HI each (its low 28 bits are 0: r lies on the E2M1 grid);
  // sm_100a / sm_120a: as code << 4j (the top-nibble form spilled at 80 registers there with E = 16 and a 64-point
  // rotation). The same words either way.
  uint32_t words[2] = {0u, 0u};
#pragma unroll
  for (int j = 0; j < 16; ++j) {
    const float v = qgen_mul(x[j], inv);
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ < 1000
    const qgen_e2m1_nibble q = qgen_rn_e2m1_top(v);
    words[j / 8] = qgen_add_nibble(words[j / 8], q.top, j % 8);
#else
    const qgen_e2m1_rounded q = qgen_rn_e2m1_arith(v);
    words[j / 8] += q.code << (4 * (j % 8));
#endif
    if (kInputDomain) {
      vv[j] = qgen_mul(x[j], x[j]);
      vq[j] = qgen_mul(x[j], qgen_mul(q.value, dequant_scale));
    } else {
      vv[j] = qgen_mul(v, v);
      vq[j] = qgen_mul(v, q.value);
    }
  }
  return make_uint2(words[0], words[1]);
}

// NUMERICS §5.6, first half: RTN codes with target s_eden and the products of the correction sums (a zero group:
// see qgen_zero_group_products, in both domains). inv = f32(1 / D_g) (§5.3).
template <class E2M1, bool kInputDomain, class Form>
__host__ __device__ __forceinline__ typename Form::Result qgen_ms_eden_codes(const float* x, float amax, float target,
                                                                             Form form, float* vv, float* vq) {
  const typename Form::Scale scale = form.scale(amax, target);
  if (amax == 0.0f || Form::rounds_to_zero(scale)) {
    const typename Form::Result zero = Form::template zero_result<E2M1>(x);
    qgen_zero_group_products(x, zero.codes, vv, vq);
    return zero;
  }
  const float dequant_scale = form.dequant(scale);
  // f32(1 / D_g) as the correctly rounded reciprocal (the same value as the division, fewer fix-up steps; the P4
  // table needs its range guard here; qgen_ms_eden_group16's fast path reads it where p >= 2^-98 says p is in range)
  const float inv = form.inverse(scale);
  return Form::result(qgen_ms_eden_codes16<kInputDomain>(x, inv, dequant_scale, vv, vq), scale);
}

// NUMERICS §5.6 per-16 in scaled units, proxy form with a normal p (sm_90a's software E2M1): the codes and the two
// sums tree16(f32(v_i * v_i)), tree16(f32(v_i * q_i)) from magnitudes. a_i = f32(|x_i| * inv) = |v_i| (inv > 0), and
// since q_i has the sign of v_i, f32(v_i * v_i) = f32(a_i * a_i) and f32(v_i * q_i) = f32(a_i * r_i), r_i = |q_i|, bit
// for bit (+0 included). No clamp: for finite x_i, a_i <= s_eden * 1.0625 * (1 + 2^-24)^3 < 6.5 (|x_i| <= amax, p =
// RN_P4(f32(amax / s_eden)) normal), and qgen_rn_e2m1_magnitude is RN_E2M1 below 7. The signs come from x
// (qgen_sign_nibbles8: v_i has the sign of x_i, -0 included). A non-finite x_i makes a_i +Inf or NaN and sum_vv
// non-finite (every finite a_i^2 is below 49): the caller then takes the general path.
__host__ __device__ __forceinline__ uint2 qgen_ms_eden_magnitudes16(const float* x, float inv, float& sum_vv,
                                                                    float& sum_vq) {
  uint32_t words[2] = {0u, 0u};
  float vv[16], vq[16];
#pragma unroll
  for (int j = 0; j < 16; ++j) {
    const float a = qgen_mul(fabsf(x[j]), inv);
    const float r = qgen_rn_e2m1_magnitude(a);
    words[j / 8] = qgen_add_code22(words[j / 8], qgen_e2m1_magnitude22(r), j % 8);
    vv[j] = qgen_mul(a, a);
    vq[j] = qgen_mul(a, r);
  }
  sum_vv = qgen_tree16(vv);
  sum_vq = qgen_tree16(vq);
  return make_uint2(words[0] | (qgen_sign_nibbles8_f32(x) & 0x88888888u),
                    words[1] | (qgen_sign_nibbles8_f32(x + 8) & 0x88888888u));
}

// NUMERICS §5.6 per-16: the group's codes (qgen_ms_eden_codes) and its sums tree16(vv), tree16(vq); on sm_90a in the
// proxy form by qgen_ms_eden_magnitudes16 where p is normal and every element finite (test/compile.test.ts compares
// the two paths on the host). kFiniteFirst: test the elements' finiteness before the magnitude path (one three-way
// min per pair over the amax keys) instead of its sum afterwards: then no x_i is live past its magnitude, since no
// general path can follow (8 registers fewer at the peak of the row-input MS-EDEN pass A, which then fits 80
// registers without spills; ~17 instructions per group more). Both tests take the same groups: a non-finite x_i, and
// only that, makes sum_vv non-finite (every finite a_i^2 is below 49).
template <class E2M1, bool kFiniteFirst = false, class Form>
__host__ __device__ __forceinline__ typename Form::Result qgen_ms_eden_group16(const float* x, float amax, float target,
                                                                               Form form, float& sum_vv,
                                                                               float& sum_vq) {
  float vv[16], vq[16];
  if constexpr (std::is_same<Form, qgen_proxy_form>::value && std::is_same<E2M1, qgen_e2m1_software>::value) {
    float p;
    if (qgen_proxy_fast_scale(amax, target, p) && (!kFiniteFirst || qgen_group_all_finite<16>(x))) {  // p >= 2^-98
      const uint2 codes = qgen_ms_eden_magnitudes16(x, form.inverse_in_table(p), sum_vv, sum_vq);
      if (kFiniteFirst || sum_vv <= 3.402823466e38f) return Form::result(codes, p);  // false for NaN and +Inf
    }
    p = form.scale(amax, target);
    if (amax != 0.0f && p != 0.0f) {
      const float inv = form.inverse(p);
      const uint2 codes = qgen_ms_eden_codes16<false>(x, inv, p, vv, vq);  // as qgen_ms_eden_codes
      sum_vv = qgen_tree16(vv);
      sum_vq = qgen_tree16(vq);
      return Form::result(codes, p);
    }
  }
  const typename Form::Result r = qgen_ms_eden_codes<E2M1, false>(x, amax, target, form, vv, vq);
  sum_vv = qgen_tree16(vv);
  sum_vq = qgen_tree16(vq);
  return r;
}

// NUMERICS §5.6: S = f32(sum vv / sum vq), 1 when the denominator is 0 or S is not finite.
__device__ __forceinline__ float qgen_eden_ratio(float sum_vv, float sum_vq) {
  const float s = qgen_div(sum_vv, sum_vq);
  return (sum_vq == 0.0f || !isfinite(s)) ? 1.0f : s;
}

// NUMERICS §5.6, second half: the corrected scale byte s'_g = SR_E4M3(f32(S * s_g), word(seed, STREAM_SCALE_SR, g,
// 0)) (tensor form; a zero group keeps 1.0), or the corrected proxy c_g = SR_P4(f32(S * p_g), the same word) as bf16
// bits (proxy form; a zero group keeps 0).
template <class Key>
__device__ __forceinline__ uint32_t qgen_ms_eden_corrected(const qgen_group_result& r, float correction,
                                                           const Key& seed, uint64_t group) {
  if (r.zero) return r.scale;
  const uint4 words = qgen_random_block(seed, QGEN_STREAM_SCALE_SR, group, 0);
  return qgen_sr_e4m3(qgen_mul(correction, qgen_e4m3_value(r.scale)), words.x);
}
template <class Key>
__device__ __forceinline__ uint32_t qgen_ms_eden_corrected(const qgen_proxy_result& r, float correction,
                                                           const Key& seed, uint64_t group) {
  if (r.proxy_bf16 == QGEN_ZERO_GROUP_PROXY) return QGEN_ZERO_GROUP_PROXY;
  const uint4 words = qgen_random_block(seed, QGEN_STREAM_SCALE_SR, group, 0);
  return qgen_p4_to_bf16_bits(qgen_sr_p4(qgen_mul(correction, r.proxy), words.x));
}

// The stored value of a group result: the scale byte (tensor form) or the proxy's bf16 bits (proxy form).
__device__ __forceinline__ uint32_t qgen_stored(const qgen_group_result& r) { return r.scale; }
__device__ __forceinline__ uint32_t qgen_stored(const qgen_proxy_result& r) { return r.proxy_bf16; }

// The value a proxy contributes to the tensor-wide maximum m (a zero group contributes 0).
__device__ __forceinline__ float qgen_proxy_value(uint32_t proxy_bf16) { return qgen_bf16_bits_to_f32(proxy_bf16); }

// ---------------------------------------------------------------------------------------------------------------
// One-pass form, pass B (§5.1): scales from proxies once m = max_g c_g is known.

// t = 2^k with the smallest integer k such that m / 2^k <= C, k clamped to [-149, 127]; t = 1 when m = 0.
__device__ __forceinline__ float qgen_one_pass_tensor_scale(float m, float ceiling) {
  if (m == 0.0f) return 1.0f;
  // m / 2^k is exact in binary64 over the whole clamped range. With m = a 2^em, C = b 2^ec (a, b in [1, 2)),
  // k = em - ec - 1 gives m / 2^k >= 2^(ec+1) > C, so the answer is one or two steps above it.
  int k = ilogbf(m) - ilogbf(ceiling) - 1;
  k = k < -149 ? -149 : k;
  while (k < 127 && scalbn(static_cast<double>(m), -k) > static_cast<double>(ceiling)) ++k;
  return k >= -126 ? __uint_as_float(static_cast<uint32_t>(k + 127) << 23) : __uint_as_float(1u << (k + 149));
}

// 1 / t for a power of two t, exact when t >= 2^-126 (then f32(c / t) = f32(c * (1 / t)): both round the same exact
// quotient once); 0 below, where the callers divide.
__device__ __forceinline__ float qgen_power_of_two_inverse(float t) { return t >= 1.17549435e-38f ? 1.0f / t : 0.0f; }

// f32(c / t) for the one-pass tensor scale t (a power of two), by the exact inverse where it exists.
__device__ __forceinline__ float qgen_div_by_tensor_scale(float c, float t, float inv_t) {
  return inv_t != 0.0f ? qgen_mul(c, inv_t) : qgen_div(c, t);
}

// NUMERICS §5.1 pass B: s_g = RN_E4M3(f32(c_g / t)); a zero group (c_g = 0) stores 1.0 (§5.2).
__device__ __forceinline__ uint32_t qgen_finalize_proxy_rn(uint32_t proxy_bf16, float t, float inv_t) {
  if (proxy_bf16 == QGEN_ZERO_GROUP_PROXY) return QGEN_E4M3_ONE;
  return qgen_rn_e4m3(qgen_div_by_tensor_scale(qgen_bf16_bits_to_f32(proxy_bf16), t, inv_t));
}

// NUMERICS §5.6 one-pass, pass B: w = f32(c_g / t); s' = w when w >= 2^-6 (exact in E4M3), else
// SR_E4M3(w, word(seed, STREAM_SCALE_SR, g, 1)).
__device__ __forceinline__ uint32_t qgen_finalize_proxy_eden(uint32_t proxy_bf16, float t, float inv_t, uint64_t seed,
                                                             uint64_t group) {
  if (proxy_bf16 == QGEN_ZERO_GROUP_PROXY) return QGEN_E4M3_ONE;
  const float w = qgen_div_by_tensor_scale(qgen_bf16_bits_to_f32(proxy_bf16), t, inv_t);
  if (w >= 0.015625f /* 2^-6 */) return qgen_rn_e4m3(w);
  return qgen_sr_e4m3(w, qgen_random_block(seed, QGEN_STREAM_SCALE_SR, group, 0).y);
}

// qgen_finalize_proxy_eden without its stochastic branch: its byte for every group whose w = f32(c_g / t) is at least
// 2^-6 and for zero groups; `stochastic` is set for the others (w < 2^-6 or NaN), whose byte it does not return. Lets
// pass B keep the Philox draw out of its unrolled loops (one rolled copy for the rare small groups).
__device__ __forceinline__ uint32_t qgen_finalize_proxy_eden_deterministic(uint32_t proxy_bf16, float t, float inv_t,
                                                                           bool& stochastic) {
  stochastic = false;
  if (proxy_bf16 == QGEN_ZERO_GROUP_PROXY) return QGEN_E4M3_ONE;
  const float w = qgen_div_by_tensor_scale(qgen_bf16_bits_to_f32(proxy_bf16), t, inv_t);
  stochastic = !(w >= 0.015625f /* 2^-6 */);
  return qgen_rn_e4m3(w);
}

// NUMERICS §5.1 computed: t = f32(amax / f32(T_ref * C)); 1 when amax is 0.
__device__ __forceinline__ float qgen_computed_tensor_scale(float amax, float target_ref, float ceiling) {
  return amax == 0.0f ? 1.0f : qgen_div(amax, qgen_mul(target_ref, ceiling));
}

// ---------------------------------------------------------------------------------------------------------------
// MXFP4 (§5.8): groups of 32, UE8M0 scales, no tensor scale.

struct qgen_mx_group_result {
  uint2 codes[2];  // elements 0..15 and 16..31
  uint32_t scale;  // UE8M0 byte
};

// s_g = RP_UE8M0(f32(amax / 6)) (1.0 for a zero group); v_i = f32(x_i * (1 / s_g)) (exact reciprocal).
__device__ __forceinline__ uint32_t qgen_mx_scale(float amax, float target) {
  return amax == 0.0f ? QGEN_UE8M0_ONE : qgen_rp_ue8m0_bits(__float_as_uint(qgen_div(amax, target)));
}

template <class E2M1>
__device__ __forceinline__ qgen_mx_group_result qgen_mx_rtn_group(const float* x, float amax, float target) {
  const uint32_t scale = qgen_mx_scale(amax, target);
  const float inv = qgen_ue8m0_reciprocal(scale);
  return {{qgen_rtn_codes16<E2M1>(x, inv), qgen_rtn_codes16<E2M1>(x + 16, inv)}, scale};
}

// SR draws are keyed by the 16-group index (§3.2), so a 32-group uses groups g16 and g16 + 1.
template <class Key>
__device__ __forceinline__ qgen_mx_group_result qgen_mx_sr_group(const float* x, float amax, float target,
                                                                 const Key& seed, uint64_t group16) {
  const uint32_t scale = qgen_mx_scale(amax, target);
  const float inv = qgen_ue8m0_reciprocal(scale);
  return {{qgen_sr_codes16(x, inv, seed, group16), qgen_sr_codes16(x + 16, inv, seed, group16 + 1)}, scale};
}
