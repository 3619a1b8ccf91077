// The quantizer sweep of qgen tune against a fake backend (a wrong candidate never wins even when it is the fastest,
// the catalog tiling keeps a shape unless beaten, budget and resume), the tuning file's quantizer winners (old files
// without them load; a broken entry is refused with its field path) and their consumers (emit/vendor --tuning emit
// each tuned quantizer under its catalog name with the file's tiling, deterministically).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { WorkloadQuantizer } from '../dsl/workloads.ts';
import type { ElementwiseTiling } from '../dsl/types.ts';
import {
  applyTunedQuantizers,
  catalogQuantizer,
  quantizerCandidates,
  quantizerSweep,
  winnerTilings,
  type QuantizerBackend,
  type QuantizerCandidate,
} from '../tune/quantizers.ts';
import { TUNING_FORMAT, readTuningFile, tuningProblems, type TuningFile } from '../tune/tuning.ts';
import { tuneMarkdown } from '../tune/report.ts';
import { buildProblem, configSpaceHash } from '../validate/space.ts';
import { catalogFor } from '../dsl/catalog.ts';
import { elementwiseTilingPoints, tilingLabel } from '../dsl/tunables.ts';
import { lower } from '../lower/lower.ts';
import { vendoredKernelNames } from '../dsl/recipes.ts';
import { main } from '../cli/main.ts';
import { vendor } from '../emit/vendor.ts';
import type { Manifest } from '../emit/emit.ts';

const ARCH = 'sm_90a';
const KERNEL = 'quartet2_x_46';
const TMP = mkdtempSync(path.join(os.tmpdir(), 'qgen-tune-quantizers-'));
const shapes: WorkloadQuantizer[] = [
  { label: 'X 16k', kernel: KERNEL, rows: 16384, cols: 4096 },
  { label: 'X 4k', kernel: KERNEL, rows: 4096, cols: 4096 },
];

function fake(cands: QuantizerCandidate[], clock: { t: number }, wrong: string, fastest: string) {
  const calls: string[] = [];
  const backend: QuantizerBackend = {
    async check(c) {
      clock.t += 1;
      calls.push(`check ${c.spec.name}`);
      return c.spec.name === wrong ? 'codes: first difference at byte 17' : null;
    },
    async time(c, s) {
      clock.t += 1;
      calls.push(`time ${c.spec.name} ${s.rows}`);
      // The wrong one is the fastest of all; `fastest` the fastest correct one; the catalog in between.
      const i = cands.indexOf(c);
      const base = c.spec.name === wrong ? 1 : c.spec.name === fastest ? 5 : c.catalog ? 8 : 10 + i;
      return (base * s.rows) / 4096;
    },
    async restart() {},
  };
  return { backend, calls };
}

test('quantizer candidates: the catalog spec first, then legal launch shapes of the space, each validating', () => {
  const cands = quantizerCandidates(ARCH, KERNEL, 4);
  // 4/6's catalog launch (256 threads) lowers to 4 blocks per SM (64 registers); under the other budgets that leave
  // >= 64 registers (2 and 3 blocks) it is tried again, then 4 samples
  assert.equal(
    cands.slice(1, 3).map((c) => c.spec.name),
    [`${KERNEL}__t256_r16_g2_b2`, `${KERNEL}__t256_r16_g2_b3`],
  );
  assert.is(cands.length, 1 + 2 + 4);
  assert.ok(cands[0].catalog && cands[0].spec.name === KERNEL);
  assert.equal(cands[0].spec.tiling, catalogQuantizer(ARCH, KERNEL).tiling);
  for (const c of cands.slice(1)) {
    assert.ok(!c.catalog && c.spec.name.startsWith(`${KERNEL}__`), c.spec.name);
    assert.not.equal(c.spec.tiling, cands[0].spec.tiling);
    assert.is(buildProblem(c.spec, ARCH), null, c.spec.name);
  }
  assert.is(new Set(cands.map((c) => c.spec.name)).size, cands.length);
});

