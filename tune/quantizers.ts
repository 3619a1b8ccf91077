// The quantizer part of `qgen tune`, independent of the GPU: for each quantizer of the workload, its catalog spec
// (the baseline) and up to N launch shapes of validate/space.ts quantizeSpace are checked bit-exact against the
// TypeScript reference (backend.check) and timed at the workload's [rows, cols] (backend.time). A launch shape never
// changes a quantizer's results (NUMERICS §6.5), so a tuned tiling is emitted under the catalog name
// (applyTunedQuantizers). A wrong, failing or hung candidate is recorded with its reason and never wins; the catalog
// tiling keeps a shape unless a candidate is strictly faster. Budget and resume as tune/sweep.ts.
import type { Arch, ElementwiseTiling, KernelSpec, QuantizeSpec } from '../dsl/types.ts';
import { catalogFor } from '../dsl/catalog.ts';
import type { WorkloadQuantizer } from '../dsl/workloads.ts';
import { buildProblem, quantizeSpace, quantizeWithTiling } from '../validate/space.ts';
import { tilingLabel } from '../dsl/tunables.ts';
import { lower } from '../lower/lower.ts';
import { Timeout, message, withTimeout, type CheckResult } from './sweep.ts';
import type { CandidateStatus, TuningFile } from './tuning.ts';

/** One quantizer launch shape to try: `spec.name` is the name it is built and run under in the tune runner. */
export interface QuantizerCandidate {
  kernel: string;
  spec: QuantizeSpec;
  catalog: boolean;
}

/** One candidate on one workload quantizer shape. */
export interface QuantizerResult {
  kernel: string;
  shape: string;
  label: string;
  rows: number;
  cols: number;
  candidate: string;
  tiling: ElementwiseTiling;
  status: CandidateStatus;
  reason?: string;
  medianUs?: number;
  samples?: number;
}

/** The fastest exact launch shape of a catalog quantizer at one [rows, cols] (the catalog's when nothing beats it). */
export interface QuantizerWinner {
  kernel: string;
  rows: number;
  cols: number;
  tiling: ElementwiseTiling;
  candidate: string;
  us: number;
  catalogUs: number | null;
}

export interface QuantizerBackend {
  /** null when the candidate equals the reference bit for bit on the property batch; else what differed. */
  check(c: QuantizerCandidate): Promise<string | null>;
  /** Median microseconds of `reps` launches at the shape (throws with a reason on failure). */
  time(c: QuantizerCandidate, shape: WorkloadQuantizer, reps: number): Promise<number>;
  restart(): Promise<void>;
}

export interface QuantizerSweepOptions {
  candidates: QuantizerCandidate[];
  shapes: WorkloadQuantizer[];
  reps: number;
  budgetS: number;
  timeoutS: number;
  previous?: { results: QuantizerResult[]; checks: CheckResult[] };
  now?: () => number;
  progress?: (done: number, total: number, what: string) => void;
  save?: (state: QuantizerSweepState) => void;
}

export interface QuantizerSweepState {
  results: QuantizerResult[];
  checks: CheckResult[];
  winners: QuantizerWinner[];
  complete: boolean;
}

/** What a launch shape lowers to: threads, rows, groups, the registers' minBlocks and the grid's blocks per SM. */
function launchKey(spec: QuantizeSpec, arch: Arch): string {
  const plan = lower(spec, arch);
  if (plan.kind !== 'quantize') throw new Error(`${spec.name}: not a quantize plan`);
  const t = spec.tiling;
  const parts = [t.threadsPerBlock, t.rowsPerBlock, t.groupsPerThread, plan.quantize.minBlocksPerSm, plan.blocksPerSm];
  return parts.join('/');
}

export const quantizerShapeKey = (s: { rows: number; cols: number }) => `${s.rows}x${s.cols}`;

/** The catalog quantizer `kernel` of `arch` (throws when there is none). */
export function catalogQuantizer(arch: Arch, kernel: string): QuantizeSpec {
  const s = catalogFor(arch).find((k) => k.name === kernel);
  if (!s || s.kind !== 'quantize') throw new Error(`no catalog quantizer "${kernel}" on ${arch}`);
  return s;
}

/**
 * The catalog spec first; then its launch shape under every other register budget of the space (minBlocksPerSm:
 * the budget changes occupancy and, where ptxas spills, fails the build, so it is tried beside the shape the catalog
 * chose rather than left to sampling); then `hints` (launch shapes worth retrying, e.g. an earlier table's winners:
 * only those that validate, re-checked and re-timed like any other); then up to `max` other legal launch shapes,
 * spread evenly over the space (the space lists threads outermost: its first points would all share one block size).
 * Points that lower to the same kernel (a budget equal to lowering's estimate) are tried once.
 */
