// The operand-swapped sm_90a GEMM (tiling.registerOperand 'b', templates/gemm_sm90_swap.cu.hbs; bench/NOTES.md
// "Skinny m on sm_90a: design"): its validation rules, its pruning in the tuning space, its lowering and emission,
// and the synchronisation its generated code must keep (the racecheck analysis of bench/NOTES.md relies on it).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { GemmSpec } from '../dsl/types.ts';
import { catalogSpec } from '../dsl/catalog.ts';
import { validate } from '../validate/validate.ts';
import { gemmSpace } from '../validate/space.ts';
import { lower, type GemmPlan } from '../lower/lower.ts';
import { renderKernel } from '../render/render.ts';
import { gemmFacts } from '../render/facts.ts';
import { tunedGemmName } from '../dsl/naming.ts';
import { SM90_SWAP_X_STAGES, sm90SwapSmemBytes } from '../arch/gemm_sm90.ts';
import { functionBody, outOfOrder } from '../harness/kernel_text.ts';

const SKINNY = 'gemm_nvfp4_bf16_16x64x128_swapab';
const base = () => catalogSpec(SKINNY, 'sm_90a') as GemmSpec;
const withTiling = (t: Partial<GemmSpec['tiling']>): GemmSpec => ({ ...base(), tiling: { ...base().tiling, ...t } });
const paths = (s: unknown, arch: 'sm_90a' | 'sm_100a' | 'sm_120a' = 'sm_90a') =>
  validate(s, arch, 'k').map((p) => `${p.path}: ${p.message}`);

test('validate: registerOperand b: A tiles of 8..64 rows, B tiles of 64, 1/2/4 consumers, sm_90a only', () => {
  for (const m of [8, 16, 32, 64]) assert.equal(paths(withTiling({ ctaTile: [m, 64, 128] })), [], `M = ${m}`);
  const one = (s: GemmSpec, path: string, part: string, arch: 'sm_90a' | 'sm_100a' = 'sm_90a') => {
    const got = paths(s, arch);
    assert.is(got.length, 1, JSON.stringify(got));
    assert.ok(got[0].startsWith(`${path}: `) && got[0].includes(part), got[0]);
  };
  one(withTiling({ ctaTile: [24, 64, 128] }), 'k.tiling.ctaTile[0]', 'must divide 64');
  one(withTiling({ ctaTile: [128, 64, 128] }), 'k.tiling.ctaTile[0]', 'a multiple of 8 in 8..64');
  one(withTiling({ ctaTile: [16, 128, 128] }), 'k.tiling.ctaTile[1]', 'an integer in 64..64');
  one(withTiling({ consumers: 5 }), 'k.tiling.consumers', 'an integer in 1..4');
  assert.equal(paths(withTiling({ consumers: 2 })), []);
  // K block s belongs to consumer s mod c and decoder group s mod 4 (16x64x128): stages a multiple of lcm(c, 4)
  one(withTiling({ consumers: 2, stages: 6 }), 'k.tiling.stages', 'with 2 consumers and 4 A-decoder groups');
  // 64x64x128 has one decoder group: c = 2 needs an even stage count, c = 1 any
  one(withTiling({ ctaTile: [64, 64, 128], consumers: 2, stages: 5 }), 'k.tiling.stages', 'a multiple of 2');
  assert.equal(paths(withTiling({ ctaTile: [64, 64, 128], consumers: 2, stages: 6 })), []);
  // c = 3 cannot divide the ring of 4 X tiles; c = 4 (672 threads: 80 registers) cannot hold one W fragment set
  one(withTiling({ ctaTile: [64, 64, 128], consumers: 3, stages: 6 }), 'k.tiling.consumers', 'use 1, 2 or 4');
  one(withTiling({ consumers: 4, stages: 8 }), 'k.tiling.consumers', 'more than the 80 that 672 threads');
  one(withTiling({ stages: 40 }), 'k.tiling.stages', 'in 2..16');
  one(withTiling({ ctaTile: [64, 64, 256], stages: 16 }), 'k.tiling.stages', 'of shared memory');
  // 9 warps leave 168 registers (three warps on one 16384-register quarter; ptxas spilled 64x64x256 at that limit)
  one(withTiling({ ctaTile: [64, 64, 256], stages: 4 }), 'k.tiling.ctaTile[2]', 'more than the 168 that 288 threads');
  // a 16x64x128 tile has 4 A-decoder groups (one warp per K block): stages must be a multiple of 4
  one(withTiling({ stages: 6 }), 'k.tiling.stages', 'a multiple of 4');
  one(withTiling({ stages: 2 }), 'k.tiling.stages', 'a multiple of 4');
  assert.equal(paths(withTiling({ stages: 4 })), []);
  // 64x64x128: 128 tasks, one group of four warps: any stage count
  assert.equal(paths(withTiling({ ctaTile: [64, 64, 128], stages: 5 })), []);
  one(withTiling({ registerOperand: 'c' as never }), 'k.tiling.registerOperand', "one of 'a' | 'b'");
  one(withTiling({}), 'k.tiling.registerOperand', 'sm_90a only', 'sm_100a');
  // 'a' (the default) written out is the unswapped kernel's rules.
  assert.equal(
    paths({
      ...withTiling({ ctaTile: [64, 64, 128] }),
      tiling: { ...base().tiling, ctaTile: [64, 64, 128], registerOperand: 'a' },
    }),
    [],
  );
  assert.ok(paths(withTiling({ registerOperand: 'a' })).some((p) => p.startsWith('k.tiling.ctaTile[0]')));
});

