// The quantizers of the numerics contract (NUMERICS §5): RTN, SR, four-over-six, MS-EDEN, 16x16 blocks, MXFP4,
// requant, in the computed / caller / one-pass tensor-scale modes. Everything is binary32 arithmetic spelled with
// Math.fround (NUMERICS §1.1); the loops work on one scale group at a time with reused scratch buffers.

import type { QuantizeSpec } from '../dsl/types.ts';
import { E2M1_MAX, E4M3_MIN_NORMAL, STREAM_ELEMENT_SR, STREAM_SCALE_SR, targetValue } from '../dsl/constants.ts';
import { treeSum } from './fp32.ts';
import { rnE2M1, srE2M1, rnE4M3, srE4M3, rnP4, srP4, rpUE8M0 } from './formats.ts';
import { randomBlock, randomWord, splitSeed } from './philox.ts';
import { rhtRows, signVector } from './hadamard.ts';
import { amaxOf, dequantize, E2M1_VALUE, scaleValues } from './dequantize.ts';
import type { Matrix, QuantizedTensor } from './tensor.ts';

const f32 = Math.fround;

export interface QuantizeOptions {
  /** Philox key of every stochastic draw: SR element bits and MS-EDEN scale roundings (NUMERICS §3.2). */
  seed: bigint;
  /**
   * Philox key of the Hadamard sign vector, word(signSeed, STREAM_SIGNS, 0, j >> 5) (NUMERICS §3.2): required iff
   * spec.hadamard is not null, ignored otherwise. Both operands of a GEMM pass the same signSeed (their rotations
   * cancel) and different seeds (independent noise).
   */
  signSeed?: bigint;
  /** The tensor scale, binary32 > 0: required iff spec.tensorScale === 'caller'. */
  tensorScale?: number;
}

/** Pass A of the one-pass mode for output rows [r0, r1) (NUMERICS §5.1). */
export interface PassAResult {
  codes: Uint8Array;
  /** The P4 value c_g of each group of rows [r0, r1), row-major; 0 marks a zero group (§5.2). */
  proxies: Float32Array;
  /** max of the proxies. */
  max: number;
}

/** E4M3 code of 1.0 and UE8M0 code of 1.0: the scale of a zero group (NUMERICS §5.2, §5.8). */
const E4M3_ONE = 0x38;
const UE8M0_ONE = 127;
const E4M3_VALUE = scaleValues('e4m3');
const UE8M0_VALUE = scaleValues('ue8m0');

// ---------------------------------------------------------------------------------------------------------------
// Plan: the validated shape and numeric parameters of one call.

interface Plan {
  spec: QuantizeSpec;
  /** Output shape [rows, K], quantized along K. */
  rows: number;
  K: number;
  /** The input is stored [K, rows] (transposedInput, or the NVFP4 input of a requant, §5.9). */
  transposed: boolean;
  groupSize: 16 | 32;
  /** Scale groups per output row. */
  Kb: number;
  mx: boolean;
  /** Target T (NUMERICS §5): 6 for MXFP4; the spec's target otherwise (four-six uses 6 and 4). */
  T: number;
  /** T_ref of the computed tensor scale: the largest target (§5.1). */
  Tref: number;
  C: number;
  onePass: boolean;
  /** Key of the stochastic draws (opts.seed). */
  seedLo: number;
  seedHi: number;
  /** The sign vector of opts.signSeed when the spec rotates. */
  signs: Float32Array | null;
}

