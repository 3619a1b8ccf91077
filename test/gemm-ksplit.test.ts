// K split across CTAs (tiling.kSplitCtas S, NUMERICS §6.2 "K split across CTAs" and §8's workspace): validation,
// pruning, layout, emission, the reference's order (reference/gemm.ts), and a CPU model of the kernel's
// arrival-counter protocol (templates/gemm_sm90_swap.cu.hbs finish_unit) under random arrival orders and grid caps:
// the result must not depend on which CTA finishes last, and the counters must be zero after every launch.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { GemmSpec } from '../dsl/types.ts';
import { catalogFor, catalogSpec } from '../dsl/catalog.ts';
import { GEMM_KSPLIT_CHOICE } from '../dsl/recipes.ts';
import { validate } from '../validate/validate.ts';
import { gemmSpace } from '../validate/space.ts';
import { lower, type GemmPlan } from '../lower/lower.ts';
import { renderKernel } from '../render/render.ts';
import { renderDispatch } from '../harness/gpu/bind.ts';
import {
  K_ORDER_PROBE_BLOCK_SUMS,
  kOrderProbeBlockSums,
  kOrderProbeOperands,
  kSumOrder,
} from '../harness/gpu/gemm_suite.ts';
import { dequantizeUnscaled } from '../reference/dequantize.ts';
import { compileCuda, nvccVersion } from '../harness/nvcc.ts';
import { vendor } from '../emit/vendor.ts';
import { kSplitRanges, splitKAccumulator, sumInIndexOrder } from '../reference/gemm.ts';

const KS2 = 'gemm_nvfp4_bf16_16x64x128_swapab_ks2';
const base = () => catalogSpec(KS2, 'sm_90a') as GemmSpec;
const withTiling = (t: Partial<GemmSpec['tiling']>): GemmSpec => ({ ...base(), tiling: { ...base().tiling, ...t } });
const problems = (s: unknown, arch: 'sm_90a' | 'sm_100a' = 'sm_90a') =>
  validate(s, arch, 'k').map((p) => `${p.path}: ${p.message}`);
const splitKernels = (): GemmSpec[] =>
  catalogFor('sm_90a').filter((s): s is GemmSpec => s.kind === 'gemm' && (s.tiling.kSplitCtas ?? 1) > 1);
/** The sm_90a layout of a plan (throws for another arch). */
const sm90Layout = (plan: GemmPlan) => {
  if (plan.gemm.arch !== 'sm_90a') throw new Error(`${plan.name}: not an sm_90a plan`);
  return plan.gemm.layout;
};

test('validate: kSplitCtas is an integer 1..4, with registerOperand b only, one line naming the field', () => {
  assert.equal(problems(base()), []);
  assert.equal(problems(withTiling({ kSplitCtas: 4 })), []);
  for (const bad of [0, 5, 2.5, '2'])
    assert.ok(
      problems(withTiling({ kSplitCtas: bad as number })).some((p) => /^k\.tiling\.kSplitCtas: .*\b4\b/.test(p)),
      `${bad}: ${problems(withTiling({ kSplitCtas: bad as number })).join(' | ')}`,
    );
  const unswapped = catalogSpec('gemm_nvfp4_bf16_64x64x128', 'sm_90a') as GemmSpec;
  const p = problems({ ...unswapped, tiling: { ...unswapped.tiling, kSplitCtas: 2 } });
  assert.equal(p, [
    "k.tiling.kSplitCtas: exists with registerOperand 'b' only (K split across CTAs of the " +
      'operand-swapped kernel)',
  ]);
  const blackwell = catalogFor('sm_100a').find((s) => s.kind === 'gemm') as GemmSpec;
  assert.ok(problems({ ...blackwell, tiling: { ...blackwell.tiling, kSplitCtas: 2 } }, 'sm_100a').length > 0);
  for (const line of problems(withTiling({ kSplitCtas: 9 }))) assert.not.ok(line.includes('\n'), line);
});

