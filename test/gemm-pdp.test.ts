// The pipelined producer-decode sm_90a GEMM (tiling.decode 'producer-pipelined', templates/gemm_sm90_pdp.cu.hbs;
// bench/NOTES.md "Issue 16: latency-tolerant decoder (h-pd3)"): validation, layout, naming and the tuner's space,
// deterministic rendering, the hand-offs of its generated code (register prefetch, raw_empty mbarrier), and (where
// cuobjdump is on PATH) its SASS: no local memory, the setmaxnreg split, the decoders within their share, the decode
// path's instructions per element and every shared-memory load a K block ahead of its first use (against the
// 'producer' kernel, whose loads are used within a few instructions).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Arch, GemmSpec } from '../dsl/types.ts';
import { catalogSpec } from '../dsl/catalog.ts';
import { derivedName, tunedGemmName } from '../dsl/naming.ts';
import { GEMM_TUNABLES, gemmTilingPoints } from '../dsl/tunables.ts';
import { validate } from '../validate/validate.ts';
import { gemmSpace } from '../validate/space.ts';
import { lower, type GemmPlan } from '../lower/lower.ts';
import { renderKernel } from '../render/render.ts';
import { loweringSteps } from '../render/explain.ts';
import { SM90_BLOCK_SMEM, SM90_PDP_DECODER_REGS, sm90PdSmemBytes } from '../arch/gemm_sm90.ts';
import { decoderPath } from '../harness/sass_decoder.ts';
import {
  buildProblems,
  functionBody,
  outOfOrder,
  setmaxnregProblems,
  skipWithoutCuobjdump,
  sm90KernelSass,
  topRegister,
} from '../harness/kernel_text.ts';

const PDP = 'gemm_nvfp4_bf16_128x256x64_pdp';
const PD = 'gemm_nvfp4_bf16_128x256x64_pd';
const base = () => catalogSpec(PDP, 'sm_90a') as GemmSpec;
const withTiling = (t: Partial<GemmSpec['tiling']>): GemmSpec => ({ ...base(), tiling: { ...base().tiling, ...t } });
const paths = (s: unknown, arch: Arch = 'sm_90a') => validate(s, arch, 'k').map((p) => `${p.path}: ${p.message}`);
const one = (s: unknown, path_: string, part: string, arch: Arch = 'sm_90a') => {
  const got = paths(s, arch);
  assert.is(got.length, 1, JSON.stringify(got));
  assert.ok(got[0].startsWith(`${path_}: `) && got[0].includes(part), got[0]);
};
const layoutOf = (spec: GemmSpec) => {
  const g = (lower(spec, 'sm_90a') as GemmPlan).gemm;
  assert.ok(g.arch === 'sm_90a');
  return g.layout;
};

test("validate: 'producer-pipelined' on sm_90a only, with M = 128, K = 64, N = 128 or 256, the stages that fit", () => {
  assert.equal(paths(base()), []);
  assert.equal(paths(withTiling({ ctaTile: [128, 128, 64], stages: 8 })), []);
  one(withTiling({ registerOperand: 'b' }), 'k.tiling.decode', "'producer-pipelined' needs registerOperand 'a'");
  one(withTiling({ ctaTile: [64, 256, 64], consumers: 1 }), 'k.tiling.ctaTile[0]', 'must be 128');
  // one K block of a thread's rows in registers: 64-wide K blocks only (K = 128 would also fit at N = 128)
  one(withTiling({ ctaTile: [128, 128, 128], stages: 4 }), 'k.tiling.ctaTile[2]', "must be 64 with decode 'producer-");
  one(withTiling({ ctaTile: [128, 64, 64], stages: 4 }), 'k.tiling.ctaTile[1]', 'must be 128 or 256');
  one(withTiling({ consumers: 1, ctaTile: [128, 128, 64] }), 'k.tiling.consumers', "must be 2 with decode 'producer-");
  // 3 bf16 tiles of 384 rows x 128 B = 147456 B + 6 raw stages of 13824 B + 8 x (2 x 6 + 2 x 3) B barriers fit in
  // 232448 B; 7 stages do not
  one(withTiling({ stages: 7 }), 'k.tiling.stages', 'of shared memory');
  // K block j + 1 is waited for while j is decoded and copied one K block after its stage's release: 2 would deadlock
  one(withTiling({ stages: 2 }), 'k.tiling.stages', 'must be at least 3');
  assert.equal(paths(withTiling({ stages: 3 })), []);
  for (const arch of ['sm_100a', 'sm_120a'] as const) {
    const spec = catalogSpec('gemm_nvfp4_bf16', arch) as GemmSpec;
    const s = { ...spec, tiling: { ...spec.tiling, decode: 'producer-pipelined' as const } };
    one(s, 'k.tiling.decode', `sm_90a only, not on ${arch}`, arch);
    assert.throws(() => lower(s, arch), /tiling\.decode: exists on/);
  }
});

