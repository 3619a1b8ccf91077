// Plain tensors of the TypeScript reference: binary32 matrices and NVFP4 / MXFP4 quantized tensors.

import { bf16BitsToF32, f32ToBf16Bits } from './fp32.ts';
import { randomBlock, splitSeed } from './philox.ts';

/** A row-major matrix of binary32 values. */
export interface Matrix {
  rows: number;
  cols: number;
  data: Float32Array;
}

/** An output [rows, cols] quantized along cols (NUMERICS §5). */
export interface QuantizedTensor {
  rows: number;
  cols: number;
  groupSize: 16 | 32;
  scaleFormat: 'e4m3' | 'ue8m0';
  /** One E2M1 code per element, row-major (pack with packCodes for the device format). */
  codes: Uint8Array;
  /** Row-major [rows, cols / groupSize] scale codes (use layoutScales for the 128x4 layout). */
  scales: Uint8Array;
  /** binary32 tensor scale (1 for MXFP4). */
  tensorScale: number;
}

/** A matrix from bf16 bit patterns, converted exactly (NUMERICS §1.2). */
export function bf16Matrix(rows: number, cols: number, bits: Uint16Array): Matrix {
  if (bits.length !== rows * cols) throw new Error(`bf16Matrix: ${bits.length} values for ${rows}x${cols}`);
  const data = new Float32Array(rows * cols);
  for (let i = 0; i < data.length; i++) data[i] = bf16BitsToF32(bits[i]);
  return { rows, cols, data };
}

/** Philox stream of the Gaussian test data: 0, which no quantizer uses (NUMERICS §3.3 uses 1..3). */
const STREAM_GAUSSIAN = 0;
const TWO_POW_M32 = 2 ** -32;

/**
 * A deterministic matrix of N(0, 1) samples rounded to bf16 values.
 * How (row-major element index i): samples 4b..4b+3 use the Philox4x32-10 block of (seed, stream 0, index b,
 * words 0..3); the pair (4b + 2p, 4b + 2p + 1), p = 0 or 1, is Box-Muller in binary64 on words (2p, 2p + 1):
 *   u1 = (w_2p + 1) * 2^-32 in (0, 1],  u2 = w_(2p+1) * 2^-32,  r = sqrt(-2 ln u1),
 *   first = r cos(2 pi u2),  second = r sin(2 pi u2),
 * each rounded to binary32 and then to bf16 (round to nearest even). `seed` is a non-negative integer.
 */
export function gaussianMatrix(rows: number, cols: number, seed: number): Matrix {
  const [lo, hi] = splitSeed(BigInt(seed));
  const n = rows * cols;
  const data = new Float32Array(n);
  const words = new Uint32Array(4);
  const toBf16 = (v: number) => bf16BitsToF32(f32ToBf16Bits(Math.fround(v)));
  for (let base = 0, block = 0; base < n; base += 4, block++) {
    randomBlock(lo, hi, STREAM_GAUSSIAN, block, 0, words);
    for (let pair = 0; pair < 2; pair++) {
      const i = base + 2 * pair;
      if (i >= n) break;
      const u1 = (words[2 * pair] + 1) * TWO_POW_M32;
      const u2 = words[2 * pair + 1] * TWO_POW_M32;
      const r = Math.sqrt(-2 * Math.log(u1));
      data[i] = toBf16(r * Math.cos(2 * Math.PI * u2));
      if (i + 1 < n) data[i + 1] = toBf16(r * Math.sin(2 * Math.PI * u2));
    }
  }
  return { rows, cols, data };
}

/** The transpose of a matrix (exact). */
export function transpose(x: Matrix): Matrix {
  const { rows, cols, data } = x;
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const off = r * cols;
    for (let c = 0; c < cols; c++) out[c * rows + r] = data[off + c];
  }
  return { rows: cols, cols: rows, data: out };
}
