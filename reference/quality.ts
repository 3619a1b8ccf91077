// Quantization quality: relative MSE and effective bits, and the Gaussian table of the paper (METHOD §2.5).

import type { QuantizeSpec, Rounding } from '../dsl/types.ts';
import { CEILING_EDEN, CEILING_RTN, E4M3_MAX } from '../dsl/constants.ts';
import { dequantize } from './dequantize.ts';
import { quantize, quantizerInput } from './quantize.ts';
import { gaussianMatrix } from './tensor.ts';

/** sum (x - xhat)^2 / sum x^2, in binary64. */
export function relMse(x: Float32Array | Float64Array, xhat: Float32Array | Float64Array): number {
  if (x.length !== xhat.length) throw new Error(`relMse: lengths ${x.length} and ${xhat.length}`);
  let err = 0;
  let ref = 0;
  for (let i = 0; i < x.length; i++) {
    const d = x[i] - xhat[i];
    err += d * d;
    ref += x[i] * x[i];
  }
  return err / ref;
}

/** Effective bits -log2(relMse) / 2 (METHOD §5). */
export function effectiveBits(relMse: number): number {
  return -Math.log2(relMse) / 2;
}

/** A quantize spec for quality measurements: NVFP4, row-major scales, no rotation unless given. */
export function qualitySpec(name: string, rounding: Rounding, fields: Partial<QuantizeSpec> = {}): QuantizeSpec {
  return {
    kind: 'quantize',
    name,
    rounding,
    scaleGroup: { size: 16, format: 'e4m3' },
    block: '1x16',
    target: rounding === 'sr' ? 'sr-v' : rounding === 'ms-eden' ? 'eden-s' : 'six',
    ceiling: rounding === 'four-six' || rounding === 'ms-eden' ? CEILING_EDEN : CEILING_RTN,
    tensorScale: 'computed',
    hadamard: rounding === 'ms-eden' ? 128 : null,
    correction: 'per-16',
    input: 'bf16',
    transposedInput: false,
    scaleLayout: 'row-major',
    tiling: { threadsPerBlock: 128, rowsPerBlock: 1, groupsPerThread: 1 },
    ...fields,
  };
}

/** The quantizers of the paper's Table 1 (relative MSE x 1e-3 on N(0,1)), with qgen's one-pass MS-EDEN added. */
const TABLE: { spec: QuantizeSpec; paper?: number }[] = [
  { spec: qualitySpec('rtn-1x16', 'rtn'), paper: 9.0e-3 },
  { spec: qualitySpec('rtn-4/6', 'four-six'), paper: 7.6e-3 },
  { spec: qualitySpec('rtn-16x16', 'rtn', { block: '16x16' }), paper: 12.4e-3 },
  { spec: qualitySpec('sr', 'sr'), paper: 23.5e-3 },
  { spec: qualitySpec('ms-eden', 'ms-eden'), paper: 9.4e-3 },
  { spec: qualitySpec('ms-eden-one-pass', 'ms-eden', { tensorScale: 'one-pass', ceiling: E4M3_MAX }), paper: 9.4e-3 },
  { spec: qualitySpec('ms-eden-per-128', 'ms-eden', { correction: 'per-128' }) },
];

/**
 * Relative MSE and effective bits of each quantizer on gaussianMatrix(rows, cols, seed), quantized with
 * seed BigInt(seed) (stochastic rounding) and signSeed BigInt(signSeed) (the Hadamard signs, NUMERICS §3.2).
 * MS-EDEN is measured in the rotated domain (against its rotated input), as the paper does.
 */
export function qualityTable(
  rows: number,
  cols: number,
  seed: number,
  signSeed = 1,
): { name: string; relMse: number; bits: number; paper?: number }[] {
  const x = gaussianMatrix(rows, cols, seed);
  const opts = { seed: BigInt(seed), signSeed: BigInt(signSeed) };
  return TABLE.map(({ spec, paper }) => {
    const reference = spec.hadamard === null ? x.data : quantizerInput(spec, x, opts).data;
    const e = relMse(reference, dequantize(quantize(spec, x, opts)));
    return { name: spec.name, relMse: e, bits: effectiveBits(e), ...(paper === undefined ? {} : { paper }) };
  });
}
