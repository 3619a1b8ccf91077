// The GPU harness, run on the GPU machine from a bundle (`npm run gpu:bundle`, then harness/gpu/on-device.sh):
//   test  [--arch sm_90a] [--runs N] [--only NAME]   bit-exact property tests against the TS reference,
//                                                     then compute-sanitizer memcheck + racecheck
//   bench [--arch sm_90a] [--only NAME] [--reps N]    quantizer benchmarks vs a device copy of the same bytes
//   sass                                              SASS evidence for sm_100a / sm_120a (cuobjdump)
// Everything it writes goes to bench/results/ and, when $OUT is set, to $OUT as well.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { execa } from 'execa';
import type { Arch, GemmSpec, KernelSpec } from '../../dsl/types.ts';
import { catalogFor } from '../../dsl/catalog.ts';
import { emitKernels } from '../../codegen/emit.ts';
import { renderDispatch } from './bind.ts';
import { GpuRunner } from './client.ts';
import { runSuite } from './suite.ts';
import { runBench } from './bench.ts';
import { runGemmBench } from './gemm_bench.ts';
import { runSass } from './sass.ts';
import { repoRoot, saveResult } from './results.ts';


export interface BuiltRunner { binary: string; specs: KernelSpec[]; dir: string }

/** Emits the catalog for an arch, generates the runner's dispatch table and links the runner with nvcc. */
export async function buildRunner(arch: Arch, specs: KernelSpec[], workDir: string, extraFlags: string[] = []): Promise<BuiltRunner> {
  const kernelsDir = path.join(workDir, 'kernels');
  mkdirSync(kernelsDir, { recursive: true });
  const t0 = Date.now();
  const { files } = await emitKernels(specs, arch, kernelsDir);
  const dispatch = renderDispatch(specs);
  writeFileSync(path.join(workDir, 'dispatch.h'), dispatch.header);
  writeFileSync(path.join(workDir, 'dispatch.cu'), dispatch.source);
  const cuFiles = files.filter((f) => f.endsWith('.cu'));
  const binary = path.join(workDir, `runner_${arch}`);
  const cc = arch.replace('sm_', '').replace('a', '');
  const common = [`-gencode`, `arch=compute_${cc}a,code=sm_${cc}a`, '-O3', '-std=c++17', '-lineinfo', ...extraFlags,
    `-I${kernelsDir}`, `-I${workDir}`];
  // One nvcc per translation unit, as many at a time as there are cores, then one link.
  const sources = [path.join(repoRoot, 'harness/runner/runner.cu'), path.join(repoRoot, 'harness/runner/baselines.cu'),
    path.join(workDir, 'dispatch.cu'), ...cuFiles];
  const objects = sources.map((src, i) => path.join(workDir, `${i}_${path.basename(src, '.cu')}.o`));
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < sources.length; i = next++) {
      const r = await execa('nvcc', [...common, '-c', sources[i], '-o', objects[i]], { reject: false, all: true });
      if (r.exitCode !== 0) throw new Error(`nvcc failed on ${sources[i]}:\n${r.all}`);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(os.cpus().length, 16)) }, worker));
  const link = await execa('nvcc', [...common, ...objects, '-o', binary, '-lcublasLt'], { reject: false, all: true });
  if (link.exitCode !== 0) throw new Error(`nvcc failed linking the runner:\n${link.all}`);
  process.stderr.write(`built runner for ${arch}: ${specs.length} kernels in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  return { binary, specs, dir: workDir };
}

function option(argv: string[], name: string, fallback: string): string {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : fallback;
}

async function main(argv: string[]): Promise<number> {
  const command = argv[0];
  const arch = option(argv, 'arch', 'sm_90a') as Arch;
  const only = option(argv, 'only', '');
  // The GEMM baselines need dequantize_nvfp4 in the runner, so it is always built.
  const specs = catalogFor(arch).filter((s) => !only || s.name === only || new RegExp(only).test(s.name) || s.name === 'dequantize_nvfp4');
  const workDir = path.join(process.env.TMPDIR ?? '/tmp', `qgen-gpu-${arch}`);
  if (command === 'test') {
    const built = await buildRunner(arch, specs, workDir);
    const runner = new GpuRunner(built.binary);
    const device = await runner.device();
    const summary = await runSuite(runner, built, { runs: Number(option(argv, 'runs', '60')), device, arch });
    await runner.close();
    saveResult(`gpu-test-${arch}.txt`, summary.report);
    console.log(summary.line);
    return summary.failed === 0 ? 0 : 1;
  }
  if (command === 'bench') {
    const built = await buildRunner(arch, specs, workDir);
    const runner = new GpuRunner(built.binary);
    const device = await runner.device();
    const reps = Number(option(argv, 'reps', '50'));
    const selected = (s: KernelSpec) => !only || s.name === only || new RegExp(only).test(s.name);
    const elementwise = built.specs.filter((s) => s.kind !== 'gemm' && selected(s));
    const gemms = built.specs.filter((s): s is GemmSpec => s.kind === 'gemm');
    if (elementwise.length) await runBench(runner, { ...built, specs: elementwise }, { device, arch, reps });
    if (gemms.length) await runGemmBench(runner, gemms, { device, arch, reps: Number(option(argv, 'gemm-reps', '20')) });
    await runner.close();
    return 0;
  }
  if (command === 'sass') {
    await runSass(specs, workDir);
    return 0;
  }
  console.error('usage: qgen-gpu test|bench|sass [--arch A] [--only NAME] [--runs N] [--reps N]');
  return 2;
}

const code = await main(process.argv.slice(2)).catch((e: unknown) => {
  console.error(e instanceof Error ? e.stack ?? e.message : String(e));
  return 1;
});
process.exit(code);
