// Property tests of the quantizers (NUMERICS §5) against independent float64 oracles: valid codes and scales,
// error bounds derived from the formats, seeds, one-pass row splits, transposed input, zero/NaN/Inf groups,
// 16x16 blocks, MXFP4, caller mode and requant.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import type { QuantizeSpec, Rounding } from '../dsl/types.ts';
import { E4M3_MAX, S_EDEN, V_SR } from '../dsl/constants.ts';
import { decodeE2M1, decodeE4M3, decodeUE8M0, rnE4M3, rnP4 } from '../reference/formats.ts';
import { signVector, rhtRows } from '../reference/hadamard.ts';
import { splitSeed } from '../reference/philox.ts';
import { onePassA, onePassB, quantize, quantizerInput, requantize } from '../reference/quantize.ts';
import { amax, dequantize } from '../reference/dequantize.ts';
import { gaussianMatrix, type Matrix, type QuantizedTensor } from '../reference/tensor.ts';
import { qualitySpec } from '../reference/quality.ts';

const RUNS = { numRuns: 60, includeErrorInReport: true };
const GRID = [0, 0.5, 1, 1.5, 2, 3, 4, 6];
const REL = 2 ** -20; // slack for the few binary32 roundings between an oracle in float64 and the contract

function spec(rounding: Rounding, fields: Partial<QuantizeSpec> = {}): QuantizeSpec {
  return qualitySpec(`test-${rounding}`, rounding, fields);
}
const mxSpec = (rounding: 'rtn' | 'sr'): QuantizeSpec =>
  spec(rounding, {
    scaleGroup: { size: 32, format: 'ue8m0' },
    tensorScale: 'none',
    target: 'six',
    ceiling: E4M3_MAX,
  });

// -- independent helpers (float64) ------------------------------------------------------------------------------

function transposeOf(x: Matrix): Matrix {
  const out = new Float32Array(x.data.length);
  for (let r = 0; r < x.rows; r++) for (let c = 0; c < x.cols; c++) out[c * x.rows + r] = x.data[r * x.cols + c];
  return { rows: x.cols, cols: x.rows, data: out };
}
function groupAmax(d: ArrayLike<number>, off: number, n: number): number {
  let m = 0;
  for (let i = 0; i < n; i++) if (Number.isFinite(d[off + i])) m = Math.max(m, Math.abs(d[off + i]));
  return m;
}
function scaleOf(q: QuantizedTensor, g: number): number {
  return q.scaleFormat === 'e4m3' ? decodeE4M3(q.scales[g]) : decodeUE8M0(q.scales[g]);
}
/** Largest |error| of rounding to nearest that lands on grid magnitude q: half the larger gap next to q. */
function halfStep(q: number): number {
  const i = GRID.indexOf(q);
  const below = i > 0 ? q - GRID[i - 1] : 0;
  const above = i < GRID.length - 1 ? GRID[i + 1] - q : GRID[i] - GRID[i - 1];
  return Math.max(below, above) / 2;
}
/** q is a nearest grid magnitude of a (within binary32 slack on a), saturating at 6. */
function isNearest(a: number, q: number): boolean {
  const tol = 4 * REL * Math.max(1, a);
  return GRID.every((g) => Math.abs(a - q) <= Math.abs(a - g) + tol);
}
/** q is one of the grid magnitudes around a: between the last one <= a and the first one >= a (binary32 slack). */
function brackets(a: number, q: number): boolean {
  const tol = 4 * REL * Math.max(1, a);
  const lo = Math.max(...GRID.filter((g) => g <= a - tol), 0);
  const hi = Math.min(...GRID.filter((g) => g >= a + tol), 6);
  return GRID.includes(q) && q >= lo && q <= hi;
}
/** The P4 values (3 explicit mantissa bits, unbounded exponent) around z > 0. */
function p4Neighbours(z: number): [number, number] {
  const step = 2 ** (Math.floor(Math.log2(z)) - 3);
  const down = Math.floor(z / step) * step;
  return [down, down === z ? z : down + step];
}
function e4m3Neighbours(c: number): [number, number] {
  let down = 0,
    up = E4M3_MAX;
  for (let code = 0; code < 0x7f; code++) {
    const v = decodeE4M3(code);
    if (v <= c) down = Math.max(down, v);
    if (v >= c) up = Math.min(up, v);
  }
  return [down, up];
}

function assertValid(q: QuantizedTensor, rows: number, cols: number): void {
  assert.is(q.rows, rows);
  assert.is(q.cols, cols);
  assert.is(q.codes.length, rows * cols);
  assert.is(q.scales.length, (rows * cols) / q.groupSize);
  for (const c of q.codes) assert.ok(c < 16, `code ${c}`);
  for (const s of q.scales) assert.ok(q.scaleFormat === 'e4m3' ? s < 0x7f : s < 0xff, `scale code ${s}`);
  assert.ok(q.tensorScale > 0 && Number.isFinite(q.tensorScale) && Math.fround(q.tensorScale) === q.tensorScale);
}

// -- arbitraries ------------------------------------------------------------------------------------------------

