// Philox4x32-10 and the curand stream (PTX-FACTS §8), and the contract's random words (NUMERICS §3.1): published
// known-answer vectors, the H100-checked curand table, a BigInt implementation as a second oracle, and the identity
// word(seed, stream, index, w) == the w-th curand() of curand_init(seed, index, stream * 2^34 + w).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { bitsOf } from '../reference/fp32.ts';
import { CurandPhilox, philox4x32_10, randomBlock, randomWord, splitSeed } from '../reference/philox.ts';

const words = (s: string) =>
  s
    .trim()
    .split(/\s+/)
    .map((h) => parseInt(h, 16));
const hexes = (a: ArrayLike<number>) => Array.from(a, (x) => (x >>> 0).toString(16).padStart(8, '0')).join(' ');

/** Philox4x32-10 written with BigInt products, straight from the round definition in PTX-FACTS §8. */
function philoxBig(ctr: number[], key: number[]): number[] {
  const MASK = 0xffffffffn;
  let [x, y, z, w] = ctr.map(BigInt);
  let [k0, k1] = key.map(BigInt);
  for (let round = 0; round < 10; round++) {
    const p0 = 0xd2511f53n * x;
    const p1 = 0xcd9e8d57n * z;
    [x, y, z, w] = [((p1 >> 32n) ^ y ^ k0) & MASK, p1 & MASK, ((p0 >> 32n) ^ w ^ k1) & MASK, p0 & MASK];
    k0 = (k0 + 0x9e3779b9n) & MASK;
    k1 = (k1 + 0xbb67ae85n) & MASK;
  }
  return [x, y, z, w].map(Number);
}

test('philox4x32_10: the three Random123 known-answer vectors', () => {
  const kats: [string, string, string][] = [
    ['00000000 00000000 00000000 00000000', '00000000 00000000', '6627e8d5 e169c58d bc57ac4c 9b00dbd8'],
    ['ffffffff ffffffff ffffffff ffffffff', 'ffffffff ffffffff', '408f276d 41c83b0e a20bc7c6 6d5451fd'],
    ['243f6a88 85a308d3 13198a2e 03707344', 'a4093822 299f31d0', 'd16cfe09 94fdcceb 5001e420 24126ea1'],
  ];
  const out = new Uint32Array(4);
  for (const [ctr, key, expected] of kats) {
    const [c0, c1, c2, c3] = words(ctr);
    const [k0, k1] = words(key);
    philox4x32_10(c0, c1, c2, c3, k0, k1, out);
    assert.is(hexes(out), hexes(words(expected)), `ctr ${ctr} key ${key}`);
    assert.is(hexes(philoxBig(words(ctr), words(key))), hexes(words(expected)), 'the BigInt oracle itself');
  }
});

test('philox4x32_10: equals the BigInt implementation on random counters and keys', () => {
  const u32 = fc.integer({ min: 0, max: 0xffffffff });
  const edge = fc.constantFrom(0, 1, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff);
  const word = fc.oneof(u32, edge);
  const out = new Uint32Array(4);
  fc.assert(
    fc.property(fc.array(word, { minLength: 6, maxLength: 6 }), ([c0, c1, c2, c3, k0, k1]) => {
      philox4x32_10(c0, c1, c2, c3, k0, k1, out);
      return hexes(out) === hexes(philoxBig([c0, c1, c2, c3], [k0, k1]));
    }),
    { numRuns: 3000 },
  );
});

test('CurandPhilox: every curand() and curand_uniform() vector of PTX-FACTS §8', () => {
  // 6 x curand(), then 6 x curand_uniform() from the same state (float bit patterns).
  const table: [bigint, bigint, bigint, string, string][] = [
    [
      0n,
      0n,
      0n,
      '6627e8d5 e169c58d bc57ac4c 9b00dbd8 f8e4cca4 5cb200db',
      '3f31a575 3d17eff6 3c9f5465 3ea38e65 3e10544f 3e8b226c',
    ],
    [
      0x0123456789abcdefn,
      5n,
      7n,
      'a1bd1919 644af2c9 0aab6850 81064203 05721106 c58f49d0',
      '3ec505cf 3eed7416 3eafab8f 3f71dc0b 3ec8f6c8 3e8e1807',
    ],
    [
      42n,
      2n ** 32n,
      0xffffffffffn,
      '8cca8c21 085448ef 8a7aba7b a72dadfa cf6e40ae fab6bc1d',
      '3edc58d1 3eb36c96 3e39ea50 3f6fceef 3ecf7a3d 3e31a230',
    ],
    [
      2n ** 64n - 1n,
      3n,
      2n,
      '4c195a18 9927849d 0b34494e b5451674 3c3244c2 06bd6ebd',
      '3f0ecdbd 3f0c8fea 3f235eb7 3f46902b 3e6dc076 3eb3fc73',
    ],
  ];
  for (const [seed, subsequence, offset, ints, uniforms] of table) {
    const s = new CurandPhilox(seed, subsequence, offset);
    const gotInts = Array.from({ length: 6 }, () => s.next());
    const gotUniforms = Array.from({ length: 6 }, () => bitsOf(s.nextUniform()));
    const label = `seed ${seed}, subsequence ${subsequence}, offset ${offset}`;
    assert.is(hexes(gotInts), hexes(words(ints)), label);
    assert.is(hexes(gotUniforms), hexes(words(uniforms)), label);
  }
  // Seed 0, offset 1: the first row shifted by one word.
  const shifted = new CurandPhilox(0n, 0n, 1n);
  assert.is(hexes(Array.from({ length: 5 }, () => shifted.next())), hexes(words(table[0][3]).slice(1)));
});

