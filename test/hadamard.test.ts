// The randomized Hadamard transform (NUMERICS §4) and its sign vector (§3.2): bit-exactness against a second,
// recursive implementation of the binary32 network, closeness to a float64 O(n^2) matrix product, orthogonality,
// and signs drawn from the curand stream.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { INV_SQRT, STREAM_SIGNS } from '../dsl/constants.ts';
import { f32 } from '../reference/fp32.ts';
import { rhtChunk, rhtRows, signVector } from '../reference/hadamard.ts';
import { CurandPhilox, splitSeed } from '../reference/philox.ts';

const SIZES = [16, 32, 64, 128] as const;
const RUNS = { numRuns: 200 };

/**
 * §4 written recursively: stages h < n/2 act within each half, the last stage (h = n/2) combines the halves, so
 * the network is fwht(v) = [fwht(L) + fwht(R), fwht(L) - fwht(R)] with one binary32 rounding per output.
 */
function fwhtRecursive(v: number[]): number[] {
  if (v.length === 1) return v;
  const half = v.length / 2;
  const L = fwhtRecursive(v.slice(0, half));
  const R = fwhtRecursive(v.slice(half));
  return [...L.map((l, i) => f32(l + R[i])), ...L.map((l, i) => f32(l - R[i]))];
}

function rhtRecursive(x: ArrayLike<number>, signs: ArrayLike<number>, n: number): number[] {
  const a = Array.from({ length: n }, (_, j) => f32(signs[j] * x[j]));
  return fwhtRecursive(a).map((y) => f32(y * INV_SQRT[n as 16]));
}

/** H_n (Sylvester, natural order) times eps ∘ x in float64: H_ij = (-1)^popcount(i & j) / sqrt(n). */
function rhtFloat64(x: ArrayLike<number>, signs: ArrayLike<number>, n: number): number[] {
  const popParity = (v: number) => {
    let p = 0;
    while (v) {
      p ^= v & 1;
      v >>>= 1;
    }
    return p;
  };
  const y: number[] = [];
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < n; j++) s += (popParity(i & j) ? -1 : 1) * signs[j] * x[j];
    y.push(s / Math.sqrt(n));
  }
  return y;
}

const f32Array = (n: number) =>
  fc
    .array(fc.float({ min: -1e6, max: 1e6, noNaN: true }), { minLength: n, maxLength: n })
    .map((a) => Float32Array.from(a));
const seedArb = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });

function chunk(x: Float32Array, n: number, signs: Float32Array): Float32Array {
  const out = new Float32Array(n);
  rhtChunk(x, 0, n, signs, out, 0);
  return out;
}

test('signVector: sign j is bit j & 31 of the (j >> 5)-th curand() of curand_init(seed, 0, STREAM_SIGNS * 2^34)', () => {
  fc.assert(
    fc.property(seedArb, (seed) => {
      const [lo, hi] = splitSeed(seed);
      const state = new CurandPhilox(seed, 0n, BigInt(STREAM_SIGNS) * 2n ** 34n);
      const stream = Array.from({ length: 4 }, () => state.next());
      const signs = signVector(lo, hi, 128);
      for (let j = 0; j < 128; j++) {
        const expected = (stream[j >> 5] >>> (j & 31)) & 1 ? -1 : 1;
        if (signs[j] !== expected) return false;
      }
      // Smaller sizes use a prefix of the same words.
      for (const n of [16, 32, 64]) {
        if (signVector(lo, hi, n).join() !== Array.from(signs.subarray(0, n)).join()) return false;
      }
      return true;
    }),
    { numRuns: 300 },
  );
  // Seed 0: the first word of stream 1 is not all zeros, so the vector is not the trivial all-plus one.
  const s0 = signVector(0, 0, 128);
  assert.ok(s0.includes(-1) && s0.includes(1));
  assert.throws(() => signVector(0, 0, 8), RangeError);
});

test('rhtChunk: bit-exact against the recursive formulation of §4, every size', () => {
  for (const n of SIZES) {
    fc.assert(
      fc.property(f32Array(n), seedArb, (x, seed) => {
        const [lo, hi] = splitSeed(seed);
        const signs = signVector(lo, hi, n);
        const got = chunk(x, n, signs);
        const want = rhtRecursive(x, signs, n);
        return want.every((w, j) => Object.is(w, got[j]));
      }),
      RUNS,
    );
  }
});

