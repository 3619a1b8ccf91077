// Candidate models of a tensor core's accumulator (NUMERICS §6.3), used to explain what the accumulator probe
// (harness/gpu/accumulator_probe.ts) observes and to classify GEMM failures (harness/gpu/classify.ts).
//
// Every model sums the exact products p_k = a_k * b_k of one dot product (NVFP4 products have at most 12 significant
// bits, so they are exact in binary32) in steps: the K indices in the kernel's order, cut into consecutive chunks of
// `stepTerms`. Two families:
//   fused    one multi-term addition per step: the accumulator and the step's products are aligned to the largest
//            exponent among them, each is cut toward zero to `alignBits` bits below that exponent's leading bit,
//            the cut values are summed exactly and the sum is normalised to binary32 (round to nearest even or
//            toward zero). alignBits = Infinity is an exact multi-term sum rounded once per step.
//   periodic binary32 additions one product at a time (round to nearest even), and after every step the
//            accumulator is cut to `accBits` significant bits (toward zero or to nearest even).
// `fp32` (binary32, one product at a time, round to nearest) is periodic with stepTerms 1 and accBits 24.
// The method follows the published tensor-core studies (Fasi, Higham, Mikaitis, Pranesh 2021; arXiv 2512.07004):
// inputs whose exact sums need more bits than the accumulator keeps, placed within and across the MMA's K steps.
import type { QuantizedTensor } from './tensor.ts';
import { dequantizeUnscaled } from './dequantize.ts';
import { roundOutput } from './gemm.ts';

export type Rounding = 'rn' | 'rz';
/** K order of the products: natural, or the sm_90a kernel's wgmma order (NUMERICS §6.2). */
export type KOrder = 'natural' | 'wgmma64';

export type AccumulatorModel =
  | { family: 'fused'; order: KOrder; stepTerms: number; alignBits: number; rounding: Rounding }
  | { family: 'periodic'; order: KOrder; stepTerms: number; accBits: number; rounding: Rounding };

export const FP32_ACCUMULATOR: AccumulatorModel = {
  family: 'periodic',
  order: 'natural',
  stepTerms: 1,
  accBits: 24,
  rounding: 'rn',
};

export function describeModel(m: AccumulatorModel): string {
  const order = m.order === 'natural' ? '' : `, ${m.order} order`;
  const how = m.rounding === 'rz' ? 'toward zero' : 'to nearest';
  if (m.family === 'periodic' && m.stepTerms === 1 && m.accBits === 24 && m.rounding === 'rn') {
    return 'fp32 (round to nearest, one product at a time)';
  }
  if (m.family === 'periodic') {
    return `fp32 additions, accumulator cut to ${m.accBits} bits (${how}) every ${m.stepTerms} products${order}`;
  }
  const bits = Number.isFinite(m.alignBits)
    ? `${m.alignBits} bits kept after alignment to the largest term`
    : 'exact sum';
  return `fused ${m.stepTerms}-term steps: ${bits}, normalised to fp32 ${how}${order}`;
}

/** x rounded to `bits` significant bits, to nearest even or toward zero (no overflow or subnormal handling). */
export function roundToBits(x: number, bits: number, rounding: Rounding): number {
  if (x === 0 || !Number.isFinite(x)) return x;
  const e = Math.floor(Math.log2(Math.abs(x)));
  // Math.log2 may be off by one near powers of two; fix e so that 2^e <= |x| < 2^(e+1).
  const ee = 2 ** e > Math.abs(x) ? e - 1 : 2 ** (e + 1) <= Math.abs(x) ? e + 1 : e;
  const ulp = 2 ** (ee - bits + 1);
  const q = Math.abs(x) / ulp;
  let r = Math.floor(q);
  if (rounding === 'rn') {
    const d = q - r;
    if (d > 0.5 || (d === 0.5 && r % 2 === 1)) r += 1;
  }
  return Math.sign(x) * r * ulp;
}

/**
 * The order in which a kernel visits K: a permutation of 0..K-1, or for wgmma64 of 0..K'-1 with K' = K rounded up to
 * 64 (the kernel zero-fills a ragged last block and permutes it like the others; entries >= K are those zeros).
 */
export function kOrder(order: KOrder, K: number): Int32Array {
  if (order === 'natural') {
    const out = new Int32Array(K);
    for (let k = 0; k < K; k++) out[k] = k;
    return out;
  }
  // sm_90a (NUMERICS §6.2): inside each 64-wide block, logical column 16s + 8h + 2t + i holds element
  // 16t + 8h + s + 4i.
  const out = new Int32Array(Math.ceil(K / 64) * 64);
  for (let k = 0; k < out.length; k++) {
    const base = k - (k % 64),
      col = k % 64;
    const s = col >> 4,
      h = (col >> 3) & 1,
      t = (col >> 1) & 3,
      i = col & 1;
    out[k] = base + 16 * t + 8 * h + s + 4 * i;
  }
  return out;
}

