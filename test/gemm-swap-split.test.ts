// The ring schedule of the operand-swapped sm_90a GEMM with K split over c consumers (templates/gemm_sm90_swap.cu.hbs,
// NUMERICS §6.2 "K split inside the CTA"), simulated on the CPU: the TMA thread, the A-decoder groups and the c
// consumer warpgroups run the kernel's hand-offs (mbarrier parity waits, which also pass for the phase two before,
// TMA bytes landing in any order, the consumers' named barriers around the partials) under random interleavings.
// Every read must see the step it expects, no stage may be overwritten before its readers released it, every tile's
// real K blocks must reach the sum exactly once through consumer kb mod c, and nothing may deadlock. The same model
// with stages that are not a multiple of lcm(c, decoder groups), or without the per-tile padding to a multiple of c
// steps, must fail: that is what arch/gemm_sm90.ts sm90SwapLayout and the template's tile_steps rely on.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { vendor } from '../emit/vendor.ts';
import { compileCuda, nvccVersion } from '../harness/nvcc.ts';
import { GEMM_SPLIT_CHOICE } from '../dsl/recipes.ts';
import { sm90SwapDecoderGroups, sm90SwapLayout, sm90SwapRingPeriod, sm90SwapSmemBytes } from '../arch/gemm_sm90.ts';
import { catalogSpec } from '../dsl/catalog.ts';
import type { GemmSpec } from '../dsl/types.ts';
import { gemmSpace } from '../validate/space.ts';
import { validate } from '../validate/validate.ts';
import { lower, type GemmPlan } from '../lower/lower.ts';

interface Schedule {
  rawStages: number;
  xStages: number;
  consumers: number;
  decoderGroups: number;
  wSets: number;
  ksteps: number;
  tiles: number;
  /** Pad every tile to a multiple of c steps (the kernel does; false shows why). */
  pad: boolean;
}

interface MBar {
  count: number;
  pending: number;
  completed: number;
}
const mbar = (count: number): MBar => ({ count, pending: count, completed: 0 });
/** mbarrier.try_wait.parity: passes while the current phase's parity differs from `parity`. */
const passes = (b: MBar, parity: number) => (b.completed & 1) !== parity;
const arrive = (b: MBar) => {
  if (--b.pending === 0) {
    b.completed++;
    b.pending = b.count;
  }
};

/** A role: a generator yielding the condition it waits on next (a wait passes when the condition holds). */
type Role = Generator<() => boolean, void, void>;

