// GPU correctness suite of the NVFP4 GEMMs (NUMERICS §6.2). fast-check draws shapes (m incl. 1, 7, 127, 129; n a
// multiple of 16; k a multiple of 32, incl. ragged K blocks) and operands in two regimes:
//   exact     random codes, E4M3 scales 2^-3..2^-1, power-of-two tensor scales: every partial sum is exact in fp32
//             for k <= 7281 (proof at exactOperand, NUMERICS §6.2), so c must equal the binary64 reference rounded
//             once to the output type, bit for bit;
//   quantized N(0, sigma) matrices (sigma from 2^-20 to 2^20) quantized by the reference RTN quantizer: c must lie
//             within gemmKernelBound of the binary64 reference.
// Outputs start poisoned; scale padding bytes (groups past k, rows past m or n) are NaN, which must never reach c.
import fc from 'fast-check';
import type { GemmSpec, QuantizeSpec } from '../../dsl/types.ts';
import { gemmKernelBound, gemmReference, roundOutput } from '../../reference/gemm.ts';
import { quantize } from '../../reference/quantize.ts';
import { gaussianMatrix, type QuantizedTensor } from '../../reference/tensor.ts';
import { bf16BitsToF32, f32ToBf16Bits } from '../../reference/fp32.ts';
import { layoutScales, packCodes, scaleOffset128x4 } from '../../reference/layout.ts';
import { GpuRunner, type BufferArg } from './client.ts';
import { scalarBytes } from './cases.ts';

export interface GemmCase {
  m: number;
  n: number;
  k: number;
  regime: 'exact' | 'quantized';
  sigmaLog2: number;
  dataSeed: number;
}

export function gemmCaseArbitrary(maxM = 300): fc.Arbitrary<GemmCase> {
  return fc.record({
    m: fc.oneof(fc.constantFrom(1, 7, 64, 127, 128, 129), fc.integer({ min: 1, max: maxM })),
    n: fc.oneof(
      fc.constantFrom(16, 48, 128, 256, 272),
      fc.integer({ min: 1, max: 40 }).map((x) => 16 * x),
    ),
    k: fc.integer({ min: 1, max: 14 }).map((x) => 32 * x),
    regime: fc.constantFrom('exact' as const, 'quantized' as const),
    sigmaLog2: fc.integer({ min: -20, max: 20 }),
    dataSeed: fc.integer({ min: 0, max: 1 << 30 }),
  });
}

