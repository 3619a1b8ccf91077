// Inputs of the GPU property tests: shapes and magnitude regimes drawn by fast-check, turned into bf16 data
// deterministically (so a failing case is reproducible from its printed parameters), and the expected device
// bytes computed by the TypeScript reference.
import fc from 'fast-check';
import type { KernelSpec, QuantizeSpec } from '../../dsl/types.ts';
import { gaussianMatrix, type Matrix, type QuantizedTensor, transpose } from '../../reference/tensor.ts';
import { f32ToBf16Bits, bf16BitsToF32 } from '../../reference/fp32.ts';
import { packCodes, layoutScales } from '../../reference/layout.ts';

export type Regime =
  'gaussian' | 'tiny' | 'huge' | 'zero-rows' | 'outlier' | 'mixed-rows' | 'specials' | 'zero-rows-specials';
/** The regimes fast-check draws from. 'zero-rows-specials' (zero rows holding +-Inf and NaN: zero groups whose codes
 * are not all zero) is left out, so the drawn cases stay as they were; fixed cases name it. */
export const REGIMES: readonly Regime[] = [
  'gaussian',
  'tiny',
  'huge',
  'zero-rows',
  'outlier',
  'mixed-rows',
  'specials',
];

export interface CaseParams {
  rows: number;
  cols: number;
  regime: Regime;
  dataSeed: number;
  /** qgen_quantize_args.seed: stochastic rounding draws (NUMERICS §3.2). */
  seed: bigint;
  /**
   * qgen_quantize_args.sign_seed (the Hadamard kernel's seed): the sign vector. Always != seed, so that a kernel
   * keying its signs by seed or its noise by sign_seed fails (draws never shrink to equal values).
   */
  signSeed: bigint;
  /** For tensorScale 'caller': the supplied scale is amax / (T * C) times this factor. */
  callerFactor: number;
}

/** The multiple that K must be for a spec (NUMERICS §8). */
export function colsMultiple(spec: KernelSpec): number {
  if (spec.kind === 'quantize') {
    const g = spec.scaleGroup.size;
    const h = spec.hadamard ?? 1;
    return Math.max(g, h, spec.block === '16x16' ? 16 : 1);
  }
  if (spec.kind === 'hadamard') return spec.size;
  if (spec.kind === 'dequantize') return spec.scaleGroup.size;
  return 16;
}

/** Requant: the output's rows are the input tensor's K, a multiple of 16 (NUMERICS §5.9). */
function rowsMultiple(spec: KernelSpec): number {
  return spec.kind === 'quantize' && spec.input === 'nvfp4' ? 16 : 1;
}

export function caseArbitrary(spec: KernelSpec): fc.Arbitrary<CaseParams> {
  const m = colsMultiple(spec);
  const rm = rowsMultiple(spec);
  const rows = fc
    .oneof(fc.constantFrom(1, 3, 127, 129, 4097), fc.integer({ min: 1, max: 300 }))
    .map((r) => Math.ceil(r / rm) * rm);
  return fc
    .record({
      rows,
      k: fc.integer({ min: 1, max: 8 }),
      regime: fc.constantFrom(...REGIMES),
      dataSeed: fc.integer({ min: 0, max: 1 << 30 }),
      seed: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
      signSeed: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
      callerFactor: fc.double({ min: 0.5, max: 2, noNaN: true }),
    })
    .map(({ rows, k, regime, dataSeed, seed, signSeed: drawn, callerFactor }) => {
      const signSeed = distinctSignSeed(seed, drawn);
      // Keep a case under ~1M elements so thousands of cases fit in the lease.
      let cols = m * k;
      while (rows * cols > 1 << 20 && cols > m) cols -= m;
      return { rows, cols, regime, dataSeed, seed, signSeed, callerFactor };
    });
}

/** The sign seed of a case: the drawn one, moved off seed when they coincide (e.g. both shrunk to 0). */
export function distinctSignSeed(seed: bigint, drawn: bigint): bigint {
  return drawn === seed ? BigInt.asUintN(64, seed ^ 0x9e3779b97f4a7c15n) : drawn;
}