/** Runs one random interleaving; returns null, or the first problem found. */
function simulate(s: Schedule, seed: number): string | null {
  let rng = seed * 2654435761 + 1;
  const random = () => {
    rng = (Math.imul(rng, 1103515245) + 12345) >>> 0;
    return rng / 2 ** 32;
  };
  const c = s.consumers;
  const tileSteps = s.pad ? Math.ceil(s.ksteps / c) * c : s.ksteps;
  const steps = s.tiles * tileSteps;
  const isEmpty = (step: number) => step % tileSteps >= s.ksteps;
  const rawFull = Array.from({ length: s.rawStages }, () => mbar(1));
  const rawEmpty = Array.from({ length: s.rawStages }, () => mbar(2)); // the step's consumer + its decoder group
  const xFull = Array.from({ length: s.xStages }, () => mbar(1));
  const xEmpty = Array.from({ length: s.xStages }, () => mbar(1));
  const rawData = new Array<number>(s.rawStages).fill(-1);
  const xData = new Array<number>(s.xStages).fill(-1);
  const rawReleases = new Array<number>(steps).fill(0);
  const xReleased = new Array<boolean>(steps).fill(false);
  // named barriers (counted in consumer warpgroups): arrivals of the current generation, and the generation
  const named = [0, 1].map(() => ({ arrived: 0, generation: 0 }));
  const namedArrive = (id: number) => {
    const b = named[id];
    const gen = b.generation;
    if (++b.arrived === c) {
      b.arrived = 0;
      b.generation++;
    }
    return gen;
  };
  const FULL = 0,
    FREE = 1;
  const partials: { tile: number; blocks: number[] }[] = Array.from({ length: c }, () => ({ tile: -1, blocks: [] }));
  let problem: string | null = null;
  const fail = (m: string) => {
    problem ??= m;
  };
  const landing: Role[] = [];

  function* producer(): Role {
    for (let step = 0; step < steps; step++) {
      const slot = step % s.rawStages,
        use = Math.floor(step / s.rawStages);
      yield () => passes(rawEmpty[slot], (use & 1) ^ 1);
      if (step >= s.rawStages && rawReleases[step - s.rawStages] !== 2) {
        fail(`TMA overwrote raw stage ${slot} (step ${step - s.rawStages} not released)`);
      }
      if (isEmpty(step)) {
        rawData[slot] = step;
        arrive(rawFull[slot]);
        continue;
      }
      landing.push(
        (function* () {
          yield () => true;
          rawData[slot] = step;
          arrive(rawFull[slot]);
        })(),
      );
    }
  }

  function* decoder(group: number): Role {
    for (let step = group; step < steps; step += s.decoderGroups) {
      const slot = step % s.rawStages,
        xslot = step % s.xStages;
      yield () => passes(rawFull[slot], Math.floor(step / s.rawStages) & 1);
      yield () => passes(xEmpty[xslot], (Math.floor(step / s.xStages) & 1) ^ 1);
      if (rawData[slot] !== step) fail(`decoder ${group} read raw stage ${slot} for step ${step}: ${rawData[slot]}`);
      if (step >= s.xStages && !xReleased[step - s.xStages]) fail(`decoder ${group} overwrote X tile ${xslot}`);
      if (!isEmpty(step)) xData[xslot] = step;
      arrive(xFull[xslot]);
      rawReleases[step]++;
      arrive(rawEmpty[slot]);
    }
  }

  function* consumer(w: number): Role {
    const own = Math.ceil((steps - w) / c);
    const prepare = function* (step: number): Role {
      const slot = step % s.rawStages;
      yield () => passes(rawFull[slot], Math.floor(step / s.rawStages) & 1);
      if (!isEmpty(step) && rawData[slot] !== step) fail(`consumer ${w} read raw ${slot} for step ${step}`);
      rawReleases[step]++;
      arrive(rawEmpty[slot]);
    };
    let acc: number[] = [];
    yield* prepare(w);
    for (let i = 0; i < own; i++) {
      const step = w + i * c,
        xslot = step % s.xStages;
      const kb = step % tileSteps,
        tile = Math.floor(step / tileSteps);
      const more = i + 1 < own;
      yield () => passes(xFull[xslot], Math.floor(step / s.xStages) & 1);
      if (!isEmpty(step)) {
        if (xData[xslot] !== step) fail(`consumer ${w} multiplied X tile ${xslot} for step ${step}: ${xData[xslot]}`);
        acc = kb < c ? [kb] : [...acc, kb]; // the first own step of a tile overwrites (scale-d = 0)
      }
      if (s.wSets === 2 && more) yield* prepare(step + c);
      if (!isEmpty(step) && xData[xslot] !== step) fail(`X tile ${xslot} changed under consumer ${w}'s wgmmas`);
      xReleased[step] = true;
      arrive(xEmpty[xslot]);
      if (s.wSets === 1 && more) yield* prepare(step + c);
      if (kb + c < tileSteps) continue;
      // the consumer's last step of the tile: hand on (w >= 1) or add and store (w = 0)
      const handed = s.ksteps > w ? acc : [];
      if (w > 0) {
        if (tile > 0) {
          const gen = namedArrive(FREE);
          yield () => named[FREE].generation > gen;
        }
        partials[w] = { tile, blocks: handed };
        namedArrive(FULL);
        continue;
      }
      const gen = namedArrive(FULL);
      yield () => named[FULL].generation > gen;
      const blocks = [...handed];
      for (let v = 1; v < c; v++) {
        if (partials[v].tile !== tile) fail(`consumer 0 added consumer ${v}'s partial of tile ${partials[v].tile}`);
        blocks.push(...partials[v].blocks);
      }
      const want = Array.from({ length: s.ksteps }, (_, k) => k);
      if (JSON.stringify(blocks.sort((a, b) => a - b)) !== JSON.stringify(want)) {
        fail(`tile ${tile} summed K blocks [${blocks}], not each of 0..${s.ksteps - 1} once`);
      }
      for (let v = 0; v < c; v++) {
        const owned = (v === 0 ? handed : partials[v].blocks).every((k) => k % c === v);
        if (!owned) fail(`tile ${tile}: consumer ${v} summed K blocks not congruent to ${v} mod ${c}`);
      }
      if (tile + 1 < s.tiles) namedArrive(FREE);
    }
  }

  const roles: { role: Role; weight: number; want: (() => boolean) | null; done: boolean }[] = [];
  const add = (role: Role) => {
    const r = role.next();
    roles.push({ role, weight: random() ** 3 + 0.01, want: r.done ? null : r.value, done: !!r.done });
  };
  add(producer());
  for (let g = 0; g < s.decoderGroups; g++) add(decoder(g));
  for (let w = 0; w < c; w++) add(consumer(w));
  for (let events = 0; events < 100000 && problem === null; events++) {
    while (landing.length) add(landing.shift()!);
    const ready = roles.filter((r) => !r.done && r.want!());
    if (ready.length === 0) {
      return roles.every((r) => r.done) ? null : 'deadlock';
    }
    let pick = random() * ready.reduce((a, r) => a + r.weight, 0);
    const r = ready.find((x) => (pick -= x.weight) <= 0) ?? ready[ready.length - 1];
    const next = r.role.next();
    r.done = !!next.done;
    r.want = next.done ? null : next.value;
  }
  return problem ?? 'no end';
}

