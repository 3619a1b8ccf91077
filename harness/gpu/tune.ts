// `qgen tune` on the GPU machine (also `bash harness/gpu/on-device.sh tune ...`): the GEMM sweep of tune/sweep.ts with
// a runner backend. Every fused tiling of the pruned space (validate/space.ts) is emitted and compiled in parallel
// through the nvcc cache (a tiling that fails to compile, e.g. spills under ptxas -warn-spills, is recorded), linked
// into one runner with the two-pass path (baseline:two_pass: the package's qgen_two_pass.h) and cuBLAS bf16; each
// candidate is checked against the TypeScript reference (harness/gpu/gemm_suite.ts: bit-exact on exact inputs, within
// NUMERICS §6.2's bound on quantized ones) and then timed per workload shape. Then, in a runner of its own, the
// workload's quantizers (tune/quantizers.ts): each catalog spec and up to --max-quantizer-candidates launch shapes of
// validate/space.ts quantizeSpace, checked bit-exact like the GPU suite and timed like qgen bench. Writes
// tuning/<arch>-<gpu>.json (resumable: a rerun with the same cache key skips finished work) and
// bench/results/tune-<arch>-<date>-<commit7>/.
import { execa } from 'execa';
import fc from 'fast-check';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Arch, ElementwiseTiling, GemmSpec, KernelSpec } from '../../dsl/types.ts';
import { catalogFor } from '../../dsl/catalog.ts';
import { tilingLabel } from '../../dsl/tunables.ts';
import { loadWorkload, type Workload, type WorkloadGemm, type WorkloadQuantizer } from '../../dsl/workloads.ts';
import { emitKernels } from '../../emit/emit.ts';
import { qgenVersion } from '../../render/versions.ts';
import { NvccError, compileCuda, nvccVersion } from '../nvcc.ts';
import { configSpaceHash, gemmSpace } from '../../validate/space.ts';
import { sweep, type Candidate, type CheckResult, type SweepBackend, type SweepState } from '../../tune/sweep.ts';
import {
  TUNING_FORMAT,
  baseGemm,
  sourceHash,
  tuningProblems,
  type TuningCacheKey,
  type TuningFile,
} from '../../tune/tuning.ts';
import { tuneMarkdown, tuneSvg } from '../../tune/report.ts';
import {
  quantizerCandidates,
  quantizerSweep,
  winnerTilings,
  type QuantizerBackend,
  type QuantizerCandidate,
  type QuantizerResult,
  type QuantizerSweepState,
} from '../../tune/quantizers.ts';
import { benchBuffers } from './bench.ts';
import { caseArbitrary, type CaseParams } from './cases.ts';
import { prepare, runCase, type Prepared } from './suite.ts';
import { renderDispatch } from './bind.ts';
import { runnerSources } from './build.ts';
import { GpuRunner, median } from './client.ts';
import {
  checkGemmOutput,
  gemmBuffers,
  gemmCaseArbitrary,
  gemmExpected,
  gemmOperands,
  type GemmCase,
  type GemmExpected,
} from './gemm_suite.ts';
import { nvfp4Buffers } from './gemm_bench.ts';
import { bundledHostProvenance, repoRoot } from './results.ts';
import { hostProvenance } from '../provenance.ts';

export interface TuneOptions {
  arch: Arch;
  workload: string;
  budgetS: number;
  out?: string;
  reps: number;
  timeoutS: number;
  checkRuns: number;
  maxCandidates?: number;
  /** Launch shapes of each workload quantizer tried besides its catalog spec. */
  maxQuantizerCandidates: number;
}

const TWO_PASS: Candidate = { name: 'baseline:two_pass', strategy: 'two-pass', tiling: null };