test('space: swapped points are candidates exactly for M in {16, 64}, N = 64, 1 or 2 consumers; named _swapab', () => {
  const { candidates, pruned } = gemmSpace('sm_90a', catalogSpec('gemm_nvfp4_bf16', 'sm_90a') as GemmSpec);
  const swapped = candidates.filter((c) => c.tiling.registerOperand === 'b');
  assert.ok(swapped.length > 0);
  for (const c of swapped) {
    const [m, n] = c.tiling.ctaTile;
    assert.ok([16, 64].includes(m) && n === 64 && [1, 2].includes(c.tiling.consumers), c.name);
    assert.ok(c.name.endsWith('_swapab') && c.name === tunedGemmName(c), c.name);
  }
  // every M = 64, N = 64 K = 128 swapped point with one consumer and a stage count that fits is a candidate
  assert.ok(swapped.some((c) => c.name === 'gemm_nvfp4_bf16_64x64x128_c1_s8_sw8_k1x1_swapab'));
  // and the K-split points of the catalog's c = 2 kernels (the tuner sweeps consumers for 'b' too)
  for (const m of [16, 64])
    assert.ok(
      swapped.some((c) => c.name === `gemm_nvfp4_bf16_${m}x64x128_c2_s8_sw8_k1x1_swapab`),
      `${m}, c = 2`,
    );
  // an unswapped M = 16 point and a swapped 128-row one are pruned with the field that rules them out
  const problem = (name: string) => pruned.find((p) => p.name === name)?.problem ?? '';
  assert.match(problem('gemm_nvfp4_bf16_16x64x128_c1_s8_sw8_k1x1'), /tiling\.ctaTile\[0\]/);
  assert.match(problem('gemm_nvfp4_bf16_128x64x128_c1_s8_sw8_k1x1_swapab'), /tiling\.ctaTile\[0\]/);
  assert.match(problem('gemm_nvfp4_bf16_64x128x128_c1_s8_sw8_k1x1_swapab'), /tiling\.ctaTile\[1\]/);
  // 16x64x128 with c = 2 and 6 stages: lcm(2, 4 decoder groups) = 4 does not divide 6
  assert.match(problem('gemm_nvfp4_bf16_16x64x128_c2_s6_sw8_k1x1_swapab'), /tiling\.stages: .*a multiple of 4/);
});

