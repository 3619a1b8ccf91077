// Quantizer benchmarks on the GPU: each kernel at 8192x8192 and the Llama-7B linear shapes, timed with CUDA
// events (median of `reps` launches, buffers rotated so the working set exceeds the L2) against a device-to-device
// copy that moves the same bytes (its input read once plus its outputs written once), in the same run.
import type { KernelSpec } from '../../dsl/types.ts';
import { writesPlane } from '../../dsl/types.ts';
import { scaleBytes } from '../../reference/layout.ts';
import { GpuRunner, median, type BufferArg } from './client.ts';
import type { RunResults } from './results.ts';
import type { BuiltRunner } from './build.ts';

/** [rows, cols] of the output (quantized along cols). */
export const QUANTIZE_SHAPES: [number, number][] = [
  [8192, 8192],
  [16384, 4096],
  [32768, 4096],
  [4096, 11008],
  [4096, 22016],
];

export interface BenchRow {
  kernel: string;
  kind: string;
  shape: string;
  time_ms: number;
  copy_time_ms: number;
  bytes: number;
  fraction_of_copy: number;
  gbps: number;
  copy_gbps: number;
  device: string;
  arch: string;
  reps: number;
  tiling: string;
}

export function benchBuffers(spec: KernelSpec, rows: number, cols: number): BufferArg[] | null {
  switch (spec.kind) {
    case 'quantize': {
      const Kb = cols / spec.scaleGroup.size;
      const outs: BufferArg[] = [{ size: (rows * cols) / 2 }, { size: scaleBytes(rows, Kb, spec.scaleLayout) }];
      const ts: BufferArg =
        spec.tensorScale === 'caller'
          ? { size: 4, data: new Uint8Array(new Float32Array([1 / 512]).buffer) }
          : { size: 4 };
      const plane: BufferArg[] = writesPlane(spec.outputs) ? [{ size: rows * cols * 2 }] : [];
      if (spec.input === 'nvfp4') {
        // The input tensor is [cols, rows] quantized along rows, its scales in the kernel's layout (qgen.h).
        return [
          { size: (rows * cols) / 2, fill: 'bytes-random' },
          { size: scaleBytes(cols, rows / 16, spec.scaleLayout), fill: 'e4m3-random' },
          { size: 4, data: new Uint8Array(new Float32Array([1]).buffer) },
          ...outs,
          ts,
          ...plane,
        ];
      }
      return [{ size: rows * cols * 2, fill: 'bf16-random' }, ...outs, ts, ...plane];
    }
    case 'dequantize': {
      const Kb = cols / spec.scaleGroup.size;
      return [
        { size: (rows * cols) / 2, fill: 'bytes-random' },
        { size: scaleBytes(rows, Kb, spec.scaleLayout), fill: 'e4m3-random' },
        { size: 4, data: new Uint8Array(new Float32Array([1]).buffer) },
        { size: rows * cols * (spec.output === 'f32' ? 4 : 2) },
      ];
    }
    case 'hadamard':
      return [
        { size: rows * cols * (spec.input === 'f32' ? 4 : 2), fill: 'bf16-random' },
        { size: rows * cols * (spec.output === 'f32' ? 4 : 2) },
      ];
    case 'amax':
      return [{ size: rows * cols * (spec.input === 'f32' ? 4 : 2), fill: 'bf16-random' }, { size: 4 }];
    case 'gemm':
      return null;
  }
}

function tilingText(spec: KernelSpec): string {
  return 'tiling' in spec ? JSON.stringify(spec.tiling) : '';
}

export async function runBench(
  runner: GpuRunner,
  built: BuiltRunner,
  opts: { device: string; arch: string; reps: number; results?: RunResults },
): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const spec of built.specs) {
    for (const [r, c] of QUANTIZE_SHAPES) {
      const buffers = benchBuffers(spec, r, c);
      if (!buffers) continue;
      const bytes = buffers.reduce((s, b) => s + b.size, 0);
      const res = await runner.bench(
        { kernel: spec.name, rows: r, cols: c, seed: 1234n, poison: 0, buffers },
        opts.reps,
      );
      if (res.status !== 0) {
        process.stderr.write(`bench ${spec.name} ${r}x${c}: status ${res.status} ${res.message}\n`);
        continue;
      }
      const t = median(res.kernelMs),
        tc = median(res.copyMs);
      const row: BenchRow = {
        kernel: spec.name,
        kind: spec.kind,
        shape: `${r}x${c}`,
        time_ms: t,
        copy_time_ms: tc,
        bytes,
        fraction_of_copy: tc / t,
        gbps: bytes / t / 1e6,
        copy_gbps: bytes / tc / 1e6,
        device: opts.device,
        arch: opts.arch,
        reps: res.kernelMs.length,
        tiling: tilingText(spec),
      };
      rows.push(row);
      process.stderr.write(
        `${spec.name.padEnd(26)} ${row.shape.padEnd(12)} ${(t * 1000).toFixed(1).padStart(8)} us  copy ${(tc * 1000).toFixed(1).padStart(8)} us  ${(100 * row.fraction_of_copy).toFixed(0).padStart(4)}% of copy\n`,
      );
    }
  }
  if (opts.results) {
    // qgen check puts the rows in its own results file instead
    opts.results.save('quantize.json', rows);
    opts.results.save('quantize.md', benchTable(rows, opts));
  }
  return rows;
}

export function benchTable(rows: BenchRow[], opts: { device: string; arch: string; reps: number }): string {
  const lines = [
    `# Quantizer benchmarks (${opts.arch})`,
    '',
    `Device: ${opts.device}. Median of ${opts.reps} launches timed with CUDA events; buffers rotated so each round touches`,
    'more than the L2; baseline: a device-to-device copy moving the same bytes (input read once + outputs written once), in the same run.',
    'Target: >= 80% of the copy bandwidth.',
    '',
    '| kernel | shape | time (us) | copy (us) | % of copy | GB/s | meets 80% |',
    '|---|---|---:|---:|---:|---:|:---:|',
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.kernel} | ${r.shape} | ${(r.time_ms * 1000).toFixed(1)} | ${(r.copy_time_ms * 1000).toFixed(1)} | ${(100 * r.fraction_of_copy).toFixed(1)} | ${r.gbps.toFixed(0)} | ${r.fraction_of_copy >= 0.8 ? 'yes' : 'no'} |`,
    );
  }
  return lines.join('\n') + '\n';
}
