// The qgen command line (yargs). bin/qgen.mjs registers tsx and calls main(process.argv.slice(2)).
// User errors print one line `qgen: <message>` (a spec's problems: one per line after it) on stderr and exit 1;
// usage and filesystem errors (a bad --out) exit 2. Internal errors show a stack trace only with --debug.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import yargs from 'yargs';
import { ARCHS, type Arch } from '../dsl/types.ts';
import { catalogFor } from '../dsl/catalog.ts';
import { DEFAULT_ARCH, FAMILY_TARGETS, type GpuTarget, parseArch, parseGpuTarget } from './arch.ts';
import { checkMatrixSize, QUALITY_BYTES_PER_VALUE, QUALITY_MAX_VALUES } from './limits.ts';
import { UsageError, UserError } from './errors.ts';
import { OutputError } from '../emit/output.ts';
import { VENDOR_TARGETS, type VendorTarget } from '../emit/vendor.ts';
import { runEmit, specsFor } from './emit.ts';
import { explain } from './explain.ts';
import { formatCatalog } from './list.ts';
import { REPO_ROOT } from './paths.ts';
import {
  BIAS_EXPLANATION,
  BIAS_MAX_DRAWS,
  BIAS_MAX_ELEMENTS,
  checkBiasSize,
  computeBias,
  computeQuality,
  formatBiasTable,
  formatQualityTable,
} from './quality.ts';

/** Parses --out: one non-empty path (given twice, yargs would hand over an array). */
function outOption(value: unknown): string {
  if (Array.isArray(value)) {
    throw new UsageError(`--out: given ${value.length} times (${value.join(', ')}); give one output folder`);
  }
  const text = String(value);
  if (text.trim() === '') throw new UsageError('--out: empty path; name the output folder');
  return text;
}

/** Says which arch a command uses when --arch was not given (one line on stderr). */
function archNote(argv: string[], arch: Arch): void {
  if (!argv.some((a) => a === '--arch' || a.startsWith('--arch='))) {
    process.stderr.write(`qgen: no --arch given: using ${arch} (the default; allowed: ${ARCHS.join(', ')})\n`);
  }
}

function positiveInt(name: string, extra?: (n: number) => string | undefined) {
  return (value: unknown): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1)
      throw new UsageError(`--${name}: must be a positive integer (got "${String(value)}")`);
    const problem = extra?.(n);
    if (problem) throw new UsageError(`--${name}: ${problem}`);
    return n;
  };
}

/** A non-negative safe integer (a Philox key for `qgen quality`). */
function seedOption(name: string) {
  return (value: unknown): number => {
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < 0)
      throw new UsageError(`--${name}: must be a non-negative integer (got "${String(value)}")`);
    return n;
  };
}

