// Host builds of the MS-EDEN / requant hot-path primitives (runtime/qgen_load_nvfp4.cuh and friends) checked
// bit for bit against oracles written here from NUMERICS: the faster spellings must give exactly the contract's
// values on every input they can see.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { compileCuda } from '../harness/nvcc.ts';
import { E2M1_MAX, S_EDEN } from '../dsl/constants.ts';

const root = fileURLToPath(new URL('../', import.meta.url));
const runtimeDir = path.join(root, 'runtime');

const PROGRAM = `#include <cstdio>
#include <cstdint>
#include "qgen_load_nvfp4.cuh"
// The staged tile's data movement and per-thread offsets (qgen_nvfp4_tile_thread_state) on the host: every writer puts
// a token (output row, column) into each half of its 16 pair words at its slots, every reader takes its E words and
// its half, and must find its own row's tokens in column order; the per-thread code and scale offsets must equal the
// direct formulas for tiles at several places of a tensor. Returns the number of mismatches.
template <class Layout, int E, int L, int THREADS>
int tile_model_bad(uint32_t rows) {
  using Tile = qgen_nvfp4_transposed_tile<E, L, THREADS>;
  using State = qgen_nvfp4_tile_thread_state<E, L, THREADS, Layout>;
  static_assert(State::kUsed, "a tiling that keeps per-thread constants");
  int bad = 0;
  static uint32_t smem[Tile::kElems];
  for (uint32_t& w : smem) w = 0xFFFFFFFFu;
  for (uint32_t t = 0; t < THREADS; ++t) {
    const uint4 st = State::make(t, rows);
    const uint32_t line = t % Tile::kWidth, piece = t / Tile::kWidth;
    for (uint32_t w = 0; w < 4; ++w)
      for (uint32_t j = 0; j < 4; ++j) {
        const uint32_t r = 32 * piece + 8 * w + j, at = (st.z & 0xFFFFu) + (4 * w + j) * Tile::kStride;
        bad += at >= Tile::kStateOffset || smem[at] != 0xFFFFFFFFu;  // inside the slots, written once
        smem[at] = (r * Tile::kWidth + line) | ((r + 4) * Tile::kWidth + line) << 16;
      }
    for (uint32_t a_row0 : {0u, static_cast<uint32_t>(Tile::kWidth), 5u * Tile::kWidth})
      for (uint32_t row0 : {0u, static_cast<uint32_t>(Tile::kRows), rows - Tile::kRows}) {
        const uint32_t a_row = a_row0 + line, a_col = row0 + 32 * piece;
        bad += State::code_offset(st, a_row0, row0, rows) != a_row * (rows / 2) + a_col / 2;
        bad += State::scale_offset(st, a_row0, row0, rows) !=
               qgen_nvfp4_tile_scale_offset<Layout>(a_row, a_col / 16, rows / 16);
      }
  }
  for (uint32_t t = 0; t < THREADS; ++t) {
    const uint4 st = State::make(t, rows);
    const uint32_t row = t / L, lane = t % L;
    for (uint32_t c = 0; c < E; ++c) {
      const uint32_t word = smem[(st.z >> 16) + c];
      bad += qgen_f32_bits(qgen_nvfp4_bf16_half(word, st.w)) >> 16 != row * Tile::kWidth + lane * E + c;
    }
  }
  return bad;
}

int main() {
  // The staged tile's data movement and offsets (the catalog's 128 threads x 32 elements x 4 lanes; 256 x 32 x 8).
  printf("tile_bad %d\\n", tile_model_bad<qgen_layout_128x4, 32, 4, 128>(4096) +
                                  tile_model_bad<qgen_layout_128x4, 32, 4, 128>(96) +
                                  tile_model_bad<qgen_layout_row_major, 32, 4, 128>(4096) +
                                  tile_model_bad<qgen_layout_128x4, 32, 8, 256>(8192) +
                                  tile_model_bad<qgen_layout_row_major, 32, 8, 256>(64));

  // Offsets of the tile's scale loads against the layouts' own (NUMERICS §7), on rows and group counts around the
  // 128-row blocks and 4-group tiles.
  int offsets_bad = 0;
  const uint64_t rows_[] = {0, 1, 31, 32, 127, 128, 129, 4095, 4096, 70001, 1234567};
  const uint64_t kbs[] = {2, 4, 6, 8, 10, 14, 16, 18, 30, 32, 34, 1022, 1024, 1026};
  for (uint64_t r : rows_)
    for (uint64_t kbn : kbs)
      for (uint64_t kb = 0; kb + 1 < kbn; kb += 2) {
        offsets_bad += qgen_nvfp4_tile_scale_offset<qgen_layout_128x4>(r, kb, kbn) !=
                       static_cast<uint64_t>(qgen_layout_128x4::offset(r, kb, kbn));
        offsets_bad += qgen_nvfp4_tile_scale_offset<qgen_layout_row_major>(r, kb, kbn) !=
                       static_cast<uint64_t>(qgen_layout_row_major::offset(r, kb, kbn));
        // The aligned scale word of the pair (qgen_nvfp4_tile_scale_words): the pair is its half (kb / 2) % 2, and the
        // word is groups kb - kb % 4 .. + 3 of the same row (128x4: of its 4-group block; row-major: Kb % 4 == 0).
        const uint64_t at = qgen_layout_128x4::offset(r, kb, kbn), word = at & ~uint64_t{3};
        const uint64_t block_word = qgen_layout_128x4::offset(r, kb & ~uint64_t{3}, kbn);
        offsets_bad += at != word + 2 * ((kb / 2) % 2) || word != block_word;
        if (kbn % 4 == 0) {
          const uint64_t rm = qgen_layout_row_major::offset(r, kb, kbn), rm_word = rm & ~uint64_t{3};
          offsets_bad += rm != rm_word + 2 * ((kb / 2) % 2) || rm_word != r * kbn + (kb & ~uint64_t{3});
        }
      }
  printf("offsets_bad %d\\n", offsets_bad);

  // The staged loop's block division (qgen_udiv32) against n / d: every divisor up to 4096 and around every power of
  // two, each with dividends at 0, 1, d - 1, d, d + 1, multiples of d and their neighbours, the top of the range and
  // pseudo-random values (all 32-bit).
  long long div_checked = 0, div_bad = 0;
  uint64_t lcg = 12345;
  auto next = [&]() { lcg = lcg * 6364136223846793005ull + 1442695040888963407ull; return uint32_t(lcg >> 32); };
  auto check = [&](uint32_t d) {
    const qgen_udiv32 q = qgen_udiv32::of(d);
    uint32_t ns[16] = {0u, 1u, d - 1u, d, d + 1u, 2u * d - 1u, 2u * d, 0xFFFFFFFFu, 0xFFFFFFFEu, 0x80000000u,
                       (0xFFFFFFFFu / d) * d, (0xFFFFFFFFu / d) * d - 1u, next(), next(), next() % d, next()};
    for (uint32_t n : ns) {
      ++div_checked;
      div_bad += qgen_udiv32::quotient(n, q.m, q.shifts) != n / d || q.d != d;
    }
    for (int k = 0; k < 64; ++k) {
      const uint32_t n = next();
      ++div_checked;
      div_bad += qgen_udiv32::quotient(n, q.m, q.shifts) != n / d;
    }
  };
  for (uint32_t d = 1; d <= 4096; ++d) check(d);
  for (int e = 12; e < 32; ++e)
    for (int delta = -3; delta <= 3; ++delta) check((1u << e) + static_cast<uint32_t>(delta));
  check(0xFFFFFFFFu);
  check(0xFFFFFFFEu);
  for (int k = 0; k < 20000; ++k) check(next() | 1u), check((next() >> (k % 31)) + 1u);
  printf("div_bad %lld of %lld\\n", div_bad, div_checked);

  // NUMERICS §5.9 tile decode, as qgen_load_nvfp4_transposed_tile spells it: one 16-byte piece (codes 0..15 twice,
  // A's 32 elements of one column) with the scale pair (s, s2) (byte 0: codes 0..15, byte 1: codes 16..31), every
  // pair decoded into its slot, and every output row r read back from slot(r), half(r), times t * 2^8; once with the
  // multipliers as they are, once negated (the staged rotation's sign flip). Every scale byte s x each t on stdin.
  using Tile = qgen_nvfp4_transposed_tile<32, 4, 128>;
  const uint32_t words[4] = {0x76543210u, 0xFEDCBA98u, 0x76543210u, 0xFEDCBA98u};
  unsigned t_bits;
  while (scanf("%x", &t_bits) == 1) {
    const float t = qgen_f32_from_bits(t_bits);
    const float t_mul = qgen_mul(t, 256.0f);
    for (uint32_t s = 0; s < 256; ++s) {
      const uint32_t s2 = (s * 37u + 11u) & 0xFFu;
      uint32_t mult[2];
      qgen_nvfp4_bf16_multipliers(s | (s2 << 8), mult);
      for (uint32_t flip = 0; flip < 2; ++flip) {
        uint32_t slot[16];
        for (int w = 0; w < 4; ++w)
          for (int j = 0; j < 4; ++j)
            slot[4 * w + j] = qgen_nvfp4_bf16_pair(qgen_nvfp4_bf16_pattern_pair(words[w], words[w] >> 8, j),
                                                   mult[w / 2] ^ (flip * 0x80008000u));
        for (int r = 0; r < 32; ++r) {
          const uint32_t selector = qgen_nvfp4_bf16_half_selector(Tile::half(r));
          const float v = qgen_nvfp4_tile_value(slot[Tile::slot(r)], selector, t_mul);
          printf("%08x%c", qgen_f32_bits(v), r == 31 ? '\\n' : ' ');
        }
      }
    }
  }
  return 0;
}
`;

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const bitsOf = (x: number) => ((f32[0] = x), u32[0]);
const fromBits = (b: number) => ((u32[0] = b >>> 0), f32[0]);