test('layout: the catalog split kernels fit two CTAs per SM (shared memory, registers), one workspace query', () => {
  const kernels = splitKernels();
  assert.ok(kernels.length >= 3, kernels.map((k) => k.name).join(', '));
  for (const spec of kernels) {
    const plan = lower(spec, 'sm_90a') as GemmPlan;
    const L = sm90Layout(plan);
    assert.is(L.kSplitCtas, spec.tiling.kSplitCtas, spec.name);
    assert.is(L.ctasPerSm, 2, `${spec.name}: two CTAs per SM`);
    assert.ok(L.smemBytes <= Math.floor(233472 / 2) - 1024, `${spec.name}: ${L.smemBytes} B`);
    assert.ok(L.threads * L.launchRegs * 2 <= 65536, `${spec.name}: ${L.threads} x ${L.launchRegs}`);
    assert.is(plan.workspaceFunction, `qgen_${spec.name}_workspace_bytes`);
    assert.match(spec.name, new RegExp(`_ks${spec.tiling.kSplitCtas}$`));
  }
  // S = 1 kernels have no workspace and keep their layout (one CTA per SM for the catalog's swapped ones)
  const plain = lower(catalogSpec('gemm_nvfp4_bf16_16x64x128_swapab', 'sm_90a')!, 'sm_90a') as GemmPlan;
  assert.is(plain.workspaceFunction, null);
  assert.equal([sm90Layout(plain).kSplitCtas, sm90Layout(plain).ctasPerSm], [1, 1]);
});

test('space: S > 1 points exist for swapped tilings only, every candidate lowers, named _ks<S>', () => {
  const { candidates } = gemmSpace('sm_90a', catalogSpec('gemm_nvfp4_bf16', 'sm_90a') as GemmSpec);
  const split = candidates.filter((c) => (c.tiling.kSplitCtas ?? 1) > 1);
  assert.ok(split.some((c) => c.tiling.kSplitCtas === 2) && split.some((c) => c.tiling.kSplitCtas === 4));
  for (const c of split) {
    assert.is(c.tiling.registerOperand, 'b', c.name);
    assert.ok(c.name.endsWith(`_swapab_ks${c.tiling.kSplitCtas}`), c.name);
    assert.equal(validate(c, 'sm_90a', c.name), [], c.name);
    lower(c, 'sm_90a');
  }
  // the catalog's m <= 16 kernel is a point of the space (same tiling: two CTAs per SM, one fragment set)
  assert.ok(split.some((c) => c.name === 'gemm_nvfp4_bf16_16x64x128_c1_s8_sw8_k1x1_swapab_ks2'));
});

