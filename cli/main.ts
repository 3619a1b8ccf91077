// The qgen command line (yargs). bin/qgen.mjs registers tsx and calls main(process.argv.slice(2)).
// User errors print one line `qgen: <message>` (a spec's problems: one per line after it) on stderr and exit 1;
// usage errors exit 2. Only internal errors show a stack trace.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import yargs from 'yargs';
import { ARCHS, type Arch } from '../dsl/types.ts';
import { CATALOG, catalogFor } from '../dsl/catalog.ts';
import { UsageError, UserError } from './errors.ts';
import { VENDOR_TARGETS, type VendorTarget } from '../emit/vendor.ts';
import { runEmit, specsFor } from './emit.ts';
import { explain } from './explain.ts';
import { formatCatalog } from './list.ts';
import { REPO_ROOT } from './paths.ts';
import { computeQuality, formatQualityTable } from './quality.ts';

/** Parses --arch; the message is the one users see. */
export function parseArch(value: unknown): Arch {
  if ((ARCHS as readonly unknown[]).includes(value)) return value as Arch;
  throw new UsageError(`--arch: unknown architecture "${String(value)}"; allowed: ${ARCHS.join(', ')}`);
}

function positiveInt(name: string, extra?: (n: number) => string | undefined) {
  return (value: unknown): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${name}: must be a positive integer (got "${String(value)}")`);
    const problem = extra?.(n);
    if (problem) throw new UsageError(`--${name}: ${problem}`);
    return n;
  };
}

/** A non-negative safe integer (a Philox key for `qgen quality`). */
function seedOption(name: string) {
  return (value: unknown): number => {
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < 0) throw new UsageError(`--${name}: must be a non-negative integer (got "${String(value)}")`);
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

const ARCH_HELP = `target architecture: ${ARCHS.join(', ')}`;

/** Runs the CLI; returns (and sets as process.exitCode) the exit status. */
export async function main(argv: string[]): Promise<number> {
  let failure: unknown;
  // Command handlers record their error here instead of throwing into yargs.
  const guard = <A>(fn: (args: A) => Promise<void> | void) => async (args: A) => {
    try {
      await fn(args);
    } catch (e) {
      failure = e;
    }
  };

  const parser = yargs(argv)
    .scriptName('qgen')
    .usage('$0 <command> [options]\n\nGenerate NVFP4 (Quartet II) CUDA kernels from typed specs.')
    .command('emit', 'validate specs, then write CUDA sources, runtime headers and manifest.json', (y) => y
      .option('arch', { type: 'string', describe: ARCH_HELP, demandOption: true, coerce: parseArch })
      .option('out', { type: 'string', describe: 'output directory', demandOption: true })
      .option('spec', { type: 'string', describe: 'spec file (.ts typed against dsl/types.ts, or .json); default: the catalog' })
      .option('only', { type: 'string', array: true, describe: 'emit only these kernels (repeat or comma-separate)' })
      .example('$0 emit --arch sm_100a --out kernels/', 'emit the whole catalog for B200')
      .example('$0 emit --arch sm_90a --spec examples/quartet2.spec.ts --out k/', 'emit the kernels of a spec file'),
    guard(async (a: { arch: Arch; out: string; spec?: string; only?: string[] }) => {
      const only = a.only?.flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
      await runEmit({ arch: a.arch, out: a.out, spec: a.spec, only });
    }))
    .command('list', 'the named catalog of kernels', (y) => y
      .option('arch', { type: 'string', describe: `${ARCH_HELP} (shows that arch's variants)`, coerce: parseArch }),
    guard((a: { arch?: Arch }) => {
      const specs = a.arch ? catalogFor(a.arch) : [...CATALOG];
      console.log(formatCatalog(specs));
    }))
    .command('explain <name>', 'the numerics of a kernel and its lowering, step by step', (y) => y
      .positional('name', { type: 'string', describe: 'kernel name (see qgen list)', demandOption: true })
      .option('arch', { type: 'string', describe: `${ARCH_HELP} (default sm_100a)`, coerce: parseArch })
      .option('spec', { type: 'string', describe: 'look the kernel up in this spec file instead of the catalog' })
      .example('$0 explain bwd_e_msEden --arch sm_120a', 'MS-EDEN backward quantizer on the RTX 5090'),
    guard(async (a: { name: string; arch?: Arch; spec?: string }) => {
      const arch = a.arch ?? 'sm_100a';
      const specs = await specsFor(arch, a.spec);
      const spec = specs.find((s) => s.name === a.name);
      if (!spec) {
        throw new UserError(`no kernel named "${a.name}"${a.spec ? ` in ${a.spec}` : ' in the catalog'}; available: `
          + specs.map((s) => s.name).join(', '));
      }
      console.log(await explain(spec, arch));
    }))
    .command('quality', 'relative MSE and effective bits of every quantizer on Gaussian data (TS reference)', (y) => y
      .option('rows', { type: 'string', default: '2048', describe: 'rows of the test matrix', coerce: positiveInt('rows') })
      .option('cols', {
        type: 'string', default: '4096', describe: 'columns (a multiple of 128: MS-EDEN rotates 128-chunks)',
        coerce: positiveInt('cols', (n) => (n % 128 === 0 ? undefined : `must be a multiple of 128 (got ${n})`)),
      })
      .option('seed', {
        type: 'string', default: '0', describe: 'random seed of the data and of the stochastic rounding (qgen.h seed)',
        coerce: seedOption('seed'),
      })
      .option('sign-seed', {
        type: 'string', default: '1', describe: 'key of the Hadamard sign vector of the rotating quantizers (qgen.h sign_seed, NUMERICS §3.2)',
        coerce: seedOption('sign-seed'),
      }),
    guard(async (a: { rows: number; cols: number; seed: number; signSeed: number }) => {
      const rows = await computeQuality(a.rows, a.cols, a.seed, a.signSeed);
      console.log(`Quantization quality on ${a.rows} x ${a.cols} N(0,1) values, seed ${a.seed}, sign seed ${a.signSeed} `
        + '(effective bits = -log2(relMSE)/2; paper: quartet2.md §2.5):');
      console.log(formatQualityTable(rows));
    }))
    .command('check', 'GEMM self-check on this machine\'s GPU: build, tiny then large shapes vs the TS reference, speed vs the vendor NVFP4 GEMM', (y) => y
      .option('arch', { type: 'string', describe: `${ARCH_HELP} (must match the GPU: sm_90a = H100, sm_100a = B200, sm_120a = RTX 5090)`, demandOption: true, coerce: parseArch })
      .option('runs', { type: 'string', default: '20', describe: 'fast-check cases per GEMM kernel', coerce: positiveInt('runs') })
      .option('reps', { type: 'string', default: '20', describe: 'timed launches per speed measurement (median)', coerce: positiveInt('reps') })
      .option('speed', { type: 'boolean', default: true, describe: 'measure TFLOP/s (--no-speed: correctness only)' })
      .option('package', { type: 'string',
        describe: 'torch package folder from qgen vendor (default: vendored by the check)' })
      .option('torch', { type: 'boolean', default: true,
        describe: 'build and test the torch package (--no-torch: skip)' })
      .example('$0 check --arch sm_100a', 'first run on a B200: correctness, then speed against cuBLASLt NVFP4'),
    guard(async (a: { arch: Arch; runs: number; reps: number; speed: boolean; package?: string; torch: boolean }) => {
      const mod = await import('../harness/gpu/check.ts');
      const pkg = a.torch ? a.package ?? null : false;
      const code = await mod.runCheck(a.arch, { runs: a.runs, reps: a.reps, speed: a.speed, package: pkg });
      if (code !== 0) throw new UserError(code === 2 ? 'check could not run on this machine (see above)' : 'check failed (see the FAIL lines above)', code);
    }))
    .command('vendor', 'write a self-contained package for a trainer: PyTorch extension (torch) or C sources + CMake (c)', (y) => y
      .option('target', { type: 'string', describe: `package kind: ${VENDOR_TARGETS.join(', ')}`, demandOption: true, coerce: parseTarget })
      .option('arch', { type: 'string', describe: ARCH_HELP, demandOption: true, coerce: parseArch })
      .option('out', { type: 'string', describe: 'output directory (created; files qgen writes are replaced)', demandOption: true })
      .example('$0 vendor --target torch --arch sm_90a --out qgen_torch_pkg', 'then: pip install --no-build-isolation ./qgen_torch_pkg')
      .example('$0 vendor --target c --arch sm_100a --out qgen_c', 'then: cmake -S qgen_c -B build && cmake --build build'),
    guard(async (a: { target: VendorTarget; arch: Arch; out: string }) => {
      const { vendor } = await import('../emit/vendor.ts');
      const result = await vendor({ target: a.target, arch: a.arch, out: a.out });
      console.log(`qgen: vendored ${result.kernels.length} kernel(s) for ${a.arch} as a ${a.target} package in ${a.out}: `
        + `${result.files.length} file(s)`);
      console.log(`  kernels: ${result.kernels.join(', ')}`);
      console.log(a.target === 'torch'
        ? `  build:   pip install --no-build-isolation ${a.out}\n  test:    python ${path.join(a.out, 'tests/run.py')}   (on a GPU of ${a.arch})`
        : `  build:   cmake -S ${a.out} -B ${path.join(a.out, 'build')} -G Ninja && cmake --build ${path.join(a.out, 'build')}`);
    }))
    .demandCommand(1, 'name a command: emit, list, explain, quality, check or vendor (see qgen --help)')
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
  const code = report(failure);
  process.exitCode = code;
  return code;
}

/** Prints an error and returns the exit status. */
function report(failure: unknown): number {
  if (failure === undefined) return 0;
  if (failure instanceof UserError) {
    process.stderr.write(`qgen: ${failure.message}\n`);
    return failure.exitCode;
  }
  const e = failure as Error;
  if (e && e.name === 'YError') {
    process.stderr.write(`qgen: ${e.message}\n`);
    return 2;
  }
  process.stderr.write(`qgen: internal error: ${e?.stack ?? String(failure)}\n`);
  return 1;
}
