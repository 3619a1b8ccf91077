// `qgen check --arch A`: the whole first-hardware verification of an arch. It refuses a GPU of another compute
// capability, builds the arch's whole catalog into the runner, then
//   0. the accumulator probe (accumulator_probe.ts) on the arch's bf16 GEMM: the measured accumulator, whether
//      NUMERICS §6.2's bound holds (§6.3);
//   1. the bit-exact quantizer suite (suite.ts; on Blackwell the hardware cvt paths), bad shapes refused;
//   2. GEMM tiny shapes first (the 128x256x256 single tile PTX-FACTS §9 asks for, m = 1, a ragged K), bit for bit where
//      fp32 accumulation is exact, within the derived bound otherwise — so that a wrong fragment layout or
//      descriptor shows up on the smallest case that exercises it; a failure is classified (classify.ts) as
//      "layout or indexing wrong" or "accumulation less precise than fp32" (explained by the probe's measurement);
//   3. the full GEMM property suite (fast-check shapes, larger shapes with several tiles per CTA and long K, NaN
//      scale padding, tilings agreeing bit for bit, bad shapes refused with c untouched);
//   4. speed at a few large shapes against the vendor NVFP4 GEMM (cuBLASLt block-scaled, when the GPU has one)
//      and cuBLAS bf16, median of CUDA-event timings in the same run; 5. quantizers against a device copy;
//   6. the torch package (--package DIR, or vendored here) built with pip and its tests (check_package.ts);
//   7. Quartet2Linear forward + backward against bf16 nn.Linear (bench/linear/bench_linear.py), with the paper's
//      headline (up to 4.2x bf16 on an RTX 5090, 2.5x on a B200) beside it.
// Prints one line per check, a verdict table and `N passed, M failed`; writes
// bench/results/check-<arch>-<date>-<commit7>.md (and $OUT) with a qgen-provenance/1 first line.
import { execa } from 'execa';
import path from 'node:path';
import type { Arch, GemmSpec } from '../../dsl/types.ts';
import { catalogFor } from '../../dsl/catalog.ts';
import { buildRunner } from './build.ts';
import { GpuRunner, median } from './client.ts';
import { checkGemmOutput, gemmBuffers, gemmOperands, runGemmSuite, type GemmCase } from './gemm_suite.ts';
import { nvfp4Buffers, type GemmShape } from './gemm_bench.ts';
import type { RunResults } from './results.ts';
import { runProbe } from './probe_run.ts';
import { runSuite } from './suite.ts';
import { benchTable, runBench } from './bench.ts';
import { buildAndTestPackage, linearSpeed } from './check_package.ts';
import { describeModel } from '../../reference/accumulator.ts';
import { classifyGemmOutput } from './classify.ts';
import { decodeGemmOutput, type ProbeReport } from './accumulator_probe.ts';

/** Compute capability each arch's kernels run on (arch-specific `a` targets run only on that exact chip). */
const ARCH_CC: Record<Arch, string> = { sm_90a: '9.0', sm_100a: '10.0', sm_120a: '12.0' };

/** The tiny cases, smallest first. */
export const TINY_CASES: GemmCase[] = [
  { m: 128, n: 256, k: 256, regime: 'exact', sigmaLog2: 0, dataSeed: 1 }, // one sm_100a tile, one K block
  { m: 1, n: 16, k: 32, regime: 'exact', sigmaLog2: 0, dataSeed: 2 }, // smallest legal shape: ragged everything
  { m: 128, n: 128, k: 64, regime: 'exact', sigmaLog2: 0, dataSeed: 3 }, // one 64-wide K atom
  { m: 64, n: 256, k: 416, regime: 'exact', sigmaLog2: 0, dataSeed: 4 }, // several K blocks, 2 scale groups in the last atom (exact: k <= EXACT_MAX_K)
  { m: 129, n: 272, k: 192, regime: 'quantized', sigmaLog2: 0, dataSeed: 5 },
  { m: 300, n: 528, k: 1056, regime: 'quantized', sigmaLog2: 6, dataSeed: 6 },
];

