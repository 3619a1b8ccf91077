// The GEMM reference and its error bound (NUMERICS §6), against a naive float64 dot product over values decoded
// here from codes and scales, and against bounds worked out by hand.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { decodeE2M1, decodeE4M3 } from '../reference/formats.ts';
import { gammaK, gemmErrorBound, gemmKernelBound, gemmReference, roundOutput } from '../reference/gemm.ts';
import { quantize } from '../reference/quantize.ts';
import { gaussianMatrix, type QuantizedTensor } from '../reference/tensor.ts';
import { qualitySpec } from '../reference/quality.ts';

/** An NVFP4 tensor from explicit codes and scales. */
function nvfp4(rows: number, cols: number, codes: number[], scales: number[], t: number): QuantizedTensor {
  return {
    rows,
    cols,
    groupSize: 16,
    scaleFormat: 'e4m3',
    codes: Uint8Array.from(codes),
    scales: Uint8Array.from(scales),
    tensorScale: t,
  };
}
const fill = (n: number, v: number) => Array<number>(n).fill(v);

/** Naive C[m][n] = tA tB sum_k a b with every value decoded here; summed from k = K-1 down (another order). */
function naive(a: QuantizedTensor, b: QuantizedTensor): number[][] {
  const val = (q: QuantizedTensor, r: number, k: number) =>
    decodeE2M1(q.codes[r * q.cols + k]) * decodeE4M3(q.scales[r * (q.cols / 16) + Math.floor(k / 16)]);
  const out: number[][] = [];
  for (let m = 0; m < a.rows; m++) {
    out.push([]);
    for (let n = 0; n < b.rows; n++) {
      let s = 0;
      for (let k = a.cols - 1; k >= 0; k--) s += val(a, m, k) * val(b, n, k);
      out[m].push(a.tensorScale * b.tensorScale * s);
    }
  }
  return out;
}

const codesArb = (n: number) => fc.array(fc.integer({ min: 0, max: 15 }), { minLength: n, maxLength: n });
const scalesArb = (n: number) => fc.array(fc.integer({ min: 0, max: 0x7e }), { minLength: n, maxLength: n });
const scaleArb = fc.float({ min: Math.fround(2 ** -20), max: 1000, noNaN: true });

const operandsArb = fc
  .tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 4 }))
  .chain(([M, N, Kg]) =>
    fc
      .tuple(codesArb(M * 16 * Kg), scalesArb(M * Kg), codesArb(N * 16 * Kg), scalesArb(N * Kg), scaleArb, scaleArb)
      .map(([ca, sa, cb, sb, ta, tb]) => [nvfp4(M, 16 * Kg, ca, sa, ta), nvfp4(N, 16 * Kg, cb, sb, tb)] as const),
  );

test('gemmReference = naive float64 dot product of decoded operands (random codes, scales, tensor scales)', () => {
  fc.assert(
    fc.property(operandsArb, ([a, b]) => {
      const ref = gemmReference(a, b);
      const want = naive(a, b);
      const M = a.rows,
        N = b.rows,
        K = a.cols;
      assert.is(ref.length, M * N);
      for (let m = 0; m < M; m++)
        for (let n = 0; n < N; n++) {
          // both sum exact products in binary64 and differ only in order: within K ulps of sum |a b| each
          let mag = 0;
          for (let k = 0; k < K; k++) {
            mag += Math.abs(
              decodeE2M1(a.codes[m * K + k]) *
                decodeE4M3(a.scales[m * (K / 16) + (k >> 4)]) *
                decodeE2M1(b.codes[n * K + k]) *
                decodeE4M3(b.scales[n * (K / 16) + (k >> 4)]),
            );
          }
          const tol = 2 * K * 2 ** -53 * Math.abs(a.tensorScale * b.tensorScale) * mag;
          assert.ok(Math.abs(ref[m * N + n] - want[m][n]) <= tol, `C[${m}][${n}]: ${ref[m * N + n]} vs ${want[m][n]}`);
        }
    }),
    { numRuns: 100 },
  );
});

