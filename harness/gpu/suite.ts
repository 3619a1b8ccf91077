// GPU correctness suite over the catalog and harness/coverage.ts (`--grid-cap N`: every grid capped at N blocks,
// plus one grid-stride case per kernel). For every served kernel, fast-check draws shapes (rows incl. 1, 3, 127, 129, 4097),
// magnitude regimes, seeds and sign seeds (always different from each other, NUMERICS §3.2); the kernel runs on
// poisoned buffers and its codes, scales and tensor scale must equal the TypeScript reference bit for bit. Then
// each kernel runs once under compute-sanitizer memcheck and racecheck.
import fc from 'fast-check';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { GemmSpec, KernelSpec, QuantizeSpec } from '../../dsl/types.ts';
import { writesPlane } from '../../dsl/types.ts';
import { targetValue } from '../../dsl/constants.ts';
import { quantize, requantize } from '../../reference/quantize.ts';
import { dequantize, amax, bf16Plane, dequantizedPlane } from '../../reference/dequantize.ts';
import { rhtRows, signVector } from '../../reference/hadamard.ts';
import { splitSeed } from '../../reference/philox.ts';
import { f32ToBf16Bits } from '../../reference/fp32.ts';
import { layoutScales, packCodes, scaleBytes } from '../../reference/layout.ts';
import { GpuRunner, type BufferArg } from './client.ts';
import { bufferNames } from './bind.ts';
import {
  caseArbitrary,
  colsMultiple,
  regimeMatrix,
  bf16Bytes,
  f32Bytes,
  scalarBytes,
  deviceBytes,
  storedInput,
  compareBuffers,
  type CaseParams,
  type Compare,
  type Regime,
} from './cases.ts';
import type { BuiltRunner } from './build.ts';
import { gemmBuffers, gemmOperands, runGemmSuite } from './gemm_suite.ts';
import { judgeRacecheck } from './racecheck.ts';

export interface Prepared {
  buffers: BufferArg[];
  expected: (Uint8Array | null)[];
  compare?: Compare[];
}

/** Input NVFP4 tensor for requant kernels: the regime matrix [cols, rows] quantized by plain RTN along rows. */
function requantInput(spec: QuantizeSpec, p: CaseParams) {
  const src = regimeMatrix(p.cols, p.rows, p.regime, p.dataSeed);
  const rtn: QuantizeSpec = {
    ...spec,
    name: 'requant_source',
    rounding: 'rtn',
    target: 'six',
    ceiling: 448,
    tensorScale: 'computed',
    hadamard: null,
    input: 'bf16',
    transposedInput: false,
    scaleLayout: 'row-major',
    block: '1x16',
  };
  return quantize(rtn, src, { seed: 0n });
}

