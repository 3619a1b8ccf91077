// The sweep of qgen tune against a fake backend: a wrong candidate is recorded and never wins even when it is the
// fastest, a hung one is timed out (the backend restarted) and the sweep goes on, the budget leaves 'skipped' pairs
// that a rerun (resume) finishes without re-timing what was done, finalists are re-timed, winners per shape class.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { WorkloadGemm } from '../dsl/workloads.ts';
import { sweep, type Candidate, type SweepBackend } from '../tune/sweep.ts';
import { tuneMarkdown, tuneSvg } from '../tune/report.ts';
import { TUNING_FORMAT } from '../tune/tuning.ts';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runnerSources } from '../harness/gpu/build.ts';
import { compileFailureReason } from '../harness/gpu/tune.ts';
import { compileCuda } from '../harness/nvcc.ts';
import { repoRoot } from '../harness/gpu/results.ts';
import { fusedCandidates, treeCommit } from '../harness/gpu/tune.ts';
import { catalogFor } from '../dsl/catalog.ts';
import type { GemmSpec } from '../dsl/types.ts';

const shapes: WorkloadGemm[] = [
  { label: 'a', m: 16384, n: 4096, k: 4096 },
  { label: 'b', m: 32768, n: 4096, k: 4096 },
  { label: 'c', m: 64, n: 8192, k: 8192 },
];
const cands: Candidate[] = [
  { name: 'two-pass', strategy: 'two-pass', tiling: null },
  {
    name: 'fast-but-wrong',
    strategy: 'fused',
    tiling: { ctaTile: [64, 64, 128], consumers: 1, stages: 6, cluster: [1, 1], tileOrder: 'swizzle-8' },
  },
  {
    name: 'hangs',
    strategy: 'fused',
    tiling: { ctaTile: [64, 32, 256], consumers: 1, stages: 4, cluster: [1, 1], tileOrder: 'swizzle-8' },
  },
  {
    name: 'fused',
    strategy: 'fused',
    tiling: { ctaTile: [128, 128, 128], consumers: 2, stages: 6, cluster: [1, 1], tileOrder: 'swizzle-8' },
  },
];

function fake(clock: { t: number }) {
  const calls: string[] = [];
  let restarts = 0;
  const cost: Record<string, (s: WorkloadGemm) => number> = {
    'two-pass': (s) => (s.m <= 64 ? 130 : s.m / 100),
    'fast-but-wrong': () => 1,
    hangs: () => 5,
    fused: (s) => (s.m <= 64 ? 88 : s.m / 50),
  };
  const backend: SweepBackend = {
    async check(c) {
      clock.t += 1;
      calls.push(`check ${c.name}`);
      return c.name === 'fast-but-wrong' ? '3 of 10 elements outside the bound' : null;
    },
    async time(c, s) {
      clock.t += 1;
      calls.push(`time ${c.name} ${s.m}`);
      if (c.name === 'hangs') return new Promise<number>(() => {});
      return cost[c.name](s);
    },
    async baseline(s) {
      return s.m / 100;
    },
    async restart() {
      restarts++;
    },
  };
  return { backend, calls, restarts: () => restarts };
}

