// `profile`: an Nsight Compute report per kernel, for bench/NOTES.md ("profile before optimizing"). The runner is
// built once; then, for each selected kernel, a fresh runner process is started under ncu (its report goes to
// files: stdout carries the runner protocol) and the kernel runs a few times at its first benchmark shape
// (8192x8192 for quantizers, 8192^3 for GEMMs, m = 16 x 8192 x 8192 for operand-swapped GEMMs). ncu captures the
// launches after the first round of passes.
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import type { KernelSpec } from '../../dsl/types.ts';
import { GpuRunner } from './client.ts';
import type { BuiltRunner } from './build.ts';
import type { RunResults } from './results.ts';
import { benchBuffers, QUANTIZE_SHAPES } from './bench.ts';
import { nvfp4Buffers, GEMM_SHAPES } from './gemm_bench.ts';
import { summarizeSourcePage } from './stalls.ts';

const SECTIONS = [
  'SpeedOfLight',
  'MemoryWorkloadAnalysis',
  'MemoryWorkloadAnalysis_Tables',
  'ComputeWorkloadAnalysis',
  'SchedulerStats',
  'WarpStateStats',
  'Occupancy',
  'LaunchStats',
  'InstructionStats',
  'SourceCounters',
];

/** The shape an operand-swapped GEMM tiling is profiled at (m = 16 of the bench's skinny rows). */
const SKINNY_PROFILE_SHAPE = GEMM_SHAPES.find((s) => s.label === 'skinny' && s.m === 16)!;

/** Launches per run of a kernel: every pass of a multi-pass quantizer (amax / pass A / pass B) is one. */
const CAPTURED = 3;

export async function runProfile(
  built: BuiltRunner,
  specs: KernelSpec[],
  outDir: string,
  results: RunResults,
): Promise<string[]> {
  // the text reports written, one per kernel profiled
  mkdirSync(outDir, { recursive: true });
  const written: string[] = [];
  for (const spec of specs) {
    const report = path.join(outDir, `ncu-${spec.name}`);
    // An operand-swapped (skinny) tiling runs at the skinny shape it exists for; the others at 8192^3.
    const skinny = spec.kind === 'gemm' && spec.tiling.registerOperand === 'b';
    const shape = spec.kind === 'gemm' ? (skinny ? SKINNY_PROFILE_SHAPE : GEMM_SHAPES[0]) : null;
    const [rows, cols] = QUANTIZE_SHAPES[0];
    const buffers = shape ? nvfp4Buffers(shape, 'bf16') : benchBuffers(spec, rows, cols);
    if (!buffers) continue;
    // Skip the first run (cold caches, lazy module load); capture the passes of the second.
    const ncu = [
      'ncu',
      '--kernel-name-base',
      'demangled',
      '-k',
      `regex:qgen_${spec.name}_impl::`,
      '--launch-skip',
      String(spec.kind === 'gemm' ? 1 : CAPTURED),
      '--launch-count',
      String(spec.kind === 'gemm' ? 1 : CAPTURED),
      ...SECTIONS.flatMap((s) => ['--section', s]),
      '--log-file',
      `${report}.log`,
      '-f',
      '-o',
      report,
    ];
    const runner = new GpuRunner(built.binary, ncu);
    // The runner's benchmark op launches warm-up rounds first; ncu's skip/count pick launches among them.
    const res = await runner.bench(
      {
        kernel: spec.name,
        rows: shape?.m ?? rows,
        cols: shape?.k ?? cols,
        depth: shape?.n ?? 0,
        seed: 1234n,
        signSeed: 99n,
        poison: 0,
        buffers,
      },
      2,
    );
    if (res.status !== 0) process.stderr.write(`profile ${spec.name}: status ${res.status} ${res.message}\n`);
    await runner.close();
    if (!existsSync(`${report}.ncu-rep`)) {
      process.stderr.write(`profile ${spec.name}: no report (see ${report}.log)\n`);
      continue;
    }
    const text = await execa('ncu', ['-i', `${report}.ncu-rep`, '--page', 'details', '--print-units', 'base'], {
      reject: false,
      all: true,
    });
    // The text report is a result (with provenance); the .ncu-rep and log stay in outDir.
    const file = results.save(`ncu-${spec.name}.txt`, `${text.all ?? ''}\n`);
    written.push(file);
    // Per-instruction view (SourceCounters): stall samples, executed instructions and excessive sectors per SASS
    // line, summarized (harness/gpu/stalls.ts; the full page stays in the .ncu-rep).
    const source = await execa(
      'ncu',
      ['-i', `${report}.ncu-rep`, '--page', 'source', '--print-source', 'sass', '--csv'],
      { reject: false, all: true },
    );
    if (source.exitCode === 0)
      results.save(
        `ncu-${spec.name}-stalls.md`,
        `# Stalls per SASS instruction: ${spec.name}\n\n${summarizeSourcePage(source.all ?? '')}`,
      );
    else process.stderr.write(`profile ${spec.name}: no per-instruction page (${(source.all ?? '').slice(0, 200)})\n`);
    process.stderr.write(`profile ${spec.name}: ${file}\n`);
  }
  return written;
}