test('quantizer candidates: the catalog shape under the other register budgets, hints, then samples; no twins', () => {
  const kernel = 'quartet2_et_mseden_rht128_dqplane';
  const base = catalogQuantizer(ARCH, kernel);
  assert.is(base.tiling.minBlocksPerSm, 6);
  const good = { threadsPerBlock: 256, rowsPerBlock: 4, groupsPerThread: 1, minBlocksPerSm: 4 };
  const hints = [
    { ...base.tiling }, // the catalog itself: not again
    { threadsPerBlock: 100, rowsPerBlock: 4, groupsPerThread: 2 }, // not whole warps: dropped
    good,
  ];
  const cands = quantizerCandidates(ARCH, kernel, 3, hints);
  const labels = cands.slice(1).map((c) => c.spec.name.slice(kernel.length + 2));
  // 128 x 8 blocks: 64 registers; 128 x 4 is the estimate the unbudgeted point lowers to (one of them only)
  assert.equal(labels.slice(0, 5), [
    't128_r16_g2',
    't128_r16_g2_b2',
    't128_r16_g2_b3',
    't128_r16_g2_b8',
    't256_r4_g1_b4',
  ]);
  assert.is(labels.length, 8);
  for (const c of cands) assert.is(buildProblem(c.spec, ARCH), null, c.spec.name);
  const kernels = cands.map((c) => {
    const plan = lower(c.spec, ARCH);
    if (plan.kind !== 'quantize') throw new Error('not a quantizer');
    const t = c.spec.tiling;
    return [
      t.threadsPerBlock,
      t.rowsPerBlock,
      t.groupsPerThread,
      plan.quantize.minBlocksPerSm,
      plan.blocksPerSm,
    ].join();
  });
  assert.is(new Set(kernels).size, kernels.length, kernels.join(' | '));
});

test('register budgets in the space: never under 64 registers per thread; every point named by its label', () => {
  const points = elementwiseTilingPoints();
  assert.ok(points.some((p) => p.minBlocksPerSm === undefined));
  assert.ok(points.some((p) => p.minBlocksPerSm === 8 && p.threadsPerBlock === 128));
  assert.ok(points.some((p) => p.minBlocksPerSm === 2 && p.threadsPerBlock === 512));
  for (const p of points)
    if (p.minBlocksPerSm !== undefined)
      assert.ok(65536 / (p.threadsPerBlock * p.minBlocksPerSm) >= 64, JSON.stringify(p));
  assert.not.ok(points.some((p) => p.threadsPerBlock === 256 && p.minBlocksPerSm === 8));
  assert.is(
    tilingLabel({ threadsPerBlock: 128, rowsPerBlock: 16, groupsPerThread: 2, minBlocksPerSm: 8 }),
    't128_r16_g2_b8',
  );
  assert.is(tilingLabel({ threadsPerBlock: 512, rowsPerBlock: 1, groupsPerThread: 2 }), 't512_r1_g2');
});

test("winnerTilings: one list per kernel, each launch shape once; a missing file's winners are none", () => {
  const t: ElementwiseTiling = { threadsPerBlock: 512, rowsPerBlock: 1, groupsPerThread: 2 };
  const w = (kernel: string, rows: number, tiling = t) => ({
    kernel,
    rows,
    cols: 4096,
    tiling,
    candidate: 'c',
    us: 1,
    catalogUs: 2,
  });
  const m = winnerTilings({
    quantizerWinners: [w(KERNEL, 4096), w(KERNEL, 16384), w(KERNEL, 1, { ...t, minBlocksPerSm: 2 }), w('other', 4096)],
  });
  assert.equal(m.get(KERNEL), [t, { ...t, minBlocksPerSm: 2 }]);
  assert.equal(m.get('other'), [t]);
  assert.is(winnerTilings(undefined).size, 0);
});

