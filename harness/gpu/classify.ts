// Classifies a GEMM kernel's output against the reference (NUMERICS §6.2, §6.3) into one of three verdicts:
//   pass          bit-exact where the inputs make fp32 accumulation exact, within §6.2's bound otherwise;
//   accumulation  "accumulation less precise than fp32": outside that contract, but every element is what the
//                 measured accumulator (one of the models that fit the probe, accumulator_probe.ts) gives, within
//                 §6.2's bound of that prediction: small, structured errors with correct layouts;
//   layout        "layout or indexing wrong": elements the measured model does not explain (gross errors, wrong
//                 positions); the detail says how many, where (rows / columns / K-scale groups) and how large.
import type { QuantizedTensor } from '../../reference/tensor.ts';
import { gemmKernelBound, gemmReference, roundOutput } from '../../reference/gemm.ts';
import {
  accumulatorBound,
  describeModel,
  dotOperands,
  modelGemm,
  type AccumulatorModel,
} from '../../reference/accumulator.ts';
import { f32ToBf16Bits } from '../../reference/fp32.ts';
import { gemmOperands, rng, type GemmCase } from './gemm_suite.ts';
import { e4m3Pow2 } from './accumulator_probe.ts';

export type Verdict = 'pass' | 'accumulation' | 'layout';
export interface Classification {
  verdict: Verdict;
  detail: string;
}

function sameOutput(x: number, y: number, output: 'f32' | 'bf16'): boolean {
  return output === 'bf16' ? f32ToBf16Bits(x) === f32ToBf16Bits(y) : Object.is(x, y) || x === y;
}

/** Where the bad elements are: the distinct rows and columns, compactly. */
function positions(bad: number[], N: number, M: number): string {
  const rows = new Set(bad.map((i) => Math.floor(i / N)));
  const cols = new Set(bad.map((i) => i % N));
  const first = bad
    .slice(0, 3)
    .map((i) => `(${Math.floor(i / N)}, ${i % N})`)
    .join(' ');
  return (
    `${bad.length} of ${M * N} elements in ${rows.size} of ${M} rows and ${cols.size} of ${N} columns, ` +
    `first ${first}`
  );
}

/**
 * The verdict for one GEMM output `out` (decoded values, [a.rows, b.rows]). `exact`: the inputs make every
 * partial sum exact in fp32 (the suite's exact regime), so passing needs bit equality. `models`: the measured
 * accumulators: the models the probe could not tell apart; none when no probe ran (then nothing counts as explained).
 */
export function classifyGemmOutput(
  a: QuantizedTensor,
  b: QuantizedTensor,
  out: Float32Array,
  output: 'f32' | 'bf16',
  exact: boolean,
  models: readonly AccumulatorModel[],
): Classification {
  const ref = gemmReference(a, b);
  const M = a.rows,
    N = b.rows;
  const bound = gemmKernelBound(a, b, ref, output);
  const want = exact ? roundOutput(ref, output) : null;
  const failing: number[] = [];
  let worst = 0;
  for (let i = 0; i < ref.length; i++) {
    const ok = want ? sameOutput(out[i], want[i], output) : Math.abs(out[i] - ref[i]) <= bound[i];
    if (!ok) failing.push(i);
    worst = Math.max(worst, Math.abs(out[i] - ref[i]) / bound[i]);
  }
  if (failing.length === 0) {
    const detail = exact ? 'bit-exact' : `within §6.2's bound (largest error / bound ${worst.toFixed(3)})`;
    return { verdict: 'pass', detail };
  }
  const ratio = `largest error / §6.2 bound ${worst.toPrecision(3)}`;
  const ops = models.length ? dotOperands(a, b) : null;
  let fewest: { model: AccumulatorModel; unexplained: number[] } | null = null;
  for (const model of models) {
    const predicted = modelGemm(model, ops!, output);
    const unexplained = failing.filter((i) => !(Math.abs(out[i] - predicted[i]) <= bound[i]));
    if (unexplained.length === 0) {
      const identical = failing.filter((i) => sameOutput(out[i], predicted[i], output)).length;
      const modelBound = accumulatorBound(model, ops!, ref, output);
      const insideModelBound = failing.every((i) => Math.abs(out[i] - ref[i]) <= modelBound[i]);
      return {
        verdict: 'accumulation',
        detail:
          `accumulation less precise than fp32: ${positions(failing, N, M)} outside the fp32 contract ` +
          `(${ratio}); all explained by the measured accumulator (${describeModel(model)}): ${identical} identical ` +
          'to its prediction, ' +
          `${insideModelBound ? 'all within' : 'NOT all within'} the §6.3 bound that uses it`,
      };
    }
    if (!fewest || unexplained.length < fewest.unexplained.length) fewest = { model, unexplained };
  }
  if (fewest) {
    return {
      verdict: 'layout',
      detail:
        `layout or indexing wrong: ${positions(fewest.unexplained, N, M)} not explained by the measured ` +
        `accumulator (closest: ${describeModel(fewest.model)}); ${ratio}`,
    };
  }
  return {
    verdict: 'layout',
    detail:
      'layout or indexing wrong (no accumulator measurement to explain errors): ' +
      `${positions(failing, N, M)}; ${ratio}`,
  };
}