export function quantizerCandidates(
  arch: Arch,
  kernel: string,
  max: number,
  hints: readonly ElementwiseTiling[] = [],
): QuantizerCandidate[] {
  const base = catalogQuantizer(arch, kernel);
  const seen = new Set([launchKey(base, arch)]);
  const fresh = (s: QuantizeSpec) => {
    const key = launchKey(s, arch);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  };
  const space = quantizeSpace(arch, base).candidates;
  const shape = (t: ElementwiseTiling) => tilingLabel({ ...t, minBlocksPerSm: undefined });
  const budgets = space.filter((s) => shape(s.tiling) === shape(base.tiling) && fresh(s));
  const hinted = hints
    .map((tiling) => quantizeWithTiling(base, tiling))
    .filter((s) => buildProblem(s, arch) === null && fresh(s));
  const rest = space.filter((s) => fresh(s));
  const n = Math.min(max, rest.length);
  const others = Array.from({ length: n }, (_, i) => rest[Math.floor((i * rest.length) / n)]);
  return [
    { kernel, spec: base, catalog: true },
    ...[...budgets, ...hinted, ...others].map((spec): QuantizerCandidate => ({ kernel, spec, catalog: false })),
  ];
}

/** The launch shapes a tuning file's quantizer winners chose, per kernel (hints for the next sweep). */
export function winnerTilings(t: Pick<TuningFile, 'quantizerWinners'> | undefined): Map<string, ElementwiseTiling[]> {
  const out = new Map<string, ElementwiseTiling[]>();
  for (const w of t?.quantizerWinners ?? []) {
    const list = out.get(w.kernel) ?? [];
    if (!list.some((x) => tilingLabel(x) === tilingLabel(w.tiling))) list.push(w.tiling);
    out.set(w.kernel, list);
  }
  return out;
}

export async function quantizerSweep(
  o: QuantizerSweepOptions,
  backend: QuantizerBackend,
): Promise<QuantizerSweepState> {
  const now = o.now ?? (() => Date.now() / 1000);
  const start = now();
  const overBudget = () => now() - start > o.budgetS;
  const checks = new Map((o.previous?.checks ?? []).map((c) => [c.candidate, c]));
  const results = new Map<string, QuantizerResult>();
  const id = (r: { kernel: string; shape: string; candidate: string }) => `${r.kernel}|${r.shape}|${r.candidate}`;
  for (const r of o.previous?.results ?? []) if (r.status !== 'skipped') results.set(id(r), r);
  const forShape = (s: WorkloadQuantizer) => o.candidates.filter((c) => c.kernel === s.kernel);
  const total = o.candidates.length + o.shapes.reduce((a, s) => a + forShape(s).length, 0);
  let done = 0;
  const tick = (what: string) => o.progress?.(++done, total, what);
  const state = (complete: boolean): QuantizerSweepState => {
    const list = [...results.values()];
    return { results: list, checks: [...checks.values()], winners: pickQuantizerWinners(list), complete };
  };

  for (const c of o.candidates) {
    tick(`check ${c.spec.name}`);
    if (checks.has(c.spec.name) || overBudget()) continue;
    try {
      const problem = await withTimeout(backend.check(c), o.timeoutS);
      checks.set(
        c.spec.name,
        problem === null
          ? { candidate: c.spec.name, status: 'ok' }
          : { candidate: c.spec.name, status: 'wrong', reason: problem },
      );
    } catch (e) {
      const timedOut = e instanceof Timeout;
      if (timedOut) await backend.restart();
      checks.set(c.spec.name, {
        candidate: c.spec.name,
        status: timedOut ? 'timeout' : 'failed',
        reason: `check: ${message(e)}`,
      });
    }
  }

  let complete = true;
  for (const shape of o.shapes) {
    const key = quantizerShapeKey(shape);
    for (const c of forShape(shape)) {
      tick(`${shape.kernel} ${key} ${c.spec.name}`);
      const base = { kernel: shape.kernel, shape: key, label: shape.label, rows: shape.rows, cols: shape.cols };
      const entry = { ...base, candidate: c.spec.name, tiling: c.spec.tiling };
      if (results.has(id(entry))) continue;
      const record = (r: Partial<QuantizerResult> & { status: CandidateStatus }) =>
        results.set(id(entry), { ...entry, ...r });
      const verdict = checks.get(c.spec.name);
      if (!verdict) {
        record({ status: 'skipped', reason: 'not checked yet (budget)' });
        complete = false;
      } else if (verdict.status !== 'ok') {
        record({ status: verdict.status, reason: verdict.reason });
      } else if (overBudget()) {
        record({ status: 'skipped', reason: 'budget' });
        complete = false;
      } else {
        try {
          const us = await withTimeout(backend.time(c, shape, o.reps), o.timeoutS);
          record({ status: 'ok', medianUs: us, samples: o.reps });
        } catch (e) {
          const timedOut = e instanceof Timeout;
          if (timedOut) await backend.restart();
          record({ status: timedOut ? 'timeout' : 'failed', reason: message(e) });
        }
      }
    }
    o.save?.(state(false));
  }
  const final = state(complete);
  o.save?.(final);
  return final;
}