/** Problems over `seeds` interleavings (distinct messages). */
function problems(s: Schedule, seeds = 300): string[] {
  const out = new Set<string>();
  for (let seed = 1; seed <= seeds; seed++) {
    const p = simulate(s, seed);
    if (p) out.add(p.replace(/\d+/g, 'N'));
  }
  return [...out];
}

const schedule = (xRows: number, consumers: number, rawStages: number, ksteps: number, tiles: number): Schedule => {
  const groups = sm90SwapDecoderGroups(xRows, 128);
  const r = sm90SwapLayout([xRows, 64, 128], rawStages, consumers);
  const wSets = 'layout' in r ? r.layout.wSets : 2;
  return { rawStages, xStages: 4, consumers, decoderGroups: groups, wSets, ksteps, tiles, pad: true };
};

test('ring schedule: every legal layout (c = 1, 2, 4) reads what it expects and sums each K block once', () => {
  for (const xRows of [16, 64])
    for (const c of [1, 2])
      for (const rawStages of [4, 8])
        for (const ksteps of [1, 2, 3, 5])
          for (const tiles of [1, 3]) {
            const s = schedule(xRows, c, rawStages, ksteps, tiles);
            assert.ok(rawStages % sm90SwapRingPeriod(c, s.decoderGroups) === 0);
            assert.equal(problems(s, 60), [], JSON.stringify(s));
          }
  // four consumers (the catalog's c4_f1: one fragment set), fewer K blocks than consumers included
  for (const ksteps of [1, 3, 5])
    for (const tiles of [1, 3]) {
      const s = { ...schedule(16, 4, 8, ksteps, tiles), wSets: 1 };
      assert.equal(problems(s, 60), [], JSON.stringify(s));
    }
  // both fragment-set counts with two consumers, whatever the layout picked
  for (const wSets of [1, 2]) {
    const s = { ...schedule(16, 2, 8, 3, 3), wSets };
    assert.equal(problems(s), [], JSON.stringify(s));
  }
});