const element = fc.oneof(
  { weight: 6, arbitrary: fc.float({ min: -1000, max: 1000, noNaN: true }) },
  { weight: 2, arbitrary: fc.float({ min: Math.fround(-1e-3), max: Math.fround(1e-3), noNaN: true }) },
  { weight: 1, arbitrary: fc.constantFrom(0, -0, 1, -6, 0.25, 0.75) },
);
/** A matrix whose cols are a multiple of `unit`; each row segment gets its own magnitude so groups differ. */
function matrixArb(unit: number, maxUnits: number, maxRows: number): fc.Arbitrary<Matrix> {
  return fc
    .tuple(fc.integer({ min: 1, max: maxRows }), fc.integer({ min: 1, max: maxUnits }))
    .chain(([rows, units]) =>
      fc.tuple(
        fc.constant(rows),
        fc.constant(units * unit),
        fc.array(element, { minLength: rows * units * unit, maxLength: rows * units * unit }),
        fc.array(fc.integer({ min: -12, max: 12 }), { minLength: rows * units, maxLength: rows * units }),
      ),
    )
    .map(([rows, cols, values, exps]) => {
      const data = Float32Array.from(values, (v, i) => v * 2 ** exps[Math.floor(i / unit)]);
      return { rows, cols, data };
    });
}
const seedArb = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });

// -- RTN, SR, 4/6, MXFP4 in computed / caller mode ---------------------------------------------------------------

/**
 * Element bound of a round-to-nearest quantizer with divisor D = s t: the code is a nearest grid point of |x|/D,
 * and |deq - x| is at most half the grid gap next to it, except under saturation (|x|/D > 6). With a normal E4M3
 * scale (relative rounding error <= 2^-4) and T = 6 the computed mode saturates by at most 6 * 17/16 = 6.375, inside
 * the half gap of 6; only an E4M3-subnormal scale (coarser) or a too small caller scale can saturate further.
 */
function checkNearest(x: Matrix, q: QuantizedTensor, callerScale: boolean): void {
  const deq = dequantize(q);
  for (let i = 0; i < x.data.length; i++) {
    const xi = x.data[i];
    if (!Number.isFinite(xi)) continue;
    const s = scaleOf(q, Math.floor(i / q.groupSize));
    const D = s * q.tensorScale;
    const qv = Math.abs(decodeE2M1(q.codes[i]));
    if (D === 0) {
      assert.is(qv, 0);
      continue;
    } // zero-scale group (§5.2)
    const a = Math.abs(xi) / D;
    assert.ok(isNearest(a, qv), `element ${i}: |x|/D = ${a}, code magnitude ${qv}`);
    if (qv !== 0) assert.is(Math.sign(decodeE2M1(q.codes[i])), Math.sign(xi), `sign of element ${i}`);
    if (a > 7) {
      assert.ok(
        callerScale || (q.scaleFormat === 'e4m3' && s < 2 ** -6),
        `element ${i}: saturates (|x|/D = ${a}) with a normal scale`,
      );
      continue;
    }
    const err = Math.abs(deq[i] - xi);
    assert.ok(
      err <= halfStep(qv) * D * (1 + REL) + REL * Math.abs(xi),
      `element ${i}: |deq - x| = ${err} > ${halfStep(qv)} * ${D}`,
    );
  }
}

test('rtn (computed): valid codes, nearest E2M1 point, |deq - x| <= half a grid step, scales <= C', () => {
  for (const C of [448, 256]) {
    fc.assert(
      fc.property(matrixArb(16, 4, 5), seedArb, (x, seed) => {
        const q = quantize(spec('rtn', { ceiling: C }), x, { seed });
        assertValid(q, x.rows, x.cols);
        const m = amax(x);
        assert.is(q.tensorScale, m === 0 ? 1 : Math.fround(m / (6 * C)));
        for (let g = 0; g < q.scales.length; g++) {
          assert.ok(scaleOf(q, g) <= C, `scale ${scaleOf(q, g)} > ${C}`);
          const am = groupAmax(x.data, 16 * g, 16);
          // the scale is the E4M3 value nearest to amax_g / (6 t) (or 1.0 for a zero or underflowing group)
          const [down, up] = e4m3Neighbours(am / (6 * q.tensorScale));
          const s = scaleOf(q, g);
          assert.ok(
            s === down || s === up || (s === 1 && down === 0),
            `group ${g}: scale ${s} not around ${down}..${up}`,
          );
        }
        checkNearest(x, q, false);
      }),
      RUNS,
    );
  }
});

test('sr (computed): codes bracket x/D, never saturate (V = 96/17), scales <= C', () => {
  fc.assert(
    fc.property(matrixArb(16, 4, 5), seedArb, (x, seed) => {
      const q = quantize(spec('sr'), x, { seed });
      assertValid(q, x.rows, x.cols);
      const deq = dequantize(q);
      for (let i = 0; i < x.data.length; i++) {
        const D = scaleOf(q, Math.floor(i / 16)) * q.tensorScale;
        const qv = Math.abs(decodeE2M1(q.codes[i]));
        if (D === 0) {
          assert.is(qv, 0);
          continue;
        }
        const a = Math.abs(x.data[i]) / D;
        // V_sr = 96/17 leaves room for the E4M3 rounding of a normal scale (2^-4): no clipping unless subnormal
        if (scaleOf(q, Math.floor(i / 16)) >= 2 ** -6) {
          assert.ok(a <= 6 * (1 + REL), `SR input ${a} beyond 6: V_sr = ${V_SR} should prevent clipping`);
        } else if (a > 6) {
          assert.is(qv, 6);
          continue;
        }
        assert.ok(brackets(a, qv), `element ${i}: |x|/D = ${a}, code magnitude ${qv}`);
        const step = a < 2 ? 0.5 : a < 4 ? 1 : 2;
        assert.ok(Math.abs(deq[i] - x.data[i]) <= step * D * (1 + REL) + REL * Math.abs(x.data[i]));
      }
      for (let g = 0; g < q.scales.length; g++) assert.ok(scaleOf(q, g) <= 448);
    }),
    RUNS,
  );
});