test('gemmReference is exact on small-integer data and ignores tensor scales until alpha', () => {
  // A = [1 2 3 ... ] pattern with scale 2, B = alternating ±1.5 with scale 0.5; t_A = 3, t_B = 0.25
  const K = 32;
  const codesA = Array.from({ length: K }, (_, k) => k % 8); // 0, .5, 1, 1.5, 2, 3, 4, 6
  const codesB = Array.from({ length: K }, (_, k) => (k % 2 ? 0xb : 0x3)); // -1.5, +1.5
  const a = nvfp4(1, K, codesA, [0x40, 0x40], 3); // 0x40 = 2.0
  const b = nvfp4(1, K, codesB, [0x30, 0x30], 0.25); // 0x30 = 0.5
  // by hand: per 8 codes, sum_k sign_k * g_k * 2 * 1.5 * 0.5 with signs + - + - ...:
  // (0 - .5 + 1 - 1.5 + 2 - 3 + 4 - 6) * 1.5 = -4 * 1.5 = -6, four times -> -24; alpha = 0.75 -> -18
  const ref = gemmReference(a, b);
  assert.is(ref[0], -18);
  assert.equal(Array.from(roundOutput(ref, 'f32')), [-18]);
  assert.equal(Array.from(roundOutput(ref, 'bf16')), [-18]);
});

test('the bound by hand: K = 16 ones; K = 16 cancelling; bf16 output', () => {
  const one = fill(16, 0x2),
    cancel = Array.from({ length: 16 }, (_, k) => (k % 2 ? 0xa : 0x2));
  const a = nvfp4(1, 16, one, [0x38], 1);
  const b = nvfp4(1, 16, one, [0x38], 1);
  const c = nvfp4(1, 16, cancel, [0x38], 1);
  // gamma_16 = 16u / (1 - 16u) = 2^-20 / (1 - 2^-20)
  assert.is(gammaK(16), 2 ** -20 / (1 - 2 ** -20));
  const ref = gemmReference(a, b);
  assert.is(ref[0], 16);
  // f32: gamma_16 * 16 + 16 * 2^-24 = 2^-16 / (1 - 2^-20) + 2^-20
  assert.is(gemmErrorBound(a, b, ref, 'f32')[0], 2 ** -16 / (1 - 2 ** -20) + 2 ** -20);
  // bf16: gamma_16 * 16 + 16 * 2^-8 = 2^-16 / (1 - 2^-20) + 2^-4
  assert.is(gemmErrorBound(a, b, ref, 'bf16')[0], 2 ** -16 / (1 - 2 ** -20) + 2 ** -4);
  // cancelling terms: ref 0, the bound is alpha * gamma_16 * sum |a b| = 16 gamma_16
  const r0 = gemmReference(a, c);
  assert.is(r0[0], 0);
  assert.is(gemmErrorBound(a, c, r0, 'f32')[0], 16 * gammaK(16));
  // alpha enters the first term: t_A = 4, t_B = 0.5 -> alpha 2
  const a4 = { ...a, tensorScale: 4 },
    b2 = { ...c, tensorScale: 0.5 };
  assert.is(gemmErrorBound(a4, b2, gemmReference(a4, b2), 'f32')[0], 2 * 16 * gammaK(16));
});

test('the bound holds for a simulated fp32-accumulating kernel on quantized Gaussian operands', () => {
  const s = qualitySpec('g', 'four-six');
  const K = 256;
  const a = quantize(s, gaussianMatrix(16, K, 1), { seed: 0n });
  const b = quantize(s, gaussianMatrix(12, K, 2), { seed: 0n });
  const ref = gemmReference(a, b);
  const f = Math.fround;
  for (const output of ['f32', 'bf16'] as const) {
    const bound = gemmErrorBound(a, b, ref, output);
    const out = roundOutput(ref, output);
    for (let m = 0; m < 16; m++)
      for (let n = 0; n < 12; n++) {
        // the emulated sm_90a path: exact products, binary32 accumulation, binary32 alpha in the epilogue
        let acc = 0;
        for (let k = 0; k < K; k++) {
          const av = decodeE2M1(a.codes[m * K + k]) * decodeE4M3(a.scales[m * 16 + (k >> 4)]);
          const bv = decodeE2M1(b.codes[n * K + k]) * decodeE4M3(b.scales[n * 16 + (k >> 4)]);
          acc = f(acc + av * bv);
        }
        let c = f(f(a.tensorScale * b.tensorScale) * acc);
        if (output === 'bf16') c = roundOutput(Float64Array.of(c), 'bf16')[0];
        const i = m * 12 + n;
        assert.ok(Math.abs(c - ref[i]) <= bound[i], `${output} C[${m}][${n}]: |${c} - ${ref[i]}| > ${bound[i]}`);
        assert.ok(Math.abs(out[i] - ref[i]) <= bound[i]);
      }
  }
});