/** Fused candidates: the catalog's tilings first (known good), then the rest of the space in its order. */
export function fusedCandidates(arch: Arch, max?: number): GemmSpec[] {
  const all = gemmSpace(arch, baseGemm(arch)).candidates;
  const catalogTilings = catalogFor(arch)
    .filter((s): s is GemmSpec => s.kind === 'gemm' && s.output === 'bf16')
    .map((s) => JSON.stringify(s.tiling));
  // In the catalog's order (its large-shape tilings come first), not the space's (skinny tiles first).
  const known = catalogTilings.flatMap((c) => all.filter((s) => JSON.stringify(s.tiling) === c));
  // Then larger tiles first (more reuse per CTA on the large shapes), deeper K, more stages, swizzled order first.
  const t = (s: GemmSpec) => s.tiling;
  const rest = all
    .filter((s) => !known.includes(s))
    .sort(
      (a, b) =>
        t(b).ctaTile[0] * t(b).ctaTile[1] - t(a).ctaTile[0] * t(a).ctaTile[1] ||
        t(b).ctaTile[2] - t(a).ctaTile[2] ||
        t(b).stages - t(a).stages ||
        Number(t(b).tileOrder === 'swizzle-8') - Number(t(a).tileOrder === 'swizzle-8'),
    );
  return [...known, ...rest].slice(0, max ?? all.length);
}

function progressBar(start: number) {
  let last = 0;
  return (done: number, total: number, what: string) => {
    const now = Date.now();
    if (now - last < 250 && done < total) return;
    last = now;
    const elapsed = (now - start) / 1000;
    const eta = done > 0 ? (elapsed / done) * (total - done) : 0;
    const width = 30,
      filled = Math.round((width * done) / Math.max(1, total));
    const t = (s: number) => `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
    process.stderr.write(
      `\r[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done}/${total} ${t(elapsed)} ETA ${t(eta)} ` +
        `${what.slice(0, 50).padEnd(50)}${done === total ? '\n' : ''}`,
    );
  };
}

/** Compiles every kernel source (parallel, nvcc cache), then the runner; returns the binary and what failed. */
export async function buildTuneRunner(
  arch: Arch,
  specs: KernelSpec[],
  workDir: string,
): Promise<{ binary: string; failed: Map<string, string> }> {
  const kernelsDir = path.join(workDir, 'kernels');
  mkdirSync(kernelsDir, { recursive: true });
  const dequantize = catalogFor(arch).find((s) => s.name === 'dequantize_nvfp4_bf16')!;
  await emitKernels([dequantize, ...specs], arch, kernelsDir);
  const failed = new Map<string, string>();
  const objects = new Map<string, string>();
  const names = [dequantize.name, ...specs.map((s) => s.name)];
  let next = 0,
    done = 0;
  const t0 = Date.now();
  const worker = async () => {
    for (let i = next++; i < names.length; i = next++) {
      const obj = path.join(workDir, `${names[i]}.o`);
      try {
        await compileCuda({
          sources: [path.join(kernelsDir, `${names[i]}.cu`)],
          arch,
          out: obj,
          flags: ['-lineinfo'],
          includeDirs: [kernelsDir],
        });
        objects.set(names[i], obj);
      } catch (e) {
        failed.set(names[i], compileFailureReason(e));
      }
      done++;
      process.stderr.write(`\rcompiling ${done}/${names.length} kernels (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(os.cpus().length, 32)) }, worker));
  process.stderr.write('\n');
  if (failed.has(dequantize.name)) {
    throw new Error(`${dequantize.name} did not compile: ${failed.get(dequantize.name)}`);
  }
  const built = [dequantize, ...specs].filter((s) => objects.has(s.name));
  const dispatch = renderDispatch(built);
  writeFileSync(path.join(workDir, 'dispatch.h'), dispatch.header);
  writeFileSync(path.join(workDir, 'dispatch.cu'), dispatch.source);
  const cc = arch.slice(3);
  const common = [
    '-gencode',
    `arch=compute_${cc},code=${arch}`,
    '-O3',
    '-std=c++17',
    '-lineinfo',
    `-I${kernelsDir}`,
    `-I${workDir}`,
  ];
  const sources = runnerSources(workDir);
  const runnerObjects = sources.map((s) => path.join(workDir, `runner_${path.basename(s, '.cu')}.o`));
  await Promise.all(
    sources.map(async (src, i) => {
      const r = await execa('nvcc', [...common, '-c', src, '-o', runnerObjects[i]], { reject: false, all: true });
      if (r.exitCode !== 0) throw new Error(`nvcc failed on ${src}:\n${r.all}`);
    }),
  );
  const binary = path.join(workDir, `tune_runner_${arch}`);
  const link = await execa(
    'nvcc',
    [...common, ...runnerObjects, ...built.map((s) => objects.get(s.name)!), '-o', binary, '-lcublasLt'],
    { reject: false, all: true },
  );
  if (link.exitCode !== 0) throw new Error(`nvcc failed linking the tune runner:\n${link.all}`);
  return { binary, failed };
}

