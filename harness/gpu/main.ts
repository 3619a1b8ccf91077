// The GPU harness, run on the GPU machine from a bundle (`npm run gpu:bundle`, then harness/gpu/on-device.sh):
//   test  [--arch sm_90a] [--runs N] [--only NAME]   bit-exact property tests against the TS reference,
//                                                     then compute-sanitizer memcheck + racecheck
//   bench [--arch sm_90a] [--only NAME] [--reps N]    quantizer benchmarks vs a device copy of the same bytes
//   profile [--arch sm_90a] --only REGEX [--out DIR]  ncu report per kernel (harness/gpu/profile.ts)
//   sass                                              SASS evidence for sm_100a / sm_120a (cuobjdump)
//   check [--arch sm_90a] [--runs N] [--reps N] [--no-speed] [--package DIR | --no-package]
//                                                     the first-hardware verification (harness/gpu/check.ts)
//   probe-selftest [--arch sm_90a]                    accumulator probe + failure classifier proved on this GPU
// Everything it writes goes to bench/results/ and, when $OUT is set, to $OUT as well.
import path from 'node:path';
import type { Arch, GemmSpec, KernelSpec } from '../../dsl/types.ts';
import { catalogFor } from '../../dsl/catalog.ts';
import { buildRunner } from './build.ts';
import { GpuRunner } from './client.ts';
import { runSuite } from './suite.ts';
import { runBench } from './bench.ts';
import { runGemmBench } from './gemm_bench.ts';
import { runSass } from './sass.ts';
import { runCheck } from './check.ts';
import { saveResult } from './results.ts';
import { runProfile } from './profile.ts';
import { runProbeSelftest } from './probe_run.ts';


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
  if (command === 'check') {
    const pkg = argv.includes('--no-package') ? false : option(argv, 'package', '') || null;
    return runCheck(arch, { runs: Number(option(argv, 'runs', '20')), reps: Number(option(argv, 'reps', '20')),
      speed: !argv.includes('--no-speed'), package: pkg });
  }
  if (command === 'probe-selftest') return runProbeSelftest(arch);
  if (command === 'profile') {
    const built = await buildRunner(arch, specs, workDir);
    const selected = built.specs.filter((s) => !only || s.name === only || new RegExp(only).test(s.name));
    const written = await runProfile(built, selected, option(argv, 'out', path.join(process.env.OUT ?? workDir, 'profile')));
    console.log(`profile: ${written.length} of ${selected.length} kernels profiled`);
    return written.length === selected.length ? 0 : 1;
  }
  if (command === 'sass') {
    await runSass((name) => !only || name === only || new RegExp(only).test(name), workDir);
    return 0;
  }
  console.error('usage: qgen-gpu test|bench|profile|sass|check|probe-selftest [--arch A] [--only NAME] [--runs N] '
    + '[--reps N]');
  return 2;
}

const code = await main(process.argv.slice(2)).catch((e: unknown) => {
  console.error(e instanceof Error ? e.stack ?? e.message : String(e));
  return 1;
});
process.exit(code);