test('layout + name: the decoders keep 88 registers (27 hold the next K block), raw_empty barriers, _pdp', () => {
  const L = layoutOf(base());
  assert.equal(
    [L.decode, L.bm, L.bn, L.bk, L.consumers, L.threads, L.ctasPerSm, L.rawStages, L.tileStages],
    ['producer-pipelined', 128, 256, 64, 2, 384, 1, 6, 3],
  );
  // 168 at launch; the decoders give up 168 - 88 for the two consumer warpgroups: 168 + 128 * 80 / 256 = 208
  assert.equal([L.launchRegs, L.decoderRegs, L.consumerRegs], [168, SM90_PDP_DECODER_REGS, 208]);
  assert.is(L.smemBytes, 3 * 384 * 128 + 6 * (384 * 32 + 3 * 512) + 8 * (2 * 6 + 2 * 3) + 1024);
  assert.is(L.smemBytes, sm90PdSmemBytes(128, 256, 64, 6, 'producer-pipelined'));
  assert.ok(L.smemBytes <= SM90_BLOCK_SMEM);
  // the 'producer' kernel's numbers are not touched by the new value
  assert.is(sm90PdSmemBytes(128, 256, 64, 4), 3 * 384 * 128 + 4 * (384 * 32 + 3 * 512) + 8 * 10 + 1024);
  const tile = (catalogSpec('gemm_nvfp4_bf16', 'sm_90a') as GemmSpec).tiling.ctaTile;
  assert.is(derivedName(base(), tile), PDP);
  assert.is(derivedName(catalogSpec(PD, 'sm_90a') as GemmSpec, tile), PD);
});

test("space: 'producer-pipelined' is swept; its points are named _pdp and pruned where they do not fit", () => {
  assert.ok(GEMM_TUNABLES.sm_90a.decode.values.includes('producer-pipelined'));
  for (const arch of ['sm_100a', 'sm_120a'] as const) {
    assert.not.ok(
      gemmTilingPoints(arch).some((t) => t.decode !== undefined && t.decode !== 'consumer'),
      arch,
    );
  }
  const { candidates, pruned } = gemmSpace('sm_90a', catalogSpec('gemm_nvfp4_bf16', 'sm_90a') as GemmSpec);
  const pdp = candidates.filter((c) => c.tiling.decode === 'producer-pipelined');
  const names = pdp.map((c) => c.name);
  for (const n of ['gemm_nvfp4_bf16_128x256x64_c2_s6_sw8_k1x1_pdp', 'gemm_nvfp4_bf16_128x128x64_c2_s8_sw8_k1x1_pdp']) {
    assert.ok(names.includes(n), names.join());
  }
  for (const c of pdp) {
    assert.ok(c.name.endsWith('_pdp') && c.name === tunedGemmName(c), c.name);
    assert.equal([c.tiling.ctaTile[0], c.tiling.ctaTile[2], c.tiling.consumers], [128, 64, 2], c.name);
    assert.ok(c.tiling.ctaTile[1] % 128 === 0, c.name);
  }
  // as many points as 'producer' has, all pruned or kept with a reason
  const all = [...candidates, ...pruned].filter((c) => c.name.endsWith('_pdp'));
  assert.is(all.length, [...candidates, ...pruned].filter((c) => c.name.endsWith('_pd')).length);
  const problem = (name: string) => pruned.find((p) => p.name === name)?.problem ?? '';
  assert.match(problem('gemm_nvfp4_bf16_128x256x64_c2_s8_sw8_k1x1_pdp'), /tiling\.stages: .*shared memory/);
  assert.match(problem('gemm_nvfp4_bf16_128x128x128_c2_s4_sw8_k1x1_pdp'), /tiling\.ctaTile\[2\]: must be 64/);
  assert.match(problem('gemm_nvfp4_bf16_128x64x64_c2_s4_sw8_k1x1_pdp'), /tiling\.ctaTile\[1\]: must be 128 or 256/);
});