test('four-six (computed): per group the better candidate; codes nearest for the kept scale; scales <= 1.5 C', () => {
  fc.assert(
    fc.property(matrixArb(16, 4, 5), seedArb, (x, seed) => {
      const q = quantize(spec('four-six'), x, { seed });
      assertValid(q, x.rows, x.cols);
      const t = q.tensorScale;
      const m = amax(x);
      assert.is(t, m === 0 ? 1 : Math.fround(m / (6 * 256)));
      checkNearest(x, q, false);
      const deq = dequantize(q);
      for (let g = 0; g < q.scales.length; g++) {
        const s = scaleOf(q, g);
        assert.ok(s <= 384, `scale ${s} > 1.5 * 256`);
        const am = groupAmax(x.data, 16 * g, 16);
        if (am === 0) continue;
        // the kept scale is candidate 6's or candidate 4's, each the nearest E4M3 to amax/(c t)
        const cands = [6, 4].map((c) => rnE4M3(Math.fround(am / Math.fround(c * t))));
        assert.ok(
          cands.includes(q.scales[g]) || (s === 1 && decodeE4M3(cands[0]) === 0),
          `group ${g}: scale code ${q.scales[g]} not in ${cands}`,
        );
        // and it is not worse than candidate 6 quantized on its own (float64 error, binary32 slack)
        // (the kernel compares binary32 errors: allow each difference d_i to be off by delta = 2^-21 amax_g)
        const D6 = decodeE4M3(cands[0]) * t;
        const delta = 2 ** -21 * am;
        let e6 = 0,
          e = 0,
          tol = 0;
        for (let i = 16 * g; i < 16 * g + 16; i++) {
          const xi = x.data[i];
          const a = Math.abs(xi) / D6;
          const q6 = D6 === 0 ? 0 : GRID.reduce((b, v) => (Math.abs(a - v) < Math.abs(a - b) ? v : b), 0);
          const d6 = Math.abs(xi) - q6 * D6;
          e6 += d6 ** 2;
          e += (xi - deq[i]) ** 2;
          tol += 4 * (Math.abs(d6) + delta) * delta;
        }
        assert.ok(e <= e6 * (1 + 1e-6) + tol, `group ${g}: error ${e} > candidate-6 error ${e6}`);
      }
    }),
    RUNS,
  );
});

test('mxfp4 (rtn, sr): UE8M0 scale = smallest power of two >= amax/6, never saturates, RN nearest / SR brackets', () => {
  fc.assert(
    fc.property(matrixArb(32, 3, 4), seedArb, (x, seed) => {
      for (const rounding of ['rtn', 'sr'] as const) {
        const q = quantize(mxSpec(rounding), x, { seed });
        assertValid(q, x.rows, x.cols);
        assert.is(q.tensorScale, 1);
        assert.is(q.scaleFormat, 'ue8m0');
        for (let g = 0; g < q.scales.length; g++) {
          const am = groupAmax(x.data, 32 * g, 32);
          const s = scaleOf(q, g);
          if (am === 0) {
            assert.is(s, 1);
            continue;
          }
          const want = Math.max(2 ** -127, 2 ** Math.ceil(Math.log2(Math.fround(am / 6))));
          assert.is(s, want, `group ${g}: amax ${am}`);
          for (let i = 32 * g; i < 32 * g + 32; i++) {
            const a = Math.abs(x.data[i]) / s;
            const qv = Math.abs(decodeE2M1(q.codes[i]));
            assert.ok(a <= 6);
            assert.ok(
              rounding === 'rtn' ? isNearest(a, qv) : brackets(a, qv),
              `${rounding} element ${i}: ${a} -> ${qv}`,
            );
          }
        }
      }
    }),
    RUNS,
  );
});

test('caller mode: with t = the computed tensor scale it gives the computed result bit for bit; scales saturate at 448', () => {
  fc.assert(
    fc.property(
      matrixArb(16, 3, 4),
      seedArb,
      seedArb,
      fc.constantFrom<Rounding>('rtn', 'sr', 'four-six', 'ms-eden'),
      (x, seed, signSeed, rounding) => {
        const fields = rounding === 'ms-eden' ? { hadamard: 16 as const } : {};
        const computed = quantize(spec(rounding, fields), x, { seed, signSeed });
        const caller = quantize(spec(rounding, { ...fields, tensorScale: 'caller' }), x, {
          seed,
          signSeed,
          tensorScale: computed.tensorScale,
        });
        assert.equal(caller, computed);
      },
    ),
    RUNS,
  );
  // a tensor scale far too small: every nonzero group saturates at scale 448 and codes at ±6
  const x: Matrix = {
    rows: 1,
    cols: 16,
    data: Float32Array.from({ length: 16 }, (_, i) => (i % 2 ? -1 : 1) * (i + 1)),
  };
  const q = quantize(spec('rtn', { tensorScale: 'caller' }), x, { seed: 0n, tensorScale: 2 ** -20 });
  assert.is(decodeE4M3(q.scales[0]), 448);
  for (let i = 0; i < 16; i++) assert.is(decodeE2M1(q.codes[i]), i % 2 ? -6 : 6);
  assert.throws(() => quantize(spec('rtn', { tensorScale: 'caller' }), x, { seed: 0n }), /tensorScale/);
  assert.throws(() => quantize(spec('rtn'), x, { seed: 0n, tensorScale: 1 }), /tensorScale/);
});

