// `qgen check --arch A`: the first-hardware self-check of the NVFP4 GEMMs. On a GPU of the arch's family it
//   1. builds every GEMM of the arch's catalog (plus dequantize_nvfp4, which a baseline needs) into the runner;
//   0. the accumulator probe (accumulator_probe.ts) on the arch's bf16 GEMM: the measured accumulator, NUMERICS §6.2;
//   2. tiny shapes first (the 128x256x256 single tile ptx.md §9 asks for, m = 1, a ragged K), bit for bit where
//      fp32 accumulation is exact, within the derived bound otherwise — so that a wrong fragment layout or
//      descriptor shows up on the smallest case that exercises it; a failure is classified (classify.ts) as
//      "layout or indexing wrong" or "accumulation less precise than fp32" (explained by the probe's measurement);
//   3. the full GEMM property suite (fast-check shapes, larger shapes with several tiles per CTA and long K, NaN
//      scale padding, tilings agreeing bit for bit, bad shapes refused with c untouched);
//   4. speed at a few large shapes against the vendor NVFP4 GEMM (cuBLASLt block-scaled, when the GPU has one)
//      and cuBLAS bf16, median of CUDA-event timings in the same run.
// Prints one line per check and a summary `N passed, M failed`; writes bench/results/check-<arch>.md (and $OUT).
import { execa } from 'execa';
import path from 'node:path';
import type { Arch, GemmSpec } from '../../dsl/types.ts';
import { catalogFor } from '../../dsl/catalog.ts';
import { buildRunner } from './build.ts';
import { GpuRunner, median } from './client.ts';
import { checkGemmOutput, gemmBuffers, gemmOperands, runGemmSuite, type GemmCase } from './gemm_suite.ts';
import { nvfp4Buffers, type GemmShape } from './gemm_bench.ts';
import { saveResult } from './results.ts';
import { runProbe } from './probe_run.ts';
import { classifyGemmOutput } from './classify.ts';
import { decodeGemmOutput } from './accumulator_probe.ts';

/** Compute capability each arch's kernels run on (arch-specific `a` targets run only on that exact chip). */
const ARCH_CC: Record<Arch, string> = { sm_90a: '9.0', sm_100a: '10.0', sm_120a: '12.0' };