/** A bf16-valued matrix for a regime. All values are exact bf16 numbers; 'specials' sprinkles NaN and ±Inf. */
export function regimeMatrix(rows: number, cols: number, regime: Regime, dataSeed: number): Matrix {
  const x = gaussianMatrix(rows, cols, dataSeed);
  const d = x.data;
  let h = (dataSeed * 2654435761) >>> 0;
  const next = () => {
    h = (Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) + 0x9e3779b9) >>> 0;
    return h;
  };
  const bf = (v: number) => bf16BitsToF32(f32ToBf16Bits(v));
  for (let r = 0; r < rows; r++) {
    const rowScale = regime === 'mixed-rows' ? 2 ** ((next() % 41) - 20) : 1;
    const zeroRow = regime === 'zero-rows' && next() % 3 === 0;
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c;
      let v = d[i];
      if (regime === 'tiny')
        v = v * 2 ** -120; // bf16 subnormals and near-subnormals
      else if (regime === 'huge') v = v * 2 ** 100;
      else if (regime === 'mixed-rows') v = v * rowScale;
      if (zeroRow) v = next() & 1 ? 0 : -0;
      d[i] = bf(v);
    }
  }
  if (regime === 'outlier') {
    const n = 1 + (next() % 4);
    for (let j = 0; j < n; j++) d[next() % d.length] = bf((next() & 1 ? 1 : -1) * 2 ** (next() % 40));
  }
  if (regime === 'zero-rows-specials') {
    // every third row zero, and in each of them one +Inf, one -Inf and one NaN: its groups' finite amax is 0
    for (let r = 0; r < rows; r += 3) {
      for (let c = 0; c < cols; c++) d[r * cols + c] = 0;
      for (const v of [Infinity, -Infinity, NaN]) d[r * cols + (next() % cols)] = v;
    }
  }
  if (regime === 'specials') {
    const n = 1 + (next() % 6);
    const specials = [NaN, Infinity, -Infinity, 0, -0];
    for (let j = 0; j < n; j++) d[next() % d.length] = specials[next() % specials.length];
  }
  return x;
}

export function bf16Bytes(x: Matrix): Uint8Array {
  const out = new Uint16Array(x.data.length);
  for (let i = 0; i < out.length; i++) out[i] = f32ToBf16Bits(x.data[i]);
  return new Uint8Array(out.buffer);
}

export function f32Bytes(values: ArrayLike<number>): Uint8Array {
  const f = Float32Array.from(values);
  return new Uint8Array(f.buffer);
}

export function scalarBytes(x: number): Uint8Array {
  return f32Bytes([x]);
}

/** Device-format bytes of a quantized tensor: packed codes, scales in the spec's layout, tensor scale bits. */
export function deviceBytes(
  q: QuantizedTensor,
  layout: QuantizeSpec['scaleLayout'],
): { codes: Uint8Array; scales: Uint8Array; tensorScale: Uint8Array } {
  const Kb = q.cols / q.groupSize;
  return {
    codes: packCodes(q.codes),
    scales: layoutScales(q.scales, q.rows, Kb, layout),
    tensorScale: scalarBytes(q.tensorScale),
  };
}

/** The input of a transposed-input quantizer is stored [cols, rows]. */
export function storedInput(spec: QuantizeSpec, x: Matrix): Matrix {
  return spec.transposedInput ? transpose(x) : x;
}

/** How a buffer is compared: codes and scales byte for byte; float outputs element-wise, any NaN equal to any NaN
 * (NUMERICS §2.8: a NaN's payload is not part of the contract). */
export type Compare = 'bytes' | 'bf16' | 'f32';

function isNaNElement(b: Uint8Array, i: number, kind: 'bf16' | 'f32'): boolean {
  if (kind === 'bf16') {
    const h = b[2 * i] | (b[2 * i + 1] << 8);
    return (h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0;
  }
  const w = (b[4 * i] | (b[4 * i + 1] << 8) | (b[4 * i + 2] << 16) | (b[4 * i + 3] << 24)) >>> 0;
  return (w & 0x7f800000) === 0x7f800000 && (w & 0x7fffff) !== 0;
}

/** First difference under a comparison rule, described for a failure message; null when equal. */
export function compareBuffers(got: Uint8Array, want: Uint8Array, kind: Compare): string | null {
  if (kind === 'bytes') return firstDifference(got, want);
  if (got.length !== want.length) return `length ${got.length}, expected ${want.length}`;
  const w = kind === 'bf16' ? 2 : 4;
  let count = 0,
    first = -1;
  for (let i = 0; i < got.length / w; i++) {
    let same = true;
    for (let j = 0; j < w; j++)
      if (got[w * i + j] !== want[w * i + j]) {
        same = false;
        break;
      }
    if (!same && !(isNaNElement(got, i, kind) && isNaNElement(want, i, kind))) {
      count++;
      if (first < 0) first = i;
    }
  }
  if (first < 0) return null;
  const hex = (b: Uint8Array) =>
    Array.from(b.subarray(w * first, w * first + w))
      .reverse()
      .map((x) => x.toString(16).padStart(2, '0'))
      .join('');
  return `${count} of ${got.length / w} ${kind} elements differ; first at element ${first}: got 0x${hex(got)}, expected 0x${hex(want)}`;
}

/** First differing byte, described for a failure message. */
export function firstDifference(got: Uint8Array, want: Uint8Array): string | null {
  if (got.length !== want.length) return `length ${got.length}, expected ${want.length}`;
  let count = 0;
  let first = -1;
  for (let i = 0; i < got.length; i++)
    if (got[i] !== want[i]) {
      count++;
      if (first < 0) first = i;
    }
  if (first < 0) return null;
  return `${count} of ${got.length} bytes differ; first at byte ${first}: got 0x${got[first].toString(16)}, expected 0x${want[first].toString(16)}`;
}