test('sweep: wrong never wins, hung is timed out, winners per class, resume finishes only what was skipped', async () => {
  const clock = { t: 0 };
  const f = fake(clock);
  // Budget 8 "seconds" of the fake clock: the checks (4) and a few timings fit, the rest is skipped.
  const first = await sweep(
    { candidates: cands, shapes, reps: 5, budgetS: 8, timeoutS: 0.05, now: () => clock.t },
    f.backend,
  );
  assert.is(first.complete, false);
  const wrong = first.candidates.filter((r) => r.candidate === 'fast-but-wrong');
  assert.ok(wrong.length === 3 && wrong.every((r) => r.status === 'wrong' && /outside the bound/.test(r.reason!)));
  assert.ok(first.candidates.some((r) => r.status === 'skipped'));
  assert.ok(!f.calls.some((c) => c.startsWith('time fast-but-wrong')), 'a wrong candidate is never timed');

  const g = fake({ t: 0 });
  const clock2 = { t: 0 };
  g.backend.time = ((orig) => async (c: Candidate, s: WorkloadGemm, r: number) => {
    clock2.t += 1;
    return orig(c, s, r);
  })(g.backend.time);
  const second = await sweep(
    {
      candidates: cands,
      shapes,
      reps: 5,
      budgetS: 1000,
      timeoutS: 0.05,
      now: () => clock2.t,
      previous: { candidates: first.candidates, checks: first.checks, baselines: first.baselines },
    },
    g.backend,
  );
  assert.is(second.complete, true);
  assert.not.ok(
    g.calls.some((c) => c.startsWith('check')),
    'checks are not repeated',
  );
  const timedBefore = first.candidates.filter((r) => r.status === 'ok');
  assert.ok(timedBefore.length > 0, 'the first run timed something');
  for (const r of timedBefore) {
    const again = second.candidates.find((x) => x.shape === r.shape && x.candidate === r.candidate)!;
    assert.is(again.medianUs, r.medianUs, `${r.shape} ${r.candidate} kept from the first run`);
  }
  const skippedBefore = first.candidates.filter((r) => r.status === 'skipped' && r.candidate !== 'hangs').length;
  assert.is(g.calls.filter((c) => c.startsWith('time') && !c.startsWith('time hangs')).length >= skippedBefore, true);
  assert.ok(second.candidates.every((r) => r.status !== 'skipped'));
  assert.ok(second.candidates.filter((r) => r.candidate === 'hangs').every((r) => r.status === 'timeout'));
  assert.ok(g.restarts() + f.restarts() >= 1, 'the backend was restarted after the hang');
  const byClass = Object.fromEntries(second.winners.map((w) => [w.shape, w]));
  assert.is(byClass['m4097-inf_n4096_k4096'].strategy, 'two-pass');
  assert.is(byClass['m4097-inf_n4096_k4096'].us, 163.84 + 327.68);
  assert.is(byClass['m4097-inf_n4096_k4096'].cublasBf16Us, 163.84 + 327.68);
  assert.is(byClass['m1-64_n8192_k8192'].candidate, 'fused');
  assert.is(second.winners.length, 2);
  assert.ok(second.winners.every((w) => w.candidate !== 'fast-but-wrong' && w.candidate !== 'hangs'));
});