test('quantizer sweep: a wrong candidate never wins though fastest; the fastest exact one does', async () => {
  const cands = quantizerCandidates(ARCH, KERNEL, 3);
  const clock = { t: 0 };
  const f = fake(cands, clock, cands[1].spec.name, cands[2].spec.name);
  const s = await quantizerSweep(
    { candidates: cands, shapes, reps: 5, budgetS: 1000, timeoutS: 10, now: () => clock.t },
    f.backend,
  );
  assert.ok(s.complete);
  assert.is(s.winners.length, 2);
  for (const w of s.winners) {
    assert.is(w.candidate, cands[2].spec.name);
    assert.equal(w.tiling, cands[2].spec.tiling);
    assert.is(w.catalogUs, (8 * w.rows) / 4096);
    assert.is(w.us, (5 * w.rows) / 4096);
  }
  const wrong = s.results.filter((r) => r.candidate === cands[1].spec.name);
  assert.is(wrong.length, 2);
  assert.ok(wrong.every((r) => r.status === 'wrong' && /first difference/.test(r.reason!)));
  assert.not.ok(
    f.calls.some((c) => c.startsWith(`time ${cands[1].spec.name}`)),
    'a wrong candidate is never timed',
  );
});

test('quantizer sweep: the catalog keeps a shape unless beaten; a throwing candidate is recorded', async () => {
  const cands = quantizerCandidates(ARCH, KERNEL, 2);
  const backend: QuantizerBackend = {
    check: async () => null,
    time: async (c) => {
      if (c.spec.name === cands[2].spec.name) throw new Error('status -2: illegal address');
      return 7;
    },
    restart: async () => {},
  };
  const s = await quantizerSweep({ candidates: cands, shapes, reps: 3, budgetS: 100, timeoutS: 10 }, backend);
  assert.ok(s.winners.every((w) => w.candidate === KERNEL && w.us === 7 && w.catalogUs === 7));
  const failed = s.results.filter((r) => r.status === 'failed');
  assert.is(failed.length, 2);
  assert.ok(failed.every((r) => r.candidate === cands[2].spec.name && /illegal address/.test(r.reason!)));
});

test('quantizer sweep: past the budget the rest is skipped; a rerun finishes only that', async () => {
  const cands = quantizerCandidates(ARCH, KERNEL, 3);
  const clock = { t: 0 };
  const f = fake(cands, clock, cands[1].spec.name, cands[3].spec.name);
  // 4 checks, then timings; budget 6 "seconds": two timings fit, the rest is skipped.
  const first = await quantizerSweep(
    { candidates: cands, shapes, reps: 5, budgetS: 6, timeoutS: 10, now: () => clock.t },
    f.backend,
  );
  assert.not.ok(first.complete);
  const skipped = first.results.filter((r) => r.status === 'skipped');
  assert.ok(skipped.length > 0);
  const timedBefore = f.calls.filter((c) => c.startsWith('time'));
  const g = fake(cands, clock, cands[1].spec.name, cands[3].spec.name);
  const second = await quantizerSweep(
    {
      candidates: cands,
      shapes,
      reps: 5,
      budgetS: 1000,
      timeoutS: 10,
      now: () => clock.t,
      previous: { results: first.results, checks: first.checks },
    },
    g.backend,
  );
  assert.ok(second.complete);
  assert.not.ok(
    g.calls.some((c) => c.startsWith('check')),
    'checks are not repeated',
  );
  for (const c of timedBefore) assert.not.ok(g.calls.includes(c), `${c} not repeated`);
  assert.is(g.calls.length, skipped.length);
  assert.ok(second.winners.every((w) => w.candidate === cands[3].spec.name));
});

function tuningFile(): TuningFile {
  const tiling = quantizerCandidates(ARCH, KERNEL, 2)[2].spec.tiling;
  return {
    format: TUNING_FORMAT,
    arch: ARCH,
    workload: 'small',
    provenance: { format: 'qgen-provenance/1' },
    cacheKey: {
      sourceHash: 'not-these-sources',
      configSpaceHash: configSpaceHash(ARCH),
      gpu: 'NVIDIA H100 80GB HBM3',
      smCount: 132,
      driver: '570.1',
      cuda: '12.8',
      qgenVersion: '0.1.0',
    },
    candidates: [],
    winners: [],
    quantizerWinners: [
      { kernel: KERNEL, rows: 4096, cols: 4096, tiling, candidate: 'x', us: 10, catalogUs: 12 },
      { kernel: 'quartet2_w_46', rows: 11008, cols: 4096, tiling, candidate: 'y', us: 10, catalogUs: 12 },
    ],
  };
}