/** binary32 addition rounded toward zero (the tensor core may truncate its additions, NUMERICS §6.2). */
function addTruncated(x: number, y: number): number {
  const exact = x + y; // exact in binary64 for two binary32 values of close exponents; else rounding is harmless here
  const r = Math.fround(exact);
  if (Math.abs(r) <= Math.abs(exact)) return r;
  const bits = new Int32Array(new Float32Array([r]).buffer);
  bits[0] -= 1; // one ulp toward zero (r != 0 here)
  return new Float32Array(bits.buffer)[0];
}

test('gemmKernelBound covers K split over c consumers (NUMERICS §6.2): truncating chains, ordered partials', () => {
  // All-positive products (codes 1..7) with E4M3 scales over their whole normal range, so that the partial sums
  // round often and the truncation errors add up; K = 1344 is 10.5 K blocks of 128, so the split has a ragged last
  // block and, for c = 4, consumers with 2 or 3 blocks.
  const K = 1344,
    BK = 128;
  let seed = 7;
  const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const operand = (rows: number) =>
    nvfp4(
      rows,
      K,
      Array.from({ length: rows * K }, () => 1 + Math.floor(next() * 7)),
      Array.from({ length: (rows * K) / 16 }, () => 0x08 + Math.floor(next() * (0x7e - 0x08))),
      1,
    );
  const a = operand(4),
    b = operand(6);
  const ref = gemmReference(a, b);
  const bound = gemmKernelBound(a, b, ref, 'f32');
  const f = Math.fround;
  let worst = 0;
  for (const c of [1, 2, 4])
    for (let m = 0; m < 4; m++)
      for (let n = 0; n < 6; n++) {
        const partial = new Array<number>(c).fill(0);
        for (let k = 0; k < K; k++) {
          const av = decodeE2M1(a.codes[m * K + k]) * decodeE4M3(a.scales[m * (K / 16) + (k >> 4)]);
          const bv = decodeE2M1(b.codes[n * K + k]) * decodeE4M3(b.scales[n * (K / 16) + (k >> 4)]);
          const w = Math.floor(k / BK) % c;
          partial[w] = addTruncated(partial[w], av * bv);
        }
        let acc = partial[0];
        for (let w = 1; w < c; w++) acc = f(acc + partial[w]);
        const out = f(f(a.tensorScale * b.tensorScale) * acc);
        const i = m * 6 + n;
        assert.ok(Math.abs(out - ref[i]) <= bound[i], `c = ${c}, C[${m}][${n}]: |${out} - ${ref[i]}| > ${bound[i]}`);
        worst = Math.max(worst, Math.abs(out - ref[i]) / bound[i]);
      }
  // the simulation is not trivially inside the bound: truncation uses a real share of it
  assert.ok(worst > 0.1, `worst error / bound = ${worst}`);
});

test('roundOutput rounds binary64 to bf16 once (no double rounding through binary32)', () => {
  // 1 + 2^-8 + 2^-30: binary32 gives 1 + 2^-8, a bf16 midpoint; the exact value is above it -> 1 + 2^-7
  assert.is(roundOutput(Float64Array.of(1 + 2 ** -8 + 2 ** -30), 'bf16')[0], 1 + 2 ** -7);
  assert.is(roundOutput(Float64Array.of(-(1 + 2 ** -8 + 2 ** -30)), 'bf16')[0], -(1 + 2 ** -7));
  assert.is(roundOutput(Float64Array.of(1 + 2 ** -8 - 2 ** -30), 'bf16')[0], 1);
  // an exact tie goes to even
  assert.is(roundOutput(Float64Array.of(1 + 2 ** -8), 'bf16')[0], 1);
  assert.is(roundOutput(Float64Array.of(1 + 3 * 2 ** -8), 'bf16')[0], 1 + 2 ** -6);
  assert.is(roundOutput(Float64Array.of(1 + 2 ** -30), 'f32')[0], 1);
});

test('K mismatch is refused', () => {
  const a = nvfp4(1, 16, fill(16, 0), [0x38], 1);
  const b = nvfp4(1, 32, fill(32, 0), [0x38, 0x38], 1);
  assert.throws(() => gemmReference(a, b), /K mismatch/);
});

test.run();
