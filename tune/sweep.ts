// The sweep of `qgen tune`, independent of the GPU: a backend checks and times candidates (harness/gpu/tune.ts on the
// device; a fake in test/tune-sweep.test.ts). Order of work:
//   1. check every candidate once against the TypeScript reference (backend.check): a wrong, failing or hung
//      candidate is recorded on every shape with its reason and never timed, so it can never win;
//   2. time every (shape, checked candidate) pair: median of `reps` launches (the runner rotates buffers past the
//      L2); a failing or hung launch is recorded and the sweep goes on; past the budget, the rest is 'skipped';
//   3. per shape, the finalists within 10% of the best (at least the best) are re-timed interleaved with cuBLAS bf16
//      (rounds of one launch set each; the report's ratio to cuBLAS comes from these rounds: the GPU's clock drifts by
//      10-20% between a shape's first timings, bench/NOTES.md);
//   4. per shape class (tune/tuning.ts shapeClass) the winner is the candidate with the least total time over the
//      class's shapes, among those timed on all of them.
// Resumable: results of an earlier run (same cache key) are kept; only 'skipped' pairs and unchecked candidates run.
import type { GemmTiling } from '../dsl/types.ts';
import type { GemmStrategy } from '../dsl/tunables.ts';
import type { WorkloadGemm } from '../dsl/workloads.ts';
import { mBucket, shapeClass, type CandidateResult, type TuningWinner } from './tuning.ts';

export interface Candidate {
  name: string;
  strategy: GemmStrategy;
  tiling: GemmTiling | null;
}
export interface CheckResult {
  candidate: string;
  status: 'ok' | 'wrong' | 'failed' | 'timeout';
  reason?: string;
}

export interface SweepBackend {
  /** null when the candidate agrees with the reference on the property batch; else what is wrong. */
  check(c: Candidate): Promise<string | null>;
  /** Median time in microseconds of `reps` launches of `c` on `shape` (throws with a reason on failure). */
  time(c: Candidate, shape: WorkloadGemm, reps: number): Promise<number>;
  /** cuBLAS bf16 on the same shape (the report's reference), microseconds. */
  baseline(shape: WorkloadGemm, reps: number): Promise<number>;
  /** After a timeout: the backend is restarted (a hung kernel leaves the runner unusable). */
  restart(): Promise<void>;
}

export interface SweepOptions {
  candidates: Candidate[];
  shapes: WorkloadGemm[];
  reps: number;
  /** Seconds; past it, the remaining pairs are recorded 'skipped' (a rerun resumes them). */
  budgetS: number;
  /** Per check or timing call, seconds. */
  timeoutS: number;
  /** Interleaved rounds for the finalists. */
  retimeRounds?: number;
  previous?: {
    candidates: CandidateResult[];
    checks: CheckResult[];
    baselines: Record<string, number>;
    interleavedBaselines?: Record<string, number>;
  };
  now?: () => number;
  progress?: (done: number, total: number, what: string) => void;
  /** Called after each shape with the state so far (the caller writes the file: a killed run keeps its work). */
  save?: (state: SweepState) => void;
}

export interface SweepState {
  candidates: CandidateResult[];
  checks: CheckResult[];
  /** cuBLAS bf16 per shape, first timing (before the candidates). */
  baselines: Record<string, number>;
  /** cuBLAS bf16 per shape, median of the rounds interleaved with the finalists (what ratios use). */
  interleavedBaselines: Record<string, number>;
  winners: TuningWinner[];
  complete: boolean;
}

export class Timeout extends Error {}

/** `p`, or a Timeout after `seconds`. */
export async function withTimeout<T>(p: Promise<T>, seconds: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Timeout(`no answer in ${seconds} s`)), seconds * 1000);
  });
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

const shapeKey = (s: WorkloadGemm) => `${s.m}x${s.n}x${s.k}`;
export const message = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n')[0].slice(0, 300);