/** A copy of q with scale columns kb and kb ^ 1 swapped in every row (a deliberate layout error for the self-test). */
export function swapScaleColumns(q: QuantizedTensor): QuantizedTensor {
  const Kb = q.cols / q.groupSize;
  const scales = q.scales.slice();
  for (let r = 0; r < q.rows; r++) {
    for (let kb = 0; kb + 1 < Kb; kb += 2) {
      scales[r * Kb + kb] = q.scales[r * Kb + kb + 1];
      scales[r * Kb + kb + 1] = q.scales[r * Kb + kb];
    }
  }
  return { ...q, scales };
}

/**
 * Operands on which an accumulator that keeps fewer bits than fp32 exceeds NUMERICS §6.2's bound, visibly through a
 * bf16 output. Every dot product is `±big + (K - 32) small terms + ∓big` in K order:
 *   A  block 0: element 0 = ±6 * 2^8 (big = 1536, the row's sign random); last block: element 15 = ∓6 * 2^8; the
 *      blocks between: random nonzero codes and signs, scales 2^-9..2^-4 (a random binade per block);
 *   B  random nonzero codes and signs with scales 2^-3..2^0 per block, except k = 0 and k = K - 1: +1.0 (scale 1),
 *      so big cancels exactly and the result is the sum of the small terms (a few units, |ref| << S).
 * The running sum stays in [2^10, 2^11) while the small terms go down to 0.5 * 2^-9 * 0.5 * 2^-3 = 2^-14 (the exact
 * partial sums need up to 25 bits). An accumulator cut to 14 bits keeps a unit of 2^-3 there: every cut loses the
 * fraction below it (the sum of small terms added since is not a multiple of 2^-3), about 2^-4 per cut, the same
 * sign every time (toward zero), so over K / 32 cuts it loses about K / 2^9, while §6.2's bound is about
 * 2 K 2^-24 S ~ K / 2^11.4 (S ~ 2 * 1536 + a few units): 2.7x to 6.7x over on the case of
 * CLASSIFY_CASES (every element). The fp32 accumulator loses at most its rounding, which the bound covers.
 * test/accumulator.test.ts checks both on these operands with the models.
 */
export function cancellationOperands(
  m: number,
  n: number,
  k: number,
  seed: number,
): { a: QuantizedTensor; b: QuantizedTensor } {
  if (k % 16 || k < 64) throw new Error(`cancellationOperands: k = ${k}, need a multiple of 16 >= 64`);
  const next = rng(seed);
  const Kb = k / 16;
  const code = () => (1 + (next() % 7)) | (next() & 8); // a nonzero E2M1 magnitude 0.5..6, random sign
  const operand = (
    rows: number,
    ends: (r: number) => [number, number],
    scaleLog2: () => number,
    endScaleLog2: number,
  ): QuantizedTensor => {
    const q: QuantizedTensor = {
      rows,
      cols: k,
      groupSize: 16,
      scaleFormat: 'e4m3',
      tensorScale: 1,
      codes: Uint8Array.from({ length: rows * k }, code),
      scales: Uint8Array.from({ length: rows * Kb }, () => e4m3Pow2(scaleLog2())),
    };
    for (let r = 0; r < rows; r++) {
      // the end blocks hold only the big terms (their scale is big's)
      q.codes.fill(0, r * k, r * k + 16);
      q.codes.fill(0, r * k + k - 16, r * k + k);
      [q.codes[r * k], q.codes[r * k + k - 1]] = ends(r);
      q.scales[r * Kb] = q.scales[r * Kb + Kb - 1] = e4m3Pow2(endScaleLog2);
    }
    return q;
  };
  const signs = Array.from({ length: m }, () => next() & 8);
  const a = operand(
    m,
    (r) => [7 | signs[r], 7 | (signs[r] ^ 8)],
    () => -4 - (next() % 6),
    8,
  );
  const b = operand(
    n,
    () => [2, 2],
    () => -(next() % 4),
    0,
  );
  return { a, b };
}

/** A case of the classifier's self-test and of `classifyKernel` (probe_run.ts). `exact`: bit equality required. */
export interface ClassifyCase {
  label: string;
  exact: boolean;
  operands: () => { a: QuantizedTensor; b: QuantizedTensor };
}

const suiteCase = (c: GemmCase): ClassifyCase => ({
  label: `${c.m}x${c.n}x${c.k} ${c.regime}`,
  exact: c.regime === 'exact',
  operands: () => gemmOperands(c),
});

/**
 * Exact inputs (bit-exact contract), quantized N(0, 2^s) inputs, several K steps and tiles, and the cancellation
 * inputs: the first three stay inside §6.2's bound even for an accumulator cut to 14 bits every 32 products (a bf16
 * output hides the lost bits when nothing cancels), the last one does not (cancellationOperands).
 */
export const CLASSIFY_CASES: ClassifyCase[] = [
  suiteCase({ m: 128, n: 256, k: 256, regime: 'exact', sigmaLog2: 0, dataSeed: 1 }),
  suiteCase({ m: 64, n: 256, k: 416, regime: 'exact', sigmaLog2: 0, dataSeed: 4 }),
  suiteCase({ m: 129, n: 272, k: 1024, regime: 'quantized', sigmaLog2: 6, dataSeed: 6 }),
  { label: '128x128x1024 cancellation', exact: false, operands: () => cancellationOperands(128, 128, 1024, 21) },
];
