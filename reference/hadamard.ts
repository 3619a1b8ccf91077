// The randomized Hadamard transform of the numerics contract (NUMERICS §4) and its sign vector (§3.2).

import { INV_SQRT, STREAM_SIGNS } from '../dsl/constants.ts';
import { randomWord } from './philox.ts';

// A module-local alias: calls through an imported binding are markedly slower in the hot loop.
const f32 = Math.fround;

export type HadamardSize = 16 | 32 | 64 | 128;

function invSqrtOf(n: number): number {
  const s = INV_SQRT[n as HadamardSize];
  if (s === undefined) throw new RangeError(`Hadamard size ${n} is not one of 16, 32, 64, 128`);
  return s;
}

/**
 * The ±1 signs eps_0..eps_(n-1) of a sign seed (NUMERICS §3.2): sign j is -1 iff bit `j & 31` of
 * word(signSeed, STREAM_SIGNS, 0, j >> 5) is set. The sign seed is a quantizer's `signSeed` (qgen.h `sign_seed`),
 * the Hadamard kernel's `seed`; never a quantizer's `seed`, which keys its stochastic rounding.
 */
export function signVector(signSeedLo: number, signSeedHi: number, n: number): Float32Array {
  invSqrtOf(n);
  const signs = new Float32Array(n);
  for (let j = 0; j < n; j++) {
    const word = randomWord(signSeedLo, signSeedHi, STREAM_SIGNS, 0, j >> 5);
    signs[j] = (word >>> (j & 31)) & 1 ? -1 : 1;
  }
  return signs;
}

/**
 * One n-chunk of the transform (NUMERICS §4): y = inv_sqrt_n * H_n (eps ∘ x[off .. off+n)), written to
 * out[outOff .. outOff+n) in natural order. The butterflies run in place in `out`, so out may be x itself.
 */
export function rhtChunk(
  x: Float32Array,
  off: number,
  n: number,
  signs: Float32Array,
  out: Float32Array,
  outOff: number,
): void {
  const scale = invSqrtOf(n);
  // §4.1: a sign flip, exact.
  for (let j = 0; j < n; j++) out[outOff + j] = signs[j] * x[off + j];
  // §4.2: stages h = 1, 2, ..., n/2; the pair (i, i+h) with (i & h) == 0 becomes (a_i + a_(i+h), a_i - a_(i+h)).
  // The pairs of a stage are (i, i+h) for i in [block, block+h), block = 0, 2h, 4h, ....
  for (let h = 1; h < n; h <<= 1) {
    for (let block = outOff; block < outOff + n; block += 2 * h) {
      for (let p = block; p < block + h; p++) {
        const u = out[p];
        const v = out[p + h];
        out[p] = f32(u + v);
        out[p + h] = f32(u - v);
      }
    }
  }
  // §4.3
  for (let j = 0; j < n; j++) out[outOff + j] = f32(out[outOff + j] * scale);
}

/** The transform of every n-chunk of every row of a row-major [rows, cols] matrix; a new array. */
export function rhtRows(x: Float32Array, rows: number, cols: number, n: number, signs: Float32Array): Float32Array {
  invSqrtOf(n);
  if (cols % n !== 0) throw new RangeError(`rhtRows: cols = ${cols} is not a multiple of the Hadamard size ${n}`);
  if (signs.length < n) throw new RangeError(`rhtRows: ${signs.length} signs for Hadamard size ${n}`);
  if (x.length < rows * cols) throw new RangeError(`rhtRows: ${x.length} elements for a ${rows}x${cols} matrix`);
  const out = new Float32Array(rows * cols);
  for (let off = 0; off < rows * cols; off += n) rhtChunk(x, off, n, signs, out, off);
  return out;
}