test('tuning file: quantizer winners round-trip; old files load; a broken entry names its field', () => {
  const t = tuningFile();
  const file = path.join(TMP, 'q.json');
  writeFileSync(file, JSON.stringify(t));
  assert.equal(readTuningFile(file, ARCH), t);
  const old = tuningFile() as Partial<TuningFile>;
  delete old.quantizerWinners;
  assert.equal(tuningProblems(old), []);
  const broken = tuningFile();
  broken.quantizerWinners![1].tiling = { ...broken.quantizerWinners![1].tiling, threadsPerBlock: 100 };
  const problems = tuningProblems(broken);
  assert.ok(problems.length > 0);
  assert.match(problems[0].path, /^quantizerWinners\[1\]\.tiling\.threadsPerBlock/);
  const unknown = tuningFile();
  unknown.quantizerWinners![0].kernel = 'no_such_quantizer';
  assert.equal(
    tuningProblems(unknown).map((p) => p.path),
    ['quantizerWinners[0].kernel'],
  );
  // the whole tiling is validated, as applyTunedQuantizers copies it whole
  const extra = tuningFile();
  extra.quantizerWinners![0].tiling = { ...extra.quantizerWinners![0].tiling, foo: 3 } as never;
  assert.match(tuningProblems(extra)[0]?.path ?? '', /^quantizerWinners\[0\]\.tiling\.foo/);
  const notList = { ...tuningFile(), quantizerWinners: {} };
  assert.equal(
    tuningProblems(notList).map((p) => p.path),
    ['quantizerWinners'],
  );
});

test('applyTunedQuantizers: the tuned kernel keeps its name and takes the tiling; others are ignored', () => {
  const t = tuningFile();
  const catalog = catalogFor(ARCH).filter((s) => s.name === KERNEL || s.name === 'dequantize_nvfp4_bf16');
  const r = applyTunedQuantizers(catalog, t);
  const tuned = r.specs.find((s) => s.name === KERNEL)!;
  assert.equal('tiling' in tuned && tuned.tiling, t.quantizerWinners![0].tiling);
  assert.not.equal(catalogQuantizer(ARCH, KERNEL).tiling, t.quantizerWinners![0].tiling);
  assert.equal(
    r.specs.map((s) => s.name),
    catalog.map((s) => s.name),
  );
  assert.is(r.applied.length, 1);
  assert.equal(r.ignored, ['quartet2_w_46']);
  assert.equal(catalogQuantizer(ARCH, KERNEL).tiling, catalog.find((s) => s.name === KERNEL)!.tiling, 'not mutated');
  assert.is(applyTunedQuantizers(catalog, undefined).specs, catalog);
});

test('report: tune.md has a quantizer table (kernel, shape, winner, us, catalog us, speedup)', () => {
  const t = tuningFile();
  t.quantizerCandidates = [
    {
      kernel: KERNEL,
      shape: '4096x4096',
      label: 'X',
      rows: 4096,
      cols: 4096,
      candidate: `${KERNEL}__t256_r4_g2`,
      tiling: { threadsPerBlock: 256, rowsPerBlock: 4, groupsPerThread: 2 },
      status: 'wrong',
      reason: 'codes: first difference at byte 3',
    },
  ];
  const md = tuneMarkdown(t);
  const w = t.quantizerWinners![0];
  const tl = w.tiling;
  const budget = tl.minBlocksPerSm === undefined ? '' : `_b${tl.minBlocksPerSm}`;
  const winner = `x (t${tl.threadsPerBlock}_r${tl.rowsPerBlock}_g${tl.groupsPerThread}${budget})`;
  const row = `| ${KERNEL} | 4096x4096 | ${winner} | 10.0 | 12.0 | 1.20 |`;
  assert.ok(md.includes(row), md);
  assert.ok(md.includes(`| ${KERNEL}__t256_r4_g2 | wrong | codes: first difference at byte 3 |`), md);
  const old = tuningFile();
  delete old.quantizerWinners;
  assert.not.match(tuneMarkdown(old), /Quantizer launch shapes/);
});