/** xorshift32 stream for the exact regime. */
export function rng(seed: number): () => number {
  let s = (seed ^ 0x9e3779b9) >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

/**
 * Random codes, power-of-two E4M3 scales in [2^-3, 2^-1], tensor scale 2^e, e in [-4, 4].
 * Why every fp32 partial sum is exact for k <= 7281 (NUMERICS §6.2): an element is e2m1 * s (times a power of two
 * common to the operand), |e2m1| in {0, 0.5 .. 6}, s in {2^-3, 2^-2, 2^-1}, so it is a multiple of 2^-4 with
 * magnitude <= 3; a product is a multiple of 2^-8 with magnitude <= 9; any partial sum of k products is a multiple
 * of 2^-8 with magnitude <= 9k < 2^16 = 2^24 * 2^-8 when k <= 7281, hence representable in binary32 (24-bit
 * significand), whatever the order of additions. (With scales up to 2^2 the product reaches 576 and the bound is
 * k <= 113.) The tensor scales multiply in the epilogue only.
 */
export const EXACT_MAX_K = 7281;
function exactOperand(rows: number, cols: number, seed: number): QuantizedTensor {
  const next = rng(seed);
  const codes = Uint8Array.from({ length: rows * cols }, () => next() & 15);
  // E4M3 2^e has bits (e + 7) << 3; e in {-3, -2, -1}.
  const scales = Uint8Array.from({ length: (rows * cols) / 16 }, () => ((next() % 3) - 3 + 7) << 3);
  return { rows, cols, groupSize: 16, scaleFormat: 'e4m3', codes, scales, tensorScale: 2 ** ((next() % 9) - 4) };
}

const RTN: QuantizeSpec = {
  kind: 'quantize',
  name: 'gemm_operand',
  rounding: 'rtn',
  scaleGroup: { size: 16, format: 'e4m3' },
  block: '1x16',
  target: 'six',
  ceiling: 448,
  tensorScale: 'computed',
  hadamard: null,
  correction: 'per-16',
  input: 'bf16',
  transposedInput: false,
  scaleLayout: '128x4',
  tiling: { threadsPerBlock: 256, rowsPerBlock: 1, groupsPerThread: 1 },
};

function quantizedOperand(rows: number, cols: number, sigma: number, seed: number): QuantizedTensor {
  const x = gaussianMatrix(rows, cols, seed);
  for (let i = 0; i < x.data.length; i++) x.data[i] = Math.fround(x.data[i] * sigma);
  return quantize(RTN, x, { seed: 0n });
}

/** 128x4 scale bytes with every padding byte set to an E4M3 NaN (0x7F). */
function scalesWithNaNPadding(q: QuantizedTensor): Uint8Array {
  const Kb = q.cols / 16;
  const bytes = layoutScales(q.scales, q.rows, Kb, '128x4');
  const real = new Uint8Array(bytes.length);
  for (let r = 0; r < q.rows; r++) for (let kb = 0; kb < Kb; kb++) real[scaleOffset128x4(r, kb, Kb)] = 1;
  for (let i = 0; i < bytes.length; i++) if (!real[i]) bytes[i] = 0x7f;
  return bytes;
}

export function gemmOperands(c: GemmCase): { a: QuantizedTensor; b: QuantizedTensor } {
  if (c.regime === 'exact') return { a: exactOperand(c.m, c.k, c.dataSeed), b: exactOperand(c.n, c.k, c.dataSeed + 1) };
  const sigma = 2 ** c.sigmaLog2;
  return { a: quantizedOperand(c.m, c.k, sigma, c.dataSeed), b: quantizedOperand(c.n, c.k, sigma, c.dataSeed + 1) };
}

export function gemmBuffers(a: QuantizedTensor, b: QuantizedTensor, output: 'bf16' | 'f32'): BufferArg[] {
  const buf = (data: Uint8Array): BufferArg => ({ size: data.length, data });
  return [
    buf(packCodes(a.codes)),
    buf(scalesWithNaNPadding(a)),
    buf(scalarBytes(a.tensorScale)),
    buf(packCodes(b.codes)),
    buf(scalesWithNaNPadding(b)),
    buf(scalarBytes(b.tensorScale)),
    { size: a.rows * b.rows * (output === 'bf16' ? 2 : 4) },
  ];
}

function decodeOutput(bytes: Uint8Array, output: 'bf16' | 'f32'): Float32Array {
  if (output === 'f32')
    return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const bits = new Uint16Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  return Float32Array.from(bits, (x) => bf16BitsToF32(x));
}

/** The reference of a case and its per-element bound, computed once when many kernels are checked on it. */
export interface GemmExpected {
  ref: Float64Array;
  bound: ArrayLike<number> | null;
}

export function gemmExpected(
  c: GemmCase,
  a: QuantizedTensor,
  b: QuantizedTensor,
  output: 'bf16' | 'f32',
): GemmExpected {
  const ref = gemmReference(a, b);
  return { ref, bound: c.regime === 'exact' ? null : gemmKernelBound(a, b, ref, output) };
}

/** Null when c is right; otherwise what is wrong (first element, count). */
export function checkGemmOutput(
  c: GemmCase,
  got: Uint8Array,
  a: QuantizedTensor,
  b: QuantizedTensor,
  output: 'bf16' | 'f32',
  expected: GemmExpected = gemmExpected(c, a, b, output),
): string | null {
  const ref = expected.ref;
  const out = decodeOutput(got, output);
  if (c.regime === 'exact') {
    const want = roundOutput(ref, output);
    let bad = 0,
      first = -1;
    for (let i = 0; i < want.length; i++) {
      const same =
        output === 'bf16'
          ? f32ToBf16Bits(out[i]) === f32ToBf16Bits(want[i])
          : Object.is(out[i], want[i]) || out[i] === want[i];
      if (!same) {
        bad++;
        if (first < 0) first = i;
      }
    }
    return bad
      ? `${bad} of ${want.length} elements differ from the exact result; first (${Math.floor(first / c.n)}, ${first % c.n}): got ${out[first]}, expected ${want[first]}`
      : null;
  }
  const bound = expected.bound ?? gemmKernelBound(a, b, ref, output);
  let bad = 0,
    first = -1;
  for (let i = 0; i < ref.length; i++) {
    const err = Math.abs(out[i] - ref[i]);
    if (!(err <= bound[i])) {
      bad++;
      if (first < 0) first = i;
    }
  }
  return bad
    ? `${bad} of ${ref.length} elements outside the bound; first (${Math.floor(first / c.n)}, ${first % c.n}): got ${out[first]}, reference ${ref[first]}, bound ${bound[first]}`
    : null;
}

/** The m of the skinny cases every GEMM runs (the operand-swapped tilings' regime; 16 and 64 are its tile heights). */
export const SKINNY_M = [1, 7, 16, 64] as const;

/** How a tiling sums K (NUMERICS §6.2): one chain per tile, or split over c consumers in blocks of ctaTile[2]. */
export const ONE_CHAIN = 'one chain per tile';
export function kSumOrder(spec: GemmSpec): string {
  const t = spec.tiling;
  return t.registerOperand === 'b' && t.consumers > 1
    ? `${t.consumers} consumers x ${t.ctaTile[2]}-wide blocks`
    : ONE_CHAIN;
}

export interface GemmSuiteResult {
  passed: number;
  failed: number;
  cases: number;
  lines: string[];
}

/** One fixed GEMM case on `spec`: null when it passes, else what went wrong (launch status or the output check). */
async function runFixedCase(runner: GpuRunner, spec: GemmSpec, c: GemmCase, poison: number): Promise<string | null> {
  const { a, b } = gemmOperands(c);
  const res = await runner.run({
    kernel: spec.name,
    rows: c.m,
    cols: c.k,
    depth: c.n,
    seed: 0n,
    poison,
    buffers: gemmBuffers(a, b, spec.output),
  });
  return res.status !== 0
    ? `status ${res.status}: ${res.message}`
    : checkGemmOutput(c, res.buffers[6], a, b, spec.output);
}

export async function runGemmSuite(runner: GpuRunner, specs: GemmSpec[], runs: number): Promise<GemmSuiteResult> {
  const lines: string[] = [];
  let passed = 0,
    failed = 0,
    cases = 0;
  for (const spec of specs) {
    let n = 0,
      exact = 0;
    const t0 = Date.now();
    try {
      await fc.assert(
        fc.asyncProperty(gemmCaseArbitrary(), fc.integer({ min: 0, max: 255 }), async (c, poison) => {
          n++;
          if (c.regime === 'exact') exact++;
          const { a, b } = gemmOperands(c);
          const res = await runner.run({
            kernel: spec.name,
            rows: c.m,
            cols: c.k,
            depth: c.n,
            seed: 0n,
            poison,
            buffers: gemmBuffers(a, b, spec.output),
          });
          if (res.status !== 0) throw new Error(`status ${res.status}: ${res.message}`);
          const problem = checkGemmOutput(c, res.buffers[6], a, b, spec.output);
          if (problem) throw new Error(problem);
        }),
        { numRuns: runs, seed: 20261122, endOnFailure: true },
      );
      passed++;
      lines.push(
        `PASS ${spec.name}: ${n} cases (${exact} bit-exact, ${n - exact} within the bound), ${((Date.now() - t0) / 1000).toFixed(1)} s`,
      );
    } catch (e) {
      failed++;
      const msg = e instanceof Error ? e.message : String(e);
      const kept = msg.split('\n').filter((l) => !/^\{ seed: .*path:/.test(l) && !/^Hint:/.test(l) && l.trim() !== '');
      lines.push(
        `FAIL ${spec.name}: after ${n} cases\n${kept
          .slice(0, 14)
          .map((l) => `  ${l.slice(0, 400)}`)
          .join('\n')}`,
      );
    }
    cases += n;
    process.stderr.write(lines[lines.length - 1].split('\n')[0] + '\n');
  }
  // Larger shapes once per kernel: more tiles than CTAs (persistent loop), many K blocks, ragged m and n; 1100 x
  // 4000 x 192: more tiles than SMs for every tiling (144 of 128x256), each of 3 K blocks, so a CTA's rings (the
  // producer-decode kernels' tile ring and its held tile) run on across tile boundaries.
  for (const spec of specs) {
    for (const gc of [
      { m: 2200, n: 2064, k: 64, regime: 'exact' },
      { m: 1100, n: 4000, k: 192, regime: 'exact' },
      { m: 257, n: 528, k: 4096, regime: 'quantized' },
      { m: 130, n: 1040, k: 8192, regime: 'quantized' },
    ] as const) {
      const c: GemmCase = { ...gc, sigmaLog2: 0, dataSeed: 77 };
      const problem = await runFixedCase(runner, spec, c, 0xff);
      if (problem) failed++;
      else passed++;
      lines.push(
        `${problem ? 'FAIL' : 'PASS'} ${spec.name} ${c.m}x${c.n}x${c.k} (${c.regime === 'exact' ? 'bit-exact' : 'N(0,1) quantized, within the bound'})${problem ? `: ${problem}` : ''}`,
      );
      process.stderr.write(lines[lines.length - 1] + '\n');
    }
  }
  // Skinny m (the regime of the operand-swapped tilings, registerOperand 'b'): m in {1, 7, 16, 64}, n not a multiple
  // of 64 (a partial W tile), k = 41 * 32 (a ragged K block and a ragged 4-group scale block), both regimes.
  for (const spec of specs) {
    const bad: string[] = [];
    for (const m of SKINNY_M)
      for (const regime of ['exact', 'quantized'] as const) {
        const c: GemmCase = { m, n: 208, k: 1312, regime, sigmaLog2: 2, dataSeed: 31 + m };
        const problem = await runFixedCase(runner, spec, c, 0xa5);
        if (problem) bad.push(`${c.m}x${c.n}x${c.k} ${regime}: ${problem}`);
      }
    if (bad.length) failed++;
    else passed++;
    lines.push(
      `${bad.length ? 'FAIL' : 'PASS'} ${spec.name} skinny m ${SKINNY_M.join(', ')} x 208 x 1312 (bit-exact and ` +
        `within the bound)${bad.length ? `\n  ${bad.join('\n  ')}` : ''}`,
    );
    process.stderr.write(lines[lines.length - 1].split('\n')[0] + '\n');
  }
  // K split over c > 1 consumers (NUMERICS §6.2 "K split inside the CTA"): fewer K blocks than consumers (k = 64),
  // a K block count that c does not divide (k = 384: 3 blocks of 128, the tiles padded with an empty step), and the
  // latter with more tiles than CTAs (n = 4160: a CTA runs tiles one after another through the padded schedule and
  // the partials' named barriers); m in {1, 7, 16, 64}, both regimes.
  for (const spec of specs.filter((s) => kSumOrder(s) !== ONE_CHAIN)) {
    const bad: string[] = [];
    const shapes = [
      ...SKINNY_M.flatMap((m) => [64, 384].map((k) => ({ m, n: 208, k }))),
      { m: 64, n: 4160, k: 384 },
      { m: 130, n: 4160, k: 640 },
    ];
    for (const { m, n, k } of shapes)
      for (const regime of ['exact', 'quantized'] as const) {
        const c: GemmCase = { m, n, k, regime, sigmaLog2: 2, dataSeed: 53 + m + k };
        const problem = await runFixedCase(runner, spec, c, 0x6b);
        if (problem) bad.push(`${c.m}x${c.n}x${c.k} ${regime}: ${problem}`);
      }
    if (bad.length) failed++;
    else passed++;
    lines.push(
      `${bad.length ? 'FAIL' : 'PASS'} ${spec.name} K split (${kSumOrder(spec)}): ${shapes.length} shapes with ` +
        `k = 64, 384, 640, n up to 4160 (bit-exact and within the bound)${bad.length ? `\n  ${bad.join('\n  ')}` : ''}`,
    );
    process.stderr.write(lines[lines.length - 1].split('\n')[0] + '\n');
  }
  // NUMERICS §6.2: tilings with one K chain per tile neither split nor reorder K, and the K-split tilings with the
  // same (c, ctaTile[2]) split it the same way: within each such group every bf16 tiling must give the same bytes on
  // inexact inputs. Different groups sum in different orders and are only held to the bound (cases above). The second
  // shape has an odd number of 128-row tiles and a last 256-column tile whose second half lies past n (the
  // cluster-shared B decode's tails: a CTA with no rows, a B half with no columns).
  const groups = new Map<string, GemmSpec[]>();
  for (const spec of specs.filter((s) => s.output === 'bf16'))
    groups.set(kSumOrder(spec), [...(groups.get(kSumOrder(spec)) ?? []), spec]);
  for (const [order, bf16Specs] of groups)
    for (const shape of [
      { m: 200, n: 304, k: 1344 },
      { m: 328, n: 560, k: 1344 },
    ]) {
      if (bf16Specs.length < 2) continue;
      const c: GemmCase = { ...shape, regime: 'quantized', sigmaLog2: 3, dataSeed: 11 };
      const { a, b } = gemmOperands(c);
      const outs: Uint8Array[] = [];
      for (const spec of bf16Specs) {
        const res = await runner.run({
          kernel: spec.name,
          rows: c.m,
          cols: c.k,
          depth: c.n,
          seed: 0n,
          poison: 0x33,
          buffers: gemmBuffers(a, b, 'bf16'),
        });
        outs.push(res.status === 0 ? res.buffers[6] : new Uint8Array(0));
      }
      const differ = bf16Specs
        .filter((_, i) => outs[i].length !== outs[0].length || outs[i].some((x, j) => x !== outs[0][j]))
        .map((s) => s.name);
      if (differ.length) failed++;
      else passed++;
      lines.push(
        `${differ.length ? 'FAIL' : 'PASS'} tilings agree bit for bit (${bf16Specs.length} bf16 tilings summing K as ` +
          `${order}, ${c.m}x${c.n}x${c.k}, quantized inputs)` +
          (differ.length ? `: ${differ.join(', ')} differ from ${bf16Specs[0].name}` : ''),
      );
      process.stderr.write(lines[lines.length - 1] + '\n');
    }
  // Bad shapes: refused with a message naming the argument, output untouched.
  for (const spec of specs) {
    const c: GemmCase = { m: 32, n: 64, k: 128, regime: 'exact', sigmaLog2: 0, dataSeed: 5 };
    const { a, b } = gemmOperands(c);
    const problems: string[] = [];
    for (const [field, m, k, n] of [
      ['k', 32, 112, 64],
      ['n', 32, 128, 56],
      ['m', 0, 128, 64],
    ] as const) {
      const res = await runner.run({
        kernel: spec.name,
        rows: m,
        cols: k,
        depth: n,
        seed: 0n,
        poison: 0x5a,
        buffers: gemmBuffers(a, b, spec.output),
      });
      const untouched = res.buffers[6].every((x) => x === 0x5a);
      if (!(res.status > 0 && new RegExp(`\\b${field} = `).test(res.message) && untouched))
        problems.push(`${field}: status ${res.status} "${res.message}"${untouched ? '' : ', c was written'}`);
      else if (spec === specs[0]) lines.push(`  refusal example: "${res.message}"`);
    }
    if (problems.length) failed++;
    else passed++;
    lines.push(
      `${problems.length ? 'FAIL' : 'PASS'} ${spec.name}: bad m, n, k refused, c untouched${problems.length ? `\n  ${problems.join('\n  ')}` : ''}`,
    );
  }
  return { passed, failed, cases, lines };
}
