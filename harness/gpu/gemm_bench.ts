// NVFP4 GEMM benchmarks on the GPU: every GEMM tiling of the catalog against cuBLAS bf16 (the target baseline),
// cuBLAS FP8 (context) and "dequantize to bf16, then cuBLAS bf16", all in the same run, at the shapes issue 4 names.
// Median of `reps` launches timed with CUDA events (a busy kernel ahead of each so host work is not timed), buffers
// rotated by the runner so that each round touches more than the L2.
import type { GemmSpec } from '../../dsl/types.ts';
import { scaleBytes } from '../../reference/layout.ts';
import { GpuRunner, median, type BufferArg } from './client.ts';
import type { RunResults } from './results.ts';

export interface GemmShape {
  label: string;
  m: number;
  n: number;
  k: number;
}

const TOKENS = 16384;
/** Llama-7B linear layers (in -> out) at 16384 tokens: forward X . W^T, dX = E . W, dW = E^T . X, all as TN GEMMs. */
const LLAMA: [number, number][] = [
  [4096, 4096],
  [4096, 22016],
  [11008, 4096],
];
export const GEMM_SHAPES: GemmShape[] = [
  { label: 'square', m: 8192, n: 8192, k: 8192 },
  { label: 'square', m: 4096, n: 4096, k: 4096 },
  ...LLAMA.map(([i, o]) => ({ label: `llama fwd ${i}->${o}`, m: TOKENS, n: o, k: i })),
  ...LLAMA.map(([i, o]) => ({ label: `llama dX ${i}->${o}`, m: TOKENS, n: i, k: o })),
  ...LLAMA.map(([i, o]) => ({ label: `llama dW ${i}->${o}`, m: o, n: i, k: TOKENS })),
  ...[1, 16, 64].map((m) => ({ label: 'skinny', m, n: 8192, k: 8192 })),
];

export interface GemmBenchRow {
  kernel: string;
  shape: string;
  label: string;
  m: number;
  n: number;
  k: number;
  time_ms: number;
  tflops: number;
  cublas_bf16_ms: number;
  cublas_fp8_ms: number;
  dequant_cublas_ms: number;
  vs_cublas_bf16: number;
  vs_dequant_cublas: number;
  best_for_shape: boolean;
  device: string;
  tiling: string;
  reps: number;
}

const ONE = new Uint8Array(new Float32Array([1]).buffer);

export function nvfp4Buffers(s: GemmShape, out: 'bf16' | 'f32'): BufferArg[] {
  const operand = (rows: number): BufferArg[] => [
    { size: (rows * s.k) / 2, fill: 'bytes-random' },
    { size: scaleBytes(rows, s.k / 16, '128x4'), fill: 'e4m3-random' },
    { size: 4, data: ONE },
  ];
  return [...operand(s.m), ...operand(s.n), { size: s.m * s.n * (out === 'bf16' ? 2 : 4) }];
}

async function time(
  runner: GpuRunner,
  kernel: string,
  s: GemmShape,
  buffers: BufferArg[],
  reps: number,
): Promise<number> {
  const res = await runner.bench({ kernel, rows: s.m, cols: s.k, depth: s.n, seed: 1n, poison: 0, buffers }, reps);
  if (res.status !== 0) throw new Error(`${kernel} ${s.m}x${s.n}x${s.k}: status ${res.status} ${res.message}`);
  return median(res.kernelMs);
}

/**
 * Whether the bench times tiling `k` at m rows: operand-swapped tilings exist for skinny m (each decodes the
 * weights once per A tile of <= 64 rows) and are timed at m <= 64 only, where the package may run them;
 * producer-decode tilings (128-row tiles) are for large shapes, timed at m > 64 only; the rest everywhere.
 */
export function benchFits(k: GemmSpec, m: number): boolean {
  if (k.tiling.registerOperand === 'b') return m <= 64;
  if (k.tiling.decode !== undefined && k.tiling.decode !== 'consumer') return m > 64;
  return true;
}