function version(): string {
  try {
    return (JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** Parses --target of `qgen vendor`. */
export function parseTarget(value: unknown): VendorTarget {
  if ((VENDOR_TARGETS as readonly unknown[]).includes(value)) return value as VendorTarget;
  throw new UsageError(`--target: unknown package kind "${String(value)}"; allowed: ${VENDOR_TARGETS.join(', ')}`);
}

const ARCH_HELP = `target architecture: ${ARCHS.join(', ')} (sm_90, sm_100, sm_120 mean the same)`;
const DEFAULT_ARCH_HELP = `${ARCH_HELP}; default ${DEFAULT_ARCH}`;
const ARCH_WITH_DEFAULT = {
  type: 'string',
  describe: DEFAULT_ARCH_HELP,
  default: DEFAULT_ARCH,
  coerce: (v: unknown) => parseArch(v),
} as const;

const FAMILY_HELP = `or a family target: ${Object.entries(FAMILY_TARGETS)
  .map(([t, f]) => `${t} (${f.chips})`)
  .join(', ')}, compile-verified only`;
const OUT_HELP = 'output folder: created, or an earlier qgen output there replaced (see --force)';
const FORCE_HELP = 'write into a non-empty folder that holds no earlier qgen output (never over its files)';

/** The names of --only (repeated or comma-separated); an option that names nothing is a usage error. */
function onlyNames(values: string[] | undefined): string[] | undefined {
  if (values === undefined) return undefined;
  const names = values
    .flatMap((s) => s.split(','))
    .map((s) => s.trim())
    .filter(Boolean);
  if (names.length === 0) throw new UsageError('--only: names no kernel (give names, comma-separated or repeated)');
  return names;
}

/** Runs the CLI; returns (and sets as process.exitCode) the exit status. */
export async function main(argv: string[]): Promise<number> {
  let failure: unknown;
  // Command handlers record their error here instead of throwing into yargs.
  const guard =
    <A>(fn: (args: A) => Promise<void> | void) =>
    async (args: A) => {
      try {
        await fn(args);
      } catch (e) {
        failure = e;
      }
    };

  const parser = yargs(argv)
    .scriptName('qgen')
    .usage('$0 <command> [options]\n\nGenerate NVFP4 (Quartet II) CUDA kernels from typed specs.')
    .command(
      'emit',
      'validate specs, then write CUDA sources, runtime headers and manifest.json',
      (y) =>
        y
          .option('arch', {
            type: 'string',
            describe: `${DEFAULT_ARCH_HELP}; ${FAMILY_HELP}`,
            default: DEFAULT_ARCH,
            coerce: (v: unknown) => parseGpuTarget(v),
          })
          .option('out', { type: 'string', describe: OUT_HELP, demandOption: true, coerce: outOption })
          .option('force', { type: 'boolean', default: false, describe: FORCE_HELP })
          .option('spec', {
            type: 'string',
            describe: 'spec file (.ts typed against dsl/types.ts, or .json); default: the catalog',
          })
          .option('only', {
            type: 'string',
            array: true,
            describe: 'emit only these kernels (repeat or comma-separate)',
          })
          .option('tuning', {
            type: 'string',
            describe:
              'a qgen-tuning/1 file (qgen tune): add its winning GEMM tilings, write gemm_dispatch.json, and give ' +
              'its tuned quantizers their winning launch shapes (same names)',
          })
          .example('$0 emit --arch sm_100a --out kernels/', 'emit the whole catalog for B200')
          .example(
            '$0 emit --arch sm_90a --spec examples/quartet2.spec.ts --out k/',
            'emit the kernels of a spec file',
          ),
      guard(
        async (a: {
          arch: GpuTarget;
          out: string;
          spec?: string;
          only?: string[];
          force: boolean;
          tuning?: string;
        }) => {
          archNote(argv, a.arch.arch);
          await runEmit({
            arch: a.arch.arch,
            out: a.out,
            spec: a.spec,
            only: onlyNames(a.only),
            force: a.force,
            tuning: a.tuning,
          });
          if (a.arch.target !== a.arch.arch) {
            console.log(
              `  compile for ${a.arch.target}: nvcc -gencode arch=compute_${a.arch.target.slice(3)},` +
                `code=${a.arch.target} (not -arch=${a.arch.target})`,
            );
          }
        },
      ),
    )
    .command(
      'list',
      'the named catalog of kernels',
      (y) =>
        y.option('arch', {
          type: 'string',
          describe: `${DEFAULT_ARCH_HELP} (shows that arch's variants)`,
          default: DEFAULT_ARCH,
          coerce: (v) => parseArch(v),
        }),
      guard((a: { arch: Arch }) => {
        const defaulted = !argv.some((x) => x.startsWith('--arch'));
        console.log(
          `The qgen catalog on ${a.arch}${defaulted ? ' (the default arch)' : ''}; ` +
            `other archs: ${ARCHS.filter((x) => x !== a.arch)
              .map((x) => `--arch ${x}`)
              .join(', ')}`,
        );
        console.log(formatCatalog(catalogFor(a.arch)));
      }),
    )
    .command(
      'explain <name>',
      'the numerics of a kernel and its lowering, step by step',
      (y) =>
        y
          .positional('name', { type: 'string', describe: 'kernel name (see qgen list)', demandOption: true })
          .option('arch', ARCH_WITH_DEFAULT)
          .option('spec', { type: 'string', describe: 'look the kernel up in this spec file instead of the catalog' })
          .example('$0 explain quartet2_e_mseden_rht128 --arch sm_120a', 'MS-EDEN backward quantizer on the RTX 5090'),
      guard(async (a: { name: string; arch: Arch; spec?: string }) => {
        archNote(argv, a.arch);
        const specs = await specsFor(a.arch, a.spec);
        const spec = specs.find((s) => s.name === a.name);
        if (!spec) {
          const elsewhere = a.spec
            ? []
            : ARCHS.filter((x) => x !== a.arch && catalogFor(x).some((s) => s.name === a.name));
          throw new UserError(
            elsewhere.length > 0
              ? `kernel "${a.name}" is not in the catalog on ${a.arch}; it exists on ${elsewhere.join(', ')} (--arch)`
              : `no kernel named "${a.name}"${a.spec ? ` in ${a.spec}` : ' in the catalog'} on ${a.arch}; available: ` +
                  specs.map((s) => s.name).join(', '),
          );
        }
        console.log(await explain(spec, a.arch));
      }),
    )
    .command(
      'quality',
      'relative MSE and effective bits of every quantizer on Gaussian data (TS reference); ' +
        'with --bias, the bias: error of the mean of B draws and its floor',
      (y) =>
        y
          .option('rows', {
            type: 'string',
            coerce: positiveInt('rows'),
            describe: `rows of the test matrix (default 2048; --bias: 64; rows x cols: at most ${QUALITY_MAX_VALUES} values)`,
          })
          .option('cols', {
            type: 'string',
            describe: 'columns, a multiple of 128: MS-EDEN rotates 128-chunks (default 4096; --bias: 512)',
            coerce: positiveInt('cols', (n) => (n % 128 === 0 ? undefined : `must be a multiple of 128 (got ${n})`)),
          })
          .option('seed', {
            type: 'string',
            default: '0',
            describe: 'random seed of the data and of the stochastic rounding (qgen.h seed)',
            coerce: seedOption('seed'),
          })
          .option('sign-seed', {
            type: 'string',
            default: '1',
            describe: 'key of the Hadamard sign vector of the rotating quantizers (qgen.h sign_seed, NUMERICS §3.2)',
            coerce: seedOption('sign-seed'),
          })
          .option('bias', {
            type: 'boolean',
            default: false,
            describe:
              'measure bias instead: per quantizer and input regime (gaussian, student-t3, outliers) the error of ' +
              `the mean of B draws at B = 1, 16, 256 and the fitted floor (at most ${BIAS_MAX_ELEMENTS} elements)`,
          })
          .option('draws', {
            type: 'string',
            default: '256',
            describe: `--bias: draws per quantizer and regime, the largest B (a power of two, 32 to ${BIAS_MAX_DRAWS})`,
            coerce: positiveInt('draws'),
          })
          .option('gemm', {
            type: 'boolean',
            default: false,
            describe:
              '--bias: the dX GEMM of each recipe (quartet2, tetrajet-v2, nvidia) instead of single quantizers; ' +
              'E is [rows, cols], W [cols, cols] (default 64 x 256)',
          })
          .example('$0 quality --bias', 'bias table on 64 x 512 values, 256 draws (about 40 s)')
          .example('$0 quality --bias --gemm', "the same for each recipe's dX GEMM, 64 x 256 x 256 (about 90 s)"),
      guard(
        async (a: {
          rows?: number;
          cols?: number;
          seed: number;
          signSeed: number;
          bias: boolean;
          draws: number;
          gemm: boolean;
        }) => {
          if (a.gemm && !a.bias) throw new UsageError('--gemm: only with --bias');
          if (a.bias) {
            const rows = a.rows ?? 64,
              cols = a.cols ?? (a.gemm ? 256 : 512);
            checkBiasSize(rows, cols, a.draws);
            const table = computeBias(rows, cols, a.draws, a.seed, a.gemm);
            console.log(
              a.gemm
                ? `Bias of each recipe's dX GEMM, E ${rows} x ${cols} per regime, W ${cols} x ${cols}, data seed ${a.seed}, ` +
                    `${a.draws} draws (TypeScript reference, CPU):`
                : `Bias on ${rows} x ${cols} values per regime, data seed ${a.seed}, ${a.draws} draws per quantizer ` +
                    '(TypeScript reference, CPU):',
            );
            console.log(formatBiasTable(table));
            console.log(BIAS_EXPLANATION);
            return;
          }
          const rows = a.rows ?? 2048,
            cols = a.cols ?? 4096;
          checkMatrixSize(rows, cols, QUALITY_MAX_VALUES, QUALITY_BYTES_PER_VALUE);
          const table = await computeQuality(rows, cols, a.seed, a.signSeed);
          console.log(
            `Quantization quality on ${rows} x ${cols} N(0,1) values, seed ${a.seed}, sign seed ${a.signSeed} ` +
              '(effective bits = -log2(relMSE)/2; paper figures: docs/method.md §2.5):',
          );
          console.log(formatQualityTable(table));
        },
      ),
    )
    .command(
      'check',
      "GEMM self-check on this machine's GPU: build, tiny then large shapes vs the TS reference, speed vs the vendor NVFP4 GEMM",
      (y) =>
        y
          .option('arch', {
            type: 'string',
            describe: `${ARCH_HELP}; must match the GPU (sm_90a H100, sm_100a B200, sm_120a RTX 5090)`,
            demandOption: true,
            coerce: (v) => parseArch(v),
          })
          .option('runs', {
            type: 'string',
            default: '20',
            describe: 'fast-check cases per GEMM kernel',
            coerce: positiveInt('runs'),
          })
          .option('reps', {
            type: 'string',
            default: '20',
            describe: 'timed launches per speed measurement (median)',
            coerce: positiveInt('reps'),
          })
          .option('speed', {
            type: 'boolean',
            default: true,
            describe: 'measure TFLOP/s (--no-speed: correctness only)',
          })
          .option('package', {
            type: 'string',
            describe: 'torch package folder from qgen vendor (default: vendored by the check)',
          })
          .option('torch', {
            type: 'boolean',
            default: true,
            describe: 'build and test the torch package (--no-torch: skip)',
          })
          .example('$0 check --arch sm_100a', 'first run on a B200: correctness, then speed against cuBLASLt NVFP4'),
      guard(async (a: { arch: Arch; runs: number; reps: number; speed: boolean; package?: string; torch: boolean }) => {
        const mod = await import('../harness/gpu/check.ts');
        const { RunResults } = await import('../harness/gpu/results.ts');
        const { hostProvenance } = await import('../harness/provenance.ts');
        // `qgen check` runs in the user's checkout, so the host facts come from it directly.
        const results = () =>
          RunResults.start('check', ['qgen', ...process.argv.slice(2)], {
            host: hostProvenance(fileURLToPath(new URL('..', import.meta.url))),
          });
        const pkg = a.torch ? (a.package ?? null) : false;
        const code = await mod.runCheck(a.arch, { runs: a.runs, reps: a.reps, speed: a.speed, results, package: pkg });
        if (code !== 0)
          throw new UserError(
            code === 2 ? 'check could not run on this machine (see above)' : 'check failed (see the FAIL lines above)',
            code,
          );
      }),
    )
    .command(
      'tune',
      "sweep GEMM tilings, the two-pass path and quantizer launch shapes on this machine's GPU; write a tuning " +
        'file for emit/vendor --tuning',
      (y) =>
        y
          .option('arch', {
            type: 'string',
            describe: `${ARCH_HELP} (must match the GPU)`,
            demandOption: true,
            coerce: parseArch,
          })
          .option('workload', {
            type: 'string',
            default: 'small',
            describe: 'llama-7b, small, or a workload JSON file (dsl/workloads.ts)',
          })
          .option('budget-s', {
            type: 'string',
            default: '540',
            describe: 'seconds; what is left is recorded skipped and a rerun resumes it',
            coerce: positiveInt('budget-s'),
          })
          .option('out', { type: 'string', describe: 'tuning file (default tuning/<arch>-<gpu>.json)' })
          .option('reps', {
            type: 'string',
            default: '10',
            describe: 'timed launches per measurement (median)',
            coerce: positiveInt('reps'),
          })
          .option('timeout-s', {
            type: 'string',
            default: '60',
            describe: 'per check or timing call; a hung candidate is recorded',
            coerce: positiveInt('timeout-s'),
          })
          .option('max-candidates', {
            type: 'string',
            describe: 'fused tilings to try (catalog tilings first); default: all',
            coerce: positiveInt('max-candidates'),
          })
          .option('max-quantizer-candidates', {
            type: 'string',
            describe: 'launch shapes tried per workload quantizer besides its catalog one (default 6)',
            coerce: positiveInt('max-quantizer-candidates'),
          })
          .example(
            '$0 tune --arch sm_90a --workload llama-7b',
            'then: qgen vendor --target torch --arch sm_90a --tuning tuning/sm_90a-<gpu>.json ...',
          ),
      guard(
        async (a: {
          arch: Arch;
          workload: string;
          budgetS: number;
          out?: string;
          reps: number;
          timeoutS: number;
          maxCandidates?: number;
          maxQuantizerCandidates?: number;
        }) => {
          const { loadWorkload, WorkloadError } = await import('../dsl/workloads.ts');
          try {
            loadWorkload(
              a.workload,
              catalogFor(a.arch)
                .filter((s) => s.kind === 'quantize')
                .map((s) => s.name),
            );
          } catch (e) {
            if (e instanceof WorkloadError) throw new UsageError(e.message);
            throw e;
          }
          const { runTune, DEFAULT_QUANTIZER_CANDIDATES } = await import('../harness/gpu/tune.ts');
          const code = await runTune({
            arch: a.arch,
            workload: a.workload,
            budgetS: a.budgetS,
            out: a.out,
            reps: a.reps,
            timeoutS: a.timeoutS,
            checkRuns: 6,
            maxCandidates: a.maxCandidates,
            maxQuantizerCandidates: a.maxQuantizerCandidates ?? DEFAULT_QUANTIZER_CANDIDATES,
          });
          if (code !== 0) throw new UserError('tune failed (see above)', code);
        },
      ),
    )
    .command(
      'vendor',
      'write a self-contained package for a trainer: PyTorch extension (torch) or C sources + CMake (c)',
      (y) =>
        y
          .option('target', {
            type: 'string',
            describe: `package kind: ${VENDOR_TARGETS.join(', ')}`,
            demandOption: true,
            coerce: parseTarget,
          })
          .option('arch', {
            type: 'string',
            describe: `${ARCH_HELP}; ${FAMILY_HELP}`,
            demandOption: true,
            coerce: (v: unknown) => parseGpuTarget(v),
          })
          .option('out', { type: 'string', describe: OUT_HELP, demandOption: true, coerce: outOption })
          .option('force', { type: 'boolean', default: false, describe: FORCE_HELP })
          .option('tuning', {
            type: 'string',
            describe:
              'a qgen-tuning/1 file (qgen tune): vendor its winning tilings (quantizers: same names); the package ' +
              'dispatches GEMMs by its table',
          })
          .example(
            '$0 vendor --target torch --arch sm_90a --out qgen_torch_pkg',
            'then: pip install --no-build-isolation ./qgen_torch_pkg',
          )
          .example(
            '$0 vendor --target c --arch sm_100a --out qgen_c',
            'then: cmake -S qgen_c -B build && cmake --build build',
          ),
      guard(async (a: { target: VendorTarget; arch: GpuTarget; out: string; force: boolean; tuning?: string }) => {
        const { loadTuningOption } = await import('./tuning.ts');
        const { vendor } = await import('../emit/vendor.ts');
        const result = await vendor({
          target: a.target,
          arch: a.arch.arch,
          gpuTarget: a.arch.target,
          out: a.out,
          force: a.force,
          ...loadTuningOption(a.tuning, a.arch.arch),
        });
        console.log(
          `qgen: vendored ${result.kernels.length} kernel(s) for ${a.arch.target} as a ${a.target} package ` +
            `in ${a.out}: ` +
            `${result.files.length} file(s)`,
        );
        console.log(`  kernels: ${result.kernels.join(', ')}`);
        console.log(
          a.target === 'torch'
            ? `  build:   pip install --no-build-isolation ${a.out}\n` +
                `  test:    python ${path.join(a.out, 'tests/run.py')}   (on a GPU of ${a.arch.arch})`
            : `  build:   cmake -S ${a.out} -B ${path.join(a.out, 'build')} -G Ninja && cmake --build ${path.join(a.out, 'build')}`,
        );
      }),
    )
    .demandCommand(1, 'name a command: emit, list, explain, quality, check, tune or vendor (see qgen --help)')
    .option('debug', { type: 'boolean', default: false, describe: 'show the stack of an internal error' })
    .recommendCommands()
    .strict()
    .help()
    .alias('h', 'help')
    .version(version())
    .wrap(Math.min(110, process.stdout.columns || 110))
    .exitProcess(false)
    // Throwing stops yargs (with exitProcess(false) it would otherwise go on and run the command).
    .fail((msg, err) => {
      throw err ?? new UsageError(msg);
    });

  try {
    await parser.parseAsync();
  } catch (e) {
    failure ??= e;
  }
  const code = report(failure, argv.includes('--debug'));
  process.exitCode = code;
  return code;
}

/** Prints an error and returns the exit status. */
function report(failure: unknown, debug: boolean): number {
  if (failure === undefined) return 0;
  if (failure instanceof UserError) {
    process.stderr.write(`qgen: ${failure.message}\n`);
    return failure.exitCode;
  }
  if (failure instanceof OutputError) {
    process.stderr.write(`qgen: ${failure.message}\n`);
    return 2;
  }
  const code = (failure as NodeJS.ErrnoException)?.code;
  const file = (failure as NodeJS.ErrnoException)?.path;
  if (!debug && typeof code === 'string' && typeof file === 'string') {
    // A filesystem error nobody foresaw: still one line, naming the path; --debug shows where it came from.
    process.stderr.write(`qgen: ${file}: ${code} (${(failure as Error).message}); --debug shows the stack\n`);
    return 2;
  }
  const e = failure as Error;
  if (e && e.name === 'YError') {
    process.stderr.write(`qgen: ${e.message}\n`);
    return 2;
  }
  process.stderr.write(
    debug
      ? `qgen: internal error: ${e?.stack ?? String(failure)}\n`
      : `qgen: internal error: ${e?.message ?? String(failure)} (run again with --debug for the stack)\n`,
  );
  return 1;
}