function exponentOf(x: number): number {
  const e = Math.floor(Math.log2(Math.abs(x)));
  return 2 ** e > Math.abs(x) ? e - 1 : 2 ** (e + 1) <= Math.abs(x) ? e + 1 : e;
}

/** Positions in the kernel's order of each natural k (the inverse of kOrder). */
export function orderPositions(order: Int32Array): Int32Array {
  const pos = new Int32Array(order.length);
  for (let j = 0; j < order.length; j++) pos[order[j]] = j;
  return pos;
}

/**
 * The accumulator after summing the nonzero products `entries` = [position in the kernel's K order, value], sorted
 * by position, under a model, starting from 0. Steps without a nonzero product leave an already rounded
 * accumulator unchanged, so only the steps that hold entries are visited.
 */
export function accumulateEntries(model: AccumulatorModel, entries: ReadonlyArray<readonly [number, number]>): number {
  const s = model.stepTerms;
  let acc = 0;
  for (let i = 0; i < entries.length;) {
    const step = Math.floor(entries[i][0] / s);
    let end = i;
    while (end < entries.length && Math.floor(entries[end][0] / s) === step) end++;
    if (model.family === 'periodic') {
      for (let j = i; j < end; j++) acc = Math.fround(acc + entries[j][1]);
      if (model.accBits < 24 || model.rounding === 'rz') acc = roundToBits(acc, model.accBits, model.rounding);
    } else {
      let emax = acc !== 0 ? exponentOf(acc) : -Infinity;
      for (let j = i; j < end; j++) emax = Math.max(emax, exponentOf(entries[j][1]));
      let sum: number;
      if (Number.isFinite(model.alignBits)) {
        const unit = 2 ** (emax - model.alignBits + 1);
        sum = Math.trunc(acc / unit);
        for (let j = i; j < end; j++) sum += Math.trunc(entries[j][1] / unit);
        sum *= unit;
      } else {
        sum = acc; // exact in binary64 for NVFP4 products and these step sizes
        for (let j = i; j < end; j++) sum += entries[j][1];
      }
      acc = roundToBits(sum, 24, model.rounding);
    }
    i = end;
  }
  return acc;
}

/** The accumulator after summing dense `products` (indexed by natural k); `order` is the model's kOrder for K. */
export function accumulate(model: AccumulatorModel, products: ArrayLike<number>, order: Int32Array): number {
  const entries: Array<[number, number]> = [];
  for (let j = 0; j < order.length; j++) {
    const v = order[j] < products.length ? products[order[j]] : 0; // padding of a ragged wgmma64 block
    if (v !== 0) entries.push([j, v]);
  }
  return accumulateEntries(model, entries);
}

/** Exact products a_k * b_k of every (m, n) pair, without tensor scales, as a getter over rows of A and B. */
export interface DotOperands {
  A: Float64Array;
  B: Float64Array;
  M: number;
  N: number;
  K: number;
  alpha: number;
}

export function dotOperands(a: QuantizedTensor, b: QuantizedTensor): DotOperands {
  if (a.cols !== b.cols) throw new Error(`dotOperands: K mismatch, A is ${a.rows}x${a.cols}, B is ${b.rows}x${b.cols}`);
  return {
    A: dequantizeUnscaled(a),
    B: dequantizeUnscaled(b),
    M: a.rows,
    N: b.rows,
    K: a.cols,
    alpha: a.tensorScale * b.tensorScale,
  };
}

/**
 * What a kernel whose accumulator follows `model` outputs: the epilogue of NUMERICS §6.2/§6.3,
 * `c = out(f32(acc * f32(tA * tB)))`, as binary32 values (bf16 values for a bf16 output).
 */
export function modelGemm(model: AccumulatorModel, ops: DotOperands, output: 'f32' | 'bf16'): Float32Array {
  const { A, B, M, N, K } = ops;
  const order = kOrder(model.order, K);
  const alpha = Math.fround(ops.alpha);
  const p = new Float64Array(K);
  const acc = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      for (let k = 0; k < K; k++) p[k] = A[m * K + k] * B[n * K + k];
      acc[m * N + n] = Math.fround(accumulate(model, p, order) * alpha);
    }
  }
  return roundOutput(acc, output);
}

/** Bits a model keeps relative to the largest magnitude it adds in one step (the unit roundoff is 2^(1 - bits)). */
export function modelBits(m: AccumulatorModel): number {
  return m.family === 'periodic' ? m.accBits : Math.min(24, m.alignBits);
}