// -- MS-EDEN ----------------------------------------------------------------------------------------------------

/** Checks MS-EDEN (computed) on its rotated input y: RTN codes for s_g, scale = an E4M3 neighbour of S_g * s_g. */
function checkMsEden(y: Matrix, q: QuantizedTensor, C: number, per128: boolean): void {
  const t = q.tensorScale;
  const m = amax(y);
  assert.is(t, m === 0 ? 1 : Math.fround(m / Math.fround(S_EDEN * C)));
  const unit = per128 ? 8 : 1;
  for (let g0 = 0; g0 < q.scales.length; g0 += unit) {
    let num = 0,
      den = 0;
    const base: number[] = [];
    for (let g = g0; g < g0 + unit; g++) {
      const am = groupAmax(y.data, 16 * g, 16);
      const s = decodeE4M3(rnE4M3(Math.fround(am / Math.fround(S_EDEN * t))));
      assert.ok(s <= C);
      base.push(s);
      for (let i = 16 * g; i < 16 * g + 16; i++) {
        const qv = decodeE2M1(q.codes[i]);
        if (s === 0) {
          assert.is(qv, 0);
          continue;
        }
        const v = y.data[i] / (s * t);
        assert.ok(isNearest(Math.abs(v), Math.abs(qv)), `element ${i}: v = ${v}, code ${qv}`);
        // per-16: S in scaled units; per-128: in the input domain (NUMERICS §5.6)
        const w = per128 ? s * t : 1;
        num += v * v * w * w;
        den += v * qv * w * w;
      }
      if (!per128) {
        checkEdenScale(q, g, s, num, den);
        num = den = 0;
      }
    }
    if (per128) base.forEach((s, j) => checkEdenScale(q, g0 + j, s, num, den));
  }
}
function checkEdenScale(q: QuantizedTensor, g: number, s: number, num: number, den: number): void {
  const stored = decodeE4M3(q.scales[g]);
  if (s === 0) {
    assert.is(stored, 1, `zero group ${g} keeps scale 1`);
    return;
  }
  const S = den === 0 ? 1 : num / den;
  const [lo] = e4m3Neighbours(S * s * (1 - 1e-6));
  const [, hi] = e4m3Neighbours(Math.min(448, S * s * (1 + 1e-6)));
  assert.ok(stored >= lo && stored <= hi, `group ${g}: scale ${stored} outside [${lo}, ${hi}] around S*s = ${S * s}`);
}

test('ms-eden (computed, rotated): codes are RTN to s_eden, scale is a stochastic E4M3 rounding of S_g * s_g', () => {
  fc.assert(
    fc.property(
      matrixArb(128, 2, 3),
      seedArb,
      seedArb,
      fc.constantFrom<16 | 128>(16, 128),
      fc.boolean(),
      (x, seed, signSeed, n, per128) => {
        const s = spec('ms-eden', { hadamard: n, correction: per128 ? 'per-128' : 'per-16' });
        const q = quantize(s, x, { seed, signSeed });
        assertValid(q, x.rows, x.cols);
        // the rotated input, formed independently from the sign vector of the sign seed (NUMERICS §3.2, §4)
        const [lo, hi] = splitSeed(signSeed);
        const y: Matrix = {
          rows: x.rows,
          cols: x.cols,
          data: rhtRows(x.data.slice(), x.rows, x.cols, n, signVector(lo, hi, n)),
        };
        assert.equal(quantizerInput(s, x, { seed, signSeed }).data, y.data);
        checkMsEden(y, q, 256, per128);
      },
    ),
    { numRuns: 40, includeErrorInReport: true },
  );
});

// -- one-pass mode ----------------------------------------------------------------------------------------------

const ONE_PASS_SPECS: [string, QuantizeSpec][] = [
  ['rtn', spec('rtn', { tensorScale: 'one-pass', ceiling: 448 })],
  ['sr', spec('sr', { tensorScale: 'one-pass', ceiling: 448 })],
  ['four-six', spec('four-six', { tensorScale: 'one-pass', ceiling: 448 })],
  ['ms-eden', spec('ms-eden', { tensorScale: 'one-pass', ceiling: 448, hadamard: 16 })],
  ['ms-eden per-128', spec('ms-eden', { tensorScale: 'one-pass', ceiling: 448, hadamard: 128, correction: 'per-128' })],
  ['rtn 16x16', spec('rtn', { tensorScale: 'one-pass', ceiling: 448, block: '16x16' })],
];

test('one-pass: results do not depend on how rows are split into pass-A chunks', () => {
  for (const [name, s] of ONE_PASS_SPECS) {
    const unit = s.correction === 'per-128' || s.hadamard === 128 ? 128 : 16;
    fc.assert(
      fc.property(
        matrixArb(unit, 2, 40),
        seedArb,
        seedArb,
        fc.array(fc.integer({ min: 1, max: 39 }), { maxLength: 5 }),
        (x, seed, signSeed, cuts) => {
          const rows = x.rows,
            K = x.cols;
          const bounds = [...new Set([0, ...cuts.filter((c) => c < rows), rows])].sort((a, b) => a - b);
          const codes = new Uint8Array(rows * K);
          const proxies = new Float32Array((rows * K) / 16);
          let max = 0;
          for (let j = 0; j + 1 < bounds.length; j++) {
            const a = onePassA(s, x, bounds[j], bounds[j + 1], { seed, signSeed });
            codes.set(a.codes, bounds[j] * K);
            proxies.set(a.proxies, (bounds[j] * K) / 16);
            max = Math.max(max, a.max);
          }
          const b = onePassB(s, proxies, max, rows, { seed });
          const whole = quantize(s, x, { seed, signSeed });
          assert.equal(codes, whole.codes, `${name}: codes`);
          assert.equal(b.scales, whole.scales, `${name}: scales`);
          assert.is(b.tensorScale, whole.tensorScale, `${name}: tensor scale`);
        },
      ),
      { numRuns: 25, includeErrorInReport: true },
    );
  }
});