export function prepare(spec: KernelSpec, p: CaseParams): Prepared {
  const poisonOut = (size: number): BufferArg => ({ size });
  switch (spec.kind) {
    case 'quantize': {
      const Kb = p.cols / spec.scaleGroup.size;
      const scaleSize = scaleBytes(p.rows, Kb, spec.scaleLayout);
      let tensorScaleIn: number | undefined;
      let q;
      let inputs: BufferArg[];
      if (spec.input === 'nvfp4') {
        const a = requantInput(spec, p);
        q = requantize(spec, a, { seed: p.seed, signSeed: p.signSeed });
        // qgen.h: the input's scales use the kernel's scale layout, for its [cols, rows/16] grid.
        const inScales = layoutScales(a.scales, a.rows, a.cols / 16, spec.scaleLayout);
        inputs = [
          { size: a.codes.length / 2, data: packCodes(a.codes) },
          { size: inScales.length, data: inScales },
          { size: 4, data: scalarBytes(a.tensorScale) },
        ];
      } else {
        const x = regimeMatrix(p.rows, p.cols, p.regime, p.dataSeed);
        if (spec.tensorScale === 'caller') {
          let m = 0;
          for (const v of x.data) if (Number.isFinite(v)) m = Math.max(m, Math.abs(v));
          const t = Math.fround(((m || 1) / (targetValue(spec.target) * spec.ceiling)) * p.callerFactor);
          tensorScaleIn = t > 0 && Number.isFinite(t) ? t : 1;
        }
        const stored = storedInput(spec, x);
        q = quantize(spec, stored, { seed: p.seed, signSeed: p.signSeed, tensorScale: tensorScaleIn });
        inputs = [{ size: stored.data.length * 2, data: bf16Bytes(stored) }];
      }
      const want = deviceBytes(q, spec.scaleLayout);
      const tsBuf: BufferArg =
        tensorScaleIn !== undefined ? { size: 4, data: scalarBytes(tensorScaleIn) } : poisonOut(4);
      // A plane-writing quantizer also writes bf16(e2m1 * scale) (NUMERICS §6.6) or bf16 of the dequantized value
      // (§6.7) for every element, compared as bf16.
      const planeBits = !writesPlane(spec.outputs)
        ? null
        : spec.outputs === 'nvfp4+dequantized-plane'
          ? dequantizedPlane(q)
          : bf16Plane(q);
      const plane = planeBits ? new Uint8Array(planeBits.buffer) : null;
      return {
        buffers: [
          ...inputs,
          poisonOut((p.rows * p.cols) / 2),
          poisonOut(scaleSize),
          tsBuf,
          ...(plane ? [poisonOut(plane.length)] : []),
        ],
        // MXFP4 has no tensor scale (qgen.h: unused); a caller's tensor scale is an input, so neither is compared.
        expected: [
          ...inputs.map(() => null),
          want.codes,
          want.scales,
          spec.tensorScale === 'none' || spec.tensorScale === 'caller' ? null : want.tensorScale,
          ...(plane ? [plane] : []),
        ],
        compare: [
          ...inputs.map((): Compare => 'bytes'),
          'bytes',
          'bytes',
          'bytes',
          ...(plane ? ['bf16' as const] : []),
        ],
      };
    }
    case 'dequantize': {
      const src = regimeMatrix(p.rows, p.cols, p.regime === 'specials' ? 'gaussian' : p.regime, p.dataSeed);
      const rtn: QuantizeSpec = {
        kind: 'quantize',
        name: 'dq_source',
        rounding: 'rtn',
        scaleGroup: spec.scaleGroup,
        block: '1x16',
        target: 'six',
        ceiling: 448,
        tensorScale: spec.scaleGroup.size === 32 ? 'none' : 'computed',
        hadamard: null,
        correction: 'per-16',
        input: 'bf16',
        transposedInput: false,
        scaleLayout: spec.scaleLayout,
        tiling: { threadsPerBlock: 256, rowsPerBlock: 1, groupsPerThread: 1 },
      };
      const quantized = quantize(rtn, src, { seed: 0n });
      // NVFP4 on odd data seeds (the grid-stride cases included): tensor scale 1, the two-pass GEMM's planes
      // (NUMERICS §6.4), which the bf16 kernel writes in its bf16 form; the quantizer's own t otherwise.
      const q = spec.scaleGroup.size === 16 && p.dataSeed % 2 === 1 ? { ...quantized, tensorScale: 1 } : quantized;
      const bytes = deviceBytes(q, spec.scaleLayout);
      const y = dequantize(q);
      const out =
        spec.output === 'f32' ? f32Bytes(y) : new Uint8Array(Uint16Array.from(y, (v) => f32ToBf16Bits(v)).buffer);
      return {
        buffers: [
          { size: bytes.codes.length, data: bytes.codes },
          { size: bytes.scales.length, data: bytes.scales },
          { size: 4, data: bytes.tensorScale },
          poisonOut(out.length),
        ],
        expected: [null, null, null, out],
        compare: ['bytes', 'bytes', 'bytes', spec.output],
      };
    }
    case 'hadamard': {
      const x = regimeMatrix(p.rows, p.cols, p.regime, p.dataSeed);
      const [lo, hi] = splitSeed(p.signSeed); // the runner passes sign_seed as the Hadamard kernel's seed (bind.ts)
      const y = rhtRows(x.data, p.rows, p.cols, spec.size, signVector(lo, hi, spec.size));
      const input = spec.input === 'f32' ? f32Bytes(x.data) : bf16Bytes(x);
      const out =
        spec.output === 'f32' ? f32Bytes(y) : new Uint8Array(Uint16Array.from(y, (v) => f32ToBf16Bits(v)).buffer);
      return {
        buffers: [{ size: input.length, data: input }, poisonOut(out.length)],
        expected: [null, out],
        compare: ['bytes', spec.output],
      };
    }
    case 'amax': {
      const x = regimeMatrix(p.rows, p.cols, p.regime, p.dataSeed);
      const input = spec.input === 'f32' ? f32Bytes(x.data) : bf16Bytes(x);
      return { buffers: [{ size: input.length, data: input }, poisonOut(4)], expected: [null, scalarBytes(amax(x))] };
    }
    case 'gemm':
      throw new Error('gemm is not served by the runner');
  }
}