/**
 * An error bound for a kernel whose accumulator follows `model` (NUMERICS §6.3), the analogue of §6.2's:
 * every step loses at most (terms + 1) * 2^(1 - bits) of the largest magnitude it adds (all of them are bounded by
 * sum_k |a_k b_k| =: S), plus the binary32 rounding of the accumulator, so over ceil(K / stepTerms) steps
 * `e = alpha * S * steps * ((stepTerms + 1) * 2^(1 - bits) + 2^-23) + 2^-23 |ref|` (a cut every stepTerms products:
 * loss per step `stepTerms * 2^-24 + 2^(1 - bits)`), bound `(1 + u_out) e + u_out |ref|`.
 */
export function accumulatorBound(
  model: AccumulatorModel,
  ops: DotOperands,
  ref: Float64Array,
  output: 'f32' | 'bf16',
): Float64Array {
  const { A, B, M, N, K } = ops;
  const steps = Math.ceil(K / model.stepTerms);
  const bits = modelBits(model);
  const lossPerStep =
    model.family === 'fused'
      ? (model.stepTerms + 1) * 2 ** (1 - bits) + 2 ** -23
      : model.stepTerms * 2 ** -24 + 2 ** (1 - bits);
  const uOut = output === 'f32' ? 2 ** -24 : 2 ** -8;
  const alpha = Math.abs(ops.alpha);
  const out = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += Math.abs(A[m * K + k] * B[n * K + k]);
      const r = Math.abs(ref[m * N + n]);
      const e = alpha * s * steps * lossPerStep + 2 ** -23 * r;
      out[m * N + n] = (1 + uOut) * e + uOut * r;
    }
  }
  return out;
}

/**
 * The candidate models for an arch's kernel: fp32; periodic cuts of 8..23 bits every 16..128 products; fused steps
 * of 4..64 products keeping 12..34 bits or the exact sum; both roundings. sm_90a adds its wgmma K order.
 */
export function candidateModels(arch: string): AccumulatorModel[] {
  const orders: KOrder[] = arch === 'sm_90a' ? ['wgmma64', 'natural'] : ['natural'];
  const out: AccumulatorModel[] = [FP32_ACCUMULATOR];
  for (const order of orders) {
    for (const rounding of ['rz', 'rn'] as const) {
      for (const stepTerms of [4, 8, 16, 32, 64]) {
        for (let alignBits = 34; alignBits >= 12; alignBits--) {
          out.push({ family: 'fused', order, stepTerms, alignBits, rounding });
        }
        out.push({ family: 'fused', order, stepTerms, alignBits: Infinity, rounding });
      }
      for (const stepTerms of [16, 32, 64, 128]) {
        for (let accBits = 23; accBits >= 8; accBits--) {
          out.push({ family: 'periodic', order, stepTerms, accBits, rounding });
        }
      }
    }
  }
  return out;
}

/** One observed dot product: its nonzero products (natural k), alpha, and the kernel's output value. */
export interface Observation {
  K: number;
  terms: Array<[number, number]>;
  alpha: number;
  output: 'f32' | 'bf16';
  got: number;
}

/** The model's output for one observation; `positions` = orderPositions(kOrder(model.order, obs.K)). */
export function predictObservation(model: AccumulatorModel, obs: Observation, positions: Int32Array): number {
  const entries = obs.terms.map(([k, v]) => [positions[k], v] as [number, number]).sort((x, y) => x[0] - y[0]);
  const acc = Math.fround(accumulateEntries(model, entries) * Math.fround(obs.alpha));
  return roundOutput(Float64Array.of(acc), obs.output)[0];
}

export interface FitResult {
  model: AccumulatorModel;
  mismatches: number;
}

/** Every candidate with its number of mismatching observations, best first (stable: candidate order breaks ties). */
export function fitModels(candidates: AccumulatorModel[], observations: Observation[]): FitResult[] {
  const orders = new Map<string, Int32Array>();
  const results = candidates.map((model) => {
    const key = `${model.order}:${observations[0]?.K ?? 0}`;
    if (!orders.has(key)) orders.set(key, orderPositions(kOrder(model.order, observations[0]?.K ?? 0)));
    const order = orders.get(key)!;
    let mismatches = 0;
    for (const obs of observations) {
      const want = predictObservation(model, obs, order);
      if (!(Object.is(want, obs.got) || want === obs.got)) mismatches++;
    }
    return { model, mismatches };
  });
  return results
    .map((r, i) => ({ r, i }))
    .sort((x, y) => x.r.mismatches - y.r.mismatches || x.i - y.i)
    .map((x) => x.r);
}