export async function sweep(o: SweepOptions, backend: SweepBackend): Promise<SweepState> {
  const now = o.now ?? (() => Date.now() / 1000);
  const start = now();
  const reps = o.reps;
  const checks = new Map((o.previous?.checks ?? []).map((c) => [c.candidate, c]));
  const baselines: Record<string, number> = { ...(o.previous?.baselines ?? {}) };
  const interleaved: Record<string, number> = { ...(o.previous?.interleavedBaselines ?? {}) };
  const results = new Map<string, CandidateResult>();
  for (const r of o.previous?.candidates ?? []) if (r.status !== 'skipped') results.set(`${r.shape}|${r.candidate}`, r);
  const total = o.candidates.length * (1 + o.shapes.length);
  let done = 0;
  const tick = (what: string) => {
    done++;
    o.progress?.(done, total, what);
  };
  const overBudget = () => now() - start > o.budgetS;

  // 1. Checks.
  for (const c of o.candidates) {
    if (!checks.has(c.name)) {
      if (overBudget()) {
        tick(`check ${c.name} (budget)`);
        continue;
      }
      try {
        const problem = await withTimeout(backend.check(c), o.timeoutS);
        checks.set(
          c.name,
          problem === null
            ? { candidate: c.name, status: 'ok' }
            : { candidate: c.name, status: 'wrong', reason: problem },
        );
      } catch (e) {
        const timedOut = e instanceof Timeout;
        if (timedOut) await backend.restart();
        checks.set(c.name, {
          candidate: c.name,
          status: timedOut ? 'timeout' : 'failed',
          reason: `check: ${message(e)}`,
        });
      }
    }
    tick(`check ${c.name}`);
  }

  const state = (complete: boolean): SweepState => {
    const list = [...results.values()];
    return {
      candidates: list,
      checks: [...checks.values()],
      baselines,
      interleavedBaselines: interleaved,
      winners: pickWinners(o.shapes, list, { ...baselines, ...interleaved }),
      complete,
    };
  };

  // 2-3. Timing, shape by shape.
  let complete = true;
  for (const shape of o.shapes) {
    const key = shapeKey(shape);
    const record = (c: Candidate, r: Partial<CandidateResult> & { status: CandidateResult['status'] }) => {
      results.set(`${key}|${c.name}`, {
        shape: key,
        label: shape.label,
        m: shape.m,
        n: shape.n,
        k: shape.k,
        candidate: c.name,
        strategy: c.strategy,
        tiling: c.tiling,
        ...r,
      });
    };
    if (baselines[key] === undefined && !overBudget()) {
      try {
        baselines[key] = await withTimeout(backend.baseline(shape, reps), o.timeoutS);
      } catch (e) {
        if (e instanceof Timeout) await backend.restart();
      }
    }
    for (const c of o.candidates) {
      tick(`${key} ${c.name}`);
      if (results.has(`${key}|${c.name}`)) continue;
      const verdict = checks.get(c.name);
      if (!verdict) {
        record(c, { status: 'skipped', reason: 'not checked yet (budget)' });
        complete = false;
        continue;
      }
      if (verdict.status !== 'ok') {
        record(c, { status: verdict.status === 'timeout' ? 'timeout' : verdict.status, reason: verdict.reason });
        continue;
      }
      if (overBudget()) {
        record(c, { status: 'skipped', reason: 'budget' });
        complete = false;
        continue;
      }
      try {
        const us = await withTimeout(backend.time(c, shape, reps), o.timeoutS);
        record(c, { status: 'ok', medianUs: us, samples: reps });
      } catch (e) {
        const timedOut = e instanceof Timeout;
        if (timedOut) await backend.restart();
        record(c, { status: timedOut ? 'timeout' : 'failed', reason: message(e) });
      }
    }
    // Finalists within 10% of the best (the best at least) and cuBLAS bf16, re-timed interleaved (unless an earlier
    // run did it).
    const ok = o.candidates
      .map((c) => results.get(`${key}|${c.name}`))
      .filter((r): r is CandidateResult => r?.status === 'ok');
    const best = Math.min(...ok.map((r) => r.medianUs!));
    const finalists = ok.filter((r) => r.medianUs! <= best * 1.1);
    const pending = finalists.some((r) => r.retimedUs === undefined) || interleaved[key] === undefined;
    if (finalists.length > 0 && pending && !overBudget()) {
      const rounds = o.retimeRounds ?? 5;
      const roundReps = Math.max(3, reps >> 1);
      const samples = new Map<string, number[]>(finalists.map((r) => [r.candidate, []]));
      const cublas: number[] = [];
      for (let i = 0; i < rounds; i++) {
        try {
          cublas.push(await withTimeout(backend.baseline(shape, roundReps), o.timeoutS));
        } catch (e) {
          if (e instanceof Timeout) await backend.restart();
        }
        for (const r of finalists) {
          const c = o.candidates.find((x) => x.name === r.candidate)!;
          try {
            samples.get(r.candidate)!.push(await withTimeout(backend.time(c, shape, roundReps), o.timeoutS));
          } catch (e) {
            if (e instanceof Timeout) await backend.restart();
          }
        }
      }
      const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
      for (const r of finalists) {
        const xs = samples.get(r.candidate)!;
        if (xs.length) r.retimedUs = median(xs);
      }
      if (cublas.length) interleaved[key] = median(cublas);
    }
    o.save?.(state(false));
  }
  const final = state(complete && [...checks.values()].length === o.candidates.length);
  o.save?.(final);
  return final;
}

/** The time a result counts with: the interleaved re-timing where there was one. */
export function resultUs(r: CandidateResult): number {
  return r.retimedUs ?? r.medianUs!;
}

/** Per shape class: the candidate with the least total time over the class's shapes, among those ok on all of them. */
export function pickWinners(
  shapes: WorkloadGemm[],
  results: CandidateResult[],
  baselines: Record<string, number> = {},
): TuningWinner[] {
  const classes = new Map<string, WorkloadGemm[]>();
  for (const s of shapes) {
    const c = shapeClass(s.m, s.n, s.k);
    const list = classes.get(c) ?? [];
    if (!list.some((x) => shapeKey(x) === shapeKey(s))) list.push(s);
    classes.set(c, list);
  }
  const winners: TuningWinner[] = [];
  for (const [cls, members] of classes) {
    const keys = members.map(shapeKey);
    const byCandidate = new Map<string, CandidateResult[]>();
    for (const r of results) {
      if (r.status !== 'ok' || !keys.includes(r.shape)) continue;
      byCandidate.set(r.candidate, [...(byCandidate.get(r.candidate) ?? []), r]);
    }
    const full = [...byCandidate.entries()].filter(([, rs]) => rs.length === keys.length);
    if (full.length === 0) continue;
    const total = (rs: CandidateResult[]) => rs.reduce((a, r) => a + resultUs(r), 0);
    const [name, rs] = full.reduce((a, b) => (total(b[1]) < total(a[1]) ? b : a));
    const twoPass = full.find(([, x]) => x[0].strategy === 'two-pass');
    const [mMin, mMax] = mBucket(members[0].m);
    winners.push({
      shape: cls,
      mMin,
      mMax,
      n: members[0].n,
      k: members[0].k,
      strategy: rs[0].strategy,
      tiling: rs[0].tiling,
      candidate: name,
      us: total(rs),
      twoPassUs: twoPass ? total(twoPass[1]) : null,
      cublasBf16Us: keys.every((k) => baselines[k] !== undefined) ? keys.reduce((a, k) => a + baselines[k], 0) : null,
    });
  }
  return winners;
}