test('ring schedule: stages not a multiple of lcm(c, groups) let a waiter pass a stage two phases early', () => {
  // Consumers: c = 3 with 2 decoder groups and 4 stages (a multiple of the groups, not of c; 6 X tiles so that only
  // the raw ring is off): consumer w's step s reuses the stage of step s - 4, which another consumer and the other
  // decoder group own, and which may not have landed yet. (Where the groups divide c, the group of a consumer's
  // previous step s - c also decoded s - R, so the landing is ordered before the wait; with c and the groups powers
  // of two the rule is then R >= c. The kernel states the simpler sufficient rule, a multiple of lcm(c, groups).)
  const consumersOnly: Schedule = {
    rawStages: 4,
    xStages: 6,
    consumers: 3,
    decoderGroups: 2,
    wSets: 1,
    ksteps: 5,
    tiles: 3,
    pad: true,
  };
  const found = problems(consumersOnly);
  assert.ok(
    found.some((p) => p.startsWith('consumer') && p.includes('read raw')),
    JSON.stringify(found),
  );
  assert.equal(problems({ ...consumersOnly, rawStages: 6 }), [], 'and 6 stages (lcm 6) are safe');
  // 16-row tiles: 4 decoder groups; 6 stages with c = 2 (lcm 4)
  const groups = { ...schedule(16, 2, 8, 5, 3), rawStages: 6 };
  assert.ok(problems(groups).length > 0, 'decoder or consumer parity hazard found');
  assert.ok('field' in sm90SwapLayout([16, 64, 128], 6, 2));
});

test('ring schedule: without padding tiles to a multiple of c steps, blocks go to the wrong consumer', () => {
  // ksteps = 3 with c = 2 and 3 tiles: tile 1 starts at step 3, owned by consumer 1, so kb 0 is summed by it
  const s = { ...schedule(64, 2, 4, 3, 3), pad: false };
  assert.ok(
    problems(s).some((p) => p.includes('not congruent') || p.includes('once')),
    JSON.stringify(problems(s)),
  );
});

test('space: every swapped candidate with c consumers has the layout the ring rule and the template need', () => {
  const { candidates } = gemmSpace('sm_90a', catalogSpec('gemm_nvfp4_bf16', 'sm_90a') as GemmSpec);
  const swapped = candidates.filter((c) => c.tiling.registerOperand === 'b');
  assert.ok(swapped.some((c) => c.tiling.consumers === 2) && swapped.some((c) => c.tiling.consumers === 1));
  for (const spec of swapped) {
    const g = (lower(spec, 'sm_90a') as GemmPlan).gemm;
    assert.ok(g.arch === 'sm_90a');
    const L = g.layout;
    const [m, , k] = spec.tiling.ctaTile;
    const c = spec.tiling.consumers;
    assert.is(L.consumers, c, spec.name);
    assert.is(L.threads, 128 * c + 128 + 32, spec.name);
    assert.is(L.smemBytes, sm90SwapSmemBytes(m, k, spec.tiling.stages, c), spec.name);
    assert.is(L.rawStages % sm90SwapRingPeriod(c, sm90SwapDecoderGroups(m, k)), 0, spec.name);
    assert.ok(c === 1 ? L.wSets === 2 : L.wSets === 1 || L.wSets === 2, spec.name);
  }
});

