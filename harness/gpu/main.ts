// The GPU harness, run on the GPU machine from a bundle (`npm run gpu:bundle`, then harness/gpu/on-device.sh):
//   test  [--arch sm_90a] [--runs N] [--only NAME] [--specs all|catalog|coverage] [--grid-cap N]
//         [--sanitizers none|memcheck,racecheck]
//         bit-exact property tests against the TS reference for the catalog and every spec of harness/coverage.ts,
//         then compute-sanitizer memcheck + racecheck (--sanitizers: fewer or none, for a short device call; the
//         summary line names what was skipped). --grid-cap N builds the runner with every grid capped at N
//         blocks and adds one case per kernel with more than 4x as many work items as resident threads, so every
//         grid-stride loop runs several iterations per thread (bit-exact and under both sanitizers).
//   bench [--arch sm_90a] [--only NAME] [--reps N] [--gemm-reps N] [--gemm-shapes LABEL]
//                                                     quantizer and GEMM benchmarks vs baselines in the same run
//                                                     (LABEL: a GEMM_SHAPES label of gemm_bench.ts, e.g. skinny)
//   profile [--arch sm_90a] --only REGEX              ncu report per kernel (harness/gpu/profile.ts)
//   sass                                              SASS evidence for sm_90a / sm_100a / sm_120a (cuobjdump)
//   check [--arch sm_90a] [--runs N] [--reps N] [--no-speed] [--package DIR | --no-package]
//                                                     the first-hardware verification (harness/gpu/check.ts)
//   probe-selftest [--arch sm_90a]                    accumulator probe + failure classifier proved on this GPU
//   tune [--arch sm_90a] [--workload small|llama-7b|FILE] [--budget-s N] [--out FILE] [--reps N] [--timeout-s N]
//        [--max-candidates N] [--check-runs N]     the GEMM sweep of `qgen tune` (harness/gpu/tune.ts)
//   vendor --out DIR [--tuning FILE] [--arch sm_90a] [--force]
//                                                     `qgen vendor --target torch` here, e.g. with the table a tune
//                                                     just wrote (PROVENANCE.json: the bundle's record of the tree)
// Every run writes a new folder bench/results/<command>-<date>-<HHMM>-<commit7>/ (and the same under $OUT), each
// file with its provenance (harness/gpu/results.ts).
import path from 'node:path';
import type { Arch, GemmSpec, KernelSpec } from '../../dsl/types.ts';
import { catalogFor } from '../../dsl/catalog.ts';
import { coverageSpecs } from '../coverage.ts';
import { buildRunner } from './build.ts';
import { GpuRunner } from './client.ts';
import { SANITIZERS, parseSanitizers, runSuite, type Sanitizer } from './suite.ts';
import { runBench } from './bench.ts';
import { GEMM_SHAPES, runGemmBench } from './gemm_bench.ts';
import { runSass } from './sass.ts';
import { runCheck } from './check.ts';
import { RunResults } from './results.ts';
import { runProfile } from './profile.ts';
import { runProbeSelftest } from './probe_run.ts';

const SPEC_SETS = ['all', 'catalog', 'coverage'] as const;

function option(argv: string[], name: string, fallback: string): string {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : fallback;
}