test('one-pass: t = 2^k with max proxy / t in (C/2, C]; scales <= C; proxies are P4; error bound vs the proxy', () => {
  for (const [name, s] of ONE_PASS_SPECS) {
    const unit = s.hadamard === 128 ? 128 : 16;
    fc.assert(
      fc.property(matrixArb(unit, 2, 4), seedArb, seedArb, (x0, seed, signSeed) => {
        const x = s.hadamard === null ? x0 : quantizerInput(s, x0, { seed, signSeed });
        const a = onePassA(s, x0, 0, x0.rows, { seed, signSeed });
        const q = quantize(s, x0, { seed, signSeed });
        assertValid(q, x0.rows, x0.cols);
        const t = q.tensorScale;
        assert.is(Math.log2(t), Math.round(Math.log2(t)), `${name}: t = ${t} is a power of two`);
        if (a.max > 0) assert.ok(a.max / t <= 448 && a.max / t > 224, `${name}: max/t = ${a.max / t}`);
        else assert.is(t, 1);
        const deq = dequantize(q);
        const eden = s.rounding === 'ms-eden';
        for (let g = 0; g < q.scales.length; g++) {
          const c = a.proxies[g];
          const sc = decodeE4M3(q.scales[g]);
          assert.ok(sc <= 448);
          // a P4 value keeps 3 explicit mantissa bits
          assert.is(new Uint32Array(Float32Array.of(c).buffer)[0] & 0xfffff, 0, `${name}: proxy ${c} is not P4`);
          if (c === 0) {
            assert.is(sc, 1, 'zero group');
            continue;
          }
          if (c / t >= 2 ** -6) assert.is(sc * t, c, `${name}: a normal scale is exact`);
          else assert.ok(Math.abs(sc * t - c) <= 2 ** -9 * t, `${name}: a subnormal scale is within one E4M3 step`);
          // the divisor the codes were rounded against: the kept proxy, or MS-EDEN's uncorrected p_g (§5.1, §5.6)
          const D = eden ? rnP4(Math.fround(groupAmax(x.data, 16 * g, 16) / S_EDEN)) : c;
          let num = 0,
            den = 0;
          for (let i = 16 * g; i < 16 * g + 16; i++) {
            const xi = x.data[i];
            if (!Number.isFinite(xi)) continue;
            const qv = Math.abs(decodeE2M1(q.codes[i]));
            const ok = s.rounding === 'sr' ? brackets(Math.abs(xi) / D, qv) : isNearest(Math.abs(xi) / D, qv);
            assert.ok(ok, `${name} element ${i}: ${Math.abs(xi) / D} -> ${qv}`);
            num += (xi / D) ** 2;
            den += (Math.abs(xi) / D) * qv;
            if (eden) continue;
            // |deq - x| <= |x - q c| + |q| |s t - c|
            const step = s.rounding === 'sr' ? 2 * halfStep(qv) : halfStep(qv);
            const bound = step * c * (1 + REL) + qv * Math.abs(sc * t - c) + REL * (Math.abs(xi) + Math.abs(deq[i]));
            assert.ok(Math.abs(deq[i] - xi) <= bound, `${name} element ${i}: ${Math.abs(deq[i] - xi)} > ${bound}`);
          }
          if (eden && s.correction === 'per-16') {
            // c_g is SR_P4(S_g * p_g): one of the two P4 neighbours of S_g * p_g
            const z = (den === 0 ? 1 : num / den) * D;
            const [lo] = p4Neighbours(z * (1 - 1e-6));
            const [, hi] = p4Neighbours(z * (1 + 1e-6));
            assert.ok(c >= lo && c <= hi, `${name} group ${g}: c = ${c} not around S*p = ${z}`);
          }
        }
      }),
      { numRuns: 30, includeErrorInReport: true },
    );
  }
});

// -- seeds ------------------------------------------------------------------------------------------------------

test('same seed -> same bits; a different seed changes SR codes and MS-EDEN scales but not RTN / 4/6', () => {
  const x = gaussianMatrix(8, 256, 5);
  const specs: [Rounding, Partial<QuantizeSpec>, 'codes' | 'scales' | null][] = [
    ['rtn', {}, null],
    ['four-six', {}, null],
    ['sr', {}, 'codes'],
    ['ms-eden', {}, 'scales'],
    ['ms-eden', { tensorScale: 'one-pass', ceiling: 448 }, 'scales'],
    ['sr', { tensorScale: 'one-pass', ceiling: 448 }, 'codes'],
  ];
  for (const [rounding, fields, changes] of specs) {
    const s = spec(rounding, fields);
    const a = quantize(s, x, { seed: 11n, signSeed: 7n });
    assert.equal(quantize(s, x, { seed: 11n, signSeed: 7n }), a, `${rounding}: same seed`);
    const b = quantize(s, x, { seed: 12n, signSeed: 7n });
    if (changes === null) assert.equal(b, a, `${rounding}: deterministic`);
    else {
      let differ = 0;
      for (let i = 0; i < a[changes].length; i++) if (a[changes][i] !== b[changes][i]) differ++;
      assert.ok(differ > a[changes].length / 10, `${rounding}: only ${differ} ${changes} differ between seeds`);
    }
  }
  // seeds differing only in the high 32 bits
  const s = spec('sr');
  assert.not.equal(quantize(s, x, { seed: 1n }).codes, quantize(s, x, { seed: 1n + (1n << 32n) }).codes);
});