test('emit: split kernels render deterministically with the workspace query and check; S = 1 ones without', () => {
  for (const spec of splitKernels()) {
    const plan = lower(spec, 'sm_90a') as GemmPlan;
    const src = renderKernel(plan);
    assert.is(renderKernel(lower(spec, 'sm_90a') as GemmPlan), src, `${spec.name}: deterministic`);
    assert.ok(src.includes(`extern "C" size_t qgen_${spec.name}_workspace_bytes(int64_t m, int64_t n, int64_t k) {`));
    assert.ok(src.includes(`constexpr int kSplitCtas = ${spec.tiling.kSplitCtas};`));
    assert.match(src, /QGEN_REQUIRE\(a\.workspace != nullptr/);
    assert.match(src, /zero-fills them ONCE/);
    // generated/ holds exactly this text
    assert.is(readFileSync(path.join('generated', 'sm_90a', `${spec.name}.cu`), 'utf8'), src, spec.name);
  }
  const plain = renderKernel(
    lower(catalogSpec('gemm_nvfp4_bf16_16x64x128_swapab_c2', 'sm_90a')!, 'sm_90a') as GemmPlan,
  );
  assert.not.ok(plain.includes('_workspace_bytes(int64_t m') || plain.includes('a.workspace != nullptr'));
  // the runner's table: a (rows, cols, depth) query mapped to (m, n, k), and the zeroed-once flag
  const { source } = renderDispatch([base(), catalogSpec('gemm_nvfp4_bf16_16x64x128_swapab', 'sm_90a')!]);
  assert.ok(source.includes(`return qgen_${KS2}_workspace_bytes(rows, depth, cols);`));
  assert.ok(source.includes(`{ "${KS2}", run_${KS2}, ws_${KS2}, true },`));
  assert.ok(
    source.includes('{ "gemm_nvfp4_bf16_16x64x128_swapab", run_gemm_nvfp4_bf16_16x64x128_swapab, nullptr, false },'),
  );
});

test('reference: K ranges are contiguous whole blocks, ceil(ksteps / S) each, the last shorter or empty', () => {
  assert.equal(kSplitRanges(3, 2), [
    [0, 2],
    [2, 3],
  ]);
  assert.equal(kSplitRanges(3, 4), [
    [0, 1],
    [1, 2],
    [2, 3],
    [3, 3],
  ]);
  assert.equal(kSplitRanges(1, 4), [
    [0, 1],
    [1, 1],
    [1, 1],
    [1, 1],
  ]);
  assert.equal(kSplitRanges(5, 4), [
    [0, 2],
    [2, 4],
    [4, 5],
    [5, 5],
  ]);
  assert.equal(kSplitRanges(64, 1), [[0, 64]]);
  for (let ksteps = 1; ksteps <= 70; ksteps++)
    for (const s of [1, 2, 3, 4]) {
      const r = kSplitRanges(ksteps, s);
      assert.is(r[0][0], 0);
      assert.is(r[s - 1][1], ksteps);
      for (let j = 1; j < s; j++) assert.is(r[j][0], r[j - 1][1]);
    }
  assert.throws(() => kSplitRanges(0, 2), /ksteps = 0; allowed: >= 1/);
});

test('reference: the split order is the §6.2 tree (ranges, then consumers, then index order), +0 when empty', () => {
  // blocks whose binary32 sums depend on the order: 1, 2^-24 (lost against 1, kept against its twin), -1
  const sums = [1, 2 ** -24, 2 ** -24, -1];
  assert.is(splitKAccumulator(sums, 1, 1), Math.fround(1 + 2 ** -23 - 1)); // one chain: rounded once
  // S = 2: P0 = f32(1 + 2^-24) = 1, P1 = f32(2^-24 - 1); P0 + P1 = 2^-24... in binary32
  assert.is(splitKAccumulator(sums, 1, 2), sumInIndexOrder([Math.fround(1 + 2 ** -24), Math.fround(2 ** -24 - 1)]));
  // S = 4 with c = 2: one block per range, consumer 1 empty (+0)
  assert.is(splitKAccumulator(sums, 2, 4), sumInIndexOrder(sums.map((x) => Math.fround(x))));
  // all partials -0: the result is +0
  assert.ok(Object.is(splitKAccumulator([-0, -0, -0], 2, 2), 0));
});

/**
 * The finish_unit protocol of the template, one output tile element per tile: work unit u = tile * S + j runs on CTA
 * u mod grid (grid-capped: a CTA runs its units in order), writes its partial to the workspace, then adds one to the
 * tile's counter; the CTA whose add sees S - 1 resets the counter and sums the workspace's partials with `reduce`.
 * Arrival order: random (each CTA advances at its own random pace). Returns the tiles' results and the counters.
 */
function runProtocol(
  partials: number[][],
  grid: number,
  seed: number,
  counters: Uint32Array,
  reduce: (ws: Float32Array, tile: number, arrivals: number[]) => number,
): { out: number[]; counters: Uint32Array } {
  const tiles = partials.length,
    S = partials[0].length;
  const ws = new Float32Array(tiles * S).fill(NaN); // partials are written before they are read
  const out = new Array<number>(tiles).fill(NaN);
  const queues = Array.from({ length: grid }, (_, cta) => {
    const units: number[] = [];
    for (let u = cta; u < tiles * S; u += grid) units.push(u);
    return units;
  });
  const arrivals = Array.from({ length: tiles }, () => [] as number[]);
  let rng = seed >>> 0 || 1;
  const random = () => (rng = (Math.imul(rng, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  while (queues.some((q) => q.length > 0)) {
    const live = queues.filter((q) => q.length > 0);
    const q = live[Math.floor(random() * live.length)];
    const u = q.shift()!;
    const tile = Math.floor(u / S),
      j = u % S;
    ws[u] = partials[tile][j];
    arrivals[tile].push(j);
    const before = counters[tile]++;
    if (before === S - 1) {
      counters[tile] = 0;
      out[tile] = reduce(ws, tile, arrivals[tile]);
    }
  }
  return { out, counters };
}

const indexOrder = (ws: Float32Array, tile: number, arrivals: number[]) => {
  const S = arrivals.length;
  return sumInIndexOrder(Array.from({ length: S }, (_, j) => ws[tile * S + j]));
};

test('protocol: the last CTA sums in index order whatever the arrival order and grid cap; counters end at 0', () => {
  // partials whose binary32 sum depends on the order: big, -big and small terms
  const tiles = 40;
  for (const S of [2, 3, 4]) {
    const partials = Array.from({ length: tiles }, (_, t) =>
      Array.from({ length: S }, (_, j) => Math.fround((((t * 7 + j * 13) % 5) - 2) * 2 ** (j % 2 ? 24 : -3) + j)),
    );
    const want = partials.map((p) => sumInIndexOrder(p));
    const counters = new Uint32Array(tiles);
    for (const grid of [1, 3, 7, tiles * S])
      for (let seed = 1; seed <= 25; seed++) {
        const r = runProtocol(partials, grid, seed * 7919 + grid, counters, indexOrder);
        assert.equal(r.out, want, `S = ${S}, grid ${grid}, seed ${seed}`);
        assert.ok(
          r.counters.every((c) => c === 0),
          'counters restored: the next launch reuses the workspace',
        );
      }
  }
});

test('protocol: a reducer summing in arrival order (or not resetting the counter) fails the model', () => {
  const S = 3,
    tiles = 8;
  const partials = Array.from({ length: tiles }, () => [2 ** 24, 1, -(2 ** 24)].map(Math.fround));
  const want = partials.map((p) => sumInIndexOrder(p));
  const byArrival = (ws: Float32Array, tile: number, arrivals: number[]) =>
    sumInIndexOrder(arrivals.map((j) => ws[tile * S + j]));
  let differs = false;
  for (let seed = 1; seed <= 40 && !differs; seed++) {
    const r = runProtocol(partials, tiles * S, seed, new Uint32Array(tiles), byArrival);
    differs = r.out.some((x, i) => !Object.is(x, want[i]));
  }
  assert.ok(differs, 'some arrival order changes an arrival-order sum: the model detects order dependence');
  // counters left at S: the second launch never completes a tile (outputs stay unwritten)
  const counters = new Uint32Array(tiles);
  const noReset = (ws: Float32Array, tile: number, arrivals: number[]) => {
    counters[tile] = S; // undo the reset
    return indexOrder(ws, tile, arrivals);
  };
  runProtocol(partials, 5, 1, counters, noReset);
  const second = runProtocol(partials, 5, 2, counters, indexOrder);
  assert.ok(
    second.out.every((x) => Number.isNaN(x)),
    'without the reset the reused workspace loses every tile',
  );
});

test('suite: the K-order probe has the designed block sums, and its value depends on the split order', () => {
  const { a, b } = kOrderProbeOperands(3, 5);
  const A = dequantizeUnscaled(a),
    B = dequantizeUnscaled(b);
  for (let r = 0; r < 3; r++)
    for (let c = 0; c < 5; c++) {
      const sums = [0, 1, 2, 3].map((blk) => {
        let s = 0;
        for (let k = 128 * blk; k < 128 * (blk + 1); k++) s += A[r * 512 + k] * B[c * 512 + k];
        return s;
      });
      assert.equal(sums, [...K_ORDER_PROBE_BLOCK_SUMS], `(${r}, ${c})`);
    }
  const value = (c: number, s: number) => splitKAccumulator(K_ORDER_PROBE_BLOCK_SUMS, c, s);
  assert.equal([value(1, 4), value(1, 2), value(2, 1), value(4, 1), value(2, 2)], [2, 2, 3, 2, 2]);
  // 64-deep blocks (the four sums in blocks 0, 2, 4, 6) give the same values; 256-deep: two blocks, 2^24 + 1 rounds
  assert.equal(kOrderProbeBlockSums(64), [2 ** 24, 0, 1, 0, -(2 ** 24), 0, 2, 0]);
  assert.equal(kOrderProbeBlockSums(256), [2 ** 24 + 1, -(2 ** 24) + 2]);
  assert.is(splitKAccumulator(kOrderProbeBlockSums(64), 1, 2), 2);
  assert.is(splitKAccumulator(kOrderProbeBlockSums(256), 2, 1), 2);
  // arrival orders a wrong reducer could use give other values: the probe sees them
  const [p0, p1, p2, p3] = K_ORDER_PROBE_BLOCK_SUMS;
  assert.is(sumInIndexOrder([p3, p1, p0, p2]), 4);
  assert.is(sumInIndexOrder([p2, p0, p1, p3]), 3);
});

test('template = the protocol model: index-order sum, the S-th arrival completes, reset, fences', () => {
  const src = readFileSync(path.join('templates', 'gemm_sm90_swap.cu.hbs'), 'utf8');
  const body = src.slice(src.indexOf('__device__ __forceinline__ void finish_unit('));
  const at = (text: string) => {
    const i = body.indexOf(text);
    assert.ok(i >= 0, text);
    return i;
  };
  // partial stored, fence (release), barrier, then one thread's arrival
  assert.ok(at('__stcg(mine + i * 128 + t, sum);') < at('__threadfence();'));
  assert.ok(at('__threadfence();') < at('const uint32_t before = atomicAdd(&counters[tile], 1u);'));
  at('const bool completes = before == static_cast<uint32_t>(kSplitCtas - 1);');
  at('if (completes) atomicExch(&counters[tile], 0u);');
  // the completing CTA: fence (acquire), then P_0, then P_1 .. P_{S-1} added in index order
  const reads = at('float sum[kXRows / 2];');
  assert.ok(body.lastIndexOf('__threadfence();', reads) > at('if (*last == 0u) return;'));
  assert.ok(at('sum[i] = __ldcg(parts + i * 128 + t);') > reads);
  at('for (int p = 1; p < kSplitCtas; ++p) {');
  at('next[i] = __ldcg(parts + p * kUnitFloats + i * 128 + t);');
  at('sum[i] = sum[i] + next[i];');
  at('qgen_store_one(out, r * args.n + cc, (sum[4 * j + e] + 0.0f) * alpha);');
  // unit u = tile * S + j; ranges of ceil(ksteps / S) blocks; +0 for a unit without blocks
  assert.ok(src.includes('float* mine = ws + static_cast<int64_t>(c.tile) * kUnitFloats;'));
  assert.ok(src.includes('const int32_t tile = c.tile / kSplitCtas;'));
  assert.ok(src.includes('return kSplitCtas == 1 ? g.ksteps : (g.ksteps + kSplitCtas - 1) / kSplitCtas;'));
  assert.ok(src.includes('kb0 = (tile % kSplitCtas) * range_blocks(g);'));
  assert.ok(src.includes('float sum = has_blocks ? acc[i] : 0.0f;'));
});

test('suite: kernels sum K in the same order only with the same (S, c, ctaTile[2])', () => {
  const order = (name: string) => kSumOrder(catalogSpec(name, 'sm_90a') as GemmSpec);
  assert.is(order('gemm_nvfp4_bf16_16x64x128_swapab_ks2'), '2 CTAs x 1 consumers x 128-wide blocks');
  assert.is.not(order('gemm_nvfp4_bf16_16x64x128_swapab_ks2'), order('gemm_nvfp4_bf16_16x64x128_swapab_ks4'));
  assert.is(order('gemm_nvfp4_bf16_16x64x128_swapab_ks2'), order('gemm_nvfp4_bf16_32x64x128_swapab_ks2'));
  assert.is.not(order('gemm_nvfp4_bf16_16x64x128_swapab_c2'), order('gemm_nvfp4_bf16_16x64x128_swapab_ks2'));
  assert.is(order('gemm_nvfp4_bf16_16x64x128_swapab_c2'), '2 consumers x 128-wide blocks');
});

test('ptxas: the split kernels fit two CTAs per SM without spills or wgmma serialisation (C75xx)', async () => {
  try {
    await nvccVersion();
  } catch {
    console.log('  gemm-ksplit: no nvcc; the ptxas check did not run');
    return;
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qgen-ksplit-ptxas-'));
  try {
    await Promise.all(
      splitKernels().map(async (spec) => {
        const L = sm90Layout(lower(spec, 'sm_90a') as GemmPlan);
        const r = await compileCuda({
          sources: [path.join('generated', 'sm_90a', `${spec.name}.cu`)],
          arch: 'sm_90a',
          out: path.join(dir, `${spec.name}.cubin`),
          output: 'cubin',
          flags: ['-Xptxas', '-v'],
          includeDirs: ['runtime'],
          cacheDir: null,
        });
        const regs = Number(/Used (\d+) registers/.exec(r.log)?.[1] ?? NaN);
        assert.ok(regs <= L.launchRegs, `${spec.name}: ${regs} registers, share ${L.launchRegs}`);
        assert.match(r.log, /0 bytes spill stores, 0 bytes spill loads/, spec.name);
        assert.not.match(r.log, /Performance Loss|C75\d\d/, `${spec.name}:\n${r.log}`);
      }),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('torch package: QGEN_SKINNY_KSPLIT=2|4 routes the fallback to the split kernels; others: error', async () => {
  const probe = await execa('python3', ['-c', 'import torch'], { reject: false });
  if (probe.exitCode !== 0) {
    console.log('  gemm-ksplit: python3 has no torch; the package routing check did not run');
    return;
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qgen-ksplit-'));
  try {
    const r = await vendor({ target: 'torch', arch: 'sm_90a', out: dir });
    for (const byKernel of Object.values(GEMM_KSPLIT_CHOICE.sm_90a))
      for (const k of Object.values(byKernel)) assert.ok(r.kernels.includes(k), `${k} vendored`);
    const header = readFileSync(path.join(dir, 'qgen_torch/csrc/qgen_torch_kernels.h'), 'utf8');
    assert.ok(header.includes(`{"${KS2}", &qgen_${KS2}, false, &qgen_${KS2}_workspace_bytes },`));
    const script =
      'import json, sys\nsys.path.insert(0, sys.argv[1])\nimport qgen_torch.ops as o\n' +
      'print(json.dumps([o.gemm_plan(m, 8192, 8192)[1] for m in (1, 16, 64, 65)]))';
    const plans = async (env: Record<string, string>) => {
      const run = await execa('python3', ['-c', script, dir], { reject: false, env, extendEnv: true });
      return { code: run.exitCode, out: run.stdout.trim().split('\n').pop() ?? '', err: run.stderr };
    };
    const k16 = 'gemm_nvfp4_bf16_16x64x128_swapab',
      k64 = 'gemm_nvfp4_bf16_64x64x128_swapab';
    const off = await plans({});
    assert.equal(JSON.parse(off.out), [`${k16}_c2`, `${k16}_c2`, `${k64}_c2`, null], off.err);
    for (const s of ['2', '4']) {
      const on = await plans({ QGEN_SKINNY_KSPLIT: s });
      const want = [GEMM_KSPLIT_CHOICE.sm_90a[s][k16], GEMM_KSPLIT_CHOICE.sm_90a[s][k16]];
      assert.equal(JSON.parse(on.out), [...want, GEMM_KSPLIT_CHOICE.sm_90a[s][k64], null], on.err);
    }
    const bad = await plans({ QGEN_SKINNY_KSPLIT: '3' });
    assert.is.not(bad.code, 0);
    assert.match(bad.err, /QGEN_SKINNY_KSPLIT='3'; allowed: 2, 4, or unset/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