const SPEED_SHAPES: GemmShape[] = [
  { label: 'square', m: 8192, n: 8192, k: 8192 },
  { label: 'llama fwd 4096->4096 (16384 tokens)', m: 16384, n: 4096, k: 4096 },
  { label: 'llama fwd 4096->22016', m: 16384, n: 22016, k: 4096 },
  { label: 'skinny', m: 16, n: 8192, k: 8192 },
];

/** The GPU's compute capability ("9.0"), from nvidia-smi; null when it cannot be read. */
async function computeCapability(): Promise<string | null> {
  const r = await execa('nvidia-smi', ['--query-gpu=compute_cap', '--format=csv,noheader'], { reject: false });
  return r.exitCode === 0 && r.stdout.trim() ? r.stdout.trim().split('\n')[0].trim() : null;
}

export interface CheckOptions {
  runs: number;
  reps: number;
  speed: boolean;
  results: () => Promise<RunResults>;
  /** Torch package folder (qgen vendor --target torch); null: vendored by the check; false: skip the torch steps. */
  package?: string | null | false;
}

type Verdict = { step: string; ok: boolean | null; detail: string };

export async function runCheck(arch: Arch, opts: CheckOptions): Promise<number> {
  const cc = await computeCapability();
  if (cc === null) {
    console.error('qgen check: no NVIDIA GPU found (nvidia-smi failed); the check runs the kernels and needs a GPU');
    return 2;
  }
  if (cc !== ARCH_CC[arch]) {
    console.error(
      `qgen check: --arch ${arch} kernels need a compute capability ${ARCH_CC[arch]} GPU; this one is ${cc}` +
        ` (use --arch ${Object.entries(ARCH_CC).find(([, v]) => v === cc)?.[0] ?? 'matching this GPU'})`,
    );
    return 2;
  }
  // The whole catalog of the arch: the quantizers' hardware cvt paths are checked too, not only the GEMMs.
  const specs = catalogFor(arch);
  const gemms = specs.filter((s): s is GemmSpec => s.kind === 'gemm');
  const lines: string[] = [];
  const say = (line: string) => {
    lines.push(line);
    console.log(line);
  };
  let passed = 0,
    failed = 0;
  const record = (ok: boolean, line: string) => {
    if (ok) passed++;
    else failed++;
    say(`${ok ? 'PASS' : 'FAIL'} ${line}`);
  };
  const verdicts: Verdict[] = [{ step: 'compute capability', ok: true, detail: `${cc} (${arch})` }];

  const t0 = Date.now();
  const built = await buildRunner(arch, specs, path.join(process.env.TMPDIR ?? '/tmp', `qgen-check-${arch}`));
  const runner = new GpuRunner(built.binary);
  const device = await runner.device();
  say(
    `qgen check --arch ${arch} on ${device}: ${specs.length} kernels (${gemms.length} GEMMs) built in ` +
      `${((Date.now() - t0) / 1000).toFixed(0)} s`,
  );

  // The accumulator probe runs first (NUMERICS §6.3): what it measures explains (or not) every failure below.
  say('## 0. accumulator probe');
  let probe: ProbeReport | null = null;
  try {
    probe = await runProbe(runner, gemms.find((g) => g.output === 'bf16')!.name, arch);
  } catch (e) {
    say(`  the probe could not run: ${e instanceof Error ? e.message : String(e)}`);
  }
  for (const l of probe?.lines ?? []) say(l);
  const probeOk = probe !== null && probe.boundViolations === 0 && probe.inconsistentRows === 0;
  record(probeOk, 'accumulator probe: NUMERICS §6.2 bound holds, rows consistent');
  verdicts.push({
    step: 'accumulator probe (NUMERICS §6.3)',
    ok: probeOk,
    detail: probe
      ? `${probe.measured.map(describeModel).join('; ')}; ` + `§6.2 bound ${probe.boundViolations ? 'FAILS' : 'holds'}`
      : 'did not run',
  });
  const measured = probe?.measured ?? [];

  say('## 1. quantizer suite (bit-exact against the TS reference)');
  const elementwise = built.specs.filter((s) => s.kind !== 'gemm');
  const quant = await runSuite(runner, { ...built, specs: elementwise }, { runs: opts.runs, device, arch, gridCap: 0 });
  for (const l of quant.report.split('\n').filter((l) => /^(PASS|FAIL| {2})/.test(l))) say(l);
  passed += quant.passed;
  failed += quant.failed;
  verdicts.push({ step: 'quantizer suite (bit-exact)', ok: quant.failed === 0, detail: quant.line });

  say('## 2. GEMM tiny shapes');
  const classified: string[] = [];
  let tinyFailed = 0;
  for (const spec of gemms) {
    for (const c of TINY_CASES) {
      const { a, b } = gemmOperands(c);
      const res = await runner.run({
        kernel: spec.name,
        rows: c.m,
        cols: c.k,
        depth: c.n,
        seed: 0n,
        poison: 0xa5,
        buffers: gemmBuffers(a, b, spec.output),
      });
      const problem =
        res.status !== 0
          ? `status ${res.status}: ${res.message}`
          : checkGemmOutput(c, res.buffers[6], a, b, spec.output);
      record(
        problem === null,
        `${spec.name} ${c.m}x${c.n}x${c.k} ${c.regime === 'exact' ? 'bit-exact' : 'within the bound'}${problem ? `: ${problem}` : ''}`,
      );
      if (problem) tinyFailed++;
      if (problem && res.status === 0) {
        const out = decodeGemmOutput(res.buffers[6], spec.output);
        const v = classifyGemmOutput(a, b, out, spec.output, c.regime === 'exact', measured);
        say(`  classified: ${v.verdict}: ${v.detail}`);
        classified.push(v.verdict);
      }
    }
  }
  const kinds = [...new Set(classified)];
  verdicts.push({
    step: 'GEMM tiny shapes',
    ok: tinyFailed === 0,
    detail:
      `${gemms.length * TINY_CASES.length - tinyFailed} of ${gemms.length * TINY_CASES.length} pass` +
      (kinds.length ? `; failures classified: ${kinds.join(', ')}` : ''),
  });

  say('## 3. GEMM property suite');
  const suite = await runGemmSuite(runner, gemms, opts.runs);
  for (const l of suite.lines) say(l);
  passed += suite.passed;
  failed += suite.failed;
  verdicts.push({
    step: 'GEMM property suite',
    ok: suite.failed === 0,
    detail: `${suite.passed} passed, ${suite.failed} failed`,
  });

  if (opts.speed) {
    say('## 4. speed (median of CUDA-event timings, same run)');
    say(
      '| shape | kernel | time (us) | TFLOP/s | vendor NVFP4 (cuBLASLt) TFLOP/s | x vendor | cuBLAS bf16 TFLOP/s | x cuBLAS bf16 |',
    );
    say('|---|---|---:|---:|---:|---:|---:|---:|');
    const ratios: string[] = [];
    for (const s of SPEED_SHAPES) {
      const flop = 2 * s.m * s.n * s.k;
      const timeOf = async (
        kernel: string,
        buffers: Parameters<GpuRunner['bench']>[0]['buffers'],
      ): Promise<number | string> => {
        const r = await runner.bench(
          { kernel, rows: s.m, cols: s.k, depth: s.n, seed: 1n, poison: 0, buffers },
          opts.reps,
        );
        return r.status === 0 ? median(r.kernelMs) : r.message;
      };
      const vendor = await timeOf('baseline:cublaslt_nvfp4', nvfp4Buffers(s, 'bf16'));
      const bf16 = await timeOf('baseline:cublas_bf16', [
        { size: s.m * s.k * 2, fill: 'bf16-random' },
        { size: s.n * s.k * 2, fill: 'bf16-random' },
        { size: s.m * s.n * 2 },
      ]);
      for (const spec of gemms.filter((g) => g.output === 'bf16')) {
        const t = await timeOf(spec.name, nvfp4Buffers(s, 'bf16'));
        const tf = (ms: number | string) => (typeof ms === 'number' ? (flop / ms / 1e9).toFixed(0) : 'n/a');
        const ratio = (base: number | string) =>
          typeof base === 'number' && typeof t === 'number' ? (base / t).toFixed(2) : 'n/a';
        say(
          `| ${s.m}x${s.n}x${s.k} | ${spec.name} | ${typeof t === 'number' ? (t * 1000).toFixed(1) : t} | ${tf(t)} | ${tf(vendor)} | ${ratio(vendor)} | ${tf(bf16)} | ${ratio(bf16)} |`,
        );
        if (spec === gemms[0]) ratios.push(`${s.label}: ${ratio(vendor)}x vendor, ${ratio(bf16)}x bf16`);
      }
      if (typeof vendor === 'string' && s === SPEED_SHAPES[0])
        say(`(vendor NVFP4 GEMM not available on this GPU: ${vendor})`);
    }
    verdicts.push({ step: 'speed: GEMM vs cuBLASLt NVFP4 / cuBLAS bf16', ok: null, detail: ratios.join('; ') });
    say('## 5. speed: quantizers vs a device copy of the same bytes');
    const rows = await runBench(runner, { ...built, specs: elementwise }, { device, arch, reps: opts.reps });
    say(benchTable(rows, { device, arch, reps: opts.reps }));
    const fractions = rows.map((r) => r.fraction_of_copy).sort((x, y) => x - y);
    verdicts.push({
      step: 'speed: quantizers vs copy',
      ok: null,
      detail: fractions.length
        ? `${rows.length} runs: ${(100 * fractions[0]).toFixed(0)}-` +
          `${(100 * fractions[fractions.length - 1]).toFixed(0)}% of copy, ` +
          `median ${(100 * median(Float32Array.from(fractions))).toFixed(0)}%`
        : 'no rows',
    });
  }
  await runner.close();

  if (opts.package !== false) {
    say('## 6. torch package: built with pip, its tests');
    const pkg = await buildAndTestPackage(arch, opts.package ?? null);
    for (const l of pkg.lines) say(`  ${l}`);
    say(`${pkg.ok === null ? 'SKIP' : pkg.ok ? 'PASS' : 'FAIL'} torch package: ${pkg.summary}`);
    if (pkg.ok === true) passed++;
    if (pkg.ok === false) failed++;
    verdicts.push({ step: 'torch package (pip build + tests)', ok: pkg.ok, detail: pkg.summary });
    if (opts.speed && pkg.ok) {
      say('## 7. speed: Quartet2Linear forward + backward vs bf16 nn.Linear');
      const lin = await linearSpeed(arch, opts.reps);
      lin.lines.forEach(say);
      if (lin.ok === false) failed++;
      verdicts.push({ step: 'speed: Quartet2Linear fwd+bwd vs bf16', ok: lin.ok, detail: lin.summary });
    }
  }

  const summary = `${passed} passed, ${failed} failed`;
  const table = [
    '## verdict',
    '| step | verdict | detail |',
    '|---|---|---|',
    ...verdicts.map((v) => `| ${v.step} | ${v.ok === null ? 'measured' : v.ok ? 'PASS' : 'FAIL'} | ${v.detail} |`),
    summary,
  ];
  for (const l of table) say(l);
  (await opts.results()).save(`check-${arch}.md`, `# qgen check --arch ${arch}\n\n${lines.join('\n')}\n`);
  return failed === 0 ? 0 : 1;
}
