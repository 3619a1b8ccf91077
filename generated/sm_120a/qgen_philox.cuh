// qgen_philox.cuh — Philox4x32-10 exactly as curand implements it (PTX-FACTS §8), and the random words of NUMERICS §3.
//
// word(seed, stream, index, w) is word w mod 4 of Philox4x32_10(ctr = (w div 4, stream, index_lo32, index_hi32),
// key = (seed_lo32, seed_hi32)) — the w-th curand() of curand_init(seed, index, stream * 2^34 + w) (§3.1).
// Everything here is integer arithmetic, so it also runs on the host (a known-answer test compiles it there).
#pragma once
#include <cstdint>
#include <cuda_runtime.h>

constexpr uint32_t QGEN_PHILOX_M0 = 0xD2511F53u;
constexpr uint32_t QGEN_PHILOX_M1 = 0xCD9E8D57u;
constexpr uint32_t QGEN_PHILOX_W0 = 0x9E3779B9u;
constexpr uint32_t QGEN_PHILOX_W1 = 0xBB67AE85u;

__host__ __device__ __forceinline__ uint32_t qgen_mulhi32(uint32_t a, uint32_t b) {
#if defined(__CUDA_ARCH__)
  return __umulhi(a, b);
#else
  return static_cast<uint32_t>((static_cast<uint64_t>(a) * b) >> 32);
#endif
}

// One Philox round: (hi0, lo0) = M0 * c0, (hi1, lo1) = M1 * c2; out = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0).
__host__ __device__ __forceinline__ uint4 qgen_philox_round(uint4 c, uint2 k) {
  const uint32_t hi0 = qgen_mulhi32(QGEN_PHILOX_M0, c.x), lo0 = QGEN_PHILOX_M0 * c.x;
  const uint32_t hi1 = qgen_mulhi32(QGEN_PHILOX_M1, c.z), lo1 = QGEN_PHILOX_M1 * c.z;
  return make_uint4(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
}

// Philox4x32-10: ten rounds, the key bumped by (W0, W1) between rounds (nine bumps).
__host__ __device__ __forceinline__ uint4 qgen_philox4x32_10(uint4 ctr, uint2 key) {
#pragma unroll
  for (int round = 0; round < 9; ++round) {
    ctr = qgen_philox_round(ctr, key);
    key.x += QGEN_PHILOX_W0;
    key.y += QGEN_PHILOX_W1;
  }
  return qgen_philox_round(ctr, key);
}

// NUMERICS §3.1: random words 4*block .. 4*block+3 of (seed, stream, index), as one Philox output.
__host__ __device__ __forceinline__ uint4 qgen_random_block(uint64_t seed, uint32_t stream, uint64_t index,
                                                            uint32_t block) {
  const uint4 ctr = make_uint4(block, stream, static_cast<uint32_t>(index), static_cast<uint32_t>(index >> 32));
  const uint2 key = make_uint2(static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
  return qgen_philox4x32_10(ctr, key);
}

// The ten round keys of Philox4x32-10 under one seed: round r (0..9) uses (seed_lo32 + r W0, seed_hi32 + r W1) mod
// 2^32, the keys qgen_philox4x32_10 bumps between rounds. The quantizer launchers compute them once on the host
// (qgen_philox_key_schedule) and pass them as a kernel parameter, so a draw reads its round keys from the constant
// bank instead of recomputing the schedule per group; the words are the same (test/compile.test.ts compares both
// forms on random seeds, counters and indices).
struct qgen_philox_keys {
  uint32_t lo[10], hi[10];
};

__host__ __device__ __forceinline__ qgen_philox_keys qgen_philox_key_schedule(uint64_t seed) {
  qgen_philox_keys keys;
#pragma unroll
  for (uint32_t round = 0; round < 10; ++round) {
    keys.lo[round] = static_cast<uint32_t>(seed) + round * QGEN_PHILOX_W0;
    keys.hi[round] = static_cast<uint32_t>(seed >> 32) + round * QGEN_PHILOX_W1;
  }
  return keys;
}

// Philox4x32-10 with the precomputed round keys: the same ten rounds as qgen_philox4x32_10.
__host__ __device__ __forceinline__ uint4 qgen_philox4x32_10(uint4 ctr, const qgen_philox_keys& keys) {
#pragma unroll
  for (int round = 0; round < 10; ++round) ctr = qgen_philox_round(ctr, make_uint2(keys.lo[round], keys.hi[round]));
  return ctr;
}

// qgen_random_block keyed by the precomputed schedule of the seed: the same four words.
__host__ __device__ __forceinline__ uint4 qgen_random_block(const qgen_philox_keys& keys, uint32_t stream,
                                                            uint64_t index, uint32_t block) {
  const uint4 ctr = make_uint4(block, stream, static_cast<uint32_t>(index), static_cast<uint32_t>(index >> 32));
  return qgen_philox4x32_10(ctr, keys);
}

// NUMERICS §3.3: the streams. dsl/constants.ts is their source; generated code checks these against it.
constexpr uint32_t QGEN_STREAM_SIGNS = 1u;
constexpr uint32_t QGEN_STREAM_ELEMENT_SR = 2u;
constexpr uint32_t QGEN_STREAM_SCALE_SR = 3u;