export interface SuiteSummary {
  passed: number;
  failed: number;
  cases: number;
  line: string;
  report: string;
}

/**
 * A case with more than 4x (here 8x) as many elements as a grid of `gridCap` blocks has threads times the most
 * elements one thread takes per loop iteration (16 per group x groupsPerThread), so that every thread of every
 * grid-stride loop (quantizer passes, the layout's padding loop, Hadamard, amax, dequantize) runs several iterations.
 */
export function gridStrideCase(spec: KernelSpec, gridCap: number, dataSeed: number): CaseParams {
  if (spec.kind === 'gemm') throw new Error('gridStrideCase: elementwise kernels only');
  const t = spec.tiling;
  const elements = 8 * gridCap * t.threadsPerBlock * 16 * t.groupsPerThread;
  const rowMultiple = spec.kind === 'quantize' && spec.input === 'nvfp4' ? 16 : 1;
  const rows = Math.ceil(257 / rowMultiple) * rowMultiple;
  const m = colsMultiple(spec);
  const cols = Math.ceil(elements / rows / m) * m;
  return {
    rows,
    cols,
    regime: 'gaussian',
    dataSeed,
    seed: 0x1234n + BigInt(dataSeed),
    signSeed: 0x5678n + BigInt(dataSeed),
    callerFactor: 1,
  };
}

/** rows = 300 (rounded up to the spec's row multiple), K = two whole 256-column chunks (rounded up to its K multiple). */
export function wholeChunksCase(spec: KernelSpec, dataSeed: number): CaseParams {
  const rowMultiple = spec.kind === 'quantize' && spec.input === 'nvfp4' ? 16 : 1;
  const m = colsMultiple(spec);
  return {
    rows: Math.ceil(300 / rowMultiple) * rowMultiple,
    cols: Math.ceil(512 / m) * m,
    regime: 'gaussian',
    dataSeed,
    seed: 0x9abcn + BigInt(dataSeed),
    signSeed: 0xdef0n + BigInt(dataSeed),
    callerFactor: 1,
  };
}

/** The regimes whose groups pass B of a dequantized-plane quantizer rewrites (NUMERICS §6.7), on a shape that takes
 * pass B's blocked path (K in whole 256-column chunks) and on one that does not. */
export function dequantizedPlaneCases(spec: KernelSpec): CaseParams[] {
  const blocked = wholeChunksCase(spec, 31);
  const m = colsMultiple(spec);
  const general = { ...blocked, rows: blocked.rows - 16, cols: 3 * m }; // 3 m is never a multiple of 256
  const regimes: Regime[] = ['mixed-rows', 'zero-rows', 'zero-rows-specials', 'specials', 'tiny', 'huge'];
  return [blocked, general].flatMap((shape, i) =>
    regimes.map((regime, j) => ({ ...shape, regime, dataSeed: 40 + 10 * i + j })),
  );
}

/**
 * Runs one case on the GPU; null when every output equals the reference bit for bit, else what differed. Also qgen
 * tune's bit-exact check of a quantizer launch shape (harness/gpu/tune.ts), which passes `prep` computed once per
 * case for all launch shapes of a kernel (the reference does not depend on the tiling, NUMERICS §6.5).
 */
export async function runCase(
  runner: GpuRunner,
  spec: KernelSpec,
  p: CaseParams,
  poison: number,
  prep: Prepared = prepare(spec, p),
): Promise<string | null> {
  const res = await runner.run({
    kernel: spec.name,
    rows: p.rows,
    cols: p.cols,
    seed: p.seed,
    signSeed: p.signSeed,
    poison,
    buffers: prep.buffers,
  });
  if (res.status !== 0) return `status ${res.status}: ${res.message}`;
  const names = bufferNames(spec);
  for (const [i, want] of prep.expected.entries()) {
    if (!want) continue;
    const diff = compareBuffers(res.buffers[i], want, prep.compare?.[i] ?? 'bytes');
    if (diff) return `${names[i]}: ${diff}`;
  }
  return null;
}

