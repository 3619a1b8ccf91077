// Tuning files (format qgen-tuning/1, written by `qgen tune`, committed under tuning/) and the shape dispatch they
// feed: which GEMM strategy and tiling runs for a shape (NUMERICS §6.4-6.5). The same rule is implemented in the
// vendored package (runtime/torch/qgen_torch/ops.py, gemm_plan); test/tuning.test.ts pins both to these cases.
//   shape class: (m bucket, n, k); m buckets M_BUCKETS. A query (m, n, k) takes the winner of its exact class, else
//   the bucket's most frequent winner (by count, then by the first class listed), else the fallback rule of the arch.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Arch, GemmSpec, GemmTiling, QuantizeSpec } from '../dsl/types.ts';
import { ARCHS } from '../dsl/types.ts';
import { catalogFor } from '../dsl/catalog.ts';
import { GEMM_CHOICE } from '../dsl/recipes.ts';
import type { GemmStrategy } from '../dsl/tunables.ts';
import { buildProblem, gemmWithTiling } from '../validate/space.ts';
import { validate } from '../validate/validate.ts';
import type { QuantizerResult, QuantizerWinner } from './quantizers.ts';

export const TUNING_FORMAT = 'qgen-tuning/1';

/** m buckets [min, max] (max null: unbounded). Skinny GEMMs (m <= 64) are their own bucket (the issue's numbers). */
export const M_BUCKETS: readonly [number, number | null][] = [
  [1, 64],
  [65, 512],
  [513, 4096],
  [4097, null],
];

export function mBucket(m: number): [number, number | null] {
  const b = M_BUCKETS.find(([lo, hi]) => m >= lo && (hi === null || m <= hi));
  if (!b) throw new Error(`mBucket: m = ${m}; allowed: m >= 1`);
  return b;
}

export function shapeClass(m: number, n: number, k: number): string {
  const [lo, hi] = mBucket(m);
  return `m${lo}-${hi ?? 'inf'}_n${n}_k${k}`;
}

/** The cache key: a tuning file is valid for exactly these sources, space, GPU and software. */
export interface TuningCacheKey {
  sourceHash: string;
  configSpaceHash: string;
  gpu: string;
  smCount: number;
  driver: string;
  cuda: string;
  qgenVersion: string;
}

export type CandidateStatus = 'ok' | 'wrong' | 'failed' | 'timeout' | 'skipped';

/** One candidate on one shape. `reason` for every status but ok; time only for ok. */
export interface CandidateResult {
  shape: string;
  label: string;
  m: number;
  n: number;
  k: number;
  candidate: string;
  strategy: GemmStrategy;
  tiling: GemmTiling | null;
  status: CandidateStatus;
  reason?: string;
  medianUs?: number;
  samples?: number;
  retimedUs?: number;
}

export interface TuningWinner {
  shape: string;
  mMin: number;
  mMax: number | null;
  n: number;
  k: number;
  strategy: GemmStrategy;
  /** The fused kernel's tiling (null for two-pass). */
  tiling: GemmTiling | null;
  candidate: string;
  us: number;
  twoPassUs: number | null;
  cublasBf16Us: number | null;
}

export interface TuningFile {
  format: typeof TUNING_FORMAT;
  arch: Arch;
  workload: string;
  provenance: Record<string, unknown>;
  cacheKey: TuningCacheKey;
  candidates: CandidateResult[];
  winners: TuningWinner[];
  /** The quantizer sweep (absent in files written before it: they still load). */
  quantizerCandidates?: QuantizerResult[];
  quantizerWinners?: QuantizerWinner[];
}

// ---------------------------------------------------------------------------------------------------------------
// Validation: every problem with its field path (a broken or hand-edited file is refused before it is used).

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