test('render: deterministic, the _pdp template, the committed generated text; explain says what differs', () => {
  const p = lower(base(), 'sm_90a') as GemmPlan;
  const src = renderKernel(p);
  assert.is(renderKernel(lower(base(), 'sm_90a') as GemmPlan), src, 'same plan, same text');
  assert.is(readFileSync(path.join('generated', 'sm_90a', `${PDP}.cu`), 'utf8'), src, 'generated/ is current');
  for (const line of [
    'constexpr int kRawStages = 6;',
    'constexpr int kConsumerRegs = 208;',
    'constexpr int kDecoderRegs = 88;',
    'qgen_mbar_init(&bar.raw_full[i], kIssuers);',
    'qgen_mbar_init(&bar.raw_empty[i], kDecoderThreads);',
    'if (attributes.numRegs != kLaunchRegs)',
  ])
    assert.ok(src.includes(line), line);
  assert.not.ok(src.includes('bar.sync'), 'no named barrier in the decoders');
  const steps = loweringSteps(p).join('\n');
  for (const part of [
    "Pipelined producer-side decode (tiling.decode 'producer-pipelined')",
    "lanes 0 of decoder warps 0-2 refill the previous K block's stage",
    'loaded from the raw stage one K block before their decode',
    'setmaxnreg: decoders 88, consumers 208',
  ])
    assert.ok(steps.includes(part), part);
  const pd = loweringSteps(lower(catalogSpec(PD, 'sm_90a') as GemmSpec, 'sm_90a')).join('\n');
  assert.not.ok(pd.includes('Pipelined') || pd.includes('raw empty'), pd);
});