// Every quantizer that rotates, in each tensor-scale mode and orientation.
const ROTATING: [string, QuantizeSpec][] = [
  ['ms-eden computed', spec('ms-eden')],
  ['ms-eden per-128', spec('ms-eden', { correction: 'per-128' })],
  ['ms-eden one-pass', spec('ms-eden', { tensorScale: 'one-pass', ceiling: 448 })],
  ['ms-eden transposed', spec('ms-eden', { transposedInput: true })],
  ['sr rht16', spec('sr', { hadamard: 16 })],
  ['rtn rht16', spec('rtn', { hadamard: 16 })],
];

test('the Hadamard signs are keyed by signSeed, never by seed (NUMERICS §3.2): quantize = quantize of x rotated by signVector(signSeed)', () => {
  const x = gaussianMatrix(4, 256, 17);
  let distinguished = 0;
  fc.assert(
    fc.property(seedArb, seedArb, (seed, signSeed) => {
      fc.pre(seed !== signSeed);
      for (const [name, s] of ROTATING) {
        const n = s.hadamard as number;
        const input = s.transposedInput ? transposeOf(x) : x;
        const plain: QuantizeSpec = { ...s, hadamard: null, transposedInput: false };
        const rotatedBy = (key: bigint): Matrix => ({
          rows: x.rows,
          cols: x.cols,
          data: rhtRows(x.data, x.rows, x.cols, n, signVector(...splitSeed(key), n)),
        });
        const q = quantize(s, input, { seed, signSeed });
        // the rotation is that of signSeed; the stochastic draws are those of seed
        assert.equal(q, quantize(plain, rotatedBy(signSeed), { seed }), `${name}: signs of signSeed, noise of seed`);
        assert.equal(
          quantizerInput(s, input, { seed, signSeed }).data,
          rotatedBy(signSeed).data,
          `${name}: rotated input`,
        );
        assert.equal(
          quantizerInput(s, input, { seed: seed ^ 1n, signSeed }).data,
          rotatedBy(signSeed).data,
          `${name}: the seed does not move the signs`,
        );
        // what a quantizer that keys its signs by seed would produce: different (unless the two sign vectors agree)
        if (signVector(...splitSeed(seed), n).some((v, j) => v !== signVector(...splitSeed(signSeed), n)[j])) {
          assert.not.equal(q, quantize(plain, rotatedBy(seed), { seed }), `${name}: signs keyed by seed would differ`);
          distinguished++;
        }
      }
    }),
    { numRuns: 15, includeErrorInReport: true },
  );
  assert.ok(distinguished > 0);
  // RTN after a rotation has no stochastic draw: only signSeed matters
  const rtn = spec('rtn', { hadamard: 16 });
  assert.equal(quantize(rtn, x, { seed: 1n, signSeed: 5n }), quantize(rtn, x, { seed: 2n, signSeed: 5n }));
  assert.not.equal(
    quantize(rtn, x, { seed: 1n, signSeed: 5n }).codes,
    quantize(rtn, x, { seed: 1n, signSeed: 6n }).codes,
  );
  // a rotating quantizer needs its sign seed; one that does not rotate ignores it
  assert.throws(() => quantize(spec('ms-eden'), x, { seed: 0n }), /signSeed/);
  assert.equal(quantize(spec('sr'), x, { seed: 3n, signSeed: 4n }), quantize(spec('sr'), x, { seed: 3n }));
});

test('two operands of one GEMM: the same signSeed and different seeds -> the same rotation, different SR bits', () => {
  // The backward GEMM dX = E . (W^T)^T reduces both operands over the same K. Give them equal data, so that group g
  // of one and group g of the other hold the same values: only the seeds tell their noise apart.
  const K = 256;
  const e = gaussianMatrix(8, K, 31);
  const w = gaussianMatrix(8, K, 31);
  const signSeed = 0x5eedn;
  const seedE = 101n,
    seedW = 202n;
  const cases: [string, QuantizeSpec, 'codes' | 'scales'][] = [
    ['sr rht16', spec('sr', { hadamard: 16 }), 'codes'],
    ['ms-eden', spec('ms-eden'), 'scales'],
    ['ms-eden one-pass', spec('ms-eden', { tensorScale: 'one-pass', ceiling: 448 }), 'scales'],
  ];
  for (const [name, s, noisy] of cases) {
    // the same rotation: both operands see their input rotated by the sign vector of signSeed
    const ye = quantizerInput(s, e, { seed: seedE, signSeed });
    const yw = quantizerInput(s, w, { seed: seedW, signSeed });
    assert.equal(ye.data, yw.data, `${name}: one rotation for both operands`);
    const qe = quantize(s, e, { seed: seedE, signSeed });
    const qw = quantize(s, w, { seed: seedW, signSeed });
    // MS-EDEN's codes depend on the rotation only: equal; its scale roundings and SR's codes are independent draws
    if (s.rounding === 'ms-eden') assert.equal(qw.codes, qe.codes, `${name}: codes`);
    let differ = 0;
    for (let i = 0; i < qe[noisy].length; i++) if (qe[noisy][i] !== qw[noisy][i]) differ++;
    assert.ok(
      differ > qe[noisy].length / 10,
      `${name}: only ${differ} of ${qe[noisy].length} ${noisy} differ between the operands`,
    );
    // with one seed for both (the old contract) the two operands would be the same draw: fully correlated noise
    assert.equal(quantize(s, w, { seed: seedE, signSeed }), qe, `${name}: a shared seed shares the noise`);
  }
  // the shared rotation cancels in the product: <H a, H b> = <a, b> to binary32 precision, row by row
  const a = gaussianMatrix(3, K, 41);
  const b = gaussianMatrix(5, K, 42);
  const s = spec('ms-eden');
  const ya = quantizerInput(s, a, { seed: 1n, signSeed });
  const yb = quantizerInput(s, b, { seed: 2n, signSeed });
  for (let i = 0; i < a.rows; i++) {
    for (let j = 0; j < b.rows; j++) {
      let rotated = 0,
        plain = 0,
        norm = 0;
      for (let k = 0; k < K; k++) {
        rotated += ya.data[i * K + k] * yb.data[j * K + k];
        plain += a.data[i * K + k] * b.data[j * K + k];
        norm += Math.abs(a.data[i * K + k] * b.data[j * K + k]);
      }
      assert.ok(Math.abs(rotated - plain) <= 2 ** -16 * norm, `(${i}, ${j}): ${rotated} vs ${plain}`);
    }
  }
});