/** A GpuRunner that is restarted for the next candidate after a CUDA failure (the context may be unusable) or when
 * it died; both backends below run through it. */
class RestartingRunner {
  runner: GpuRunner;

  constructor(private readonly binary: string) {
    this.runner = new GpuRunner(binary);
  }

  /** `call`, restarting the runner when it throws or when `failed` says its result was a CUDA failure. */
  protected async guarded<T>(call: () => Promise<T>, failed: (res: T) => boolean): Promise<T> {
    try {
      const res = await call();
      if (failed(res)) await this.restart();
      return res;
    } catch (e) {
      await this.restart();
      throw e;
    }
  }

  async restart(): Promise<void> {
    this.runner.kill();
    this.runner = new GpuRunner(this.binary);
  }
}

/** Status -2 from the runner: a CUDA failure. */
const cudaFailed = (res: { status: number }) => res.status === -2;

class RunnerBackend extends RestartingRunner implements SweepBackend {
  /** The property batch every candidate runs: the same cases and operands for all (drawn once). */
  private readonly cases: {
    gc: GemmCase;
    a: ReturnType<typeof gemmOperands>['a'];
    b: ReturnType<typeof gemmOperands>['b'];
    expected: GemmExpected;
  }[];

  constructor(binary: string, checkRuns: number) {
    super(binary);
    const drawn: GemmCase[] = fc.sample(gemmCaseArbitrary(), { numRuns: checkRuns, seed: 20261206 });
    // More tiles than CTAs (persistent loop) and many K blocks, ragged m and n.
    drawn.push(
      { m: 130, n: 272, k: 2048, regime: 'quantized', sigmaLog2: 0, dataSeed: 77 },
      { m: 1100, n: 1040, k: 64, regime: 'exact', sigmaLog2: 0, dataSeed: 78 },
    );
    this.cases = drawn.map((gc) => {
      const { a, b } = gemmOperands(gc);
      return { gc, a, b, expected: gemmExpected(gc, a, b, 'bf16') };
    });
  }

  async check(c: Candidate): Promise<string | null> {
    for (const { gc, a, b, expected } of this.cases) {
      const res = await this.guarded(
        () =>
          this.runner.run({
            kernel: c.name,
            rows: gc.m,
            cols: gc.k,
            depth: gc.n,
            seed: 0n,
            poison: 0x5a,
            buffers: gemmBuffers(a, b, 'bf16'),
          }),
        cudaFailed,
      );
      if (res.status !== 0) return `${gc.m}x${gc.n}x${gc.k}: status ${res.status} ${res.message}`;
      const problem = checkGemmOutput(gc, res.buffers[6], a, b, 'bf16', expected);
      if (problem) return `${gc.m}x${gc.n}x${gc.k} (${gc.regime}): ${problem}`;
    }
    return null;
  }

  private async bench(
    kernel: string,
    s: WorkloadGemm,
    buffers: ReturnType<typeof nvfp4Buffers>,
    reps: number,
  ): Promise<number> {
    const res = await this.guarded(
      () => this.runner.bench({ kernel, rows: s.m, cols: s.k, depth: s.n, seed: 1n, poison: 0, buffers }, reps),
      cudaFailed,
    );
    if (res.status !== 0) throw new Error(`status ${res.status}: ${res.message}`);
    return median(res.kernelMs) * 1000;
  }

  time(c: Candidate, s: WorkloadGemm, reps: number): Promise<number> {
    return this.bench(c.name, s, nvfp4Buffers({ label: s.label, m: s.m, n: s.n, k: s.k }, 'bf16'), reps);
  }

  baseline(s: WorkloadGemm, reps: number): Promise<number> {
    return this.bench(
      'baseline:cublas_bf16',
      s,
      [
        { size: s.m * s.k * 2, fill: 'bf16-random' },
        { size: s.n * s.k * 2, fill: 'bf16-random' },
        { size: s.m * s.n * 2 },
      ],
      reps,
    );
  }
}

export const DEFAULT_QUANTIZER_CANDIDATES = 6;