/** The tiny cases, smallest first. */
export const TINY_CASES: GemmCase[] = [
  { m: 128, n: 256, k: 256, regime: 'exact', sigmaLog2: 0, dataSeed: 1 },   // one sm_100a tile, one K block
  { m: 1, n: 16, k: 32, regime: 'exact', sigmaLog2: 0, dataSeed: 2 },       // smallest legal shape: ragged everything
  { m: 128, n: 128, k: 64, regime: 'exact', sigmaLog2: 0, dataSeed: 3 },    // one 64-wide K atom
  { m: 64, n: 256, k: 416, regime: 'exact', sigmaLog2: 0, dataSeed: 4 },    // several K blocks, 2 scale groups in the last atom (exact: k <= 448)
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

export interface CheckOptions { runs: number; reps: number; speed: boolean }

export async function runCheck(arch: Arch, opts: CheckOptions): Promise<number> {
  const cc = await computeCapability();
  if (cc === null) {
    console.error('qgen check: no NVIDIA GPU found (nvidia-smi failed); the check runs the kernels and needs a GPU');
    return 2;
  }
  if (cc !== ARCH_CC[arch]) {
    console.error(`qgen check: --arch ${arch} kernels need a compute capability ${ARCH_CC[arch]} GPU; this one is ${cc}`
      + ` (use --arch ${Object.entries(ARCH_CC).find(([, v]) => v === cc)?.[0] ?? 'matching this GPU'})`);
    return 2;
  }
  const gemms = catalogFor(arch).filter((s): s is GemmSpec => s.kind === 'gemm');
  const specs = [...gemms, ...catalogFor(arch).filter((s) => s.name === 'dequantize_nvfp4')];
  const lines: string[] = [];
  const say = (line: string) => { lines.push(line); console.log(line); };
  let passed = 0, failed = 0;
  const record = (ok: boolean, line: string) => { if (ok) passed++; else failed++; say(`${ok ? 'PASS' : 'FAIL'} ${line}`); };

  const t0 = Date.now();
  const built = await buildRunner(arch, specs, path.join(process.env.TMPDIR ?? '/tmp', `qgen-check-${arch}`));
  const runner = new GpuRunner(built.binary);
  const device = await runner.device();
  say(`qgen check --arch ${arch} on ${device}: ${gemms.length} GEMM kernel(s) built in ${((Date.now() - t0) / 1000).toFixed(0)} s`);

  // The accumulator probe runs first (NUMERICS §6.3): what it measures explains (or not) every failure below.
  say('## 0. accumulator probe');
  const probe = await runProbe(runner, gemms.find((g) => g.output === 'bf16')!.name, arch);
  for (const l of probe.lines) say(l);
  record(probe.boundViolations === 0 && probe.inconsistentRows === 0,
    'accumulator probe: NUMERICS §6.2 bound holds, rows consistent');

  say('## 1. tiny shapes');
  for (const spec of gemms) {
    for (const c of TINY_CASES) {
      const { a, b } = gemmOperands(c);
      const res = await runner.run({ kernel: spec.name, rows: c.m, cols: c.k, depth: c.n, seed: 0n, poison: 0xa5, buffers: gemmBuffers(a, b, spec.output) });
      const problem = res.status !== 0 ? `status ${res.status}: ${res.message}` : checkGemmOutput(c, res.buffers[6], a, b, spec.output);
      record(problem === null, `${spec.name} ${c.m}x${c.n}x${c.k} ${c.regime === 'exact' ? 'bit-exact' : 'within the bound'}${problem ? `: ${problem}` : ''}`);
      if (problem && res.status === 0) {
        const out = decodeGemmOutput(res.buffers[6], spec.output);
        const v = classifyGemmOutput(a, b, out, spec.output, c.regime === 'exact', probe.measured);
        say(`  classified: ${v.verdict}: ${v.detail}`);
      }
    }
  }

  say('## 2. property suite');
  const suite = await runGemmSuite(runner, gemms, opts.runs);
  for (const l of suite.lines) say(l);
  passed += suite.passed;
  failed += suite.failed;

  if (opts.speed) {
    say('## 3. speed (median of CUDA-event timings, same run)');
    say('| shape | kernel | time (us) | TFLOP/s | vendor NVFP4 (cuBLASLt) TFLOP/s | x vendor | cuBLAS bf16 TFLOP/s | x cuBLAS bf16 |');
    say('|---|---|---:|---:|---:|---:|---:|---:|');
    for (const s of SPEED_SHAPES) {
      const flop = 2 * s.m * s.n * s.k;
      const timeOf = async (kernel: string, buffers: Parameters<GpuRunner['bench']>[0]['buffers']): Promise<number | string> => {
        const r = await runner.bench({ kernel, rows: s.m, cols: s.k, depth: s.n, seed: 1n, poison: 0, buffers }, opts.reps);
        return r.status === 0 ? median(r.kernelMs) : r.message;
      };
      const vendor = await timeOf('baseline:cublaslt_nvfp4', nvfp4Buffers(s, 'bf16'));
      const bf16 = await timeOf('baseline:cublas_bf16', [{ size: s.m * s.k * 2, fill: 'bf16-random' }, { size: s.n * s.k * 2, fill: 'bf16-random' }, { size: s.m * s.n * 2 }]);
      for (const spec of gemms.filter((g) => g.output === 'bf16')) {
        const t = await timeOf(spec.name, nvfp4Buffers(s, 'bf16'));
        const tf = (ms: number | string) => (typeof ms === 'number' ? (flop / ms / 1e9).toFixed(0) : 'n/a');
        const ratio = (base: number | string) => (typeof base === 'number' && typeof t === 'number' ? (base / t).toFixed(2) : 'n/a');
        say(`| ${s.m}x${s.n}x${s.k} | ${spec.name} | ${typeof t === 'number' ? (t * 1000).toFixed(1) : t} | ${tf(t)} | ${tf(vendor)} | ${ratio(vendor)} | ${tf(bf16)} | ${ratio(bf16)} |`);
      }
      if (typeof vendor === 'string' && s === SPEED_SHAPES[0]) say(`(vendor NVFP4 GEMM not available on this GPU: ${vendor})`);
    }
  }
  await runner.close();
  const summary = `${passed} passed, ${failed} failed`;
  say(summary);
  saveResult(`check-${arch}.md`, `# qgen check --arch ${arch}\n\n${lines.join('\n')}\n`);
  return failed === 0 ? 0 : 1;
}