const E2M1 = [0, 0.5, 1, 1.5, 2, 3, 4, 6];
/** NUMERICS §2.1 value of a code: -0 for code 8. */
const e2m1 = (c: number) => (c & 8 ? -E2M1[c & 7] : E2M1[c & 7]);
// amax / T as a product and an FMA (qgen_div_by_target, qgen_div_by_target_unguarded, runtime/qgen_quantize.cuh)
// against the IEEE division, over every non-negative binary32 pattern (Inf and NaN included), both targets, two
// threads. Also the fast-path proxy test (qgen_proxy_fast_scale: p_u >= 2^-98 only where amax >= 2^-100) and two
// deliberately wrong spellings, which this scan must catch (else it proves nothing): the guard moved down to 2^-126,
// and the product by H alone. Round keys: qgen_random_block with the precomputed schedule against the seed's form.
const DIV_PROGRAM = `#include <cstdio>
#include <cstdint>
#include <cmath>
#include <thread>
#include "qgen_quantize.cuh"
struct Counts {
  uint64_t checked = 0, guarded_bad = 0, unguarded_bad_in_range = 0, fast_bad = 0, wrong_guard = 0, wrong_h = 0;
  uint32_t largest_unguarded_bad = 0;
};
static bool same(float a, float b) { return std::isnan(a) ? std::isnan(b) : qgen_f32_bits(a) == qgen_f32_bits(b); }
static void scan(float target, int i, uint32_t begin, uint32_t end, Counts& c) {
  const qgen_target_reciprocal r = qgen_target_reciprocal_at(i);
  for (uint32_t b = begin; b != end; ++b) {
    const float a = qgen_f32_from_bits(b), want = a / target, u = qgen_div_fma_unguarded(a, r);
    ++c.checked;
    c.guarded_bad += !same(qgen_div_by_target(a, target), want);
    if (!same(u, want)) {
      if (a >= QGEN_DIV_FMA_MIN && a <= 3.402823466e38f) ++c.unguarded_bad_in_range;
      if (b < 0x7f800000u && b > c.largest_unguarded_bad) c.largest_unguarded_bad = b;
      if (a >= 0x1p-126f && a <= 3.402823466e38f) ++c.wrong_guard;
    }
    float p;
    if (b < 0x7f800000u && qgen_proxy_fast_scale(a, target, p))
      c.fast_bad += a < QGEN_DIV_FMA_MIN || qgen_f32_bits(p) != qgen_f32_bits(qgen_proxy_scale(a, target));
    if (b < 0x7f800000u) c.wrong_h += !same(a * qgen_f32_from_bits(r.hi), want);
  }
}
int main() {
  for (int i = 0; i < QGEN_TARGET_RECIPROCAL_COUNT; ++i) {
    const float target = qgen_f32_from_bits(qgen_target_reciprocal_at(i).target);
    Counts c0, c1;
    std::thread t0(scan, target, i, 0u, 0x3fe00000u, std::ref(c0));
    std::thread t1(scan, target, i, 0x3fe00000u, 0x7fc00001u, std::ref(c1));  // to the quiet NaN 0x7fc00000
    t0.join();
    t1.join();
    printf("target %08x checked %llu guarded_bad %llu unguarded_bad_in_range %llu fast_bad %llu largest_bad %08x "
           "wrong_guard %llu wrong_h %llu\\n", qgen_target_reciprocal_at(i).target,
           (unsigned long long)(c0.checked + c1.checked), (unsigned long long)(c0.guarded_bad + c1.guarded_bad),
           (unsigned long long)(c0.unguarded_bad_in_range + c1.unguarded_bad_in_range),
           (unsigned long long)(c0.fast_bad + c1.fast_bad),
           c1.largest_unguarded_bad > c0.largest_unguarded_bad ? c1.largest_unguarded_bad : c0.largest_unguarded_bad,
           (unsigned long long)(c0.wrong_guard + c1.wrong_guard), (unsigned long long)(c0.wrong_h + c1.wrong_h));
  }
  // Round keys: 20000 random (seed, stream, index, block), seeds with both words near 2^32 among them.
  uint64_t state = 0x9E3779B97F4A7C15ull, keys_bad = 0;
  auto next = [&state]() { state ^= state << 13; state ^= state >> 7; state ^= state << 17; return state; };
  for (int n = 0; n < 20000; ++n) {
    const uint64_t seed = n % 4 == 0 ? ~(next() & 0xFFFF000000FFull) : next(), index = next();
    const uint32_t stream = static_cast<uint32_t>(next() % 5), block = static_cast<uint32_t>(next() % 3);
    const uint4 w = qgen_random_block(seed, stream, index, block);
    const uint4 k = qgen_random_block(qgen_philox_key_schedule(seed), stream, index, block);
    keys_bad += w.x != k.x || w.y != k.y || w.z != k.z || w.w != k.w;
  }
  printf("keys_bad %llu\\n", (unsigned long long)keys_bad);
  return 0;
}
`;