/** Runs `call` with stderr and stdout captured. */
async function captured<T>(call: () => Promise<T>): Promise<{ value: T; err: string }> {
  const write = process.stderr.write.bind(process.stderr);
  const log = console.log;
  let err = '';
  process.stderr.write = ((x: string) => {
    err += x;
    return true;
  }) as typeof process.stderr.write;
  console.log = () => {};
  try {
    return { value: await call(), err };
  } finally {
    process.stderr.write = write;
    console.log = log;
    process.exitCode = 0;
  }
}

const manifestTiling = (dir: string, kernel: string) =>
  (JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Manifest).kernels.find((k) => k.name === kernel)
    ?.spec as { tiling?: unknown } | undefined;

test('qgen emit --tuning: a tuned quantizer keeps its name and takes the file tiling, deterministically', async () => {
  const t = tuningFile();
  const file = path.join(TMP, 'emit.json');
  writeFileSync(file, JSON.stringify(t));
  const outs = [path.join(TMP, 'e1'), path.join(TMP, 'e2')];
  for (const out of outs) {
    const r = await captured(() => main(['emit', '--arch', ARCH, '--out', out, '--only', KERNEL, '--tuning', file]));
    assert.is(r.value, 0, r.err);
    assert.match(r.err, new RegExp(`tuned quantizer tiling: ${KERNEL} \\(threads`));
    assert.match(r.err, /quantizer winner for quartet2_w_46 is ignored: not in the emitted kernels/);
  }
  assert.equal(manifestTiling(outs[0], KERNEL)?.tiling, t.quantizerWinners![0].tiling);
  for (const f of [`${KERNEL}.cu`, 'manifest.json'])
    assert.ok(readFileSync(path.join(outs[0], f)).equals(readFileSync(path.join(outs[1], f))), f);
  const plain = path.join(TMP, 'e-plain');
  assert.is((await captured(() => main(['emit', '--arch', ARCH, '--out', plain, '--only', KERNEL]))).value, 0);
  assert.equal(manifestTiling(plain, KERNEL)?.tiling, catalogQuantizer(ARCH, KERNEL).tiling);
  assert.not.ok(
    readFileSync(path.join(plain, `${KERNEL}.cu`)).equals(readFileSync(path.join(outs[0], `${KERNEL}.cu`))),
  );
});

test(
  'vendor --tuning: the tuned quantizer is vendored under its name with the tiling; one outside the recipes is ' +
    'ignored with a warning',
  async () => {
    const vendored = new Set(vendoredKernelNames(ARCH));
    assert.ok(vendored.has(KERNEL));
    const outside = catalogFor(ARCH).find((s) => s.kind === 'quantize' && !vendored.has(s.name))!;
    assert.ok(outside, 'a catalog quantizer outside the recipes');
    const t = tuningFile();
    t.quantizerWinners![1] = {
      ...t.quantizerWinners![1],
      kernel: outside.name,
      tiling: quantizerCandidates(ARCH, outside.name, 1)[1].spec.tiling,
    };
    assert.equal(tuningProblems(t), []);
    const dir = path.join(TMP, 'vendor-c');
    const r = await captured(() => vendor({ target: 'c', arch: ARCH, out: dir, tuning: t }));
    assert.ok(r.value.kernels.includes(KERNEL));
    assert.not.ok(
      r.value.kernels.some((k) => k.startsWith(`${KERNEL}__`)),
      'no second kernel for the tiling',
    );
    assert.equal(manifestTiling(path.join(dir, 'kernels'), KERNEL)?.tiling, t.quantizerWinners![0].tiling);
    assert.match(r.err, new RegExp(`tuned quantizer tiling: ${KERNEL} `));
    assert.match(r.err, new RegExp(`quantizer winner for ${outside.name} is ignored: not in the vendored recipes`));
  },
);

test.run();