/**
 * Per (kernel, shape): the catalog candidate (its name has no `__`) unless an ok candidate is strictly faster; only
 * ok results count, so a wrong or failing candidate never wins.
 */
export function pickQuantizerWinners(results: QuantizerResult[]): QuantizerWinner[] {
  const groups = new Map<string, QuantizerResult[]>();
  for (const r of results) groups.set(`${r.kernel}|${r.shape}`, [...(groups.get(`${r.kernel}|${r.shape}`) ?? []), r]);
  const winners: QuantizerWinner[] = [];
  for (const rs of groups.values()) {
    const ok = rs.filter((r) => r.status === 'ok' && r.medianUs !== undefined);
    if (ok.length === 0) continue;
    const catalog = ok.find((r) => r.candidate === r.kernel) ?? null;
    const best = ok.reduce((a, b) => (b.medianUs! < a.medianUs! ? b : a), catalog ?? ok[0]);
    winners.push({
      kernel: best.kernel,
      rows: best.rows,
      cols: best.cols,
      tiling: best.tiling,
      candidate: best.candidate,
      us: best.medianUs!,
      catalogUs: catalog?.medianUs ?? null,
    });
  }
  return winners;
}

/**
 * The launch shape each tuned quantizer takes: per kernel, the winner of its largest shape (rows x cols; the first
 * listed on a tie). One tiling per kernel, since the kernel keeps its catalog name (NUMERICS §6.5: same results).
 */
export function tunedQuantizerTilings(t: TuningFile): Map<string, ElementwiseTiling> {
  const chosen = new Map<string, QuantizerWinner>();
  for (const w of t.quantizerWinners ?? []) {
    const c = chosen.get(w.kernel);
    if (!c || w.rows * w.cols > c.rows * c.cols) chosen.set(w.kernel, w);
  }
  return new Map([...chosen].map(([k, w]) => [k, w.tiling]));
}

/**
 * `specs` with each tuned quantizer's winning tiling (same name, same results), what took one, and the winners for
 * kernels not among `specs` (ignored: the caller warns).
 */
export function applyTunedQuantizers<S extends KernelSpec>(
  specs: S[],
  t: TuningFile | undefined,
): { specs: S[]; applied: string[]; ignored: string[] } {
  if (!t) return { specs, applied: [], ignored: [] };
  const tilings = tunedQuantizerTilings(t);
  const applied: string[] = [];
  const out = specs.map((s) => {
    const tiling = s.kind === 'quantize' ? tilings.get(s.name) : undefined;
    if (!tiling || s.kind !== 'quantize') return s;
    applied.push(
      `${s.name} (threads ${tiling.threadsPerBlock}, rows ${tiling.rowsPerBlock}, groups ${tiling.groupsPerThread}` +
        `${tiling.minBlocksPerSm === undefined ? '' : `, registers for ${tiling.minBlocksPerSm} blocks per SM`})`,
    );
    return { ...s, tiling: { ...tiling } };
  });
  const names = new Set(specs.map((s) => s.name));
  const ignored = [...tilings.keys()].filter((k) => !names.has(k)).sort();
  return { specs: out, applied, ignored };
}

/** The stderr lines of a consumer (emit/vendor) that applied a tuning file's quantizer tilings. */
export function tunedQuantizerLines(r: { applied: string[]; ignored: string[] }, what: string): string[] {
  return [
    ...r.applied.map((a) => `qgen: tuned quantizer tiling: ${a}`),
    ...r.ignored.map((k) => `qgen: warning: the tuning file's quantizer winner for ${k} is ignored: not in ${what}`),
  ];
}