/** NUMERICS §2.3 value of an E4M3 byte (bias 7, subnormals m 2^-9, 0x7F / 0xFF NaN). */
function e4m3(b: number): number {
  if ((b & 0x7f) === 0x7f) return NaN;
  const e = (b >> 3) & 15,
    m = b & 7;
  const v = e === 0 ? m * 2 ** -9 : (1 + m / 8) * 2 ** (e - 7);
  return b & 0x80 ? -v : v;
}

test('requant tile: f32(f32(e2m1 * s) * t) for every code and scale, -s negates it; offsets; division', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qgen-hot-'));
  const src = path.join(dir, 'hot.cu');
  writeFileSync(src, PROGRAM);
  const exe = path.join(dir, 'hot');
  await compileCuda({ sources: [src], arch: 'sm_90a', out: exe, output: 'executable', includeDirs: [runtimeDir] });
  // t: ordinary, negative, a power of two, subnormal, tiny enough to flush some products to subnormals / zero, large
  // enough to overflow some products, the tile's bound 2^119 and its negative, zero and -0.
  const ts = [1, -1, 0.75, 2 ** -20, 1.234567e-3, 2 ** -140, 1e-40, 3.1e-42, 2 ** 110, 1.7e35, 2 ** 119, -(2 ** 119)];
  ts.push(0, -0, fromBits(0x3f9d70a4), fromBits(0x7e7fffff) / 2 ** 8);
  const input = ts.map((t) => bitsOf(t).toString(16)).join('\n') + '\n';
  const { stdout } = await execa(exe, [], { input });
  const lines = stdout.trim().split('\n');
  assert.is(lines[0], 'tile_bad 0', 'the staged tile must move every value to its reader; offsets as the layouts');
  assert.is(lines[1], 'offsets_bad 0', 'the tile scale offsets must equal the layouts (NUMERICS §7)');
  assert.match(lines[2], /^div_bad 0 of \d+$/, 'qgen_udiv32 must equal n / d');
  lines.splice(0, 3);
  assert.is(lines.length, ts.length * 256 * 2);
  let bad = 0,
    checked = 0;
  const first: string[] = [];
  ts.forEach((t, ti) => {
    const tf = Math.fround(t);
    for (let s = 0; s < 256; ++s)
      for (let flip = 0; flip < 2; ++flip) {
        const got = lines[(ti * 256 + s) * 2 + flip].split(' ').map((h) => parseInt(h, 16));
        const s2 = (s * 37 + 11) & 0xff;
        for (let r = 0; r < 32; ++r) {
          // q s is exact in binary32 and q s t exact in binary64 (6 + 24 significant bits): one rounding by fround;
          // the flip negates q s (exactly), so it negates the result (-0 for +0).
          const qs = Math.fround(e2m1(r % 16) * e4m3(r < 16 ? s : s2));
          const want = Math.fround((flip ? -qs : qs) * tf);
          const ok = Number.isNaN(want) ? Number.isNaN(fromBits(got[r])) : got[r] === bitsOf(want);
          checked++;
          if (!ok) {
            bad++;
            if (first.length < 5)
              first.push(`t=${tf} s=0x${s.toString(16)} flip=${flip} row=${r}: ${got[r].toString(16)}`);
          }
        }
      }
  });
  assert.is(checked, ts.length * 256 * 2 * 32);
  assert.is(bad, 0, first.join('; '));
});