test('report: provenance first line, a row per shape and class, a bar per series and shape', async () => {
  const clock = { t: 0 };
  const state = await sweep(
    {
      candidates: cands.filter((c) => c.name !== 'hangs'),
      shapes,
      reps: 5,
      budgetS: 1000,
      timeoutS: 1,
      now: () => clock.t,
    },
    fake(clock).backend,
  );
  const file = {
    format: TUNING_FORMAT as typeof TUNING_FORMAT,
    arch: 'sm_90a' as const,
    workload: 'test',
    provenance: { format: 'qgen-provenance/1', commit: 'c'.repeat(40), command: ['qgen', 'tune', '--arch', 'x---y'] },
    cacheKey: {
      sourceHash: 's',
      configSpaceHash: 'h',
      gpu: 'GPU X',
      smCount: 1,
      driver: 'd',
      cuda: 'c',
      qgenVersion: 'v',
    },
    candidates: state.candidates,
    winners: state.winners,
    baselines: state.baselines,
  };
  const md = tuneMarkdown(file).split('\n');
  assert.match(md[0], /^<!-- qgen-provenance\/1 \{"format":"qgen-provenance\/1"/);
  for (const s of shapes)
    assert.ok(
      md.some((l) => l.startsWith(`| ${s.m}x${s.n}x${s.k} |`)),
      `row for ${s.m}x${s.n}x${s.k}`,
    );
  assert.ok(md.some((l) => l.startsWith('| m4097-inf_n4096_k4096 | two-pass | two-pass |')));
  assert.ok(md.some((l) => l.startsWith('| fast-but-wrong | wrong | 3 of 10 elements outside the bound')));
  const svg = tuneSvg(file);
  assert.match(svg, /^<!-- qgen-provenance\/1 \{.*\} -->\n<svg [^>]*>[\s\S]*<\/svg>\n$/);
  const comment = /^<!-- qgen-provenance\/1 (\{.*\}) -->/.exec(svg)![1];
  assert.not.ok(comment.includes('--'), 'no "--" inside an XML comment (the SVG would not parse)');
  assert.equal(JSON.parse(comment), file.provenance, 'the escaped dashes read back as the same command');
  assert.equal(JSON.parse(/^<!-- qgen-provenance\/1 (\{.*\}) -->/.exec(md[0])![1]), file.provenance);
  assert.is((svg.match(/<rect /g) ?? []).length, 4 * shapes.length + 4);
});

test('sweep: finalists within 10% are re-timed interleaved', async () => {
  const order: string[] = [];
  const backend: SweepBackend = {
    async check() {
      return null;
    },
    async time(c) {
      order.push(c.name);
      return c.name === 'a' ? 100 : c.name === 'b' ? 105 : 200;
    },
    async baseline() {
      return 90;
    },
    async restart() {},
  };
  const cs: Candidate[] = ['a', 'b', 'c'].map((name) => ({
    name,
    strategy: 'fused' as const,
    tiling: cands[3].tiling,
  }));
  const s = await sweep(
    { candidates: cs, shapes: [shapes[0]], reps: 4, budgetS: 100, timeoutS: 1, retimeRounds: 3 },
    backend,
  );
  assert.equal(order, ['a', 'b', 'c', 'a', 'b', 'a', 'b', 'a', 'b']);
  assert.equal(
    s.candidates.map((r) => r.retimedUs),
    [100, 105, undefined],
  );
});

// At 4e03bc1 and 2c4538a the same shape's cuBLAS bf16 time moved by 8% and its two-pass time by 14% between two sweeps
// an hour apart: a ratio of timings taken minutes apart in one sweep carries the clock's drift. The winner and cuBLAS
// are now re-timed in the same interleaved rounds, and the ratio uses those rounds.
test('sweep: cuBLAS bf16 is re-timed interleaved with the finalists, and the winners use those rounds', async () => {
  const order: string[] = [];
  let calls = 0;
  const drift = () => 1 + 0.1 * calls++; // every launch set is 10% slower than the one before
  const backend: SweepBackend = {
    async check() {
      return null;
    },
    async time(c) {
      order.push(c.name);
      return (c.name === 'a' ? 100 : 300) * drift();
    },
    async baseline() {
      order.push('cublas');
      return 90 * drift();
    },
    async restart() {},
  };
  const cs: Candidate[] = ['a', 'slow'].map((name) => ({ name, strategy: 'fused' as const, tiling: cands[3].tiling }));
  const s = await sweep(
    { candidates: cs, shapes: [shapes[0]], reps: 4, budgetS: 100, timeoutS: 1, retimeRounds: 3 },
    backend,
  );
  // first timings, then rounds of (cuBLAS, the one finalist)
  assert.equal(order, ['cublas', 'a', 'slow', 'cublas', 'a', 'cublas', 'a', 'cublas', 'a']);
  const key = '16384x4096x4096';
  assert.is(s.baselines[key], 90);
  assert.is(s.interleavedBaselines[key], 90 * (1 + 0.1 * 5)); // median of the rounds' calls 3, 5, 7
  const a = s.candidates.find((r) => r.candidate === 'a')!;
  assert.is(a.retimedUs, 100 * (1 + 0.1 * 6));
  const w = s.winners[0];
  assert.is(w.candidate, 'a');
  assert.is(w.cublasBf16Us, s.interleavedBaselines[key], 'the ratio uses the interleaved cuBLAS time');
  assert.ok(Math.abs(w.cublasBf16Us! / w.us - (90 * 1.5) / (100 * 1.6)) < 1e-12);
  // resumed with those results: nothing is timed again
  order.length = 0;
  const again = await sweep(
    {
      candidates: cs,
      shapes: [shapes[0]],
      reps: 4,
      budgetS: 100,
      timeoutS: 1,
      retimeRounds: 3,
      previous: {
        candidates: s.candidates,
        checks: s.checks,
        baselines: s.baselines,
        interleavedBaselines: s.interleavedBaselines,
      },
    },
    backend,
  );
  assert.equal(order, []);
  assert.equal(again.interleavedBaselines, s.interleavedBaselines);
});

// The tune runner once linked runner.cu + baselines.cu without degraded_gemm.cu (baselines.cu's table names its
// function): the first H100 sweep (5fdbc6c) failed at the link. Both runners now take runnerSources().
test('runner sources: every translation unit of harness/runner/ is linked into the test and the tune runner', () => {
  const dir = path.join(repoRoot, 'harness/runner');
  const units = readdirSync(dir)
    .filter((f) => f.endsWith('.cu'))
    .map((f) => path.join(dir, f))
    .sort();
  const linked = runnerSources('/w')
    .filter((f) => f.startsWith(dir))
    .sort();
  assert.equal(linked, units);
  assert.ok(runnerSources('/w').includes(path.join('/w', 'dispatch.cu')));
  assert.match(readFileSync(path.join(repoRoot, 'harness/gpu/tune.ts'), 'utf8'), /runnerSources\(workDir\)/);
});
test('tune records the commit of the tree that ran: QGEN_COMMIT, else the bundle, else zeros', () => {
  const saved = { c: process.env.QGEN_COMMIT, d: process.env.QGEN_DIRTY };
  delete process.env.QGEN_COMMIT;
  delete process.env.QGEN_DIRTY;
  try {
    const bare = mkdtempSync(path.join(os.tmpdir(), 'qgen-tune-prov-'));
    assert.equal(treeCommit(bare, true), { commit: '0'.repeat(40), dirty: false });
    mkdirSync(path.join(bare, '.device'));
    const bundled = 'ab'.repeat(20);
    writeFileSync(path.join(bare, '.device/provenance.json'), JSON.stringify({ commit: bundled, dirty: true }));
    assert.equal(treeCommit(bare, true), { commit: bundled, dirty: true }, 'run from the bundle: its commit');
    // not run from the bundle (a checkout): a leftover bundle file is never taken for the tree's commit
    assert.equal(treeCommit(bare, false), { commit: '0'.repeat(40), dirty: false });
    assert.equal(treeCommit(repoRoot, false).commit.length, 40);
    process.env.QGEN_COMMIT = 'cd'.repeat(20);
    assert.equal(treeCommit(bare, true), { commit: 'cd'.repeat(20), dirty: false });
  } finally {
    if (saved.c === undefined) delete process.env.QGEN_COMMIT;
    else process.env.QGEN_COMMIT = saved.c;
    if (saved.d === undefined) delete process.env.QGEN_DIRTY;
    else process.env.QGEN_DIRTY = saved.d;
  }
});
test('tune --max-candidates N takes the catalog tilings first, in the catalog order (large tiles before skinny)', () => {
  const catalog = catalogFor('sm_90a')
    .filter((s): s is GemmSpec => s.kind === 'gemm' && s.output === 'bf16')
    .map((s) => JSON.stringify(s.tiling));
  const picked = fusedCandidates('sm_90a', 3).map((s) => JSON.stringify(s.tiling));
  assert.equal(picked, catalog.slice(0, 3));
  assert.match(picked[0], /"ctaTile":\[128,128,/);
  const every = fusedCandidates('sm_90a');
  assert.is(new Set(every.map((s) => JSON.stringify(s.tiling))).size, every.length, 'no tiling twice');
});
// A kernel that cannot meet its register budget (1024 threads x 2 blocks: 32 registers) and one that does not parse,
// compiled by nvcc with qgen's flags: the reason names the spill or the error, never the command line.
test('a candidate that fails to compile: one line naming the spill or the error', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qgen-compile-reason-'));
  const spilling = path.join(dir, 'spill.cu');
  writeFileSync(
    spilling,
    [
      'namespace demo_impl {',
      '__global__ void __launch_bounds__(1024, 2) pass_a(const float* in, float* out) {',
      '  float v[64];',
      '#pragma unroll',
      '  for (int i = 0; i < 64; ++i) v[i] = in[threadIdx.x + 1024 * i];',
      '  float s = 0.f;',
      '#pragma unroll',
      '  for (int i = 0; i < 64; ++i) s += v[i] * v[63 - i] / (v[(i * 7) & 63] + 1.f);',
      '#pragma unroll',
      '  for (int i = 0; i < 64; ++i) out[threadIdx.x + 1024 * i] = v[i] * s;',
      '}',
      '}  // namespace demo_impl',
      '',
    ].join('\n'),
  );
  const broken = path.join(dir, 'broken.cu');
  writeFileSync(broken, '__global__ void k() { undeclared_name = 1; }\n');
  const reason = async (source: string) => {
    try {
      await compileCuda({ sources: [source], arch: 'sm_90a', out: `${source}.o`, cacheDir: null });
    } catch (e) {
      return compileFailureReason(e);
    }
    return 'compiled';
  };
  const spill = await reason(spilling);
  assert.match(spill, /^compile: pass_a \d+ bytes spill stores and \d+ bytes spill loads \(the register budget/);
  const error = await reason(broken);
  assert.match(error, /^compile: .*error.*undeclared_name/);
  for (const r of [spill, error]) assert.not.match(r, /-warn-spills|all-warnings/);
});

test.run();
