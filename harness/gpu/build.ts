// Builds the GPU runner: emits kernels for an arch, generates the dispatch table, compiles and links with nvcc.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { execa } from 'execa';
import type { Arch, KernelSpec } from '../../dsl/types.ts';
import { emitKernels } from '../../emit/emit.ts';
import { renderDispatch } from './bind.ts';
import { repoRoot } from './results.ts';

/** The runner's own translation units (the kernels come on top): the test/bench runner and the tune runner link
 * the same ones (baselines.cu's table names every function they define). */
export function runnerSources(workDir: string): string[] {
  return [
    path.join(repoRoot, 'harness/runner/runner.cu'),
    path.join(repoRoot, 'harness/runner/baselines.cu'),
    path.join(repoRoot, 'harness/runner/degraded_gemm.cu'),
    path.join(workDir, 'dispatch.cu'),
  ];
}

export interface BuiltRunner {
  binary: string;
  specs: KernelSpec[];
  dir: string;
}

/** Emits the catalog for an arch, generates the runner's dispatch table and links the runner with nvcc. */
export async function buildRunner(
  arch: Arch,
  specs: KernelSpec[],
  workDir: string,
  extraFlags: string[] = [],
): Promise<BuiltRunner> {
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
  const common = [
    `-gencode`,
    `arch=compute_${cc}a,code=sm_${cc}a`,
    '-O3',
    '-std=c++17',
    '-lineinfo',
    ...extraFlags,
    `-I${kernelsDir}`,
    `-I${workDir}`,
  ];
  // One nvcc per translation unit, as many at a time as there are cores, then one link.
  const sources = [...runnerSources(workDir), ...cuFiles];
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
  process.stderr.write(
    `built runner for ${arch}: ${specs.length} kernels in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`,
  );
  return { binary, specs, dir: workDir };
}