// -- transposed input and requant ---------------------------------------------------------------------------------

test('transposedInput gives the same bits as quantizing the explicitly transposed matrix', () => {
  const cases: [Rounding, Partial<QuantizeSpec>][] = [
    ['rtn', {}],
    ['sr', {}],
    ['four-six', {}],
    ['ms-eden', {}],
    ['ms-eden', { tensorScale: 'one-pass', ceiling: 448 }],
    ['rtn', { block: '16x16' }],
    ['sr', { hadamard: 16 }],
  ];
  for (const [rounding, fields] of cases) {
    fc.assert(
      fc.property(matrixArb(128, 2, 20), seedArb, seedArb, (x, seed, signSeed) => {
        const direct = quantize(spec(rounding, fields), x, { seed, signSeed });
        const viaT = quantize(spec(rounding, { ...fields, transposedInput: true }), transposeOf(x), { seed, signSeed });
        assert.equal(viaT, direct, `${rounding} ${JSON.stringify(fields)}`);
      }),
      { numRuns: 10, includeErrorInReport: true },
    );
  }
  const mx = quantize(mxSpec('sr'), gaussianMatrix(4, 64, 1), { seed: 3n });
  assert.equal(
    quantize({ ...mxSpec('sr'), transposedInput: true }, transposeOf(gaussianMatrix(4, 64, 1)), { seed: 3n }),
    mx,
  );
});

test('requantize = quantize of the transposed dequantized NVFP4 tensor (§5.9)', () => {
  const x = gaussianMatrix(128, 48, 2);
  const a = quantize(spec('four-six'), x, { seed: 1n });
  for (const tensorScale of ['computed', 'one-pass'] as const) {
    const fields = { tensorScale, ceiling: tensorScale === 'one-pass' ? 448 : 256 };
    const r = requantize(spec('ms-eden', { ...fields, input: 'nvfp4', transposedInput: true }), a, {
      seed: 9n,
      signSeed: 10n,
    });
    assert.is(r.rows, 48);
    assert.is(r.cols, 128);
    const xt: Matrix = transposeOf({ rows: 128, cols: 48, data: dequantize(a) });
    assert.equal(r, quantize(spec('ms-eden', fields), xt, { seed: 9n, signSeed: 10n }));
  }
  assert.throws(() => requantize(spec('ms-eden'), a, { seed: 0n }), /nvfp4/);
});

// -- zero groups, NaN, Inf (§5.2) -----------------------------------------------------------------------------