/** The quantizer launch shapes: checked bit-exact with the GPU suite's cases (harness/gpu/suite.ts runCase), timed
 * like qgen bench (harness/gpu/bench.ts benchBuffers; the runner rotates buffers past the L2). */
class QuantizerRunnerBackend extends RestartingRunner implements QuantizerBackend {
  /** Per catalog quantizer: the property batch all its launch shapes run (drawn and prepared once: the reference
   * does not depend on the tiling, NUMERICS §6.5). */
  private readonly cases = new Map<string, { p: CaseParams; prep: Prepared }[]>();

  constructor(
    binary: string,
    private readonly checkRuns: number,
  ) {
    super(binary);
  }

  private casesFor(c: QuantizerCandidate): { p: CaseParams; prep: Prepared }[] {
    let list = this.cases.get(c.kernel);
    if (!list) {
      list = fc
        .sample(caseArbitrary(c.spec), { numRuns: this.checkRuns, seed: 20261207 })
        .map((p) => ({ p, prep: prepare(c.spec, p) }));
      this.cases.set(c.kernel, list);
    }
    return list;
  }

  async check(c: QuantizerCandidate): Promise<string | null> {
    for (const [i, { p, prep }] of this.casesFor(c).entries()) {
      const problem = await this.guarded(
        () => runCase(this.runner, c.spec, p, (0x5a + 37 * i) & 0xff, prep),
        (res) => res?.startsWith('status -2') === true,
      );
      if (problem) return `${p.rows}x${p.cols} (${p.regime}): ${problem}`;
    }
    return null;
  }

  async time(c: QuantizerCandidate, s: WorkloadQuantizer, reps: number): Promise<number> {
    const buffers = benchBuffers(c.spec, s.rows, s.cols)!;
    const res = await this.guarded(
      () =>
        this.runner.bench({ kernel: c.spec.name, rows: s.rows, cols: s.cols, seed: 1234n, poison: 0, buffers }, reps),
      cudaFailed,
    );
    if (res.status !== 0) throw new Error(`status ${res.status}: ${res.message}`);
    return median(res.kernelMs) * 1000;
  }
}

/**
 * Why a candidate did not compile, in one line for the tuning file and tune.md: ptxas's spill report (a register
 * budget too small: "pass_a 68 bytes spill stores and 76 bytes spill loads ...") or the first error or warning of nvcc's output, never the command
 * line (it names -warn-spills and all-warnings itself).
 */
export function compileFailureReason(e: unknown): string {
  const output = e instanceof NvccError ? e.output : e instanceof Error ? e.message : String(e);
  const lines = output
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const spill = lines.map((l) => /function '[^']*?\d(pass_\w+?)E[^']*', (.*spill.*)$/.exec(l)).find(Boolean);
  if (spill) return `compile: ${spill[1]} ${spill[2].replace(/, /g, ' and ')} (the register budget is too small)`;
  const first = lines.find((l) => /error|warning/i.test(l)) ?? lines[0] ?? 'nvcc failed without output';
  return `compile: ${first.slice(0, 300)}`;
}

/**
 * After the GEMM sweep: the workload's quantizers (catalog spec + up to `max` launch shapes each), in a runner of
 * their own so that nothing here can cost the GEMM results. `save` gets the state after each shape.
 */
