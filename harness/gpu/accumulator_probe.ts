// The accumulator probe (NUMERICS §6.3): how precisely does a GEMM kernel's tensor core accumulate? It runs the
// kernel itself on NVFP4 operands built so that every output is one designed dot product whose exact value is small
// (a few significant bits, so a bf16 output shows it exactly) while its partial sums are not:
//   +big (2^E) ... small (D binades below big) ... -big
// The small term survives only when the accumulator keeps D + 1 bits at the moment it is added. The placements put
// the three terms inside one 16-element scale block, in different blocks of one K = 64 MMA, across MMAs, across the
// kernel's K tiles, with the small term before or after big, one or sixteen small terms, and big cancelled inside
// the same MMA; D sweeps 2..35 binades, with both signs and small terms of 1, 1.5 and 3 units (rounding vs
// truncation). The method follows arXiv 2512.07004 and Fasi et al. 2021 (inputs whose exact sums need more than
// 24 significant bits, cancellation, magnitudes that differ across blocks and K steps).
// B is one row pattern repeated over N = 16 rows: codes of 1.0 and block scales 2^bexp(block), bexp cycling
// [8, -8, 8, -8, 8, -8, 0, 4]; A's rows hold the terms (a block's scale 2^eA gives its terms' binade).
import type { Arch } from '../../dsl/types.ts';
import type { QuantizedTensor } from '../../reference/tensor.ts';
import { gemmKernelBound, gemmReference } from '../../reference/gemm.ts';
import {
  candidateModels,
  describeModel,
  fitModels,
  type AccumulatorModel,
  type FitResult,
  type Observation,
} from '../../reference/accumulator.ts';
import { bf16BitsToF32 } from '../../reference/fp32.ts';

export const PROBE_K = 768;
export const PROBE_N = 16;
const B_EXPONENTS = [8, -8, 8, -8, 8, -8, 0, 4];
const bExp = (block: number) => B_EXPONENTS[block % B_EXPONENTS.length];
const E2M1_CODE: Record<number, number> = { 0.5: 1, 1: 2, 1.5: 3, 2: 4, 3: 5, 4: 6, 6: 7 };

/** The E4M3 code of 2^e, e in [-9, 8] (2^-7..2^-9 are subnormals). */
export function e4m3Pow2(e: number): number {
  if (e < -9 || e > 8 || !Number.isInteger(e)) throw new RangeError(`e4m3Pow2: 2^${e} is not an E4M3 power of two`);
  return e >= -6 ? (e + 7) << 3 : 1 << (e + 9);
}

/** Where a probe row puts its terms: blocks of 16 elements; bExp(bigBlock) === bExp(cancelBlock) and every small
 * block has one bExp. `smalls` are [block, element] pairs. */
export interface Placement {
  name: string;
  bigBlock: number;
  smalls: Array<[number, number]>;
  cancelBlock: number;
}

const one = (block: number, element: number): Array<[number, number]> => [[block, element]];
/** Fifteen small terms, one in each block with bExp -8 below k = 640: a loss in every K step (no cancellation). */
const EVERY_STEP = Array.from({ length: 40 }, (_, b) => b)
  .filter((b) => bExp(b) === -8)
  .map((b): [number, number] => [b, 5]);
const WHOLE_BLOCK = Array.from({ length: 16 }, (_, i): [number, number] => [1, i]);