test('generated: the decoders wait, decode from registers, fence, release, load the next K block; 3 issuers', () => {
  const src = readFileSync(path.join('generated', 'sm_90a', `${PDP}.cu`), 'utf8');
  const kernel = functionBody(src, 'gemm');
  const decoder = kernel.slice(kernel.indexOf('setmaxnreg.dec'), kernel.indexOf('setmaxnreg.inc'));
  // prologue: the first K block's stage is waited for before its loads
  assert.is(
    outOfOrder(decoder, [
      'qgen_mbar_wait(&bar.raw_full[0], 0);',
      'load_task<true>(task[t], smem, 0, t, dtid, lanes);',
      'load_task<false>(task[t], smem, 0, t, dtid, lanes);',
    ]),
    '',
  );
  const loop = decoder.slice(decoder.indexOf('for (int32_t step = 0;'));
  // this K block's multipliers are made before the next block's scales overwrite their registers, and those are
  // loaded only once the next stage has landed; the tile is free before it is written; the proxy fence and the
  // tile_full arrival follow the last task's stores; the stage is released after its last register is used
  assert.is(
    outOfOrder(loop, [
      'qgen_fp4_row_multipliers_x2(task[t].scales, inside, mult[t]);',
      'qgen_mbar_wait(&bar.raw_full[next_slot], next_phase);',
      'load_task<false>(task[t], smem, next_slot, t, dtid, lanes);',
      'qgen_mbar_wait(&bar.tile_empty[c.tslot], c.tphase ^ 1u);',
      'decode_task(task[t], mult[t], chunk, t);',
      'if (t == kTasks - 1) {',
      'qgen_fence_proxy_async();',
      'qgen_mbar_arrive(&bar.tile_full[c.tslot]);',
      'qgen_mbar_arrive(&bar.raw_empty[c.slot]);',
      'if (more) load_task<true>(task[t], smem, next_slot, t, dtid, lanes);',
      // the issuers (lanes 0 of warps 0-2): the previous K block's stage, after every decoder released it
      'if (issuer && step > 0 && loaded < steps) {',
      'qgen_mbar_wait(&bar.raw_empty[load.slot], load.phase ^ 1u);',
      'issue_loads(part, &map_a, &map_b, args, g, smem, bar, load);',
    ]),
    '',
  );
  assert.match(loop.slice(0, loop.indexOf('qgen_mbar_wait(&bar.raw_full')), /if \(more\) \{\s*$/);
  // each issuer arrives once per K block with its part's bytes; the parts together copy what the _pd kernel copies
  const issue = functionBody(src, 'issue_loads');
  assert.is((issue.match(/qgen_mbar_arrive_expect_tx\(full, /g) ?? []).length, 3);
  for (const part of ['kRawABytes + 512 * atoms', 'kRawBBytes', '512 * atoms * b_row_blocks']) {
    assert.ok(issue.includes(`qgen_mbar_arrive_expect_tx(full, ${part});`), part);
  }
  assert.is((issue.match(/qgen_tma_load_2d\(/g) ?? []).length, 2);
  assert.is((issue.match(/qgen_bulk_load\(/g) ?? []).length, 2);
  // decode_task reads registers only: every shared-memory read of a raw stage is in load_task
  assert.not.ok(/smem|kOffRaw|kOffScale/.test(functionBody(src, 'decode_task')));
  // the consumers are the 'producer' kernel's, unchanged
  const pd = readFileSync(path.join('generated', 'sm_90a', `${PD}.cu`), 'utf8');
  const consumer = (s: string) => {
    const k = functionBody(s, 'gemm');
    return k.slice(k.indexOf('setmaxnreg.inc'));
  };
  assert.is(consumer(src), consumer(pd));
  for (const f of ['issue_mma', 'wait_mma', 'store_tile', 'release_tile']) {
    assert.is(functionBody(src, f), functionBody(pd, f), f);
  }
});

// ---------------------------------------------------------------------------------------------------------------
// SASS (cuobjdump reads sm_90a cubins; without it the test says so and checks nothing).

test('SASS: no local memory, setmaxnreg 88/208, loads a K block ahead of their use, <= 3 / element', async () => {
  if (await skipWithoutCuobjdump()) return;
  const L = layoutOf(base());
  const sass = await sm90KernelSass(PDP);
  assert.is(buildProblems(sass, L.launchRegs, /C7517/), '');
  const { lines, dealloc } = sass;
  assert.is(lines.filter((l) => l.includes('WARPGROUP.DEPBAR.LE gsb0, 0x0')).length, 2);
  assert.is(lines.filter((l) => l.includes('HGMMA.64x256x16.F32.BF16')).length, 4);
  assert.is(setmaxnregProblems(sass, L.decoderRegs, L.consumerRegs), '');
  const decoder = lines.slice(dealloc);
  const top = topRegister(decoder);
  assert.ok(top < L.decoderRegs, `decoder uses R${top}, share ${L.decoderRegs}`);
  assert.not.ok(
    decoder.some((l) => l.includes('BAR.SYNC')),
    'no named barrier in the decoders',
  );

  const p = decoderPath(decoder);
  assert.ok(p, 'decoder loop not found');
  const elements = ((L.bm + L.bn) * L.bk) / 128; // 192 per decoder thread and K block
  const c = p.counts;
  // 3 rows: 2 LDS.128 + 1 LDS each; 8 STS.128 each; one bf16x2 product per 2 elements; one proxy fence
  assert.equal([c.LDS, c['LDS.128'], c['STS.128'], c.HMUL2, c.MEMBAR, c.BAR], [9, 6, 24, elements / 2, 1, 0]);
  const perElement = p.lines.length / elements;
  console.log(`  ${PDP}: decode path ${p.lines.length} SASS / ${elements} elements = ${perElement.toFixed(2)}`);
  assert.ok(perElement <= 3, `${perElement.toFixed(2)} instructions per element`);
  // every shared-memory load is issued at least 200 instructions before its result is first read (the 'producer'
  // kernel: within 20)
  const near = p.loads.filter((x) => x.distance < 200);
  assert.equal(near, [], 'loads read soon after issue');
  console.log(`  load -> first use: ${Math.min(...p.loads.map((x) => x.distance))} instructions at least`);

  const pd = await sm90KernelSass(PD);
  const q = decoderPath(pd.lines.slice(pd.dealloc));
  assert.ok(q && q.loads.length === 9 && q.loads.every((x) => x.distance < 20), JSON.stringify(q?.loads));
  console.log(
    `  ${PD}: decode path ${q.lines.length} SASS, load -> first use at most ` +
      `${Math.max(...q.loads.map((x) => x.distance))}`,
  );
});

test.run();