async function tuneQuantizers(
  o: TuneOptions,
  workload: Workload,
  budgetS: number,
  previous: { results: QuantizerResult[]; checks: CheckResult[] } | undefined,
  hints: Map<string, ElementwiseTiling[]>,
  save: (q: QuantizerSweepState) => void,
): Promise<QuantizerSweepState> {
  const kernels = [...new Set(workload.quantizers.map((q) => q.kernel))];
  const candidates = kernels.flatMap((k) =>
    quantizerCandidates(o.arch, k, o.maxQuantizerCandidates, hints.get(k) ?? []),
  );
  const hinted = [...hints.values()].reduce((a, l) => a + l.length, 0);
  process.stderr.write(
    `qgen tune: ${candidates.length} quantizer launch shapes (${kernels.length} kernels, catalog first` +
      `${hinted ? `; ${hinted} winners of the table this run replaces tried again` : ''}), ` +
      `${workload.quantizers.length} quantizer shapes, ${budgetS.toFixed(0)} s left\n`,
  );
  const workDir = path.join(process.env.TMPDIR ?? '/tmp', `qgen-tune-${o.arch}-quantizers`);
  const t0 = Date.now();
  const { binary, failed } = await buildTuneRunner(
    o.arch,
    candidates.map((c) => c.spec),
    workDir,
  );
  const checks: CheckResult[] = [...(previous?.checks ?? [])];
  for (const [name, reason] of failed)
    if (!checks.some((c) => c.candidate === name)) checks.push({ candidate: name, status: 'failed', reason });
  const backend = new QuantizerRunnerBackend(binary, o.checkRuns);
  try {
    return await quantizerSweep(
      {
        candidates,
        shapes: workload.quantizers,
        reps: o.reps,
        budgetS: Math.max(0, budgetS - (Date.now() - t0) / 1000),
        timeoutS: o.timeoutS,
        previous: { results: previous?.results ?? [], checks },
        progress: progressBar(Date.now()),
        save,
      },
      backend,
    );
  } finally {
    await backend.runner.close().catch(() => undefined);
  }
}

/** The GPU, driver and CUDA facts of the cache key and the provenance. */
async function machineFacts(runner: GpuRunner) {
  const device = await runner.device();
  const m = /^(.*) \(sm_(\d)(\d+), (\d+) SMs,.*driver (\d+)\)$/.exec(device);
  const smi = await execa('nvidia-smi', ['--query-gpu=driver_version', '--format=csv,noheader'], { reject: false });
  const nvcc = await nvccVersion().catch(() => 'unknown');
  return {
    device,
    gpu: m ? m[1] : device,
    smCount: m ? Number(m[4]) : 0,
    computeCapability: m ? `${m[2]}.${m[3]}` : 'unknown',
    driver: smi.exitCode === 0 ? smi.stdout.trim().split('\n')[0] : `cuda-driver-api ${m ? m[5] : 'unknown'}`,
    cuda: /release ([\d.]+)/.exec(nvcc)?.[1] ?? 'unknown',
    nvcc: nvcc.split('\n').pop() ?? nvcc,
  };
}

/**
 * The commit of the tree that ran: QGEN_COMMIT (+ QGEN_DIRTY=1) when given; else, when this process runs from the
 * bundle (.device/qgen-gpu.mjs, built on the host by `npm run gpu:bundle`), the bundle's .device/provenance.json (the
 * copy on a lent GPU machine has no git of its own tree); else git in the repo (a user's checkout, where a leftover
 * bundle file may be stale). Zeros with a note only when none answers.
 */
export function treeCommit(
  root = repoRoot,
  fromBundle = /\.device[\\/]qgen-gpu\.mjs$/.test(process.argv[1] ?? ''),
): { commit: string; dirty: boolean } {
  const env = process.env.QGEN_COMMIT ?? '';
  if (/^[0-9a-f]{40}$/.test(env)) return { commit: env, dirty: process.env.QGEN_DIRTY === '1' };
  if (fromBundle && existsSync(path.join(root, '.device/provenance.json'))) {
    const p = bundledHostProvenance(root);
    if (typeof p.commit === 'string' && /^[0-9a-f]{40}$/.test(p.commit))
      return { commit: p.commit, dirty: p.dirty === true };
  }
  try {
    const host = hostProvenance(root, { sourceHash: false });
    if (host.commit) return { commit: host.commit, dirty: host.dirty === true };
  } catch {
    // not a qgen checkout (no package.json): no commit to record
  }
  return { commit: '0'.repeat(40), dirty: false };
}

function provenance(facts: Awaited<ReturnType<typeof machineFacts>>): Record<string, unknown> {
  const { commit, dirty } = treeCommit();
  return {
    format: 'qgen-provenance/1',
    commit,
    dirty,
    gpu: facts.gpu,
    sm_count: facts.smCount,
    compute_capability: facts.computeCapability,
    driver: facts.driver,
    cuda: facts.cuda,
    nvcc: facts.nvcc,
    torch: null,
    date: new Date().toISOString(),
    command: ['qgen', 'tune', ...process.argv.slice(3)],
    recorded_at_run_time: true,
    ...(commit === '0'.repeat(40)
      ? { note: 'commit unknown: no QGEN_COMMIT, no .device/provenance.json, no git; set QGEN_COMMIT=<40 hex>' }
      : {}),
  };
}