export const PLACEMENTS: readonly Placement[] = [
  { name: 'other block, same 32-K half, cancel in the next 32', bigBlock: 0, smalls: one(1, 0), cancelBlock: 2 },
  { name: 'other block (other k16 step), cancel in the next 32', bigBlock: 0, smalls: one(1, 5), cancelBlock: 2 },
  { name: 'other block, cancel in the next K = 64 MMA', bigBlock: 0, smalls: one(1, 5), cancelBlock: 4 },
  { name: 'second half of the MMA, cancel in the next MMA', bigBlock: 0, smalls: one(3, 5), cancelBlock: 4 },
  { name: 'cancel two MMAs later (k = 128)', bigBlock: 0, smalls: one(1, 5), cancelBlock: 8 },
  { name: 'small before big, cancel in the next MMA', bigBlock: 2, smalls: one(1, 5), cancelBlock: 4 },
  { name: 'small in the next K tile (k >= 256), cancel at k = 512', bigBlock: 0, smalls: one(17, 5), cancelBlock: 32 },
  { name: 'small in the next MMA, cancel in the one after', bigBlock: 0, smalls: one(5, 5), cancelBlock: 8 },
  // Big cancelled inside its own block: a fused step that holds both big terms and the small one loses the small
  // term, a step boundary in between keeps it; these three tell 16-, 32-, 64- and 128-term steps apart.
  {
    name: 'big cancelled in its own block, small in the same 32-K half',
    bigBlock: 0,
    smalls: one(1, 5),
    cancelBlock: 0,
  },
  {
    name: 'big cancelled in its own block, small in the next 32-K half',
    bigBlock: 0,
    smalls: one(3, 5),
    cancelBlock: 0,
  },
  { name: 'big cancelled in its own block, small in the next MMA', bigBlock: 0, smalls: one(5, 5), cancelBlock: 0 },
  { name: '16 small terms in one block, cancel in the next MMA', bigBlock: 0, smalls: WHOLE_BLOCK, cancelBlock: 4 },
  {
    name: 'a small term in every K step up to k = 640, cancel there',
    bigBlock: 0,
    smalls: EVERY_STEP,
    cancelBlock: 40,
  },
];

export interface ProbeRow {
  placement: number;
  D: number;
  smallMag: number;
  bigSign: 1 | -1;
  smallSign: 1 | -1;
  /** Nonzero products (natural k, value) and their exact sum. */
  terms: Array<[number, number]>;
  exact: number;
}

/** Block scale exponents of A solving eA_big - eA_small = delta within [-9, 8], or null. */
function exponents(delta: number): [number, number] | null {
  if (delta >= 0) return delta <= 17 ? [8, 8 - delta] : null;
  return delta >= -17 ? [8 + delta, 8] : null;
}

/** The probe: operands A [rows, PROBE_K], B [PROBE_N, PROBE_K] (tensor scales 1) and what each row of A tests. */
export function probeOperands(): { a: QuantizedTensor; b: QuantizedTensor; rows: ProbeRow[] } {
  const K = PROBE_K,
    Kb = K / 16;
  const rows: ProbeRow[] = [];
  const rowCodes: Uint8Array[] = [];
  const rowScales: Uint8Array[] = [];
  PLACEMENTS.forEach((p, placement) => {
    for (const [bigSign, smallSign] of [
      [1, 1],
      [1, -1],
      [-1, 1],
    ] as const) {
      for (const smallMag of [1, 1.5, 3]) {
        for (let D = 2; D <= 35; D++) {
          // big = 4 * 2^(eA_big + bExp(big)): leading binade Eb = eA_big + bExp + 2; small's binade
          // Es = eA_s + bExp + floor(log2 mag).
          const fl = Math.floor(Math.log2(smallMag));
          const delta = D - 2 - bExp(p.bigBlock) + bExp(p.smalls[0][0]) + fl;
          const ex = exponents(delta);
          if (!ex) continue;
          const [eBig, eSmall] = ex;
          const codes = new Uint8Array(K);
          const scales = new Uint8Array(Kb).fill(0x38);
          const terms: Array<[number, number]> = [];
          const put = (k: number, sign: number, mag: number, eA: number) => {
            codes[k] = E2M1_CODE[mag] | (sign < 0 ? 8 : 0);
            scales[k >> 4] = e4m3Pow2(eA);
            terms.push([k, sign * mag * 2 ** (eA + bExp(k >> 4))]);
          };
          const bigK = 16 * p.bigBlock,
            cancelK = 16 * p.cancelBlock + (p.cancelBlock === p.bigBlock ? 1 : 0);
          put(bigK, bigSign, 4, eBig);
          for (const [block, element] of p.smalls) put(16 * block + element, smallSign, smallMag, eSmall);
          put(cancelK, -bigSign, 4, eBig);
          terms.sort((x, y) => x[0] - y[0]);
          rows.push({ placement, D, smallMag, bigSign, smallSign, terms, exact: terms.reduce((s, t) => s + t[1], 0) });
          rowCodes.push(codes);
          rowScales.push(scales);
        }
      }
    }
  });
  const M = rows.length;
  const a: QuantizedTensor = {
    rows: M,
    cols: K,
    groupSize: 16,
    scaleFormat: 'e4m3',
    tensorScale: 1,
    codes: new Uint8Array(M * K),
    scales: new Uint8Array(M * Kb),
  };
  rowCodes.forEach((c, m) => a.codes.set(c, m * K));
  rowScales.forEach((s, m) => a.scales.set(s, m * Kb));
  const b: QuantizedTensor = {
    rows: PROBE_N,
    cols: K,
    groupSize: 16,
    scaleFormat: 'e4m3',
    tensorScale: 1,
    codes: new Uint8Array(PROBE_N * K).fill(E2M1_CODE[1]),
    scales: Uint8Array.from({ length: PROBE_N * Kb }, (_, i) => e4m3Pow2(bExp(i % Kb))),
  };
  return { a, b, rows };
}

