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
  accumulatorBound, describeModel, dotOperands, modelGemm, type AccumulatorModel,
} from '../../reference/accumulator.ts';
import { f32ToBf16Bits } from '../../reference/fp32.ts';

export type Verdict = 'pass' | 'accumulation' | 'layout';
export interface Classification { verdict: Verdict; detail: string }

function sameOutput(x: number, y: number, output: 'f32' | 'bf16'): boolean {
  return output === 'bf16' ? f32ToBf16Bits(x) === f32ToBf16Bits(y) : Object.is(x, y) || x === y;
}

/** Where the bad elements are: the distinct rows and columns, compactly. */
function positions(bad: number[], N: number, M: number): string {
  const rows = new Set(bad.map((i) => Math.floor(i / N)));
  const cols = new Set(bad.map((i) => i % N));
  const first = bad.slice(0, 3).map((i) => `(${Math.floor(i / N)}, ${i % N})`).join(' ');
  return `${bad.length} of ${M * N} elements in ${rows.size} of ${M} rows and ${cols.size} of ${N} columns, `
    + `first ${first}`;
}

/**
 * The verdict for one GEMM output `out` (decoded values, [a.rows, b.rows]). `exact`: the inputs make every
 * partial sum exact in fp32 (the suite's exact regime), so passing needs bit equality. `models`: the measured
 * accumulators: the models the probe could not tell apart; none when no probe ran (then nothing counts as explained).
 */
export function classifyGemmOutput(a: QuantizedTensor, b: QuantizedTensor, out: Float32Array, output: 'f32' | 'bf16',
                                   exact: boolean, models: readonly AccumulatorModel[]): Classification {
  const ref = gemmReference(a, b);
  const M = a.rows, N = b.rows;
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
        detail: `accumulation less precise than fp32: ${positions(failing, N, M)} outside the fp32 contract `
          + `(${ratio}); all explained by the measured accumulator (${describeModel(model)}): ${identical} identical `
          + 'to its prediction, '
          + `${insideModelBound ? 'all within' : 'NOT all within'} the §6.3 bound that uses it`,
      };
    }
    if (!fewest || unexplained.length < fewest.unexplained.length) fewest = { model, unexplained };
  }
  if (fewest) {
    return {
      verdict: 'layout',
      detail: `layout or indexing wrong: ${positions(fewest.unexplained, N, M)} not explained by the measured `
        + `accumulator (closest: ${describeModel(fewest.model)}); ${ratio}`,
    };
  }
  return {
    verdict: 'layout',
    detail: 'layout or indexing wrong (no accumulator measurement to explain errors): '
      + `${positions(failing, N, M)}; ${ratio}`,
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