test('CurandPhilox: counter increments and carries follow the raw Philox blocks', () => {
  const out = new Uint32Array(4);
  const block = (c: number[], key: [number, number]) => {
    philox4x32_10(c[0], c[1], c[2], c[3], key[0], key[1], out);
    return [...out];
  };
  // Offset 4 * (2^32 - 1): the block at ctr.x = 0xffffffff, then the carry into ctr.y.
  const key = splitSeed(0xfeedfacecafebeefn);
  const s = new CurandPhilox(0xfeedfacecafebeefn, 7n, 4n * 0xffffffffn);
  const got = Array.from({ length: 8 }, () => s.next());
  assert.is(hexes(got), hexes([...block([0xffffffff, 0, 7, 0], key), ...block([0, 1, 7, 0], key)]));
  // Largest subsequence and offset: (z, w) = (2^32-1, 2^32-1), (x, y) = (2^32-1, 2^30-1), STATE 3; the next block
  // carries x into y.
  const big = new CurandPhilox(3n, 2n ** 64n - 1n, 2n ** 64n - 1n);
  const top = block([0xffffffff, 0x3fffffff, 0xffffffff, 0xffffffff], splitSeed(3n));
  const after = block([0, 0x40000000, 0xffffffff, 0xffffffff], splitSeed(3n));
  assert.is(hexes(Array.from({ length: 5 }, () => big.next())), hexes([top[3], ...after]));
});

test('nextUniform: (float)x rounded first, then one binary32 rounding of x * 2^-32 + 2^-33', () => {
  // (float)x by hand: x rounded to 24 significant bits, ties to even.
  const toFloat = (x: number): number => {
    if (x < 2 ** 24) return x;
    const step = 2 ** (Math.floor(Math.log2(x)) - 23);
    const q = x / step;
    const fl = Math.floor(q);
    return (q - fl > 0.5 || (q - fl === 0.5 && fl % 2 === 1) ? fl + 1 : fl) * step;
  };
  const ints = new CurandPhilox(1n, 0n, 0n);
  const floats = new CurandPhilox(1n, 0n, 0n);
  let discriminating = 0;
  for (let i = 0; i < 20000; i++) {
    const x = ints.next();
    const want = Math.fround(toFloat(x) * 2 ** -32 + 2 ** -33);
    const u = floats.nextUniform();
    assert.ok(Object.is(u, want), `word ${i}: x = ${x}`);
    assert.ok(u > 0 && u <= 1);
    if (want !== Math.fround(x * 2 ** -32 + 2 ** -33)) discriminating++;
  }
  assert.ok(discriminating > 0, 'the sample has words where rounding x to float first matters');
});

test('splitSeed: halves of a 64-bit seed; out-of-range seeds are refused', () => {
  assert.equal(splitSeed(0n), [0, 0]);
  assert.equal(splitSeed(0x0123456789abcdefn), [0x89abcdef, 0x01234567]);
  assert.equal(splitSeed(2n ** 64n - 1n), [0xffffffff, 0xffffffff]);
  assert.throws(() => splitSeed(-1n), RangeError);
  assert.throws(() => splitSeed(2n ** 64n), RangeError);
});

test('randomWord(seed, stream, index, w) is the w-th curand() of curand_init(seed, index, stream * 2^34 + w)', () => {
  const seed = fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.constantFrom(0n, 42n, 2n ** 64n - 1n));
  const stream = fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 2 ** 30 - 1 }));
  const index = fc.oneof(
    fc.integer({ min: 0, max: 2 ** 20 }),
    fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
    fc.constantFrom(0xffffffff, 2 ** 32, 2 ** 32 + 1, Number.MAX_SAFE_INTEGER),
  );
  const w = fc.oneof(
    fc.integer({ min: 0, max: 63 }),
    fc.integer({ min: 0, max: 2 ** 34 - 1 }),
    fc.constantFrom(2 ** 34 - 1, 2 ** 34 - 4, 4 * 0xfffffffe),
  );
  fc.assert(
    fc.property(seed, stream, index, w, (sd, st, idx, ww) => {
      const [lo, hi] = splitSeed(sd);
      const s = new CurandPhilox(sd, BigInt(idx), BigInt(st) * 2n ** 34n + BigInt(ww));
      // Three consecutive curand() calls: words w, w+1, w+2 (crossing a block boundary when w mod 4 >= 2).
      for (let k = 0; k < 3; k++) {
        if (ww + k >= 2 ** 34) break;
        if (s.next() !== randomWord(lo, hi, st, idx, ww + k)) return false;
      }
      return true;
    }),
    { numRuns: 1500 },
  );
});

test('randomBlock: words 4*block .. 4*block+3 of randomWord', () => {
  const out = new Uint32Array(4);
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.integer({ min: 0, max: 7 }),
      fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
      fc.integer({ min: 0, max: 2 ** 32 - 1 }),
      (lo, hi, st, idx, blk) => {
        randomBlock(lo, hi, st, idx, blk, out);
        for (let j = 0; j < 4; j++) if (out[j] !== randomWord(lo, hi, st, idx, 4 * blk + j)) return false;
        return true;
      },
    ),
    { numRuns: 1000 },
  );
  // Counter layout by hand: (block, stream, index_lo32, index_hi32) under key (seed_lo32, seed_hi32).
  const ref = new Uint32Array(4);
  randomBlock(0x11111111, 0x22222222, 3, 2 ** 32 * 5 + 9, 6, out);
  philox4x32_10(6, 3, 9, 5, 0x11111111, 0x22222222, ref);
  assert.is(hexes(out), hexes(ref));
});

test.run();