export function tuningProblems(f: unknown): { path: string; message: string }[] {
  const out: { path: string; message: string }[] = [];
  const add = (p: string, m: string) => out.push({ path: p, message: m });
  if (!isObj(f)) return [{ path: '(file)', message: `must be a ${TUNING_FORMAT} object` }];
  if (f.format !== TUNING_FORMAT) add('format', `must be '${TUNING_FORMAT}' (got ${JSON.stringify(f.format)})`);
  if (!(ARCHS as readonly unknown[]).includes(f.arch)) add('arch', `must be one of ${ARCHS.join(', ')}`);
  if (typeof f.workload !== 'string') add('workload', 'must be a string');
  if (!isObj(f.provenance)) add('provenance', 'must be a qgen-provenance/1 object');
  const key = f.cacheKey;
  if (!isObj(key)) add('cacheKey', 'must be an object');
  else {
    for (const k of ['sourceHash', 'configSpaceHash', 'gpu', 'driver', 'cuda', 'qgenVersion']) {
      if (typeof key[k] !== 'string' || key[k] === '') add(`cacheKey.${k}`, 'must be a non-empty string');
    }
    if (!(Number.isInteger(key.smCount) && (key.smCount as number) > 0))
      add('cacheKey.smCount', 'must be a positive integer');
  }
  if (!Array.isArray(f.candidates)) add('candidates', 'must be a list');
  const posInt = (v: unknown) => Number.isInteger(v) && (v as number) >= 1;
  const checkTiling = (at: string, strategy: unknown, tiling: unknown) => {
    if (strategy !== 'fused' && strategy !== 'two-pass') add(`${at}.strategy`, "must be 'fused' | 'two-pass'");
    if (strategy === 'two-pass' && tiling !== null) add(`${at}.tiling`, 'must be null for strategy two-pass');
    if (strategy === 'fused' && ARCHS.includes(f.arch as Arch)) {
      if (!isObj(tiling)) {
        add(`${at}.tiling`, 'must be a GEMM tiling object');
        return;
      }
      const spec = gemmWithTiling(baseGemm(f.arch as Arch), tiling as unknown as GemmTiling);
      const problems = validate(spec, f.arch as Arch, `${at}.spec`);
      const first = problems.length > 0 ? null : buildProblem(spec, f.arch as Arch, `${at}.spec`);
      for (const p of first ? [first] : problems)
        add(p.path.replace(`${at}.spec.tiling`, `${at}.tiling`).replace(`${at}.spec`, at), p.message);
    }
  };
  if (!Array.isArray(f.winners)) add('winners', 'must be a list');
  else {
    const seen = new Set<string>();
    f.winners.forEach((w, i) => {
      const at = `winners[${i}]`;
      if (!isObj(w)) {
        add(at, 'must be an object');
        return;
      }
      for (const k of ['mMin', 'n', 'k']) if (!posInt(w[k])) add(`${at}.${k}`, 'must be a positive integer');
      if (w.mMax !== null && !posInt(w.mMax)) add(`${at}.mMax`, 'must be a positive integer or null');
      const bucket = M_BUCKETS.find(([lo, hi]) => lo === w.mMin && hi === w.mMax);
      if (!bucket) add(`${at}.mMin`, `[mMin, mMax] must be one of the m buckets ${JSON.stringify(M_BUCKETS)}`);
      if (typeof w.shape !== 'string') add(`${at}.shape`, 'must be a string');
      else if (seen.has(w.shape)) add(`${at}.shape`, `duplicate shape class "${w.shape}"`);
      else seen.add(w.shape);
      if (!(typeof w.us === 'number' && w.us > 0)) add(`${at}.us`, 'must be a positive number (microseconds)');
      checkTiling(at, w.strategy, w.tiling);
    });
  }
  if (f.quantizerCandidates !== undefined && !Array.isArray(f.quantizerCandidates))
    add('quantizerCandidates', 'must be a list when present');
  if (f.quantizerWinners !== undefined) {
    if (!Array.isArray(f.quantizerWinners)) add('quantizerWinners', 'must be a list when present');
    else f.quantizerWinners.forEach((w, i) => quantizerWinnerProblems(w, `quantizerWinners[${i}]`, f.arch, add));
  }
  return out;
}

/** One quantizer winner: a catalog quantizer of the arch, its shape, and a launch shape that validates on the arch. */
function quantizerWinnerProblems(w: unknown, at: string, arch: unknown, add: (p: string, m: string) => void) {
  if (!isObj(w)) {
    add(at, 'must be an object { kernel, rows, cols, tiling, candidate, us, catalogUs }');
    return;
  }
  for (const k of ['rows', 'cols'])
    if (!(Number.isInteger(w[k]) && (w[k] as number) >= 1)) add(`${at}.${k}`, 'must be a positive integer');
  if (!(typeof w.us === 'number' && w.us > 0)) add(`${at}.us`, 'must be a positive number (microseconds)');
  if (w.catalogUs !== null && !(typeof w.catalogUs === 'number' && w.catalogUs > 0))
    add(`${at}.catalogUs`, 'must be a positive number or null');
  if (typeof w.candidate !== 'string') add(`${at}.candidate`, 'must be a string');
  if (!ARCHS.includes(arch as Arch)) return;
  const quantizers = catalogFor(arch as Arch).filter((s): s is QuantizeSpec => s.kind === 'quantize');
  const base = quantizers.find((s) => s.name === w.kernel);
  if (!base) {
    add(`${at}.kernel`, `must name a catalog quantizer of ${String(arch)} (got ${JSON.stringify(w.kernel)})`);
    return;
  }
  const t = w.tiling;
  if (!isObj(t)) {
    add(`${at}.tiling`, 'must be { threadsPerBlock, rowsPerBlock, groupsPerThread }');
    return;
  }
  for (const k of ['threadsPerBlock', 'rowsPerBlock', 'groupsPerThread']) {
    if (!(Number.isInteger(t[k]) && (t[k] as number) >= 1)) {
      add(`${at}.tiling.${k}`, 'must be a positive integer');
      return;
    }
  }
  // the whole object, as applyTunedQuantizers copies it: unknown keys and minBlocksPerSm are validated too
  const spec: QuantizeSpec = { ...base, tiling: t as unknown as QuantizeSpec['tiling'] };
  const problem = buildProblem(spec, arch as Arch, `${at}.spec`);
  if (problem) add(problem.path.replace(`${at}.spec`, at), problem.message);
}