test('rhtChunk: offsets, in-place use, and rhtRows on every chunk of every row', () => {
  const n = 32;
  const signs = signVector(7, 9, n);
  const rows = 3;
  const cols = 4 * n;
  const x = Float32Array.from({ length: rows * cols }, (_, i) => f32(Math.sin(i * 1.7) * 100));
  const before = x.slice();
  const y = rhtRows(x, rows, cols, n, signs);
  assert.equal(x, before, 'input untouched');
  for (let off = 0; off < rows * cols; off += n) {
    const want = rhtRecursive(x.subarray(off, off + n), signs, n);
    assert.equal(Array.from(y.subarray(off, off + n)), want, `chunk at ${off}`);
  }
  const inPlace = x.slice();
  rhtChunk(inPlace, n, n, signs, inPlace, n);
  assert.equal(Array.from(inPlace.subarray(n, 2 * n)), Array.from(y.subarray(n, 2 * n)));
  assert.equal(Array.from(inPlace.subarray(0, n)), Array.from(x.subarray(0, n)), 'other chunks untouched');
  const shifted = new Float32Array(n + 5);
  rhtChunk(x, 2 * n, n, signs, shifted, 5);
  assert.equal(Array.from(shifted.subarray(5)), Array.from(y.subarray(2 * n, 3 * n)));
  assert.throws(() => rhtRows(x, rows, cols - 16, n, signs), RangeError);
  assert.throws(() => rhtRows(x, rows, cols, 24, signs), RangeError);
});

test('rhtChunk: close to the float64 matrix product (error bound of the binary32 network)', () => {
  for (const n of SIZES) {
    const stages = Math.log2(n);
    fc.assert(
      fc.property(f32Array(n), seedArb, (x, seed) => {
        const [lo, hi] = splitSeed(seed);
        const signs = signVector(lo, hi, n);
        const got = chunk(x, n, signs);
        const ref = rhtFloat64(x, signs, n);
        const norm = Math.sqrt(x.reduce((s, v) => s + v * v, 0));
        // Each stage's roundings have 2-norm <= u * (its output's norm); the network is orthogonal up to sqrt(n),
        // so the total error norm is <= (stages + 1) * u * ||x||, plus the rounding of inv_sqrt_n.
        const bound = (stages + 2) * 2 ** -24 * norm;
        return ref.every((r, j) => Math.abs(got[j] - r) <= bound);
      }),
      RUNS,
    );
  }
});

test('rhtChunk: exact on small integers for n = 16, 64 (inv_sqrt_n is a power of two there)', () => {
  for (const n of [16, 64]) {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: -1000, max: 1000 }), { minLength: n, maxLength: n }),
        seedArb,
        (ints, seed) => {
          const [lo, hi] = splitSeed(seed);
          const signs = signVector(lo, hi, n);
          const got = chunk(Float32Array.from(ints), n, signs);
          const ref = rhtFloat64(ints, signs, n);
          return ref.every((r, j) => got[j] === r);
        },
      ),
      RUNS,
    );
  }
  // H16 of e_0 with all signs +1: every output is 1/4.
  const e0 = new Float32Array(16);
  e0[0] = 1;
  assert.equal(Array.from(chunk(e0, 16, new Float32Array(16).fill(1))), new Array(16).fill(0.25));
  // H16 of e_3: output j is (-1)^popcount(j & 3) / 4.
  const e3 = new Float32Array(16);
  e3[3] = 1;
  assert.equal(
    Array.from(chunk(e3, 16, new Float32Array(16).fill(1))),
    Array.from({ length: 16 }, (_, j) => ((j & 3) === 1 || (j & 3) === 2 ? -0.25 : 0.25)),
  );
});

test('orthogonality: M M^T = I to binary32 precision, norms preserved, H (H x) = x', () => {
  for (const n of SIZES) {
    const signs = signVector(0x1234, 0x5678, n);
    // Columns of the matrix M of the transform (including signs): the images of the unit vectors.
    const cols: Float32Array[] = [];
    for (let k = 0; k < n; k++) {
      const e = new Float32Array(n);
      e[k] = 1;
      cols.push(chunk(e, n, signs));
    }
    let worst = 0;
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < n; k++) {
        let dot = 0;
        for (let j = 0; j < n; j++) dot += cols[i][j] * cols[k][j];
        worst = Math.max(worst, Math.abs(dot - (i === k ? 1 : 0)));
      }
    }
    assert.ok(worst < 1e-6, `n = ${n}: |M M^T - I| = ${worst}`);
    if (n === 16 || n === 64) assert.is(worst, 0, `n = ${n} is exact`);

    const plus = new Float32Array(n).fill(1);
    fc.assert(
      fc.property(f32Array(n), (x) => {
        const norm = Math.sqrt(x.reduce((s, v) => s + v * v, 0));
        const y = chunk(x, n, signs);
        const normY = Math.sqrt(y.reduce((s, v) => s + v * v, 0));
        // H without signs is symmetric and orthogonal: applying it twice gives x back.
        const back = chunk(chunk(x, n, plus), n, plus);
        const errBack = Math.sqrt(back.reduce((s, v, j) => s + (v - x[j]) ** 2, 0));
        return Math.abs(normY - norm) <= 1e-6 * norm && errBack <= 1e-6 * norm;
      }),
      RUNS,
    );
  }
});

test.run();