export async function runGemmBench(
  runner: GpuRunner,
  specs: GemmSpec[],
  opts: { device: string; arch: string; reps: number; shapes?: GemmShape[]; results: RunResults },
): Promise<GemmBenchRow[]> {
  const rows: GemmBenchRow[] = [];
  const kernels = specs.filter((s) => s.output === 'bf16');
  for (const s of opts.shapes ?? GEMM_SHAPES) {
    const runnable = kernels.filter((k) => benchFits(k, s.m));
    if (runnable.length === 0) {
      // e.g. --only selecting producer-decode tilings only, with the skinny shapes in the list: no row, no baseline
      process.stderr.write(`${s.m}x${s.n}x${s.k}: skipped, no selected GEMM is timed at m = ${s.m} (benchFits)\n`);
      continue;
    }
    const flop = 2 * s.m * s.n * s.k;
    const bf16 = await time(
      runner,
      'baseline:cublas_bf16',
      s,
      [
        { size: s.m * s.k * 2, fill: 'bf16-random' },
        { size: s.n * s.k * 2, fill: 'bf16-random' },
        { size: s.m * s.n * 2 },
      ],
      opts.reps,
    );
    const fp8 = await time(
      runner,
      'baseline:cublas_fp8',
      s,
      [{ size: s.m * s.k, fill: 'e4m3-random' }, { size: s.n * s.k, fill: 'e4m3-random' }, { size: s.m * s.n * 2 }],
      opts.reps,
    );
    const dq = await time(runner, 'baseline:dequant_cublas_bf16', s, nvfp4Buffers(s, 'bf16'), opts.reps);
    const shapeRows: GemmBenchRow[] = [];
    for (const spec of runnable) {
      const t = await time(runner, spec.name, s, nvfp4Buffers(s, spec.output), opts.reps);
      shapeRows.push({
        kernel: spec.name,
        shape: `${s.m}x${s.n}x${s.k}`,
        label: s.label,
        m: s.m,
        n: s.n,
        k: s.k,
        time_ms: t,
        tflops: flop / t / 1e9,
        cublas_bf16_ms: bf16,
        cublas_fp8_ms: fp8,
        dequant_cublas_ms: dq,
        vs_cublas_bf16: bf16 / t,
        vs_dequant_cublas: dq / t,
        best_for_shape: false,
        device: opts.device,
        tiling: JSON.stringify(spec.tiling),
        reps: opts.reps,
      });
    }
    const best = shapeRows.reduce((x, y) => (y.time_ms < x.time_ms ? y : x));
    best.best_for_shape = true;
    rows.push(...shapeRows);
    process.stderr.write(
      `${best.shape.padEnd(20)} best ${best.kernel.padEnd(24)} ${(best.time_ms * 1000).toFixed(1).padStart(9)} us ` +
        `${best.tflops.toFixed(0).padStart(5)} TFLOP/s  cuBLAS bf16 ${(flop / bf16 / 1e9).toFixed(0)} (x${best.vs_cublas_bf16.toFixed(2)})  ` +
        `fp8 ${(flop / fp8 / 1e9).toFixed(0)}  dequant+cuBLAS ${(dq * 1000).toFixed(1)} us (x${best.vs_dequant_cublas.toFixed(2)})\n`,
    );
  }
  opts.results.save('gemm.json', rows);
  opts.results.save('gemm.md', gemmTable(rows, opts));
  return rows;
}

export function gemmTable(rows: GemmBenchRow[], opts: { device: string; arch: string; reps: number }): string {
  const lines = [
    `# NVFP4 GEMM benchmarks (${opts.arch})`,
    '',
    `Device: ${opts.device}. Median of ${opts.reps} launches, CUDA events, buffers rotated past the L2; all baselines measured in the same run.`,
    'C = alpha * A . B^T, A [m, k] and B [n, k] NVFP4 (128x4 E4M3 scales), bf16 out. TFLOP/s count 2mnk.',
    'Targets: >= 0.80x cuBLAS bf16 TFLOP/s on large shapes; >= 2.5x faster than cuBLAS bf16 at m <= 64; faster than dequantize+cuBLAS everywhere.',
    '',
    '## Best tiling per shape',
    '',
    '| shape (m x n x k) | GEMM | best tiling | time (us) | TFLOP/s | cuBLAS bf16 TFLOP/s | x cuBLAS bf16 | cuBLAS fp8 TFLOP/s | dequant+cuBLAS (us) | x dequant+cuBLAS | target |',
    '|---|---|---|---:|---:|---:|---:|---:|---:|---:|:---:|',
  ];
  for (const r of rows.filter((x) => x.best_for_shape)) {
    const flop = 2 * r.m * r.n * r.k;
    const skinny = r.m <= 64;
    const met = (skinny ? r.vs_cublas_bf16 >= 2.5 : r.vs_cublas_bf16 >= 0.8) && r.vs_dequant_cublas > 1;
    lines.push(
      `| ${r.shape} | ${r.label} | ${r.kernel} | ${(r.time_ms * 1000).toFixed(1)} | ${r.tflops.toFixed(0)} | ${(flop / r.cublas_bf16_ms / 1e9).toFixed(0)} | ` +
        `${r.vs_cublas_bf16.toFixed(2)} | ${(flop / r.cublas_fp8_ms / 1e9).toFixed(0)} | ${(r.dequant_cublas_ms * 1000).toFixed(1)} | ${r.vs_dequant_cublas.toFixed(2)} | ` +
        `${met ? 'met' : `missed (${skinny ? '>= 2.5x' : '>= 0.80x'})`} |`,
    );
  }
  lines.push(
    '',
    '## Every tiling',
    '',
    '| shape | kernel | tiling | time (us) | TFLOP/s | x cuBLAS bf16 |',
    '|---|---|---|---:|---:|---:|',
  );
  for (const r of rows) {
    lines.push(
      `| ${r.shape} | ${r.kernel}${r.best_for_shape ? ' (best)' : ''} | \`${r.tiling}\` | ${(r.time_ms * 1000).toFixed(1)} | ${r.tflops.toFixed(0)} | ${r.vs_cublas_bf16.toFixed(2)} |`,
    );
  }
  return lines.join('\n') + '\n';
}