test('validate + layout: tiling.fragmentSets (1 or 2) only with registerOperand b; it overrides the estimate', () => {
  const base = catalogSpec('gemm_nvfp4_bf16_16x64x128_swapab_c2', 'sm_90a') as GemmSpec;
  const at = (t: Partial<GemmSpec['tiling']>): GemmSpec => ({ ...base, tiling: { ...base.tiling, ...t } });
  const problems = (s: GemmSpec) => validate(s, 'sm_90a', 'k').map((p) => `${p.path}: ${p.message}`);
  const layout = (s: GemmSpec) => {
    const g = (lower(s, 'sm_90a') as GemmPlan).gemm;
    assert.ok(g.arch === 'sm_90a');
    return g.layout;
  };
  // the estimate picks one set for c = 2 (136 > 128 registers); fragmentSets 2 takes two at one CTA per SM
  assert.equal([layout(base).wSets, layout(base).ctasPerSm], [1, 1]);
  assert.equal(problems(at({ fragmentSets: 2 })), []);
  assert.equal([layout(at({ fragmentSets: 2 })).wSets, layout(at({ fragmentSets: 2 })).ctasPerSm], [2, 1]);
  assert.equal(layout(at({ consumers: 1, fragmentSets: 1 })).wSets, 1);
  // far over the estimate (64 rows, 4 consumers, one set: ~128 registers for 80; ptxas spilled 176 B and serialised
  // the wgmmas) the override is refused, with the field that rules it out
  const far = problems(at({ ctaTile: [64, 64, 128], consumers: 4, fragmentSets: 1 }));
  assert.ok(far.length === 1 && far[0].startsWith('k.tiling.consumers: too deep'), far.join('; '));
  const bad = problems(at({ fragmentSets: 3 as never }));
  assert.ok(bad.length === 1 && bad[0].startsWith('k.tiling.fragmentSets: ') && bad[0].includes('1..2'), bad[0]);
  const plain = catalogSpec('gemm_nvfp4_bf16_64x64x128', 'sm_90a') as GemmSpec;
  const a = problems({ ...plain, tiling: { ...plain.tiling, fragmentSets: 2 } });
  assert.ok(a.length === 1 && a[0].includes("registerOperand 'b' only"), a.join('; '));
});

test('the template keeps what the model assumes: padded tiles, per-consumer first and last steps, the barriers', () => {
  const src = readFileSync(path.join('templates', 'gemm_sm90_swap.cu.hbs'), 'utf8');
  assert.ok(src.includes('return (g.ksteps + kConsumers - 1) / kConsumers * kConsumers;'), 'tile_steps pads');
  assert.ok(src.includes('if (++kb == tile_steps(g)) {'), 'the cursor walks padded tiles');
  assert.ok(src.includes('kConsumers == 1 ? kb == 0 : kb < kConsumers'), 'first own step overwrites');
  assert.ok(src.includes('kb + kConsumers >= tile_steps(g)'), 'last own step finishes the tile');
  assert.ok(src.includes('for (int i = 0; i < consumer; ++i) c.next(g);'), 'consumer w starts at step w');
  assert.ok(src.includes('for (int i = 0; i < kConsumers; ++i) c.next(g);'), 'and advances by c');
  assert.ok(src.includes('mine[i * 128 + t] = g.ksteps > consumer ? acc[i] : 0.0f;'), '+0 without K blocks');
  assert.ok(src.includes('if (here.tile != static_cast<int32_t>(blockIdx.x)) named_sync(kPartialsFree);'));
  assert.ok(src.includes('named_arrive(kPartialsFull);') && src.includes('named_sync(kPartialsFull);'));
  // the sum's order: acc (P_0), then partials 1 .. c - 1
  assert.ok(src.includes('for (int w = 0; w < kPartials; ++w) sum = sum + partials[(w * (kXRows / 2)'));
  assert.ok(src.includes('static_assert(kRawStages % kConsumers == 0 && kXStages % kConsumers == 0'));
});

