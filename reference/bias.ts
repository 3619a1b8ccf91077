// Bias of the quantizers (issue 12 §4): the relative error of the mean of B independent draws (fresh Philox seeds and
// sign seeds) against the exact input, at B = 1, 2, 4, ..., and the floor b of err^2 = b^2 + sigma^2 / B.
// An unbiased quantizer has b = 0: averaging B draws removes the noise sigma^2 / B and nothing else. A floor b > 0 is
// the relative size of E[xhat] - x, what averaging (or a long training run) can never remove.

import type { QuantizeSpec } from '../dsl/types.ts';
import { CATALOG } from '../dsl/catalog.ts';
import { bf16BitsToF32, f32ToBf16Bits } from './fp32.ts';
import { decodeE4M3 } from './formats.ts';
import { dequantize } from './dequantize.ts';
import { signVector } from './hadamard.ts';
import { randomBlock, randomWord, splitSeed } from './philox.ts';
import { quantize, requantize } from './quantize.ts';
import { gaussianMatrix, type Matrix } from './tensor.ts';

export const BIAS_REGIMES = ['gaussian', 'student-t3', 'outliers'] as const;
export type BiasRegime = (typeof BIAS_REGIMES)[number];

/** One outlier per OUTLIER_SPAN elements, scaled by OUTLIER_FACTOR (the package test's randn_bf16 does the same). */
export const OUTLIER_SPAN = 1024;
export const OUTLIER_FACTOR = 30;
/** The rotation size of MS-EDEN (the catalog's backward kernels) and of the Haar control. */
const CHUNK = 128;

const toBf16 = (v: number) => bf16BitsToF32(f32ToBf16Bits(Math.fround(v)));

/**
 * The test data of a regime, bf16 values, deterministic in (rows, cols, seed):
 * - gaussian: gaussianMatrix(rows, cols, seed), N(0, 1);
 * - student-t3: z0 / sqrt((z1^2 + z2^2 + z3^2) / 3) with z_k = gaussianMatrix(rows, cols, seed + k + 1) (k = 0..3),
 *   Student-t with 3 degrees of freedom (finite variance, infinite fourth moment);
 * - outliers: the gaussian matrix with one element in each OUTLIER_SPAN consecutive elements (row-major) multiplied
 *   by OUTLIER_FACTOR, at offset word(seed, stream 4, span index, 0) mod OUTLIER_SPAN (a Philox word, NUMERICS §3.1).
 */
