// GPU side of the accumulator probe and the failure classifier (accumulator_probe.ts, classify.ts):
//   runProbe            the probe on one GEMM kernel of the runner -> ProbeReport
//   classifyKernel      the classifier's verdict for a kernel over CLASSIFY_CASES (classify.ts; worst verdict wins;
//                       its cancellation case is where a 14-bit accumulator leaves §6.2's bound through a bf16 output)
//   runProbeSelftest    `qgen-gpu probe-selftest [--arch sm_90a]`: proves probe + classifier on the GPU at hand:
//                       the arch's real GEMM must pass, baseline:degraded_nvfp4_gemm (14 bits every K = 32) must be
//                       measured as such and classified "accumulation", and the real GEMM fed swapped scale
//                       columns must be classified "layout".
//                       Writes bench/results/probe-selftest-<arch>-<date>-<commit7>.md.
import type { Arch } from '../../dsl/types.ts';
import { catalogFor } from '../../dsl/catalog.ts';
import type { AccumulatorModel } from '../../reference/accumulator.ts';
import { describeModel } from '../../reference/accumulator.ts';
import { analyseProbe, decodeGemmOutput, probeOperands, type ProbeReport } from './accumulator_probe.ts';
import { CLASSIFY_CASES, classifyGemmOutput, swapScaleColumns, type Verdict } from './classify.ts';
import { gemmBuffers } from './gemm_suite.ts';
import { buildRunner } from './build.ts';
import { GpuRunner } from './client.ts';
import { RunResults } from './results.ts';
import path from 'node:path';

export async function runProbe(runner: GpuRunner, kernel: string, arch: Arch, seed = 0n): Promise<ProbeReport> {
  const { a, b, rows } = probeOperands();
  const res = await runner.run({
    kernel,
    rows: a.rows,
    cols: a.cols,
    depth: b.rows,
    seed,
    poison: 0xa5,
    buffers: gemmBuffers(a, b, 'bf16'),
  });
  if (res.status !== 0) throw new Error(`probe on ${kernel}: status ${res.status}: ${res.message}`);
  return analyseProbe(arch, rows, a, b, decodeGemmOutput(res.buffers[6], 'bf16'), 'bf16');
}

const RANK: Record<Verdict, number> = { pass: 0, accumulation: 1, layout: 2 };

export async function classifyKernel(
  runner: GpuRunner,
  kernel: string,
  models: readonly AccumulatorModel[],
  opts: { swapScales?: boolean; seed?: bigint } = {},
): Promise<{ verdict: Verdict; lines: string[] }> {
  let verdict: Verdict = 'pass';
  const lines: string[] = [];
  for (const c of CLASSIFY_CASES) {
    const { a, b } = c.operands();
    const sent = opts.swapScales ? swapScaleColumns(a) : a;
    const res = await runner.run({
      kernel,
      rows: a.rows,
      cols: a.cols,
      depth: b.rows,
      seed: opts.seed ?? 0n,
      poison: 0x5a,
      buffers: gemmBuffers(sent, b, 'bf16'),
    });
    if (res.status !== 0) {
      verdict = 'layout';
      lines.push(`  ${c.label}: status ${res.status}: ${res.message}`);
      continue;
    }
    const v = classifyGemmOutput(a, b, decodeGemmOutput(res.buffers[6], 'bf16'), 'bf16', c.exact, models);
    if (RANK[v.verdict] > RANK[verdict]) verdict = v.verdict;
    lines.push(`  ${c.label}: ${v.verdict}: ${v.detail}`);
  }
  return { verdict, lines };
}

export async function runProbeSelftest(arch: Arch): Promise<number> {
  const gemm = catalogFor(arch).find((s) => s.name === 'gemm_nvfp4_bf16')!;
  const built = await buildRunner(arch, [gemm], path.join(process.env.TMPDIR ?? '/tmp', `qgen-probe-${arch}`));
  const runner = new GpuRunner(built.binary);
  const device = await runner.device();
  const lines: string[] = [];
  const say = (l: string) => {
    lines.push(l);
    console.log(l);
  };
  let failed = 0;
  const expect = (ok: boolean, what: string) => {
    if (!ok) failed++;
    say(`${ok ? 'PASS' : 'FAIL'} ${what}`);
  };
  say(`# qgen-gpu probe-selftest --arch ${arch} on ${device}`);
  say(`## probe: ${gemm.name} (the real ${arch} GEMM)`);
  const real = await runProbe(runner, gemm.name, arch);
  real.lines.forEach(say);
  say('## probe: baseline:degraded_nvfp4_gemm (fp32 additions, cut to 14 bits toward zero every 32 products)');
  const degraded = await runProbe(runner, 'baseline:degraded_nvfp4_gemm', arch);
  degraded.lines.forEach(say);
  const truth: AccumulatorModel = { family: 'periodic', order: 'natural', stepTerms: 32, accBits: 14, rounding: 'rz' };
  say('## classifier');
  const verdicts = [
    { name: `${gemm.name} (real)`, want: 'pass' as Verdict, r: await classifyKernel(runner, gemm.name, real.measured) },
    {
      name: 'baseline:degraded_nvfp4_gemm',
      want: 'accumulation' as Verdict,
      r: await classifyKernel(runner, 'baseline:degraded_nvfp4_gemm', degraded.measured),
    },
    {
      name: `${gemm.name} fed swapped scale columns`,
      want: 'layout' as Verdict,
      r: await classifyKernel(runner, gemm.name, real.measured, { swapScales: true }),
    },
  ];
  await runner.close();
  say('| kernel | expected | classified |');
  say('|---|---|---|');
  for (const v of verdicts) say(`| ${v.name} | ${v.want} | ${v.r.verdict} |`);
  for (const v of verdicts) v.r.lines.forEach((l) => say(`${v.name}:${l}`));
  expect(
    real.boundViolations === 0 && real.inconsistentRows === 0,
    'probe on the real GEMM: NUMERICS §6.2 bound holds, rows consistent',
  );
  expect(
    degraded.exactFits.some((m) => JSON.stringify(m) === JSON.stringify(truth)) && degraded.boundViolations > 0,
    `probe on the degraded GEMM: ${describeModel(truth)} reproduces every output, §6.2 bound fails`,
  );
  for (const v of verdicts) {
    expect(v.r.verdict === v.want, `${v.name} classified "${v.r.verdict}" (expected "${v.want}")`);
  }
  say(`${verdicts.length + 2 - failed} passed, ${failed} failed`);
  // The same per-run folder and provenance as every GPU command (harness/gpu/results.ts).
  (await RunResults.start('probe-selftest', ['qgen-gpu', 'probe-selftest', '--arch', arch])).save(
    `probe-selftest-${arch}.md`,
    `${lines.join('\n')}\n`,
  );
  return failed === 0 ? 0 : 1;
}