test('ptxas: the swapped GEMMs fit their register share, no spills, no wgmma serialisation (C75xx)', async () => {
  try {
    await nvccVersion();
  } catch {
    console.log('  gemm-swap-split: no nvcc; the ptxas check did not run');
    return;
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qgen-split-ptxas-'));
  try {
    const names = ['gemm_nvfp4_bf16_16x64x128_swapab', 'gemm_nvfp4_bf16_64x64x128_swapab'];
    await Promise.all(
      [
        ...names,
        ...names.map((n) => `${n}_c2`),
        ...names.map((n) => `${n}_c2_f2`),
        'gemm_nvfp4_bf16_16x64x128_swapab_c4_f1',
      ].map(async (name) => {
        const spec = catalogSpec(name, 'sm_90a') as GemmSpec;
        const g = (lower(spec, 'sm_90a') as GemmPlan).gemm;
        assert.ok(g.arch === 'sm_90a');
        const r = await compileCuda({
          sources: [path.join('generated', 'sm_90a', `${name}.cu`)],
          arch: 'sm_90a',
          out: path.join(dir, `${name}.cubin`),
          output: 'cubin',
          flags: ['-Xptxas', '-v'],
          includeDirs: ['runtime'],
          cacheDir: null,
        });
        // ptxas -v: "Used N registers", "0 bytes spill stores, 0 bytes spill loads"; C7515 / C7518 / C7520 are its
        // "wgmma.mma_async instructions are serialized" advisories (bench/NOTES.md met all three).
        const regs = Number(/Used (\d+) registers/.exec(r.log)?.[1] ?? NaN);
        assert.ok(regs <= g.layout.launchRegs, `${name}: ${regs} registers, share ${g.layout.launchRegs}`);
        assert.match(r.log, /0 bytes spill stores, 0 bytes spill loads/, name);
        assert.not.match(r.log, /Performance Loss|C75\d\d/, `${name}:\n${r.log}`);
      }),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('torch package: K-split kernels vendored, used for the fallback unless QGEN_SKINNY_SPLIT=0', async () => {
  const probe = await execa('python3', ['-c', 'import torch'], { reject: false });
  if (probe.exitCode !== 0) {
    console.log('  gemm-swap-split: python3 has no torch; the package routing check did not run');
    return;
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qgen-split-'));
  try {
    const r = await vendor({ target: 'torch', arch: 'sm_90a', out: dir });
    for (const k of Object.values(GEMM_SPLIT_CHOICE.sm_90a)) assert.ok(r.kernels.includes(k), `${k} vendored`);
    const script =
      'import json, sys\nsys.path.insert(0, sys.argv[1])\nimport qgen_torch.ops as o\n' +
      'tuned = [o.gemm_plan(m, 8192, 8192) for m in (1, 16, 17, 64, 65)]\no.set_gemm_mode("fused")\n' +
      'print(json.dumps([tuned, [o.gemm_plan(m, 8192, 8192) for m in (16, 64, 128)]]))';
    const plans = async (env: Record<string, string>) => {
      const run = await execa('python3', ['-c', script, dir], { reject: false, env, extendEnv: true });
      assert.is(run.exitCode, 0, run.stderr);
      return JSON.parse(run.stdout.trim().split('\n').pop()!) as [string, string | null, string][][];
    };
    const k16 = 'gemm_nvfp4_bf16_16x64x128_swapab',
      k64 = 'gemm_nvfp4_bf16_64x64x128_swapab';
    const off = await plans({ QGEN_SKINNY_SPLIT: '0' });
    assert.equal(
      off[0].map((p) => p[1]),
      [k16, k16, k64, k64, null],
    );
    const on = await plans({ QGEN_SKINNY_SPLIT: '1' });
    const bad = await execa('python3', ['-c', script, dir], {
      reject: false,
      env: { QGEN_SKINNY_SPLIT: 'off' },
      extendEnv: true,
    });
    assert.match(bad.stderr, /QGEN_SKINNY_SPLIT='off'; allowed: 0 or 1/, 'a bad value is a one-line error');
    assert.equal(
      on[0].map((p) => p[1]),
      [`${k16}_c2`, `${k16}_c2`, `${k64}_c2`, `${k64}_c2`, null],
    );
    assert.equal(
      on[1].map((p) => p[1]),
      [`${k16}_c2`, `${k64}_c2`, 'gemm_nvfp4_bf16_64x64x128'],
      "'fused' mode too; other kernels unchanged",
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