export function regimeMatrix(regime: BiasRegime, rows: number, cols: number, seed: number): Matrix {
  if (regime === 'gaussian') return gaussianMatrix(rows, cols, seed);
  if (regime === 'student-t3') {
    const z = [0, 1, 2, 3].map((k) => gaussianMatrix(rows, cols, seed + k + 1).data);
    const data = new Float32Array(rows * cols);
    for (let i = 0; i < data.length; i++) {
      const chi2 = z[1][i] * z[1][i] + z[2][i] * z[2][i] + z[3][i] * z[3][i];
      data[i] = chi2 === 0 ? 0 : toBf16(z[0][i] / Math.sqrt(chi2 / 3));
    }
    return { rows, cols, data };
  }
  if (regime === 'outliers') {
    const x = gaussianMatrix(rows, cols, seed);
    const [lo, hi] = splitSeed(BigInt(seed));
    for (let span = 0; span * OUTLIER_SPAN < x.data.length; span++) {
      const i = span * OUTLIER_SPAN + (randomWord(lo, hi, 4, span, 0) % OUTLIER_SPAN);
      if (i < x.data.length) x.data[i] = toBf16(x.data[i] * OUTLIER_FACTOR);
    }
    return x;
  }
  throw new Error(`regimeMatrix: regime "${regime}" is not one of ${BIAS_REGIMES.join(', ')}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Quantizers as draws in the input domain.

/** A quantizer seen by the bias measurement: draw d of xhat, in the input domain (rotations undone in binary64). */
export interface BiasQuantizer {
  name: string;
  /** What it is, one line. */
  what: string;
  /** True when every draw is the same (RTN, 4/6): one draw is computed and reused. */
  deterministic: boolean;
  draw(x: Matrix, d: number, out: Float64Array): void;
}

function catalogSpec(name: string): QuantizeSpec {
  const s = CATALOG.find((k) => k.name === name);
  if (!s || s.kind !== 'quantize') throw new Error(`bias: no quantize kernel ${name} in the catalog`);
  return s;
}

/** The Philox keys of draw d: seed and signSeed never repeat across draws and differ from each other. */
export function drawSeeds(d: number): { seed: bigint; signSeed: bigint } {
  const m = 1n << 64n;
  return {
    seed: (BigInt(2 * d + 1) * 0x9e3779b97f4a7c15n) % m,
    signSeed: (BigInt(2 * d + 2) * 0xbf58476d1ce4e5b9n) % m,
  };
}

/** In place, every 128-chunk of out: x_j = eps_j (H y)_j / sqrt(128), the inverse of NUMERICS §4 in binary64. */
function undoHadamard(out: Float64Array, signs: Float32Array): void {
  const n = CHUNK;
  const s = 1 / Math.sqrt(n);
  for (let off = 0; off < out.length; off += n) {
    for (let h = 1; h < n; h *= 2) {
      for (let b = off; b < off + n; b += 2 * h) {
        for (let p = b; p < b + h; p++) {
          const u = out[p],
            v = out[p + h];
          out[p] = u + v;
          out[p + h] = u - v;
        }
      }
    }
    for (let j = 0; j < n; j++) out[off + j] *= signs[j] * s;
  }
}

/** A catalog kernel, dequantized (and un-rotated when it rotates). */
function kernelQuantizer(name: string, kernel: string, what: string): BiasQuantizer {
  const spec = catalogSpec(kernel);
  return {
    name,
    what: `${what} (${kernel})`,
    deterministic: (spec.rounding === 'rtn' || spec.rounding === 'four-six') && spec.hadamard === null,
    draw(x, d, out) {
      const opts = drawSeeds(d);
      out.set(dequantize(quantize(spec, x, opts)));
      if (spec.hadamard !== null) {
        if (spec.hadamard !== CHUNK) throw new Error(`bias: ${kernel} rotates ${spec.hadamard}-chunks, not ${CHUNK}`);
        undoHadamard(out, signVector(...splitSeed(opts.signSeed), CHUNK));
      }
    },
  };
}

/**
 * A Haar-random (uniform) rotation of R^128 (row-major, binary64) keyed by `seed`: Gram-Schmidt (twice) of a matrix
 * of N(0, 1) entries (Box-Muller on Philox stream 5), rows made orthonormal in order; a matrix with i.i.d. Gaussian
 * entries is invariant under rotations, and so is the orthonormal basis Gram-Schmidt extracts from it.
 */
export function haarRotation(seed: bigint): Float64Array {
  const n = CHUNK;
  const [lo, hi] = splitSeed(seed);
  const q = new Float64Array(n * n);
  const w = new Uint32Array(4);
  for (let b = 0; b < (n * n) / 4; b++) {
    randomBlock(lo, hi, 5, b, 0, w);
    for (let p = 0; p < 2; p++) {
      const r = Math.sqrt(-2 * Math.log((w[2 * p] + 1) * 2 ** -32));
      const a = 2 * Math.PI * w[2 * p + 1] * 2 ** -32;
      q[4 * b + 2 * p] = r * Math.cos(a);
      q[4 * b + 2 * p + 1] = r * Math.sin(a);
    }
  }
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    for (let pass = 0; pass < 2; pass++) {
      for (let k = 0; k < i; k++) {
        const rk = k * n;
        let dot = 0;
        for (let j = 0; j < n; j++) dot += q[ri + j] * q[rk + j];
        for (let j = 0; j < n; j++) q[ri + j] -= dot * q[rk + j];
      }
    }
    let norm = 0;
    for (let j = 0; j < n; j++) norm += q[ri + j] * q[ri + j];
    norm = Math.sqrt(norm);
    for (let j = 0; j < n; j++) q[ri + j] /= norm;
  }
  return q;
}

/**
 * MS-EDEN of the backward kernel with its random-sign Hadamard replaced by a Haar-random rotation R of every 128-chunk
 * (one R per draw, keyed by the draw's signSeed): y = R x rounded to binary32, quantized by the kernel's spec without
 * rotation, xhat = R^T yhat. EDEN's argument applies: for R uniform, E[R^T D(R x)] commutes with every rotation that
 * fixes x, so it is c x, and c = 1 because the scale correction keeps E[<D(y), y>] = |y|^2.
 */
function haarQuantizer(): BiasQuantizer {
  const spec: QuantizeSpec = {
    ...catalogSpec('quartet2_e_mseden_rht128'),
    name: 'quartet2_e_mseden_haar',
    hadamard: null,
  };
  return {
    name: 'ms-eden-haar',
    what: 'MS-EDEN of quartet2_e_mseden_rht128 with a Haar-random rotation instead of RHT (control)',
    deterministic: false,
    draw(x, d, out) {
      const { seed, signSeed } = drawSeeds(d);
      const R = haarRotation(signSeed);
      const n = CHUNK;
      const y = new Float32Array(x.data.length);
      for (let off = 0; off < y.length; off += n) {
        for (let i = 0; i < n; i++) {
          let s = 0;
          for (let j = 0; j < n; j++) s += R[i * n + j] * x.data[off + j];
          y[off + i] = s;
        }
      }
      const yhat = dequantize(quantize(spec, { rows: x.rows, cols: x.cols, data: y }, { seed }));
      for (let off = 0; off < y.length; off += n) {
        for (let j = 0; j < n; j++) out[off + j] = 0;
        for (let i = 0; i < n; i++) {
          const v = yhat[off + i];
          if (v !== 0) for (let j = 0; j < n; j++) out[off + j] += R[i * n + j] * v;
        }
      }
    },
  };
}

/**
 * SR with its rounding threshold moved by `shift` (a deliberately biased quantizer, the positive control of the
 * tests): the scales of nvidia_e_sr, then each element rounds up iff u < frac + shift, u uniform in [0, 1) from
 * word(seed, stream 6, i, 0). shift = 0 is plain (unbiased) SR on the same scales.
 */
export function shiftedSr(shift: number): BiasQuantizer {
  const spec = catalogSpec('nvidia_e_sr');
  const grid = [0, 0.5, 1, 1.5, 2, 3, 4, 6];
  return {
    name: `sr-shift-${shift}`,
    what: `SR with the rounding threshold shifted by ${shift} of a grid step (biased control)`,
    deterministic: false,
    draw(x, d, out) {
      const { seed } = drawSeeds(d);
      const q = quantize(spec, x, { seed });
      const [lo, hi] = splitSeed(seed);
      const G = spec.scaleGroup.size;
      for (let i = 0; i < x.data.length; i++) {
        const D = Math.fround(decodeE4M3(q.scales[Math.floor(i / G)]) * q.tensorScale);
        const a = D === 0 ? 0 : Math.min(6, Math.abs(x.data[i]) / D);
        let k = 0;
        while (k < 6 && grid[k + 1] <= a) k++;
        const frac = k === 7 || grid[k] === a ? 0 : (a - grid[k]) / (grid[k + 1] - grid[k]);
        const up = k < 7 && randomWord(lo, hi, 6, i, 0) * 2 ** -32 < frac + shift;
        out[i] = Math.sign(x.data[i]) * (up ? grid[Math.min(7, k + 1)] : grid[k]) * D;
      }
    },
  };
}

/** The quantizers of `qgen quality --bias`, in table order. */
export function biasQuantizers(): BiasQuantizer[] {
  return [
    kernelQuantizer('rtn', 'nvidia_x_rtn', 'RTN 1x16, deterministic (control: biased)'),
    kernelQuantizer('4/6', 'quartet2_x_46', 'four-over-six, deterministic (biased by construction)'),
    kernelQuantizer('sr', 'nvidia_e_sr', 'stochastic rounding, NVIDIA backward'),
    kernelQuantizer('ms-eden', 'quartet2_e_mseden_rht128', 'RHT-128 with random signs + MS-EDEN, Quartet II backward'),
    haarQuantizer(),
  ];
}

// ---------------------------------------------------------------------------------------------------------------
// Measurement.

/** Independent batches of draws for the floor's standard error (draw d goes to batch d mod FLOOR_BATCHES). */
export const FLOOR_BATCHES = 32;

/**
 * Running sums of draws: the mean's error at B = 1, 2, 4, ..., the per-element sample variance, and batch sums
 * for a floor estimate whose error bar holds when the elements' errors are correlated (a GEMM's outputs share
 * the noise of an operand row; a rotation mixes a chunk).
 */
export class DrawMoments {
  readonly sum: Float64Array;
  readonly sumSq: Float64Array;
  readonly batchSum: Float64Array[];
  readonly batchCount = new Array<number>(FLOOR_BATCHES).fill(0);
  n = 0;
  constructor(readonly x: Float32Array) {
    this.sum = new Float64Array(x.length);
    this.sumSq = new Float64Array(x.length);
    this.batchSum = Array.from({ length: FLOOR_BATCHES }, () => new Float64Array(x.length));
  }
  add(xhat: Float64Array): void {
    const batch = this.batchSum[this.n % FLOOR_BATCHES];
    for (let i = 0; i < xhat.length; i++) {
      const e = xhat[i] - this.x[i];
      this.sum[i] += e;
      this.sumSq[i] += e * e;
      batch[i] += e;
    }
    this.batchCount[this.n % FLOOR_BATCHES]++;
    this.n++;
  }
  /** |mean(xhat) - x|^2 / |x|^2. */
  relErr2(): number {
    let num = 0,
      den = 0;
    for (let i = 0; i < this.x.length; i++) {
      const m = this.sum[i] / this.n;
      num += m * m;
      den += this.x[i] * this.x[i];
    }
    return num / den;
  }
  /**
   * The floor b^2 = |E xhat - x|^2 / |x|^2 estimated without bias from the K batch means e_k - x (independent):
   * b2 = sum_{k != l} <e_k, e_l> / (K (K - 1)) / |x|^2, and its jackknife standard error over the batches (about
   * K - 1 degrees of freedom; no assumption on the correlation between elements): b2 / sd is the z-score of a bias.
   * nEff = trace^2 / sum var_i^2 (the per-element variances) sets the weights of fitFloor.
   */
  floorEstimate(): { b2: number; sd: number; nEff: number } {
    const ks = this.batchCount.flatMap((c, k) => (c > 0 ? [k] : []));
    const K = ks.length;
    let den = 0,
      trace = 0,
      trace2 = 0,
      TT = 0;
    const ee = new Float64Array(K),
      Te = new Float64Array(K),
      e = new Float64Array(K);
    for (let i = 0; i < this.x.length; i++) {
      const m = this.sum[i] / this.n;
      const v = Math.max(0, (this.sumSq[i] - this.n * m * m) / (this.n - 1));
      trace += v;
      trace2 += v * v;
      den += this.x[i] * this.x[i];
      let T = 0;
      for (let j = 0; j < K; j++) {
        e[j] = this.batchSum[ks[j]][i] / this.batchCount[ks[j]];
        T += e[j];
      }
      TT += T * T;
      for (let j = 0; j < K; j++) {
        ee[j] += e[j] * e[j];
        Te[j] += T * e[j];
      }
    }
    const nEff = trace2 > 0 ? (trace * trace) / trace2 : 1;
    if (K < 3) return { b2: NaN, sd: NaN, nEff };
    let S = 0;
    for (let j = 0; j < K; j++) S += ee[j];
    const b2 = (TT - S) / (K * (K - 1)) / den;
    const loo = Array.from({ length: K }, (_, j) => (TT - 2 * Te[j] + ee[j] - (S - ee[j])) / ((K - 1) * (K - 2)) / den);
    const mean = loo.reduce((a, b) => a + b, 0) / K;
    const sd = Math.sqrt(((K - 1) / K) * loo.reduce((a, b) => a + (b - mean) * (b - mean), 0));
    return { b2, sd, nEff };
  }
}

export interface FloorFit {
  /** The floor b (0 when the fit gives b^2 <= 0). */
  b: number;
  b2: number;
  /** Standard error of b2 from the weighted fit. */
  b2Se: number;
  /** The per-draw relative error sigma. */
  sigma: number;
}

/**
 * Weighted least squares of err2[k] = b^2 + sigma^2 / B[k], weights 1 / Var(err2), Var(err2) = 2 model^2 / nEff
 * (err2 a sum of nEff squared near-Gaussian means), the model refined twice from the unweighted fit.
 */
export function fitFloor(B: readonly number[], err2: readonly number[], nEff: number): FloorFit {
  let b2 = 0,
    s2 = 0,
    cov = [
      [0, 0],
      [0, 0],
    ];
  let w = err2.map(() => 1);
  for (let iter = 0; iter < 3; iter++) {
    let S00 = 0,
      S01 = 0,
      S11 = 0,
      T0 = 0,
      T1 = 0;
    for (let k = 0; k < B.length; k++) {
      const u = 1 / B[k];
      S00 += w[k];
      S01 += w[k] * u;
      S11 += w[k] * u * u;
      T0 += w[k] * err2[k];
      T1 += w[k] * u * err2[k];
    }
    const det = S00 * S11 - S01 * S01;
    b2 = (S11 * T0 - S01 * T1) / det;
    s2 = (S00 * T1 - S01 * T0) / det;
    cov = [
      [S11 / det, -S01 / det],
      [-S01 / det, S00 / det],
    ];
    w = B.map((Bk, k) => {
      const model = Math.max(b2 + s2 / Bk, err2[k] * 1e-3, Number.MIN_VALUE);
      return nEff / (2 * model * model);
    });
  }
  const b2Se = Math.sqrt(Math.max(0, cov[0][0]));
  return { b: Math.sqrt(Math.max(0, b2)), b2, b2Se, sigma: Math.sqrt(Math.max(0, s2)) };
}

export interface BiasRow {
  regime: BiasRegime;
  quantizer: string;
  /** Relative error of the mean of B draws at each B of `B`. */
  B: number[];
  relErr: number[];
  fit: FloorFit;
  /** The unbiased floor estimate and its z-score (floorEstimate). */
  b2Direct: number;
  zFloor: number;
}

export interface BiasOptions {
  rows: number;
  cols: number;
  /** Largest B (a power of two): draws per quantizer and regime. */
  draws: number;
  /** Data seed. */
  seed: number;
  regimes?: readonly BiasRegime[];
  quantizers?: BiasQuantizer[];
  progress?: (done: number, total: number, what: string) => void;
}

/** Bytes of memory per element the measurement holds (x, sums, one draw, the quantizer's temporaries). */
export const BIAS_BYTES_PER_ELEMENT = 8 * FLOOR_BATCHES + 64;

/** The table of `qgen quality --bias`: per regime and quantizer, the curve at B = 1, 2, 4, ..., draws and the fit. */
export function biasTable(o: BiasOptions): BiasRow[] {
  const regimes = o.regimes ?? BIAS_REGIMES;
  const quantizers = o.quantizers ?? biasQuantizers();
  if (!Number.isInteger(Math.log2(o.draws))) throw new Error(`biasTable: draws = ${o.draws} is not a power of two`);
  const B: number[] = [];
  for (let b = 1; b <= o.draws; b *= 2) B.push(b);
  const total = regimes.length * quantizers.reduce((s, q) => s + (q.deterministic ? 1 : o.draws), 0);
  let done = 0;
  const rows: BiasRow[] = [];
  for (const regime of regimes) {
    const x = regimeMatrix(regime, o.rows, o.cols, o.seed);
    for (const q of quantizers) {
      const m = new DrawMoments(x.data);
      const xhat = new Float64Array(x.data.length);
      const err2: number[] = [];
      for (let d = 0; d < o.draws; d++) {
        if (d === 0 || !q.deterministic) {
          q.draw(x, d, xhat);
          done++;
          o.progress?.(done, total, `${regime} ${q.name}`);
        }
        m.add(xhat);
        if (B.includes(d + 1)) err2.push(m.relErr2());
      }
      const direct = q.deterministic ? { b2: err2[0], sd: 0, nEff: 1 } : m.floorEstimate();
      const fit = q.deterministic
        ? { b: Math.sqrt(err2[0]), b2: err2[0], b2Se: 0, sigma: 0 }
        : fitFloor(B, err2, direct.nEff);
      rows.push({
        regime,
        quantizer: q.name,
        B,
        relErr: err2.map(Math.sqrt),
        fit,
        b2Direct: direct.b2,
        zFloor: direct.sd === 0 ? Infinity : direct.b2 / direct.sd,
      });
    }
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------------------------
// The dX GEMM of a recipe: dX = E . Wq averaged over draws, against the exact product with the forward's Wq.

/** dX of a recipe: E [tokens, out] by its E kernel, Wq^T [in, out] requantized (or Wq itself when `wt` is null). */
export interface DxRecipe {
  name: string;
  forwardW: string;
  e: string;
  wt: string | null;
}
export const DX_RECIPES: readonly DxRecipe[] = [
  { name: 'quartet2 dX', forwardW: 'quartet2_w_46', e: 'quartet2_e_mseden_rht128', wt: 'quartet2_wt_rq_mseden_rht128' },
  { name: 'tetrajet-v2 dX', forwardW: 'nvidia_x_rtn', e: 'tetrajet2_e_sr_rht32', wt: 'tetrajet2_wt_rq_sr_rht32' },
  { name: 'nvidia dX', forwardW: 'nvidia_w_rtn_16x16', e: 'nvidia_e_sr', wt: null },
];

/**
 * The bias rows of each recipe's dX GEMM on E of the regime ([tokens, out]) and a Gaussian W/16 ([out, in]): the
 * product of the dequantized operands in binary64 (both rotated by the same signs, which cancel: NUMERICS §4),
 * fresh seed and sign seed per draw (the two operands' seeds differ), vs E . dequantize(Wq).
 */
export function dxBiasTable(o: BiasOptions & { inFeatures: number }): BiasRow[] {
  const tokens = o.rows,
    out = o.cols,
    inF = o.inFeatures;
  const regimes = o.regimes ?? BIAS_REGIMES;
  const B: number[] = [];
  for (let b = 1; b <= o.draws; b *= 2) B.push(b);
  const rows: BiasRow[] = [];
  let done = 0;
  const total = regimes.length * DX_RECIPES.length * o.draws;
  for (const regime of regimes) {
    const E = regimeMatrix(regime, tokens, out, o.seed);
    const W = gaussianMatrix(out, inF, o.seed + 100);
    for (let i = 0; i < W.data.length; i++) W.data[i] = W.data[i] / 16;
    for (const r of DX_RECIPES) {
      const wq = quantize(catalogSpec(r.forwardW), W, { seed: 0n });
      const wd = dequantize(wq); // [out, in]
      const exact = new Float32Array(tokens * inF);
      for (let t = 0; t < tokens; t++) {
        for (let i = 0; i < inF; i++) {
          let s = 0;
          for (let k = 0; k < out; k++) s += E.data[t * out + k] * wd[k * inF + i];
          exact[t * inF + i] = s;
        }
      }
      // Wq^T in [in, out] order when it is not requantized (nvidia: the 16x16 scales make it Wq transposed)
      const wtFixed = new Float64Array(inF * out);
      for (let k = 0; k < out; k++) for (let i = 0; i < inF; i++) wtFixed[i * out + k] = wd[k * inF + i];
      const m = new DrawMoments(exact);
      const g = new Float64Array(tokens * inF);
      const err2: number[] = [];
      for (let d = 0; d < o.draws; d++) {
        const { seed, signSeed } = drawSeeds(d);
        const eq = dequantize(quantize(catalogSpec(r.e), E, { seed, signSeed }));
        const wt =
          r.wt === null
            ? wtFixed
            : dequantize(requantize(catalogSpec(r.wt), wq, { seed: drawSeeds(d + (1 << 30)).seed, signSeed }));
        for (let t = 0; t < tokens; t++) {
          for (let i = 0; i < inF; i++) {
            let s = 0;
            for (let k = 0; k < out; k++) s += eq[t * out + k] * wt[i * out + k];
            g[t * inF + i] = s;
          }
        }
        m.add(g);
        if (B.includes(d + 1)) err2.push(m.relErr2());
        o.progress?.(++done, total, `${regime} ${r.name}`);
      }
      const direct = m.floorEstimate();
      rows.push({
        regime,
        quantizer: r.name,
        B,
        relErr: err2.map(Math.sqrt),
        fit: fitFloor(B, err2, direct.nEff),
        b2Direct: direct.b2,
        zFloor: direct.sd === 0 ? Infinity : direct.b2 / direct.sd,
      });
    }
  }
  return rows;
}