test('amax / T as a product and an FMA equals the division on every float it takes; round keys', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qgen-div-'));
  const src = path.join(dir, 'div.cu');
  writeFileSync(src, DIV_PROGRAM);
  const exe = path.join(dir, 'div');
  await compileCuda({ sources: [src], arch: 'sm_90a', out: exe, output: 'executable', includeDirs: [runtimeDir] });
  const { stdout } = await execa(exe, []);
  const lines = stdout.trim().split('\n');
  assert.is(lines.length, 3);
  // the runtime's table holds the targets of dsl/constants.ts (6 and s_eden) as bit patterns, in this order
  const bits = (x: number) => new Uint32Array(new Float32Array([x]).buffer)[0].toString(16).padStart(8, '0');
  for (const [i, target] of [bits(E2M1_MAX), bits(S_EDEN)].entries()) {
    const f = Object.fromEntries(
      lines[i]
        .split(' ')
        .reduce<[string, string][]>((acc, w, j, all) => (j % 2 === 0 ? [...acc, [w, all[j + 1]]] : acc), []),
    );
    assert.is(f.target, target);
    assert.is(Number(f.checked), 0x7fc00001, 'every non-negative pattern up to the quiet NaN');
    assert.is(f.guarded_bad, '0', `T = ${target}: qgen_div_by_target must equal the division everywhere`);
    assert.is(f.unguarded_bad_in_range, '0', `T = ${target}: the product and FMA must be exact on [2^-100, FLT_MAX]`);
    assert.is(f.fast_bad, '0', `T = ${target}: p_u >= 2^-98 only for amax >= 2^-100, and then the proxy`);
    // The scan catches wrong spellings: the FMA form is wrong somewhere in [2^-126, 2^-100) and H alone is wrong
    // on many inputs (if either count were 0 the scan, not the spelling, would be suspect).
    assert.ok(parseInt(f.largest_bad, 16) < 0x0d800000, 'every mismatch of the FMA form lies below 2^-100');
    assert.ok(Number(f.wrong_guard) > 0, `T = ${target}: a guard at 2^-126 must fail the scan`);
    assert.ok(Number(f.wrong_h) > 1000, `T = ${target}: a * H alone must fail the scan`);
  }
  assert.is(lines[2], 'keys_bad 0', 'the precomputed round keys must give the same Philox words');
});

test.run();
