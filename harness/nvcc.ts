// The nvcc driver: compiles CUDA sources for one arch with qgen's flags, through a content-addressed cache.
//
// Flags: `-gencode arch=compute_XXa,code=sm_XXa` (never `-arch=sm_XXa`, which also runs a generic compute_XX pass
// that rejects arch-specific PTX; PTX-FACTS §1.2), C++17, -O3, spills reported by ptxas and every warning an error.
// The cache key is the sha256 of the sources, every header they include (transitively, by `#include "..."`), the
// flags and `nvcc --version`; hits are copied from .cache/nvcc/<key>/.
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Arch } from '../dsl/types.ts';

const repoRoot = fileURLToPath(new URL('../', import.meta.url));
const defaultCacheDir = path.join(repoRoot, '.cache', 'nvcc');

export type CompileOutput = 'object' | 'cubin' | 'ptx' | 'executable';

export interface CompileOptions {
  sources: string[];
  arch: Arch;
  /** Output file. */
  out: string;
  /** What to produce (default: an object file, `-c`). */
  output?: CompileOutput;
  /** Extra flags, appended after qgen's. */
  flags?: string[];
  /** Extra include directories (the sources' own directories are searched first). */
  includeDirs?: string[];
  /** Cache directory (default .cache/nvcc under the repo); null disables the cache. */
  cacheDir?: string | null;
  /** nvcc executable (default: `nvcc` on PATH). */
  nvcc?: string;
}

export interface CompileResult {
  out: string;
  cached: boolean;
  key: string;
  /** nvcc's combined output (empty on a cache hit). */
  log: string;
}

export class NvccError extends Error {
  constructor(
    message: string,
    readonly command: string,
    readonly output: string,
  ) {
    super(message);
    this.name = 'NvccError';
  }
}

/** `-gencode arch=compute_90a,code=sm_90a` for sm_90a. */
export function gencodeFlags(arch: Arch): string[] {
  return ['-gencode', `arch=compute_${arch.slice(3)},code=${arch}`];
}

/** qgen's standard flags for an arch (before output-kind and user flags). */
export function standardFlags(arch: Arch): string[] {
  return [...gencodeFlags(arch), '-std=c++17', '-O3', '-Xptxas', '-warn-spills', '--Werror', 'all-warnings'];
}

const OUTPUT_FLAGS: Record<CompileOutput, string[]> = {
  object: ['-c'],
  cubin: ['-cubin'],
  ptx: ['-ptx'],
  executable: [],
};

const versionCache = new Map<string, Promise<string>>();
export function nvccVersion(nvcc = 'nvcc'): Promise<string> {
  let v = versionCache.get(nvcc);
  if (!v) {
    v = execa(nvcc, ['--version']).then(
      (r) => r.stdout,
      (e: unknown) => {
        throw new NvccError(`cannot run '${nvcc} --version': ${(e as Error).message}`, `${nvcc} --version`, '');
      },
    );
    versionCache.set(nvcc, v);
  }
  return v;
}

/** Every file reachable from `file` through `#include "..."` (resolved against its directory, then includeDirs). */
async function includeClosure(files: string[], includeDirs: string[]): Promise<string[]> {
  const seen = new Set<string>();
  const visit = async (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = await readFile(file, 'utf8');
    for (const m of text.matchAll(/^\s*#\s*include\s+"([^"]+)"/gm)) {
      const candidates = [path.dirname(file), ...includeDirs].map((d) => path.resolve(d, m[1]));
      const found = candidates.find((c) => existsSync(c));
      if (found) await visit(found); // a missing header is nvcc's error to report
    }
  };
  for (const f of files) await visit(path.resolve(f));
  return [...seen].sort();
}

export async function compileKey(options: CompileOptions, args: string[]): Promise<string> {
  const includeDirs = options.includeDirs ?? [];
  const hash = createHash('sha256');
  hash.update(`nvcc\0${await nvccVersion(options.nvcc)}\0args\0${args.join('\0')}\0`);
  for (const file of await includeClosure(options.sources, includeDirs)) {
    hash.update(`file\0${path.basename(file)}\0`);
    hash.update(await readFile(file));
  }
  return hash.digest('hex');
}

/** Compiles `sources` for `arch` into `out`; throws NvccError with nvcc's output on failure. */
export async function compileCuda(options: CompileOptions): Promise<CompileResult> {
  const nvcc = options.nvcc ?? 'nvcc';
  const output = options.output ?? 'object';
  // Flags that decide the result (paths are left out of the key so that identical inputs hit from anywhere).
  const keyArgs = [...standardFlags(options.arch), ...OUTPUT_FLAGS[output], ...(options.flags ?? [])];
  const key = await compileKey(options, keyArgs);
  const cacheDir = options.cacheDir === undefined ? defaultCacheDir : options.cacheDir;
  const cached = cacheDir ? path.join(cacheDir, key, path.basename(options.out)) : null;
  await mkdir(path.dirname(path.resolve(options.out)), { recursive: true });
  if (cached && existsSync(cached)) {
    await copyFile(cached, options.out);
    return { out: options.out, cached: true, key, log: '' };
  }
  const args = [
    ...keyArgs,
    ...(options.includeDirs ?? []).flatMap((d) => ['-I', d]),
    '-o',
    options.out,
    ...options.sources,
  ];
  const command = `${nvcc} ${args.join(' ')}`;
  const result = await execa(nvcc, args, { reject: false, all: true });
  if (result.failed || result.exitCode !== 0) {
    throw new NvccError(
      `nvcc failed for ${options.arch} (exit ${result.exitCode ?? 'none'}):\n${command}\n${result.all ?? ''}`,
      command,
      result.all ?? '',
    );
  }
  if (cached) {
    // Write to a temporary name, then rename: parallel compiles never see a half-written cache entry.
    await mkdir(path.dirname(cached), { recursive: true });
    const tmp = `${cached}.${process.pid}.tmp`;
    await copyFile(options.out, tmp);
    await rename(tmp, cached).catch(async () => {
      await rm(tmp, { force: true });
    });
  }
  return { out: options.out, cached: false, key, log: result.all ?? '' };
}