/** Decoded outputs [M, N] of a bf16 or f32 GEMM output buffer. */
export function decodeGemmOutput(bytes: Uint8Array, output: 'bf16' | 'f32'): Float32Array {
  const copy = bytes.slice();
  if (output === 'f32') return new Float32Array(copy.buffer);
  return Float32Array.from(new Uint16Array(copy.buffer), (x) => bf16BitsToF32(x));
}

export interface ProbeReport {
  /** Models reproducing every probe output, and the best fits (fewest mismatches) when none does. */
  fits: FitResult[];
  exactFits: AccumulatorModel[];
  /** The models the classifier tries: per group of exact fits (family, order, step, rounding) the fewest and the
   * most bits that fit, else the best fit. */
  measured: AccumulatorModel[];
  /** Per placement: the largest D up to which every variant came out exact. */
  keptUpTo: Array<{ placement: string; keptUpTo: number }>;
  /** NUMERICS §6.2's bound on the probe rows: rows outside it and the largest error / bound. */
  boundViolations: number;
  worstBoundRatio: number;
  /** Rows whose N outputs disagree (a layout problem, not an accumulator one). */
  inconsistentRows: number;
  lines: string[];
}

/** Collapses exact fits to one line per (family, order, step, rounding) with the range of bits that fit. */
function summarizeFits(models: AccumulatorModel[]): string[] {
  const groups = new Map<string, { model: AccumulatorModel; bits: number[] }>();
  for (const m of models) {
    const key = `${m.family}/${m.order}/${m.stepTerms}/${m.rounding}`;
    const bits = m.family === 'fused' ? m.alignBits : m.accBits;
    if (!groups.has(key)) groups.set(key, { model: m, bits: [] });
    groups.get(key)!.bits.push(bits);
  }
  return [...groups.values()].map(({ model, bits }) => {
    const finite = bits.filter(Number.isFinite);
    const top = bits.some((x) => !Number.isFinite(x)) ? 'exact' : Math.max(...finite);
    const range = bits.length === 1 ? '' : ` (bits ${Math.min(...finite)}..${top} all fit)`;
    return `${describeModel(model)}${range}`;
  });
}

/** The behaviour the exact fits agree on: bits kept, rounding, where the accumulator aligns or is cut. */
export function behaviourOf(models: AccumulatorModel[]): string {
  if (models.length === 0) return 'not determined (no candidate reproduces every output)';
  const bits = models.map((m) => (m.family === 'fused' ? m.alignBits : m.accBits));
  const finite = bits.filter(Number.isFinite);
  const lo = finite.length ? Math.min(...finite) : Infinity;
  const hi = bits.some((b) => !Number.isFinite(b)) ? Infinity : Math.max(...finite);
  const range = (x: number) => (Number.isFinite(x) ? String(x) : 'exact');
  const roundings = [...new Set(models.map((m) => m.rounding))];
  const steps = [...new Set(models.map((m) => `${m.family === 'fused' ? 'aligned' : 'cut'} every ${m.stepTerms}`))];
  return (
    `bits kept ${lo === hi ? range(lo) : `${range(lo)}..${range(hi)}`}; ` +
    `rounding ${
      roundings.length > 1 ? 'not determined' : roundings[0] === 'rz' ? 'toward zero (truncation)' : 'to nearest'
    }; ` +
    `${steps.join(' or ')} products`
  );
}