async function main(argv: string[]): Promise<number> {
  const command = argv[0];
  const arch = option(argv, 'arch', 'sm_90a') as Arch;
  const only = option(argv, 'only', '');
  const selected = (name: string) => !only || name === only || new RegExp(only).test(name);
  const fullArgv = ['node', '.device/qgen-gpu.mjs', ...argv];
  // The GEMM baselines need dequantize_nvfp4_bf16 in the runner, so it is always built.
  const specs = catalogFor(arch).filter((s) => selected(s.name) || s.name === 'dequantize_nvfp4_bf16');
  const workDir = path.join(process.env.TMPDIR ?? '/tmp', `qgen-gpu-${arch}`);
  if (command === 'test') {
    const set = option(argv, 'specs', 'all');
    if (!(SPEC_SETS as readonly string[]).includes(set)) {
      console.error(`test: --specs must be one of ${SPEC_SETS.join(', ')} (got "${set}")`);
      return 2;
    }
    const gridCap = Number(option(argv, 'grid-cap', '0'));
    if (!Number.isInteger(gridCap) || gridCap < 0) {
      console.error(
        `test: --grid-cap must be a non-negative integer (blocks per grid; 0 = no cap), got "${option(argv, 'grid-cap', '')}"`,
      );
      return 2;
    }
    let sanitizers: Sanitizer[];
    try {
      sanitizers = parseSanitizers(option(argv, 'sanitizers', SANITIZERS.join(',')));
    } catch (e) {
      console.error((e as Error).message);
      return 2;
    }
    const results = await RunResults.start(gridCap ? 'test-gridcap' : 'test', fullArgv);
    const testSpecs = [
      ...(set === 'coverage' ? [] : catalogFor(arch).filter((s) => selected(s.name))),
      ...(set === 'catalog' ? [] : coverageSpecs().filter((s) => selected(s.name))),
    ];
    const built = await buildRunner(
      arch,
      testSpecs,
      `${workDir}${gridCap ? `-cap${gridCap}` : ''}`,
      gridCap ? [`-DQGEN_MAX_GRID_BLOCKS=${gridCap}`] : [],
    );
    const runner = new GpuRunner(built.binary);
    const device = await runner.device();
    const runs = Number(option(argv, 'runs', '60'));
    const summary = await runSuite(runner, built, { runs, device, arch, gridCap, sanitizers });
    await runner.close();
    const file = results.save(`gpu-test-${arch}.txt`, summary.report);
    console.log(`${summary.line}\nreport: ${file}`);
    return summary.failed === 0 ? 0 : 1;
  }
  if (command === 'bench') {
    const shapeLabel = option(argv, 'gemm-shapes', '');
    const labels = [...new Set(GEMM_SHAPES.map((s) => s.label))];
    if (shapeLabel && !labels.includes(shapeLabel)) {
      console.error(
        `bench: --gemm-shapes must be one of ${labels.map((l) => `"${l}"`).join(', ')} (got "${shapeLabel}")`,
      );
      return 2;
    }
    const results = await RunResults.start('bench', fullArgv);
    const built = await buildRunner(arch, specs, workDir);
    const runner = new GpuRunner(built.binary);
    const device = await runner.device();
    const reps = Number(option(argv, 'reps', '50'));
    const elementwise = built.specs.filter((s) => s.kind !== 'gemm' && selected(s.name));
    const gemms = built.specs.filter((s): s is GemmSpec => s.kind === 'gemm');
    if (elementwise.length) await runBench(runner, { ...built, specs: elementwise }, { device, arch, reps, results });
    if (gemms.length)
      await runGemmBench(runner, gemms, {
        device,
        arch,
        reps: Number(option(argv, 'gemm-reps', '20')),
        results,
        shapes: shapeLabel ? GEMM_SHAPES.filter((s) => s.label === shapeLabel) : undefined,
      });
    await runner.close();
    console.log(`bench: results in ${results.folder}`);
    return 0;
  }
  if (command === 'check') {
    const pkg = argv.includes('--no-package') ? false : option(argv, 'package', '') || null;
    return runCheck(arch, {
      runs: Number(option(argv, 'runs', '20')),
      reps: Number(option(argv, 'reps', '20')),
      speed: !argv.includes('--no-speed'),
      results: () => RunResults.start('check', fullArgv),
      package: pkg,
    });
  }
  if (command === 'tune') {
    const { runTune, DEFAULT_QUANTIZER_CANDIDATES } = await import('./tune.ts');
    const max = option(argv, 'max-candidates', '');
    const positive = (name: string, fallback: string): number | null => {
      const raw = option(argv, name, fallback);
      if (/^[1-9][0-9]*$/.test(raw)) return Number(raw);
      console.error(`tune: --${name} must be a positive integer (got "${raw}")`);
      return null;
    };
    const numbers = {
      budgetS: positive('budget-s', '540'),
      reps: positive('reps', '10'),
      timeoutS: positive('timeout-s', '60'),
      checkRuns: positive('check-runs', '6'),
      maxCandidates: max ? positive('max-candidates', max) : undefined,
      maxQuantizerCandidates: positive('max-quantizer-candidates', String(DEFAULT_QUANTIZER_CANDIDATES)),
    };
    if (Object.values(numbers).some((v) => v === null)) return 2;
    return runTune({
      arch,
      workload: option(argv, 'workload', 'small'),
      budgetS: numbers.budgetS!,
      out: option(argv, 'out', '') || undefined,
      reps: numbers.reps!,
      timeoutS: numbers.timeoutS!,
      checkRuns: numbers.checkRuns!,
      maxCandidates: numbers.maxCandidates ?? undefined,
      maxQuantizerCandidates: numbers.maxQuantizerCandidates!,
    });
  }
  if (command === 'vendor') {
    const out = option(argv, 'out', '');
    if (!out) {
      console.error('vendor: --out DIR is required (the torch package folder to write)');
      return 2;
    }
    const { loadTuningOption } = await import('../../cli/tuning.ts');
    const { vendor } = await import('../../emit/vendor.ts');
    const { bundledHostProvenance } = await import('./results.ts');
    let tuning;
    try {
      tuning = loadTuningOption(option(argv, 'tuning', '') || undefined, arch);
    } catch (e) {
      console.error(`vendor: ${(e as Error).message}`);
      return 2;
    }
    const result = await vendor({
      target: 'torch',
      arch,
      out,
      force: argv.includes('--force'),
      provenance: { ...bundledHostProvenance(), source_hash: null }, // as the host's vendor records it
      ...tuning,
    });
    console.log(`vendor: ${result.kernels.length} kernel(s) for ${arch} in ${out} (${result.files.length} files)`);
    return 0;
  }
  if (command === 'probe-selftest') return runProbeSelftest(arch);
  if (command === 'profile') {
    const results = await RunResults.start('profile', fullArgv);
    const built = await buildRunner(arch, specs, workDir);
    const chosen: KernelSpec[] = built.specs.filter((s) => selected(s.name));
    const written = await runProfile(built, chosen, path.join(workDir, 'profile'), results);
    console.log(`profile: ${written.length} of ${chosen.length} kernels profiled, reports in ${results.folder}`);
    return written.length === chosen.length ? 0 : 1;
  }
  if (command === 'sass') {
    const results = await RunResults.start('sass', fullArgv);
    await runSass(selected, workDir, results);
    return 0;
  }
  console.error(
    'usage: qgen-gpu test|bench|profile|sass|check|tune|probe-selftest [--arch A] [--only NAME] [--runs N] [--reps N]' +
      ' [--specs all|catalog|coverage] [--grid-cap N]',
  );
  return 2;
}

const code = await main(process.argv.slice(2)).catch((e: unknown) => {
  console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
  return 1;
});
process.exit(code);