test('zero groups store scale 1.0 and signed-zero codes; NaN -> 0x7, ±Inf -> ±6, amax skips them', () => {
  const row = [
    // group 0: +0 and -0 only
    ...Array.from({ length: 16 }, (_, i) => (i % 2 ? -0 : 0)),
    // group 1: zeros with NaN and ±Inf (amax 0: still a zero group)
    NaN,
    Infinity,
    -Infinity,
    -0,
    ...Array(12).fill(0),
    // group 2: finite values with NaN and ±Inf
    NaN,
    Infinity,
    -Infinity,
    3,
    -1.5,
    0.5,
    ...Array(10).fill(0.75),
  ];
  const x: Matrix = { rows: 1, cols: 48, data: Float32Array.from(row) };
  const cases: [string, QuantizeSpec][] = [
    ['rtn', spec('rtn')],
    ['sr', spec('sr')],
    ['four-six', spec('four-six')],
    ['rtn one-pass', spec('rtn', { tensorScale: 'one-pass', ceiling: 448 })],
    ['ms-eden (no rotation)', spec('ms-eden', { hadamard: null })],
    ['ms-eden one-pass (no rotation)', spec('ms-eden', { hadamard: null, tensorScale: 'one-pass', ceiling: 448 })],
  ];
  for (const [name, s] of cases) {
    const q = quantize(s, x, { seed: 4n });
    assert.is(q.scales[0], 0x38, `${name}: zero group scale`);
    assert.is(q.scales[1], 0x38, `${name}: zero group with NaN/Inf scale`);
    for (let i = 0; i < 16; i++) assert.is(q.codes[i], i % 2 ? 0x8 : 0x0, `${name}: signed zero code ${i}`);
    assert.equal(Array.from(q.codes.subarray(16, 20)), [0x7, 0x7, 0xf, 0x8], `${name}: NaN/Inf codes in a zero group`);
    assert.equal(Array.from(q.codes.subarray(32, 35)), [0x7, 0x7, 0xf], `${name}: NaN/Inf codes`);
    if (s.tensorScale === 'computed')
      assert.is(
        q.tensorScale,
        Math.fround(3 / Math.fround((s.rounding === 'ms-eden' ? S_EDEN : s.rounding === 'sr' ? V_SR : 6) * s.ceiling)),
        `${name}: amax skips non-finite`,
      );
    // the finite values of group 2 still round against amax 3
    const deq = dequantize(q);
    assert.ok(
      Math.abs(deq[35] - 3) < 0.3 && Math.abs(deq[36] + 1.5) < 0.3 && Math.abs(deq[37] - 0.5) < 0.3,
      `${name}: finite values of group 2`,
    );
  }
  // all-zero tensor: t = 1
  const z = quantize(spec('rtn'), { rows: 2, cols: 16, data: new Float32Array(32) }, { seed: 0n });
  assert.is(z.tensorScale, 1);
  assert.equal(Array.from(z.scales), [0x38, 0x38]);
  const zp = quantize(
    spec('ms-eden', { tensorScale: 'one-pass', ceiling: 448 }),
    { rows: 1, cols: 128, data: new Float32Array(128) },
    { seed: 0n, signSeed: 1n },
  );
  assert.is(zp.tensorScale, 1);
  assert.ok(zp.scales.every((s) => s === 0x38));
  // MXFP4 zero group: UE8M0 1.0 (code 127)
  const mz = quantize(mxSpec('rtn'), { rows: 1, cols: 32, data: new Float32Array(32) }, { seed: 0n });
  assert.is(mz.scales[0], 127);
});

test('a group whose computed scale rounds to 0 is a zero group (scale 1.0, signed zeros)', () => {
  // amax 1 in group 0; group 1 tiny: amax_g/(6t) = 1e-6 * 448 < 2^-10, so RN_E4M3 gives 0
  const data = new Float32Array(32);
  data[0] = 1;
  for (let i = 16; i < 32; i++) data[i] = (i % 2 ? -1 : 1) * 1e-6;
  const q = quantize(spec('rtn'), { rows: 1, cols: 32, data }, { seed: 0n });
  assert.is(q.scales[1], 0x38);
  for (let i = 16; i < 32; i++) assert.is(q.codes[i], i % 2 ? 0x8 : 0x0);
});

// -- 16x16 blocks (§5.7) ------------------------------------------------------------------------------------------

test('16x16: each block scale is RN_E4M3(block amax / (6 t)), equal across its 16 rows (partial last block too)', () => {
  fc.assert(
    fc.property(matrixArb(16, 3, 40), seedArb, (x, seed) => {
      const q = quantize(spec('rtn', { block: '16x16' }), x, { seed });
      assertValid(q, x.rows, x.cols);
      const Kb = x.cols / 16;
      for (let b0 = 0; b0 < x.rows; b0 += 16) {
        for (let kb = 0; kb < Kb; kb++) {
          let am = 0;
          for (let r = b0; r < Math.min(x.rows, b0 + 16); r++)
            am = Math.max(am, groupAmax(x.data, r * x.cols + 16 * kb, 16));
          const code = rnE4M3(Math.fround(am / Math.fround(6 * q.tensorScale)));
          const want = am === 0 || decodeE4M3(code) === 0 ? 0x38 : code;
          for (let r = b0; r < Math.min(x.rows, b0 + 16); r++)
            assert.is(q.scales[r * Kb + kb], want, `row ${r} block ${kb}`);
        }
      }
      checkNearest(x, q, false);
      // the transpose shares the scales: quantizing x^T (along the other dimension) gives the transposed scale grid
      if (x.rows % 16 === 0) {
        const qt = quantize(spec('rtn', { block: '16x16' }), transposeOf(x), { seed });
        for (let r = 0; r < x.rows; r++)
          for (let kb = 0; kb < Kb; kb++) {
            assert.is(qt.scales[16 * kb * (x.rows / 16) + Math.floor(r / 16)], q.scales[r * Kb + kb]);
          }
      }
    }),
    RUNS,
  );
});

// -- shapes ---------------------------------------------------------------------------------------------------------

test('shapes are refused before any work (§8)', () => {
  const x = (rows: number, cols: number): Matrix => ({ rows, cols, data: new Float32Array(rows * cols) });
  assert.throws(() => quantize(spec('rtn'), x(2, 24), { seed: 0n }), /multiple of 16/);
  assert.throws(() => quantize(mxSpec('rtn'), x(2, 48), { seed: 0n }), /multiple of 32/);
  assert.throws(() => quantize(spec('ms-eden'), x(2, 64), { seed: 0n }), /Hadamard/);
  assert.throws(
    () => quantize(spec('ms-eden', { hadamard: 16, correction: 'per-128' }), x(2, 64), { seed: 0n }),
    /per-128/,
  );
  assert.throws(() => quantize(spec('sr', { block: '16x16' }), x(16, 16), { seed: 0n }), /16x16/);
  assert.throws(() => onePassA(spec('rtn'), x(2, 16), 0, 2, { seed: 0n }), /one-pass/);
  assert.throws(() => onePassA(spec('rtn', { tensorScale: 'one-pass' }), x(2, 16), 1, 3, { seed: 0n }), /row range/);
});

test.run();