/** Per group of models that differ only in bits, the one with the fewest and the one with the most bits. */
function representatives(models: AccumulatorModel[]): AccumulatorModel[] {
  const bitsOf = (m: AccumulatorModel) => (m.family === 'fused' ? m.alignBits : m.accBits);
  const groups = new Map<string, AccumulatorModel[]>();
  for (const m of models) {
    const key = `${m.family}/${m.order}/${m.stepTerms}/${m.rounding}`;
    groups.set(key, [...(groups.get(key) ?? []), m]);
  }
  return [...groups.values()].flatMap((g) => {
    const sorted = [...g].sort((x, y) => bitsOf(x) - bitsOf(y));
    return sorted.length > 1 ? [sorted[0], sorted[sorted.length - 1]] : sorted;
  });
}

/** Fits the candidate models to a kernel's probe outputs and reports (pure: CPU tests feed synthetic outputs). */
export function analyseProbe(
  arch: Arch | string,
  rows: ProbeRow[],
  a: QuantizedTensor,
  b: QuantizedTensor,
  out: Float32Array,
  output: 'bf16' | 'f32',
): ProbeReport {
  const N = b.rows;
  let inconsistentRows = 0;
  const observations: Observation[] = rows.map((r, m) => {
    for (let n = 1; n < N; n++)
      if (!Object.is(out[m * N + n], out[m * N])) {
        inconsistentRows++;
        break;
      }
    return { K: a.cols, terms: r.terms, alpha: 1, output, got: out[m * N] };
  });
  const fits = fitModels(candidateModels(arch), observations);
  const exactFits = fits.filter((f) => f.mismatches === 0).map((f) => f.model);
  const measured = exactFits.length ? representatives(exactFits) : [fits[0].model];
  const keptUpTo = PLACEMENTS.map((p, i) => {
    const mine = rows.map((r, m) => ({ r, m })).filter(({ r }) => r.placement === i);
    let upTo = 1;
    for (let D = 2; D <= 35; D++) {
      const atD = mine.filter(({ r }) => r.D === D);
      if (atD.length && atD.every(({ r, m }) => out[m * N] === r.exact)) upTo = D;
      else if (atD.length) break;
    }
    return { placement: p.name, keptUpTo: upTo };
  });
  const ref = gemmReference(a, b);
  const bound = gemmKernelBound(a, b, ref, output);
  let boundViolations = 0,
    worstBoundRatio = 0;
  for (let m = 0; m < rows.length; m++) {
    let bad = false;
    for (let n = 0; n < N; n++) {
      const i = m * N + n,
        ratio = Math.abs(out[i] - ref[i]) / bound[i];
      worstBoundRatio = Math.max(worstBoundRatio, ratio);
      if (!(ratio <= 1)) bad = true;
    }
    if (bad) boundViolations++;
  }
  const lines = [
    `probe: ${rows.length} designed dot products (K = ${a.cols}, ${PLACEMENTS.length} placements, D = 2..35 binades)`,
    ...keptUpTo.map((k) => `  small term kept up to D = ${k.keptUpTo}: ${k.placement}`),
    exactFits.length
      ? `  models reproducing all ${rows.length} outputs bit for bit:\n` +
        summarizeFits(exactFits)
          .map((l) => `    ${l}`)
          .join('\n')
      : `  no candidate reproduces every output; best: ${describeModel(fits[0].model)} ` +
        `(${fits[0].mismatches} mismatches)`,
    `  effective accumulator: ${behaviourOf(exactFits)}`,
    `  measured accumulator (the classifier tries): ${measured.map(describeModel).join('; ')}`,
    `  NUMERICS §6.2 bound on the probe: ${boundViolations === 0 ? 'holds' : `FAILS on ${boundViolations} rows`} ` +
      `(largest error / bound ${worstBoundRatio.toFixed(3)})`,
    ...(inconsistentRows
      ? [`  ${inconsistentRows} rows differ across the ${N} identical B rows: layout, not accumulation`]
      : []),
  ];
  return { fits, exactFits, measured, keptUpTo, boundViolations, worstBoundRatio, inconsistentRows, lines };
}