/** The arch's catalog GEMM every tuned tiling is a variant of (bf16 out). */
export function baseGemm(arch: Arch): GemmSpec {
  const s = catalogFor(arch).find((k) => k.name === 'gemm_nvfp4_bf16');
  if (!s || s.kind !== 'gemm') throw new Error(`no gemm_nvfp4_bf16 in the ${arch} catalog`);
  return s;
}

export class TuningError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TuningError';
  }
}

/** Reads and validates a tuning file for `arch` (TuningError: one line per problem, with field paths). */
export function readTuningFile(file: string, arch: Arch): TuningFile {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new TuningError(`--tuning: cannot read ${file} as JSON (${(e as Error).message.split('\n')[0]})`);
  }
  const problems = tuningProblems(value);
  if (problems.length > 0) {
    throw new TuningError(
      `--tuning: ${file} is not a valid ${TUNING_FORMAT} file:\n` +
        problems.map((p) => `  ${p.path}: ${p.message}`).join('\n'),
    );
  }
  const t = value as TuningFile;
  if (t.arch !== arch)
    throw new TuningError(`--tuning: ${file} was tuned for ${t.arch}; allowed: a tuning file for ${arch}`);
  return t;
}

/**
 * Hash of the sources a tuning result depends on (sorted paths): the kernel and runner templates (templates/, not
 * templates/vendor/, the packages' scaffolding) and the kernels' runtime headers (runtime/*.cuh, runtime/*.h). Not
 * the contract's prose (runtime/NUMERICS.md) nor the torch package (runtime/torch/): editing them changes no timing.
 */
export function sourceHash(repoRoot: string): string {
  const h = createHash('sha256');
  const add = (p: string) =>
    h
      .update(`${path.relative(repoRoot, p)}\0`)
      .update(readFileSync(p))
      .update('\0');
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const p = path.join(dir, name);
      if (statSync(p).isDirectory()) {
        if (name !== 'vendor') walk(p);
      } else add(p);
    }
  };
  walk(path.join(repoRoot, 'templates'));
  const runtime = path.join(repoRoot, 'runtime');
  for (const name of readdirSync(runtime).sort()) {
    const p = path.join(runtime, name);
    if (/\.(cuh|h)$/.test(name) && statSync(p).isFile()) add(p);
  }
  return h.digest('hex').slice(0, 16);
}

/** Problems of using `t` with the current sources: refused (error) or usable with a warning. */
export function tuningStaleness(t: TuningFile, currentSourceHash: string): { warnings: string[] } {
  const warnings: string[] = [];
  if (t.cacheKey.sourceHash !== currentSourceHash) {
    warnings.push(
      `tuning file was measured with templates/runtime ${t.cacheKey.sourceHash}, these sources are ` +
        `${currentSourceHash}: its timings may no longer hold (re-run qgen tune); its choices stay exact (NUMERICS §6.5)`,
    );
  }
  return { warnings };
}

// ---------------------------------------------------------------------------------------------------------------
// Dispatch.

export interface DispatchRule {
  mMin: number;
  mMax: number | null;
  n: number | null;
  k: number | null;
  strategy: GemmStrategy;
  kernel: string | null;
}

/** What the vendored package reads: exact shape rules, bucket rules, the fallback, and where they came from. */
export interface GemmDispatch {
  source: string;
  gpu: string | null;
  sourceHash: string | null;
  shapes: DispatchRule[];
  buckets: DispatchRule[];
  fallback: DispatchRule[];
}

/**
 * The fallback when no table matches. sm_90a: the fused GEMM for m <= 64 (its tilings from GEMM_CHOICE: one for
 * m <= 16, one for 17..64), two-pass
 * above (issue 15, H100: two-pass 0.99-1.00x cuBLAS bf16 at 8192^3 and 16384x11008x4096 where fused is 0.44-0.48x;
 * fused 88 us vs two-pass 134 us at 64x8192x8192). Blackwell: the fused native-FP4 GEMM (no two-pass measured).
 */