const slug = (s: string) =>
  s
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');

export async function runTune(o: TuneOptions): Promise<number> {
  const quantizerNames = catalogFor(o.arch)
    .filter((s) => s.kind === 'quantize')
    .map((s) => s.name);
  const workload = loadWorkload(o.workload, quantizerNames);
  const t0 = Date.now();
  const specs = fusedCandidates(o.arch, o.maxCandidates);
  const workDir = path.join(process.env.TMPDIR ?? '/tmp', `qgen-tune-${o.arch}`);
  process.stderr.write(
    `qgen tune ${o.arch} ${workload.name}: ${specs.length} fused tilings + two-pass, ${workload.gemms.length} GEMM shapes, ` +
      `budget ${o.budgetS} s\n`,
  );
  const { binary, failed } = await buildTuneRunner(o.arch, specs, workDir);
  const backend = new RunnerBackend(binary, o.checkRuns);
  const facts = await machineFacts(backend.runner);
  const cacheKey: TuningCacheKey = {
    sourceHash: sourceHash(repoRoot),
    configSpaceHash: configSpaceHash(o.arch),
    gpu: facts.gpu,
    smCount: facts.smCount,
    driver: facts.driver,
    cuda: facts.cuda,
    qgenVersion: qgenVersion(),
  };
  const out = o.out ?? path.join(repoRoot, 'tuning', `${o.arch}-${slug(facts.gpu)}.json`);
  type Saved = TuningFile & {
    checks?: CheckResult[];
    baselines?: Record<string, number>;
    interleavedBaselines?: Record<string, number>;
    complete?: boolean;
    quantizerChecks?: CheckResult[];
    quantizersComplete?: boolean;
  };
  let previous: Saved | undefined;
  // A table this run replaces (another cache key: sources, GPU, driver...) still names launch shapes that won once:
  // they are tried again as candidates of the quantizer sweep (re-checked and re-timed), never copied as results.
  let hints = new Map<string, ElementwiseTiling[]>();
  if (existsSync(out)) {
    const old = JSON.parse(readFileSync(out, 'utf8')) as Saved;
    if (JSON.stringify(old.cacheKey) === JSON.stringify(cacheKey) && old.workload === workload.name) previous = old;
    else {
      process.stderr.write(`qgen tune: ${out} has another cache key or workload: starting afresh (it is replaced)\n`);
      if (old.arch === o.arch && tuningProblems(old).length === 0) hints = winnerTilings(old);
    }
  }
  const candidates: Candidate[] = [
    TWO_PASS,
    ...specs.map((s) => ({ name: s.name, strategy: 'fused' as const, tiling: s.tiling })),
  ];
  // Tilings that did not compile are recorded as failed checks: never timed, never winners.
  const checks: CheckResult[] = [...(previous?.checks ?? [])];
  for (const [name, reason] of failed)
    if (!checks.some((c) => c.candidate === name)) checks.push({ candidate: name, status: 'failed', reason });
  const prov = provenance(facts);
  const resultsDir = path.join(
    repoRoot,
    'bench/results',
    `tune-${o.arch}-${new Date().toISOString().slice(0, 10)}-${String(prov.commit).slice(0, 7)}-${workload.name}`,
  );
  // The quantizer part as the previous run left it until this run's quantizer sweep replaces it.
  let quantizerFailure: string | null = null; // why the quantizer sweep stopped, if it threw
  let quantizers: QuantizerSweepState | undefined = previous?.quantizerCandidates
    ? {
        results: previous.quantizerCandidates,
        checks: previous.quantizerChecks ?? [],
        winners: previous.quantizerWinners ?? [],
        complete: previous.quantizersComplete === true,
      }
    : undefined;
  const write = (state: SweepState) => {
    const file: Saved = {
      format: TUNING_FORMAT,
      arch: o.arch,
      workload: workload.name,
      provenance: prov,
      cacheKey,
      candidates: state.candidates,
      winners: state.winners,
      checks: state.checks,
      baselines: state.baselines,
      interleavedBaselines: state.interleavedBaselines,
      complete: state.complete,
      ...(quantizers
        ? {
            quantizerCandidates: quantizers.results,
            quantizerWinners: quantizers.winners,
            quantizerChecks: quantizers.checks,
            quantizersComplete: quantizers.complete,
          }
        : {}),
    };
    const text = `${JSON.stringify(file, null, 1)}\n`;
    mkdirSync(path.dirname(out), { recursive: true });
    writeFileSync(out, text);
    mkdirSync(resultsDir, { recursive: true });
    writeFileSync(path.join(resultsDir, 'tune.md'), tuneMarkdown(file));
    writeFileSync(path.join(resultsDir, `tune-${workload.name}.svg`), tuneSvg(file));
    if (process.env.OUT) {
      const dst = path.join(process.env.OUT, path.relative(repoRoot, resultsDir));
      mkdirSync(dst, { recursive: true });
      writeFileSync(path.join(dst, 'tune.md'), tuneMarkdown(file));
      writeFileSync(path.join(dst, `tune-${workload.name}.svg`), tuneSvg(file));
      mkdirSync(path.join(process.env.OUT, 'tuning'), { recursive: true });
      writeFileSync(path.join(process.env.OUT, 'tuning', path.basename(out)), text);
    }
  };
  const elapsedS = (Date.now() - t0) / 1000;
  const state = await sweep(
    {
      candidates,
      shapes: workload.gemms,
      reps: o.reps,
      budgetS: Math.max(0, o.budgetS - elapsedS),
      timeoutS: o.timeoutS,
      previous: previous
        ? {
            candidates: previous.candidates,
            checks,
            baselines: previous.baselines ?? {},
            interleavedBaselines: previous.interleavedBaselines ?? {},
          }
        : { candidates: [], checks, baselines: {} },
      progress: progressBar(Date.now()),
      save: write,
    },
    backend,
  );
  await backend.runner.close().catch(() => undefined);
  // The quantizers come after the GEMMs: a problem here never costs the GEMM results (written above).
  if (workload.quantizers.length > 0) {
    const left = o.budgetS - (Date.now() - t0) / 1000;
    // Their runner is compiled first (about a minute cold): not started in the budget's last minute.
    if (left < 60) {
      process.stderr.write(
        `qgen tune: ${Math.max(0, left).toFixed(0)} s of budget left, too little for the quantizers: run the same ` +
          'command again to resume\n',
      );
    } else {
      try {
        const previousQuantizers = quantizers;
        await tuneQuantizers(
          o,
          workload,
          left,
          previousQuantizers && { results: previousQuantizers.results, checks: previousQuantizers.checks },
          hints,
          (q) => {
            quantizers = q;
            write(state);
          },
        );
      } catch (e) {
        quantizerFailure = (e as Error).message.split('\n')[0];
        process.stderr.write(`qgen tune: the quantizer sweep stopped: ${quantizerFailure}\n`);
      }
    }
  }
  for (const w of state.winners) {
    process.stderr.write(
      `${w.shape.padEnd(26)} ${w.strategy.padEnd(8)} ${w.candidate.padEnd(40)} ${w.us.toFixed(1)} us` +
        (w.cublasBf16Us ? ` (x${(w.cublasBf16Us / w.us).toFixed(2)} cuBLAS bf16)` : '') +
        '\n',
    );
  }
  for (const w of quantizers?.winners ?? []) {
    const t = w.tiling;
    process.stderr.write(
      `${w.kernel.padEnd(30)} ${`${w.rows}x${w.cols}`.padEnd(12)} ${tilingLabel(t)} ${w.us.toFixed(1)} us` +
        (w.catalogUs ? ` (catalog ${w.catalogUs.toFixed(1)} us, x${(w.catalogUs / w.us).toFixed(2)})` : '') +
        '\n',
    );
  }
  const quantizersDone = workload.quantizers.length === 0 || quantizers?.complete === true;
  console.log(
    `qgen tune: ${
      quantizerFailure
        ? `INCOMPLETE: the quantizer sweep failed (${quantizerFailure}); the GEMM results are kept`
        : state.complete && quantizersDone
          ? 'complete'
          : 'INCOMPLETE (budget): run the same command again to resume'
    }; ` +
      `${state.winners.length} shape classes; wrote ${path.relative(repoRoot, out)} and ${path.relative(repoRoot, resultsDir)}/`,
  );
  return 0;
}