/** The compute-sanitizer tools a suite run may use, in the order they run. */
export const SANITIZERS = ['memcheck', 'racecheck'] as const;
export type Sanitizer = (typeof SANITIZERS)[number];

/**
 * `--sanitizers` of `test`: a comma list of SANITIZERS, or 'none' (a quick bit-exactness run on a short device
 * call; the summary line then says which sanitizers were skipped). Throws a one-line error naming the option.
 */
export function parseSanitizers(text: string): Sanitizer[] {
  if (text === 'none') return [];
  const tools = text.split(',').map((t) => t.trim());
  for (const t of tools)
    if (!(SANITIZERS as readonly string[]).includes(t))
      throw new Error(`test: --sanitizers "${text}"; allowed: none, or a comma list of ${SANITIZERS.join(', ')}`);
  return SANITIZERS.filter((t) => tools.includes(t));
}

export async function runSuite(
  runner: GpuRunner,
  built: BuiltRunner,
  opts: { runs: number; device: string; arch: string; gridCap: number; sanitizers?: readonly Sanitizer[] },
): Promise<SuiteSummary> {
  const sanitizers = opts.sanitizers ?? SANITIZERS;
  const lines: string[] = [
    `qgen GPU suite on ${opts.device}, ${opts.arch}, ${opts.runs} fast-check runs per kernel` +
      (opts.gridCap ? `, every grid capped at ${opts.gridCap} blocks (-DQGEN_MAX_GRID_BLOCKS)` : ''),
  ];
  let passed = 0,
    failed = 0,
    cases = 0;
  const elementwise = built.specs.filter((s) => s.kind !== 'gemm');
  const gemms = built.specs.filter((s): s is GemmSpec => s.kind === 'gemm');
  for (const spec of elementwise) {
    let n = 0;
    const t0 = Date.now();
    try {
      await fc.assert(
        fc.asyncProperty(caseArbitrary(spec), fc.integer({ min: 0, max: 255 }), async (p, poison) => {
          n++;
          const problem = await runCase(runner, spec, p, poison);
          if (problem) throw new Error(problem);
        }),
        { numRuns: opts.runs, seed: 20260122, endOnFailure: true },
      );
      passed++;
      lines.push(`PASS ${spec.name}: ${n} cases, ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    } catch (e) {
      failed++;
      const msg = e instanceof Error ? e.message : String(e);
      // fast-check's report: the seed line, the counterexample, and the error it raised (skip the long path line).
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
    // A fixed case with K in whole 256-column chunks and rows not a multiple of 128: one-pass kernels with 128x4
    // scales take pass B's blocked path there (runtime/qgen_quantize_kernel.cuh), which fast-check's shapes
    // (at most 8 column multiples) rarely reach.
    const p = wholeChunksCase(spec, 23);
    const problem = await runCase(runner, spec, p, 0x5a);
    if (problem) failed++;
    else passed++;
    cases++;
    lines.push(`${problem ? 'FAIL' : 'PASS'} ${spec.name} ${p.rows}x${p.cols}${problem ? `: ${problem}` : ''}`);
    process.stderr.write(lines[lines.length - 1] + '\n');
    // The dequantized plane (NUMERICS §6.7): pass B's rewrite of the groups pass A could not know (zero groups,
    // also with +-Inf and NaN, E4M3-subnormal scales, extreme proxies) in every regime that makes them, on pass
    // B's blocked path and on its general one.
    if (spec.kind === 'quantize' && spec.outputs === 'nvfp4+dequantized-plane') {
      for (const c of dequantizedPlaneCases(spec)) {
        const bad = await runCase(runner, spec, c, 0xa5);
        if (bad) failed++;
        else passed++;
        cases++;
        lines.push(`${bad ? 'FAIL' : 'PASS'} ${spec.name} ${c.rows}x${c.cols} ${c.regime}${bad ? `: ${bad}` : ''}`);
        process.stderr.write(lines[lines.length - 1] + '\n');
      }
    }
  }
  if (opts.gridCap) {
    // One large case per kernel: each thread of the capped grid handles several work items.
    for (const spec of elementwise) {
      const p = gridStrideCase(spec, opts.gridCap, 11);
      const problem = await runCase(runner, spec, p, 0x3c);
      const threads = opts.gridCap * spec.tiling.threadsPerBlock;
      if (problem) failed++;
      else passed++;
      cases++;
      lines.push(
        `${problem ? 'FAIL' : 'PASS'} ${spec.name} grid-stride ${p.rows}x${p.cols} on ${opts.gridCap} blocks ` +
          `(${((p.rows * p.cols) / threads).toFixed(0)} elements per thread)${problem ? `: ${problem}` : ''}`,
      );
      process.stderr.write(lines[lines.length - 1] + '\n');
    }
  }
  if (gemms.length) {
    const g = await runGemmSuite(runner, gemms, opts.runs);
    passed += g.passed;
    failed += g.failed;
    cases += g.cases;
    lines.push(...g.lines);
  }
  // Bad input: a shape the kernel forbids must return an error naming the argument and launch nothing (the
  // poisoned outputs stay untouched).
  if (elementwise.length) {
    let ok = 0;
    const problems: string[] = [];
    for (const spec of elementwise) {
      const p: CaseParams = {
        rows: 16,
        cols: 256,
        regime: 'gaussian',
        dataSeed: 3,
        seed: 5n,
        signSeed: 6n,
        callerFactor: 1,
      };
      const prep = prepare(spec, p);
      // amax takes any cols >= 1, so it gets cols = 0; every other kernel needs a multiple of 16 and gets 248.
      const badCols = spec.kind === 'amax' ? 0 : p.cols - 8;
      const res = await runner.run({
        kernel: spec.name,
        rows: p.rows,
        cols: badCols,
        seed: p.seed,
        signSeed: p.signSeed,
        poison: 0x5a,
        buffers: prep.buffers,
      });
      const untouched = res.buffers.every((b, i) => prep.buffers[i].data !== undefined || b.every((x) => x === 0x5a));
      if (res.status > 0 && /cols/.test(res.message) && untouched) ok++;
      else
        problems.push(
          `${spec.name}: status ${res.status} "${res.message}"${untouched ? '' : ', outputs were written'}`,
        );
      if (spec === elementwise[0]) lines.push(`example refusal (${spec.name}, cols = ${badCols}): "${res.message}"`);
    }
    const pass = problems.length === 0;
    if (pass) passed++;
    else failed++;
    lines.push(
      `${pass ? 'PASS' : 'FAIL'} bad shapes refused: ${ok}/${elementwise.length} kernels return an error naming cols and write nothing` +
        (problems.length ? `\n  ${problems.join('\n  ')}` : ''),
    );
    process.stderr.write(lines[lines.length - 1].split('\n')[0] + '\n');
  }
  // Sanitizers: one mid-size case per kernel under memcheck and racecheck (those --sanitizers names).
  for (const tool of sanitizers) {
    const r = await sanitize(tool, built, opts.gridCap);
    lines.push(r.line);
    if (r.ok) passed++;
    else failed++;
    process.stderr.write(r.line + '\n');
  }
  const line =
    `gpu suite (${opts.arch}${opts.gridCap ? `, grid capped at ${opts.gridCap} blocks` : ''}): ${passed} passed, ` +
    `${failed} failed (${cases} cases over ${built.specs.length} kernels, bad-shape checks, ` +
    `${sanitizerNote(sanitizers)})`;
  lines.push(line);
  return { passed, failed, cases, line, report: lines.join('\n') + '\n' };
}

/** The summary line's account of the sanitizer runs, naming the skipped ones. */
export function sanitizerNote(ran: readonly Sanitizer[]): string {
  const skipped = SANITIZERS.filter((t) => !ran.includes(t));
  const runs = `${ran.length} sanitizer run${ran.length === 1 ? '' : 's'}`;
  return skipped.length ? `${runs}; ${skipped.join(' and ')} SKIPPED (--sanitizers)` : runs;
}

async function sanitize(tool: string, built: BuiltRunner, gridCap: number): Promise<{ ok: boolean; line: string }> {
  // compute-sanitizer writes its report to a log file: stdout carries the runner protocol.
  const log = path.join(built.dir, `sanitizer-${tool}.log`);
  // racecheck: every record printed (--print-limit 0), so each one is checked against the analysed hand-off.
  const limit = tool === 'racecheck' ? '0' : '20';
  const sanitized = new GpuRunner(built.binary, [
    'compute-sanitizer',
    '--tool',
    tool,
    '--error-exitcode',
    '9',
    '--print-limit',
    limit,
    '--log-file',
    log,
  ]);
  let errors = 0;
  for (const spec of built.specs) {
    if (spec.kind === 'gemm') {
      // k = 1280: more K blocks than raw stages in every sm_90a tiling (20 of 64 > 8, 10 of 128 > 6, 5 of 256 > 4),
      // so every CTA reuses a raw stage even with an uncapped grid.
      const { a, b } = gemmOperands({ m: 129, n: 272, k: 1280, regime: 'quantized', sigmaLog2: 0, dataSeed: 7 });
      const res = await sanitized
        .run({
          kernel: spec.name,
          rows: 129,
          cols: 1280,
          depth: 272,
          seed: 0n,
          poison: 0xab,
          buffers: gemmBuffers(a, b, spec.output),
        })
        .catch((e: Error) => ({ status: -3, message: e.message, buffers: [] }));
      if (res.status !== 0) errors++;
      if (sanitized.spawnError) break;
      continue;
    }
    // Capped grid: the grid-stride case, so the sanitizers see loops of several iterations per thread.
    const p: CaseParams = gridCap
      ? gridStrideCase(spec, gridCap, 7)
      : {
          rows: 129,
          cols: Math.max(256, 2 * (spec.kind === 'quantize' ? (spec.hadamard ?? 16) : 16)),
          regime: 'gaussian',
          dataSeed: 7,
          seed: 99n,
          signSeed: 100n,
          callerFactor: 1,
        };
    if (!gridCap && spec.kind === 'quantize' && spec.input === 'nvfp4') p.rows = 144;
    const prep = prepare(spec, p);
    const res = await sanitized
      .run({
        kernel: spec.name,
        rows: p.rows,
        cols: p.cols,
        seed: p.seed,
        signSeed: p.signSeed,
        poison: 0xab,
        buffers: prep.buffers,
      })
      .catch((e: Error) => ({ status: -3, message: e.message, buffers: [] }));
    if (res.status !== 0) errors++;
    if (sanitized.spawnError) break;
  }
  const exit = await sanitized.closeWithCode();
  if (sanitized.spawnError)
    return { ok: false, line: `FAIL compute-sanitizer ${tool}: could not start (${sanitized.spawnError.message})` };
  const report = existsSync(log) ? readFileSync(log, 'utf8') : '';
  if (tool === 'racecheck') {
    // Reports of the analysed raw-stage hand-off (racecheck.ts, bench/NOTES.md) are listed, not counted as clean.
    const v = judgeRacecheck(report);
    const ok = errors === 0 && v.ok && (exit === 0 || (exit === 9 && v.records.length > 0));
    const line =
      `${ok ? 'PASS' : 'FAIL'} compute-sanitizer racecheck: ${built.specs.length} kernels, ${v.summary}, ` +
      `exit ${exit}, ${errors} failed launches${v.lines.map((l) => `\n    ${l}`).join('')}`;
    return { ok, line };
  }
  // memcheck ends its log with "ERROR SUMMARY: N errors", racecheck with "RACECHECK SUMMARY: N hazards displayed".
  const summary = /(?:ERROR|RACECHECK) SUMMARY: (\d+) (?:error|hazard)/.exec(report);
  const ok = errors === 0 && exit === 0 && summary !== null && summary[1] === '0';
  const tail = report
    .trim()
    .split('\n')
    .slice(-3)
    .map((l) => `    ${l}`)
    .join('\n');
  return {
    ok,
    line: `${ok ? 'PASS' : 'FAIL'} compute-sanitizer ${tool}: ${built.specs.length} kernels, ${summary ? summary[0] : 'no summary'}, exit ${exit}, ${errors} failed launches\n${tail}`,
  };
}