function makePlan(spec: QuantizeSpec, x: Pick<Matrix, 'rows' | 'cols'>, opts: QuantizeOptions): Plan {
  const fail = (msg: string): never => {
    throw new Error(`quantize ${spec.name}: ${msg}`);
  };
  const transposed = spec.transposedInput || spec.input === 'nvfp4';
  const rows = transposed ? x.cols : x.rows;
  const K = transposed ? x.rows : x.cols;
  const mx = spec.scaleGroup.size === 32;
  const groupSize = spec.scaleGroup.size;
  if (!Number.isInteger(rows) || rows < 1) fail(`rows must be >= 1, got ${rows}`);
  if (!Number.isInteger(K) || K < groupSize || K % groupSize !== 0) fail(`K = ${K} is not a multiple of ${groupSize}`);
  if (spec.hadamard !== null && K % spec.hadamard !== 0)
    fail(`K = ${K} is not a multiple of the Hadamard size ${spec.hadamard}`);
  if (mx) {
    if (spec.tensorScale !== 'none') fail('MXFP4 has no tensor scale (tensorScale must be "none")');
    if (spec.rounding !== 'rtn' && spec.rounding !== 'sr') fail('MXFP4 supports rtn and sr only (NUMERICS §5.8)');
    if (spec.block !== '1x16') fail('MXFP4 has no square blocks');
  } else if (spec.tensorScale === 'none') {
    fail('NVFP4 needs a tensor scale mode');
  }
  if (spec.block === '16x16' && spec.rounding !== 'rtn') fail('16x16 blocks are defined for rtn only (NUMERICS §5.7)');
  if (spec.rounding === 'ms-eden' && spec.correction === 'per-128' && K % 128 !== 0)
    fail(`per-128 correction needs K % 128 == 0, K = ${K}`);
  if (spec.tensorScale === 'caller') {
    const t = opts.tensorScale;
    if (t === undefined || !(t > 0) || !Number.isFinite(t) || f32(t) !== t)
      fail('caller mode needs opts.tensorScale, a finite binary32 > 0');
  } else if (opts.tensorScale !== undefined) {
    fail(`opts.tensorScale is only for tensorScale 'caller' (spec has '${spec.tensorScale}')`);
  }
  const T = mx ? E2M1_MAX : spec.rounding === 'four-six' ? E2M1_MAX : targetValue(spec.target);
  if (spec.hadamard !== null && opts.signSeed === undefined) {
    fail(
      `rotates (Hadamard size ${spec.hadamard}): opts.signSeed, the key of the sign vector, is required (NUMERICS §3.2)`,
    );
  }
  const [seedLo, seedHi] = splitSeed(opts.seed);
  return {
    spec,
    rows,
    K,
    transposed,
    groupSize,
    Kb: K / groupSize,
    mx,
    T,
    Tref: T,
    C: spec.ceiling,
    onePass: spec.tensorScale === 'one-pass',
    seedLo,
    seedHi,
    // §3.2: the signs are keyed by signSeed, never by seed (operands sharing a rotation must not share noise).
    signs: spec.hadamard === null ? null : signVector(...splitSeed(opts.signSeed as bigint), spec.hadamard),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The quantizer's input: output rows [r0, r1) in output orientation, rotated when the spec asks (NUMERICS §4).

function inputRows(plan: Plan, x: Matrix, r0: number, r1: number): Float32Array {
  const { K } = plan;
  const n = r1 - r0;
  let out: Float32Array;
  if (!plan.transposed) {
    out = x.data.subarray(r0 * K, r1 * K); // read only
  } else {
    // x is [K, rows]: output row r is input column r. Blocked so both sides stay in cache.
    out = new Float32Array(n * K);
    const src = x.data;
    const stride = x.cols;
    const B = 32;
    for (let k0 = 0; k0 < K; k0 += B) {
      const k1 = Math.min(K, k0 + B);
      for (let rr0 = r0; rr0 < r1; rr0 += B) {
        const rr1 = Math.min(r1, rr0 + B);
        for (let k = k0; k < k1; k++) {
          const s = k * stride;
          for (let r = rr0; r < rr1; r++) out[(r - r0) * K + k] = src[s + r];
        }
      }
    }
  }
  if (plan.signs !== null) out = rhtRows(out, n, K, plan.spec.hadamard as number, plan.signs);
  return out;
}

/**
 * The values the quantizer rounds: x in output orientation ([rows, K]), rotated when the spec asks (§4). For an
 * NVFP4 input (requant) x is the dequantized [R, C] tensor. MS-EDEN quality is measured against this.
 */
export function quantizerInput(spec: QuantizeSpec, x: Matrix, opts: QuantizeOptions): Matrix {
  const plan = makePlan(spec, x, opts);
  const data = inputRows(plan, x, 0, plan.rows);
  return { rows: plan.rows, cols: plan.K, data: data.buffer === x.data.buffer ? data.slice() : data };
}

/** amax of every scale group of `n` prepared rows; for 16x16 blocks the block's amax in each of its rows (§5.7). */
function groupAmaxes(plan: Plan, X: Float32Array, n: number): Float32Array {
  const { Kb, groupSize } = plan;
  const out = new Float32Array(n * Kb);
  for (let j = 0; j < n * Kb; j++) out[j] = amaxOf(X, j * groupSize, groupSize);
  if (plan.spec.block === '16x16') {
    // Rows of X start at a multiple of 16 (see rowWindow), so blocks are rows [16b, 16b + 16) of X.
    for (let b0 = 0; b0 < n; b0 += 16) {
      const b1 = Math.min(n, b0 + 16);
      for (let kb = 0; kb < Kb; kb++) {
        let m = 0;
        for (let r = b0; r < b1; r++) m = Math.max(m, out[r * Kb + kb]);
        for (let r = b0; r < b1; r++) out[r * Kb + kb] = m;
      }
    }
  }
  return out;
}

/** The prepared rows [w0, w1) needed for output rows [r0, r1): whole 16-row blocks for 16x16. */
function rowWindow(plan: Plan, r0: number, r1: number): [number, number] {
  if (plan.spec.block !== '16x16') return [r0, r1];
  return [r0 - (r0 % 16), Math.min(plan.rows, Math.ceil(r1 / 16) * 16)];
}

// ---------------------------------------------------------------------------------------------------------------
// Group rounding.

/** Codes of a zero group (NUMERICS §5.2): finite elements -> signed zero, non-finite -> RN_E2M1 (±6, NaN 0x7). */
function zeroGroupCodes(X: Float32Array, off: number, n: number, codes: Uint8Array, cOff: number): void {
  for (let i = 0; i < n; i++) {
    const x = X[off + i];
    codes[cOff + i] = Number.isFinite(x) ? (x < 0 || Object.is(x, -0) ? 0x8 : 0x0) : rnE2M1(x);
  }
}

/**
 * Rounds rows of a prepared input group by group. `stored` receives per group either the scale code (computed,
 * caller, none) or the P4 proxy c_g (one-pass pass A, 0 for a zero group).
 */
class GroupRounder {
  private readonly words = new Uint32Array(4);
  private readonly r16 = new Uint32Array(16);
  private readonly cand = [new Uint8Array(16), new Uint8Array(16)];
  private readonly sq = new Float32Array(128); // f32(v*v) (MS-EDEN) or f32(d*d) (four-six)
  private readonly vq = new Float32Array(128); // f32(v*q) (MS-EDEN)
  private readonly base = new Float64Array(8); // per group of an MS-EDEN unit: s_g or p_g, 0 for zero groups
  // Output of divisor():
  private sCode = 0;
  private D = 0;

  constructor(
    private readonly plan: Plan,
    private readonly t: number,
  ) {}

  /**
   * The group's divisor D for target T: computed/caller `D = f32(s_g * t)`, s_g = RN_E4M3(f32(amax_g/f32(T*t)))
   * (§5.1); one-pass `D = p_g = RN_P4(f32(amax_g / T))`. False for a zero group (amax 0 or scale 0, §5.2).
   */
  private divisor(amaxG: number, T: number): boolean {
    if (amaxG === 0) return false;
    if (this.plan.onePass) {
      this.D = rnP4(f32(amaxG / T));
      return this.D !== 0;
    }
    const t = this.t;
    this.sCode = rnE4M3(f32(amaxG / f32(T * t)));
    const s = E4M3_VALUE[this.sCode];
    this.D = f32(s * t);
    return s !== 0;
  }

  private zeroStored(): number {
    return this.plan.onePass ? 0 : E4M3_ONE;
  }

  /** Element random bits of 16-group g (§3.2): element e uses word e>>1, bits 15:0 (even e) or 31:16 (odd e). */
  private drawElementBits(g: number, into: Uint32Array, at: number): void {
    const { seedLo, seedHi } = this.plan;
    const w = this.words;
    for (let block = 0; block < 2; block++) {
      randomBlock(seedLo, seedHi, STREAM_ELEMENT_SR, g, block, w);
      for (let j = 0; j < 4; j++) {
        into[at + 8 * block + 2 * j] = w[j] & 0xffff;
        into[at + 8 * block + 2 * j + 1] = w[j] >>> 16;
      }
    }
  }

  private scaleWord(g: number, word: number): number {
    return randomWord(this.plan.seedLo, this.plan.seedHi, STREAM_SCALE_SR, g, word);
  }

  /** RTN or SR of one 16-group with a known divisor (§5.3, §5.4). */
  private roundElements(
    X: Float32Array,
    off: number,
    inv: number,
    sr: boolean,
    g: number,
    codes: Uint8Array,
    cOff: number,
  ): void {
    if (sr) {
      const r16 = this.r16;
      this.drawElementBits(g, r16, 0);
      for (let i = 0; i < 16; i++) codes[cOff + i] = srE2M1(f32(X[off + i] * inv), r16[i]);
    } else {
      for (let i = 0; i < 16; i++) codes[cOff + i] = rnE2M1(f32(X[off + i] * inv));
    }
  }

  /** RTN / SR group (§5.3, §5.4, §5.7 — the 16x16 block amax comes in as amaxG). */
  rtnOrSr(X: Float32Array, off: number, amaxG: number, g: number, codes: Uint8Array, cOff: number): number {
    if (!this.divisor(amaxG, this.plan.T)) {
      zeroGroupCodes(X, off, 16, codes, cOff);
      return this.zeroStored();
    }
    this.roundElements(X, off, f32(1 / this.D), this.plan.spec.rounding === 'sr', g, codes, cOff);
    return this.plan.onePass ? this.D : this.sCode;
  }

  /** Four-over-six (§5.5): candidates 6 and 4, keep 6 iff e_6 <= e_4. */
  fourSix(X: Float32Array, off: number, amaxG: number, codes: Uint8Array, cOff: number): number {
    if (amaxG === 0) {
      zeroGroupCodes(X, off, 16, codes, cOff);
      return this.zeroStored();
    }
    const err = [0, 0];
    const stored = [0, 0];
    const targets = [6, 4];
    for (let c = 0; c < 2; c++) {
      const q = this.cand[c];
      let D = 0;
      if (this.divisor(amaxG, targets[c])) {
        D = this.D;
        this.roundElements(X, off, f32(1 / D), false, 0, q, 0);
        stored[c] = this.plan.onePass ? D : this.sCode;
      } else {
        zeroGroupCodes(X, off, 16, q, 0); // this candidate's scale is 0: it represents the group as zeros
        stored[c] = this.zeroStored();
      }
      const sq = this.sq;
      for (let i = 0; i < 16; i++) {
        const d = f32(X[off + i] - f32(E2M1_VALUE[q[i]] * D));
        sq[i] = f32(d * d);
      }
      err[c] = treeSum(sq, 0, 16);
    }
    const keep = err[1] < err[0] ? 1 : 0; // ties and NaN keep 6
    codes.set(this.cand[keep], cOff);
    return stored[keep];
  }

  /**
   * MS-EDEN over one correction unit of `n` groups starting at group kb0 of row r (n = 1 per-16, n = 8 per-128):
   * RTN with T = s_eden, then S from the tree sums of f32(v*v) and f32(v*q), then the stochastic scale rounding
   * (§5.6). Zero groups keep their zero-group scale; their finite elements contribute v = ±0 to a per-128 sum.
   */
  msEden(
    X: Float32Array,
    off: number,
    amax: Float32Array,
    aOff: number,
    n: number,
    g0: number,
    codes: Uint8Array,
    cOff: number,
    stored: Float32Array | Uint8Array,
    sOff: number,
  ): void {
    const { sq, vq, base } = this;
    const onePass = this.plan.onePass;
    for (let j = 0; j < n; j++) {
      const o = off + 16 * j;
      const co = cOff + 16 * j;
      if (!this.divisor(amax[aOff + j], this.plan.T)) {
        zeroGroupCodes(X, o, 16, codes, co);
        for (let i = 0; i < 16; i++) {
          const x = X[o + i];
          const v = Number.isFinite(x) ? 0 : x;
          sq[16 * j + i] = f32(v * v);
          vq[16 * j + i] = f32(v * E2M1_VALUE[codes[co + i]]);
        }
        base[j] = 0;
        continue;
      }
      const inv = f32(1 / this.D);
      for (let i = 0; i < 16; i++) {
        const v = f32(X[o + i] * inv);
        const q = rnE2M1(v);
        codes[co + i] = q;
        if (n === 1) {
          sq[16 * j + i] = f32(v * v);
          vq[16 * j + i] = f32(v * E2M1_VALUE[q]);
        } else {
          // per-128: groups have different scales, so the sums are taken in the input domain (§5.6).
          const y = X[o + i];
          sq[16 * j + i] = f32(y * y);
          vq[16 * j + i] = f32(y * f32(E2M1_VALUE[q] * this.D));
        }
      }
      base[j] = onePass ? this.D : E4M3_VALUE[this.sCode];
    }
    let shared = 1;
    if (n > 1) shared = correction(treeSum(sq, 0, 16 * n), treeSum(vq, 0, 16 * n));
    for (let j = 0; j < n; j++) {
      if (base[j] === 0) {
        stored[sOff + j] = this.zeroStored();
        continue;
      }
      const S = n > 1 ? shared : correction(treeSum(sq, 16 * j, 16), treeSum(vq, 16 * j, 16));
      const r32 = this.scaleWord(g0 + j, 0);
      const corrected = f32(S * base[j]);
      stored[sOff + j] = onePass ? srP4(corrected, r32) : srE4M3(corrected, r32);
    }
  }

  /** MXFP4 group of 32 (§5.8): UE8M0 scale RP(amax/6), then RN or SR; g16 is the index of its first 16-group. */
  mxfp4(X: Float32Array, off: number, amaxG: number, g16: number, codes: Uint8Array, cOff: number): number {
    if (amaxG === 0) {
      zeroGroupCodes(X, off, 32, codes, cOff);
      return UE8M0_ONE;
    }
    const q = f32(amaxG / E2M1_MAX);
    const sCode = q > 0 ? rpUE8M0(q) : 0; // q underflowed to 0: the smallest scale, 2^-127
    const inv = f32(1 / UE8M0_VALUE[sCode]); // exact: a power of two
    const sr = this.plan.spec.rounding === 'sr';
    this.roundElements(X, off, inv, sr, g16, codes, cOff);
    this.roundElements(X, off + 16, inv, sr, g16 + 1, codes, cOff + 16);
    return sCode;
  }
}

/** S = f32(num / den); 1 when den is 0 or S is not finite (§5.6). */
function correction(num: number, den: number): number {
  if (den === 0) return 1;
  const S = f32(num / den);
  return Number.isFinite(S) ? S : 1;
}

/**
 * Rounds output rows [r0, r1) of the prepared rows X (which start at output row w0). Returns the codes of those
 * rows and the stored value per group (scale code, or P4 proxy in one-pass mode).
 */
function roundRows(
  plan: Plan,
  t: number,
  X: Float32Array,
  w0: number,
  amax: Float32Array,
  r0: number,
  r1: number,
  stored: Uint8Array | Float32Array,
): Uint8Array {
  const { K, Kb, groupSize, spec } = plan;
  const codes = new Uint8Array((r1 - r0) * K);
  const rounder = new GroupRounder(plan, t);
  const unit = spec.rounding === 'ms-eden' && spec.correction === 'per-128' ? 8 : 1;
  const groups16 = K / 16;
  for (let r = r0; r < r1; r++) {
    const xRow = (r - w0) * K;
    const aRow = (r - w0) * Kb;
    const cRow = (r - r0) * K;
    const sRow = (r - r0) * Kb;
    for (let kb = 0; kb < Kb; kb += unit) {
      const off = xRow + kb * groupSize;
      const cOff = cRow + kb * groupSize;
      const g = r * groups16 + (kb * groupSize) / 16; // logical 16-group index in the output (§3.2)
      switch (spec.rounding) {
        case 'ms-eden':
          rounder.msEden(X, off, amax, aRow + kb, unit, g, codes, cOff, stored, sRow + kb);
          break;
        case 'four-six':
          stored[sRow + kb] = rounder.fourSix(X, off, amax[aRow + kb], codes, cOff);
          break;
        default:
          stored[sRow + kb] = plan.mx
            ? rounder.mxfp4(X, off, amax[aRow + kb], g, codes, cOff)
            : rounder.rtnOrSr(X, off, amax[aRow + kb], g, codes, cOff);
      }
    }
  }
  return codes;
}

// ---------------------------------------------------------------------------------------------------------------
// Public entry points.

/**
 * Quantizes x along the output's K (NUMERICS §5). x is [rows, K], or [K, rows] when spec.transposedInput; for a
 * requant spec (input 'nvfp4') x is the dequantized [R, C] tensor, quantized as x^T (§5.9; see requantize).
 */
export function quantize(spec: QuantizeSpec, x: Matrix, opts: QuantizeOptions): QuantizedTensor {
  const plan = makePlan(spec, x, opts);
  const { rows, K, Kb, groupSize } = plan;
  const shape = { rows, cols: K, groupSize, scaleFormat: spec.scaleGroup.format };
  if (plan.onePass) {
    const a = onePassA(spec, x, 0, rows, opts);
    const b = onePassB(spec, a.proxies, a.max, rows, opts);
    return { ...shape, codes: a.codes, scales: b.scales, tensorScale: b.tensorScale };
  }
  const X = inputRows(plan, x, 0, rows);
  let t = 1;
  if (spec.tensorScale === 'caller') {
    t = opts.tensorScale as number;
  } else if (spec.tensorScale === 'computed') {
    const m = amaxOf(X, 0, X.length); // amax of the (rotated) input, §5.1
    t = m === 0 ? 1 : f32(m / f32(plan.Tref * plan.C));
  }
  const scales = new Uint8Array(rows * Kb);
  const codes = roundRows(plan, t, X, 0, groupAmaxes(plan, X, rows), 0, rows, scales);
  return { ...shape, codes, scales, tensorScale: t };
}

/** Requant (§5.9): the NVFP4 tensor a [R, C] dequantized, transposed to [C, R] and quantized along R. */
export function requantize(spec: QuantizeSpec, a: QuantizedTensor, opts: QuantizeOptions): QuantizedTensor {
  if (spec.input !== 'nvfp4') throw new Error(`requantize ${spec.name}: spec.input must be 'nvfp4'`);
  if (a.scaleFormat !== 'e4m3' || a.groupSize !== 16) throw new Error(`requantize ${spec.name}: input must be NVFP4`);
  return quantize(spec, { rows: a.rows, cols: a.cols, data: dequantize(a) }, opts);
}

/**
 * One-pass mode, pass A (§5.1) for output rows [r0, r1): codes against each group's proxy scale, the P4 values c_g
 * (0 for zero groups) and their max. x is the whole input, as for quantize.
 */
export function onePassA(spec: QuantizeSpec, x: Matrix, r0: number, r1: number, opts: QuantizeOptions): PassAResult {
  const plan = makePlan(spec, x, opts);
  if (!plan.onePass) throw new Error(`onePassA ${spec.name}: tensorScale is '${spec.tensorScale}', not 'one-pass'`);
  if (!(Number.isInteger(r0) && Number.isInteger(r1) && 0 <= r0 && r0 < r1 && r1 <= plan.rows)) {
    throw new Error(`onePassA ${spec.name}: bad row range [${r0}, ${r1}) of ${plan.rows}`);
  }
  const [w0, w1] = rowWindow(plan, r0, r1);
  const X = inputRows(plan, x, w0, w1);
  const proxies = new Float32Array((r1 - r0) * plan.Kb);
  const codes = roundRows(plan, 1, X, w0, groupAmaxes(plan, X, w1 - w0), r0, r1, proxies);
  let max = 0;
  for (let i = 0; i < proxies.length; i++) max = Math.max(max, proxies[i]);
  return { codes, proxies, max };
}

/** t = 2^k, k the smallest integer with m / 2^k <= C, clamped to [-149, 127]; 1 when m = 0 (§5.1). */
export function onePassTensorScale(m: number, C: number): number {
  if (m === 0) return 1;
  let k = Math.ceil(Math.log2(m / C));
  while (m <= C * 2 ** (k - 1)) k--; // exact comparisons: C * 2^k is exact in binary64
  while (m > C * 2 ** k) k++;
  return 2 ** Math.min(127, Math.max(-149, k));
}

/**
 * One-pass mode, pass B (§5.1, §5.6): the tensor scale from the max of all proxies, and the E4M3 scale codes of all
 * `rows` rows. `proxies` covers the whole tensor, row-major.
 */
export function onePassB(
  spec: QuantizeSpec,
  proxies: Float32Array,
  max: number,
  rows: number,
  opts: QuantizeOptions,
): { scales: Uint8Array; tensorScale: number } {
  if (spec.tensorScale !== 'one-pass') throw new Error(`onePassB ${spec.name}: not a one-pass spec`);
  if (rows < 1 || proxies.length % rows !== 0)
    throw new Error(`onePassB ${spec.name}: ${proxies.length} proxies for ${rows} rows`);
  const [seedLo, seedHi] = splitSeed(opts.seed);
  const t = onePassTensorScale(max, spec.ceiling);
  const eden = spec.rounding === 'ms-eden';
  const scales = new Uint8Array(proxies.length);
  for (let g = 0; g < proxies.length; g++) {
    const c = proxies[g];
    if (c === 0) {
      scales[g] = E4M3_ONE; // zero group (§5.2)
      continue;
    }
    const w = f32(c / t);
    if (eden && w < E4M3_MIN_NORMAL) {
      scales[g] = srE4M3(w, randomWord(seedLo, seedHi, STREAM_SCALE_SR, g, 1)); // second unbiased rounding, §5.6
    } else {
      scales[g] = rnE4M3(w); // exact for w >= 2^-6 (a P4 value scaled by a power of two)
    }
  }
  return { scales, tensorScale: t };
}