test('lower + render: the swapped layout, wgmma N = A rows with a runtime scale-d, the swap template', () => {
  const p = lower(base(), 'sm_90a') as GemmPlan;
  assert.ok(p.gemm.arch === 'sm_90a');
  const L = p.gemm.layout;
  assert.equal([L.registerOperand, L.bm, L.bn, L.bk, L.threads, L.xStages], ['b', 16, 64, 128, 288, 4]);
  // X ring 4 x 16 rows x 2 atoms x 128 B + 8 raw stages of (80 rows x 64 code bytes + 2 x 2 scale blocks)
  // + 2 x (8 + 4) mbarriers + slack.
  assert.is(L.smemBytes, SM90_SWAP_X_STAGES * 16 * 256 + 8 * (80 * 64 + 4 * 512) + 16 * (8 + 4) + 1024);
  assert.is(L.smemBytes, sm90SwapSmemBytes(16, 128, 8));
  const wgmma = String(gemmFacts(p).wgmmaFunction);
  assert.ok(wgmma.includes('m64n16k16.f32.bf16.bf16'), wgmma);
  assert.ok(wgmma.includes('uint32_t accumulate) {') && wgmma.includes('"r"(accumulate)'), wgmma);
  const src = renderKernel(p);
  assert.ok(src.includes('constexpr int kXRows = 16;') && src.includes('constexpr int kThreads = 288;'));
  assert.ok(src.includes('qgen_store_one(out, r * args.n + cc'), 'transposed epilogue');
  // the unswapped kernel keeps the compile-time scale-d and its own template
  const plain = lower(catalogSpec('gemm_nvfp4_bf16_64x64x128', 'sm_90a')!, 'sm_90a') as GemmPlan;
  assert.ok(String(gemmFacts(plain).wgmmaFunction).includes('"n"(1)'));
  assert.not.ok(renderKernel(plain).includes('kXRows'));
});

test('generated swapped GEMMs keep their hand-offs: raw stages, the A ring, wgmma completion before release', () => {
  const names = [SKINNY, 'gemm_nvfp4_bf16_64x64x128_swapab'];
  const split = [...names.map((n) => `${n}_c2`), ...names.map((n) => `${n}_c2_f2`), `${SKINNY}_c4_f1`];
  for (const name of [...names, ...split]) {
    const src = readFileSync(path.join('generated', 'sm_90a', `${name}.cu`), 'utf8');
    // raw_empty: 4 consumer warps + the K block's decoder warps; x_full: every thread of that decoder group;
    // x_empty: every consumer warp. The decoder group of a K block: 1, 2 or 4 warps by the tile's (row, atom) tasks.
    assert.match(src, /qgen_mbar_init\(&bar\.raw_empty\[i\], 4 \+ kXWarpsPerStep\);/, name);
    assert.match(src, /qgen_mbar_init\(&bar\.x_full\[i\], kXGroupThreads\);/, name);
    assert.match(src, /constexpr int kXWarpsPerStep = kXTasks <= 32 \? 1 : kXTasks <= 64 \? 2 : 4;/, name);
    assert.match(src, /for \(int32_t step = group; step < steps; step \+= kXGroups\) \{/, name);
    assert.match(src, /qgen_mbar_init\(&bar\.x_empty\[i\], 4\);/, name);
    const loads = functionBody(src, 'issue_loads');
    const wait = loads.indexOf('qgen_mbar_wait(&bar.raw_empty[c.slot]');
    assert.ok(wait >= 0 && wait < loads.indexOf('qgen_tma_load_2d(') && wait < loads.indexOf('qgen_bulk_load('));
    assert.ok(
      !outOfOrder(functionBody(src, 'prepare_w'), [
        'qgen_mbar_wait(&bar.raw_full[c.slot]',
        'load_w_fragments(',
        '__syncwarp();',
        'if ((threadIdx.x & 31) == 0) qgen_mbar_arrive(&bar.raw_empty[c.slot]);',
      ]),
      `${name}: prepare_w`,
    );
    const kernel = functionBody(src, 'gemm');
    assert.ok(
      !outOfOrder(kernel, [
        'qgen_mbar_wait(&bar.raw_full[c.slot], c.phase);',
        'qgen_mbar_wait(&bar.x_empty[c.xslot], c.xphase ^ 1u);',
        'dequantize_x(',
        'qgen_fence_proxy_async();',
        'qgen_mbar_arrive(&bar.x_full[c.xslot]);',
        '__syncwarp();',
        'qgen_mbar_arrive(&bar.raw_empty[c.slot]);',
      ]),
      `${name}: decoder loop`,
    );
    // consumer: wgmmas of the step, next W into the other set, wait for all wgmmas, then release the A tile
    assert.ok(
      !outOfOrder(functionBody(src, 'consumer_step'), [
        'qgen_mbar_wait(&bar.x_full[c.xslot], c.xphase);',
        'issue_mma(',
        'prepare_w(smem, bar, g, c, frag[(kSet + 1) % kWSets]);',
        'wait_mma<0>(acc);',
        'qgen_mbar_arrive(&bar.x_empty[here.xslot]);',
      ]),
      `${name}: consumer step`,
    );
  }
});

test.run();