export function fallbackRules(arch: Arch): DispatchRule[] {
  const fusedFor = (m: number) => GEMM_CHOICE[arch].find((r) => r.maxM === null || m <= r.maxM)!.kernel;
  if (arch === 'sm_90a') {
    return [
      { mMin: 1, mMax: 16, n: null, k: null, strategy: 'fused', kernel: fusedFor(16) },
      { mMin: 17, mMax: 64, n: null, k: null, strategy: 'fused', kernel: fusedFor(64) },
      { mMin: 65, mMax: null, n: null, k: null, strategy: 'two-pass', kernel: null },
    ];
  }
  return [{ mMin: 1, mMax: null, n: null, k: null, strategy: 'fused', kernel: fusedFor(1 << 30) }];
}

/** The catalog's bf16 GEMM with exactly this tiling on `arch`, if any (its name is reused: no duplicate kernel). */
function catalogGemmWithTiling(arch: Arch, tiling: GemmTiling): GemmSpec | undefined {
  const key = JSON.stringify(gemmWithTiling(baseGemm(arch), tiling).tiling);
  return catalogFor(arch).find(
    (s): s is GemmSpec => s.kind === 'gemm' && s.output === 'bf16' && JSON.stringify(s.tiling) === key,
  );
}

/** The name a tuned fused tiling is emitted and vendored under: the catalog's where it has that tiling. */
export function tunedKernelName(arch: Arch, tiling: GemmTiling): string {
  return catalogGemmWithTiling(arch, tiling)?.name ?? gemmWithTiling(baseGemm(arch), tiling).name;
}

/** The GEMM specs a tuning file's fused winners need (one per distinct tiling), sorted by name. */
export function tunedGemmSpecs(t: TuningFile): GemmSpec[] {
  const byName = new Map<string, GemmSpec>();
  for (const w of t.winners) {
    if (w.strategy !== 'fused' || !w.tiling) continue;
    let spec = catalogGemmWithTiling(t.arch, w.tiling);
    if (!spec) {
      spec = gemmWithTiling(baseGemm(t.arch), w.tiling);
      spec.doc = `the NVFP4 GEMM with a tuned tiling (${t.cacheKey.gpu}, workload ${t.workload})`;
    }
    byName.set(spec.name, spec);
  }
  return [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
}

export function gemmDispatch(arch: Arch, t?: TuningFile, sourceName?: string): GemmDispatch {
  const fallback = fallbackRules(arch);
  if (!t) return { source: 'fallback', gpu: null, sourceHash: null, shapes: [], buckets: [], fallback };
  const kernel = (w: TuningWinner) => (w.strategy === 'fused' && w.tiling ? tunedKernelName(arch, w.tiling) : null);
  const shapes = t.winners.map((w): DispatchRule => ({
    mMin: w.mMin,
    mMax: w.mMax,
    n: w.n,
    k: w.k,
    strategy: w.strategy,
    kernel: kernel(w),
  }));
  const buckets: DispatchRule[] = [];
  for (const [lo, hi] of M_BUCKETS) {
    const inBucket = shapes.filter((r) => r.mMin === lo && r.mMax === hi);
    if (inBucket.length === 0) continue;
    const count = new Map<string, { n: number; rule: DispatchRule }>();
    for (const r of inBucket) {
      const id = `${r.strategy}:${r.kernel}`;
      const c = count.get(id);
      if (c) c.n++;
      else count.set(id, { n: 1, rule: r });
    }
    const best = [...count.values()].reduce((a, b) => (b.n > a.n ? b : a));
    buckets.push({ ...best.rule, n: null, k: null });
  }
  return {
    source: sourceName ?? `tuning (${t.workload})`,
    gpu: t.cacheKey.gpu,
    sourceHash: t.cacheKey.sourceHash,
    shapes,
    buckets,
    fallback,
  };
}

/** The rule for (m, n, k): exact shape class, else the m bucket's rule, else the fallback. */
export function chooseGemm(
  d: GemmDispatch,
  m: number,
  n: number,
  k: number,
): DispatchRule & { from: 'shape' | 'bucket' | 'fallback' } {
  const inBucket = (r: DispatchRule) => m >= r.mMin && (r.mMax === null || m <= r.mMax);
  const shape = d.shapes.find((r) => inBucket(r) && r.n === n && r.k === k);
  if (shape) return { ...shape, from: 'shape' };
  const bucket = d.buckets.find(inBucket);
  if (bucket) return { ...bucket, from: 'bucket' };
  const fb = d.fallback.find(inBucket);
  if (!fb) throw new Error(`chooseGemm: no fallback rule for m = ${m}`);
  return { ...fb, from: 'fallback' };
}
