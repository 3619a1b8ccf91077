// The producer-B / register-A sm_90a GEMM (tiling.decode 'producer-b-register-a', templates/gemm_sm90_pdr.cu.hbs;
// bench/NOTES.md "Issue 16: A decoded in consumer registers (h-pdr)"): validation (a misspelt value is refused
// naming the field), layout and register split, naming and the tuner's space, deterministic rendering and explain,
// the hand-offs of its generated code (two fragment sets, the raw stage released by decoders and consumer warps),
// and (where cuobjdump is on PATH) its SASS: RS-form HGMMA (A from registers, two disjoint register sets), no local
// memory, no injected wgmma waits, the setmaxnreg split, and the static decode path per element of both roles.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Arch, GemmSpec } from '../dsl/types.ts';
import { catalogSpec } from '../dsl/catalog.ts';
import { derivedName, tunedGemmName } from '../dsl/naming.ts';
import { GEMM_TUNABLES } from '../dsl/tunables.ts';
import { validate } from '../validate/validate.ts';
import { gemmSpace } from '../validate/space.ts';
import { lower, type GemmPlan } from '../lower/lower.ts';
import { renderKernel } from '../render/render.ts';
import { loweringSteps } from '../render/explain.ts';
import { SM90_BLOCK_SMEM, SM90_PDR_DECODER_REGS, sm90PdSmemBytes } from '../arch/gemm_sm90.ts';
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

const PDR = 'gemm_nvfp4_bf16_128x256x64_pdr';
const PDP = 'gemm_nvfp4_bf16_128x256x64_pdp';
const base = () => catalogSpec(PDR, 'sm_90a') as GemmSpec;
const withTiling = (t: Partial<GemmSpec['tiling']>): GemmSpec => ({ ...base(), tiling: { ...base().tiling, ...t } });
const paths = (s: unknown, arch: Arch = 'sm_90a') => validate(s, arch, 'k').map((p) => `${p.path}: ${p.message}`);
const one = (s: unknown, path_: string, part: string, arch: Arch = 'sm_90a') => {
  const got = paths(s, arch);
  assert.is(got.length, 1, JSON.stringify(got));
  assert.ok(got[0].startsWith(`${path_}: `) && got[0].includes(part), got[0]);
  assert.not.ok(got[0].includes('\n'), 'one line');
};
const layoutOf = (spec: GemmSpec) => {
  const g = (lower(spec, 'sm_90a') as GemmPlan).gemm;
  assert.ok(g.arch === 'sm_90a');
  return g.layout;
};

test("validate: 'producer-b-register-a' on sm_90a only, M = 128, K = 64, N = 128 or 256, stages >= 3 that fit", () => {
  assert.equal(paths(base()), []);
  assert.equal(paths(withTiling({ ctaTile: [128, 128, 64], stages: 8 })), []);
  one(withTiling({ registerOperand: 'b' }), 'k.tiling.decode', "'producer-b-register-a' needs registerOperand 'a'");
  // the reason names what M = 128 is for here (the decoders hold B rows only)
  one(withTiling({ ctaTile: [64, 256, 64], consumers: 1 }), 'k.tiling.ctaTile[0]', 'must be 128');
  assert.match(paths(withTiling({ ctaTile: [64, 256, 64], consumers: 1 })).join('\n'), /128-row A scale block/);
  one(withTiling({ ctaTile: [128, 256, 128], stages: 4 }), 'k.tiling.ctaTile[2]', "must be 64 with decode 'producer-b");
  one(withTiling({ ctaTile: [128, 64, 64], stages: 4 }), 'k.tiling.ctaTile[1]', 'must be 128 or 256');
  one(withTiling({ consumers: 1, ctaTile: [128, 128, 64] }), 'k.tiling.consumers', "must be 2 with decode 'producer-b");
  // 3 bf16 B tiles of 256 rows x 128 B = 98304 B + 9 raw stages of 13824 B + barriers fit in 232448 B; 10 do not
  assert.equal(paths(withTiling({ stages: 9 })), []);
  one(withTiling({ stages: 10 }), 'k.tiling.stages', 'of shared memory');
  one(withTiling({ stages: 2 }), 'k.tiling.stages', 'must be at least 3');
  for (const arch of ['sm_100a', 'sm_120a'] as const) {
    const spec = catalogSpec('gemm_nvfp4_bf16', arch) as GemmSpec;
    const s = { ...spec, tiling: { ...spec.tiling, decode: 'producer-b-register-a' as const } };
    one(s, 'k.tiling.decode', `sm_90a only, not on ${arch}`, arch);
    assert.throws(() => lower(s, arch), /tiling\.decode: exists on/);
  }
});

test('validate: a misspelt decode value is refused with one line naming the field and the values', () => {
  for (const wrong of ['producer-b-registers-a', 'producer-register-a', 'producer_b_register_a', 'pdr']) {
    const s = { ...base(), tiling: { ...base().tiling, decode: wrong } };
    one(s, 'k.tiling.decode', "'producer-b-register-a'");
    assert.ok(paths(s)[0].includes(wrong), paths(s)[0]);
  }
});

test('layout + name: B-only ring, decoders 72 / consumers 216 registers, _pdr', () => {
  const L = layoutOf(base());
  assert.equal(
    [L.decode, L.bm, L.bn, L.bk, L.consumers, L.threads, L.ctasPerSm, L.rawStages, L.tileStages],
    ['producer-b-register-a', 128, 256, 64, 2, 384, 1, 8, 3],
  );
  // 168 at launch; the decoders keep 72 (2 B rows: 18 registers of the next K block), the two consumer warpgroups
  // get 168 + 128 * (168 - 72) / 256 = 216 for 128 accumulators + 2 x 16 A fragment registers
  assert.equal([L.launchRegs, L.decoderRegs, L.consumerRegs], [168, SM90_PDR_DECODER_REGS, 216]);
  // the ring holds B tiles only: 3 x 256 x 128 B; raw stages as 'producer-pipelined'
  assert.is(L.smemBytes, 3 * 256 * 128 + 8 * (384 * 32 + 3 * 512) + 8 * (2 * 8 + 2 * 3) + 1024);
  assert.is(L.smemBytes, sm90PdSmemBytes(128, 256, 64, 8, 'producer-b-register-a'));
  assert.ok(L.smemBytes <= SM90_BLOCK_SMEM);
  assert.is(sm90PdSmemBytes(128, 256, 64, 6, 'producer-pipelined'), 231568, "the 'producer-pipelined' numbers stay");
  const tile = (catalogSpec('gemm_nvfp4_bf16', 'sm_90a') as GemmSpec).tiling.ctaTile;
  assert.is(derivedName(base(), tile), PDR);
  assert.is(derivedName(catalogSpec(PDP, 'sm_90a') as GemmSpec, tile), PDP);
});

test("space: 'producer-b-register-a' is swept; its points are named _pdr and pruned where they do not fit", () => {
  assert.ok(GEMM_TUNABLES.sm_90a.decode.values.includes('producer-b-register-a'));
  const { candidates, pruned } = gemmSpace('sm_90a', catalogSpec('gemm_nvfp4_bf16', 'sm_90a') as GemmSpec);
  const pdr = candidates.filter((c) => c.tiling.decode === 'producer-b-register-a');
  const names = pdr.map((c) => c.name);
  for (const n of ['gemm_nvfp4_bf16_128x256x64_c2_s8_sw8_k1x1_pdr', 'gemm_nvfp4_bf16_128x128x64_c2_s8_sw8_k1x1_pdr']) {
    assert.ok(names.includes(n), names.join());
  }
  for (const c of pdr) {
    assert.ok(c.name.endsWith('_pdr') && c.name === tunedGemmName(c), c.name);
    assert.equal([c.tiling.ctaTile[0], c.tiling.ctaTile[2], c.tiling.consumers], [128, 64, 2], c.name);
    assert.ok(c.tiling.ctaTile[1] % 128 === 0, c.name);
  }
  // as many points as 'producer-pipelined' has, all pruned or kept with a reason
  const all = [...candidates, ...pruned].filter((c) => c.name.endsWith('_pdr'));
  assert.is(all.length, [...candidates, ...pruned].filter((c) => c.name.endsWith('_pdp')).length);
  const problem = (name: string) => pruned.find((p) => p.name === name)?.problem ?? '';
  assert.match(problem('gemm_nvfp4_bf16_128x128x128_c2_s4_sw8_k1x1_pdr'), /tiling\.ctaTile\[2\]: must be 64/);
  assert.match(problem('gemm_nvfp4_bf16_128x64x64_c2_s4_sw8_k1x1_pdr'), /tiling\.ctaTile\[1\]: must be 128 or 256/);
});

test('render: deterministic, the _pdr template, the committed generated text; explain says what differs', () => {
  const p = lower(base(), 'sm_90a') as GemmPlan;
  const src = renderKernel(p);
  assert.is(renderKernel(lower(base(), 'sm_90a') as GemmPlan), src, 'same plan, same text');
  assert.is(readFileSync(path.join('generated', 'sm_90a', `${PDR}.cu`), 'utf8'), src, 'generated/ is current');
  for (const line of [
    'constexpr int kRawStages = 8;',
    'constexpr int kConsumerRegs = 216;',
    'constexpr int kDecoderRegs = 72;',
    'constexpr int kTileBytes = kAtoms * kBAtomBytes;',
    'qgen_mbar_init(&bar.raw_empty[i], kRawEmptyArrivals);',
    'constexpr int kRawEmptyArrivals = kDecoderThreads + 4 * kConsumers;',
    'wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16',
    'if (attributes.numRegs != kLaunchRegs)',
  ])
    assert.ok(src.includes(line), line);
  // RS form: four A registers in braces before the B descriptor, no A descriptor
  assert.match(src, /"\{%128, %129, %130, %131\}, %132, accumulate, 1, 1, 0;/);
  assert.not.ok(src.includes('wgmma_ss(') || src.includes('a_tile('), 'no SS wgmma, no bf16 A tile');
  const steps = loweringSteps(p).join('\n');
  for (const part of [
    "Producer-side B decode, A in consumer registers (tiling.decode 'producer-b-register-a')",
    'decoder warpgroup (B only; lanes 0 of its warps 0-2 issue TMA)',
    'lane 0 of every consumer warp once the warp decoded its A fragments',
    'a ring of 3 dequantized bf16 B tiles',
    'decode the A of block k + 1 into the other set',
    'setmaxnreg: decoders 72, consumers 216',
  ])
    assert.ok(steps.includes(part), part);
});

test('generated: RS wgmma on set k mod 2, wait to one group, then block k + 1 decoded into the other set', () => {
  const src = readFileSync(path.join('generated', 'sm_90a', `${PDR}.cu`), 'utf8');
  const step = functionBody(src, 'consumer_step');
  assert.is(
    outOfOrder(step, [
      'qgen_mbar_wait(&bar.tile_full[c.tslot], c.tphase);',
      'issue_mma(smem, c.tslot, frag[kSet], acc, c.kb == 0);',
      // the wgmmas of the previous K block (the other set's last reader) complete before that set is written
      'wait_mma<1>(acc);',
      'if (held != kNoTile) release_tile(bar, held);',
      'qgen_mbar_wait(&bar.raw_full[a.slot], a.phase);',
      'load_a_fragments(smem, bar, g, a, lanes, frag[kSet ^ 1]);',
      'a.next(g);',
      'if (c.kb == g.ksteps - 1) {',
      'wait_mma<0>(acc);',
      'release_tile(bar, c.tslot);',
      'store_tile(args, at, consumer, alpha, acc);',
    ]),
    '',
  );
  // the only writes of a fragment set: load_a_fragments, after the wait; issue_mma only reads
  assert.is((step.match(/frag\[kSet \^ 1\]/g) ?? []).length, 1);
  assert.match(functionBody(src, 'issue_mma'), /const Fragments& frag/);
  const kernel = functionBody(src, 'gemm');
  const consumer = kernel.slice(kernel.indexOf('setmaxnreg.inc'));
  assert.is(
    outOfOrder(consumer, [
      'qgen_mbar_wait(&bar.raw_full[a.slot], a.phase);',
      'load_a_fragments(smem, bar, g, a, lanes, frag[0]);',
      'consumer_step<0>(',
      'consumer_step<1>(',
      'qgen_wgmma_wait<0>();',
    ]),
    '',
  );
  // the consumers read a raw stage only in load_a_fragments (A codes and scales), then the warp releases it
  const load = functionBody(src, 'load_a_fragments');
  assert.is(
    outOfOrder(load, ['kOffRawA', 'kOffScaleA', 'frag[4 * s + r] =', '__syncwarp();', 'raw_empty[a.slot]']),
    '',
  );
  assert.not.ok(/kOffRawB|kOffScaleB/.test(load));
  // the decoders never touch A: B rows only
  const decoder = kernel.slice(kernel.indexOf('setmaxnreg.dec'), kernel.indexOf('setmaxnreg.inc'));
  for (const f of ['load_task', 'decode_task'])
    assert.not.ok(/kOffRawA|kOffScaleA|kAAtomBytes/.test(functionBody(src, f)));
  assert.is(
    outOfOrder(decoder.slice(decoder.indexOf('for (int32_t step = 0;')), [
      'qgen_mbar_wait(&bar.tile_empty[c.tslot], c.tphase ^ 1u);',
      'decode_task(task[t], mult[t], chunk, t);',
      'qgen_fence_proxy_async();',
      'qgen_mbar_arrive(&bar.tile_full[c.tslot]);',
      'qgen_mbar_arrive(&bar.raw_empty[c.slot]);',
      'qgen_mbar_wait(&bar.raw_empty[load.slot], load.phase ^ 1u);',
      'issue_loads(part, &map_a, &map_b, args, g, smem, bar, load);',
    ]),
    '',
  );
  // the copies, the B decode arithmetic and the epilogue are the 'producer-pipelined' kernel's
  const pdp = readFileSync(path.join('generated', 'sm_90a', `${PDP}.cu`), 'utf8');
  for (const f of ['issue_loads', 'wait_mma', 'store_tile', 'release_tile']) {
    assert.is(functionBody(src, f), functionBody(pdp, f), f);
  }
});

// ---------------------------------------------------------------------------------------------------------------
// SASS (cuobjdump reads sm_90a cubins; without it the test says so and checks nothing).

test('SASS: RS HGMMA on two register sets, no local memory or injected waits, setmaxnreg 72/216', async () => {
  if (await skipWithoutCuobjdump()) return;
  const L = layoutOf(base());
  const sass = await sm90KernelSass(PDR);
  assert.is(buildProblems(sass, L.launchRegs), '');
  const { lines, dealloc } = sass;
  assert.is(setmaxnregProblems(sass, L.decoderRegs, L.consumerRegs), '');
  const consumerLines = lines.slice(0, dealloc);
  const decoderLines = lines.slice(dealloc);
  assert.ok(
    topRegister(decoderLines) < L.decoderRegs,
    `decoder uses R${topRegister(decoderLines)}, share ${L.decoderRegs}`,
  );
  assert.ok(
    topRegister(consumerLines) < L.consumerRegs,
    `consumer uses R${topRegister(consumerLines)}, share ${L.consumerRegs}`,
  );

  // RS form: "HGMMA.64x256x16.F32.BF16 Rd, Ra, gdesc[URb], ..." (SS: "Rd, gdesc[URa], ..."); 4 per K block per
  // fragment set, the sets' A registers disjoint (the next K block's set is written while the other is read)
  const hgmma = lines.filter((l) => l.includes('HGMMA.64x256x16.F32.BF16'));
  assert.is(hgmma.length, 8);
  const a = hgmma.map((l) => /HGMMA\.64x256x16\.F32\.BF16 R\d+, R(\d+), gdesc\[/.exec(l)?.[1]);
  assert.ok(
    a.every((r) => r !== undefined),
    hgmma.join('\n'),
  );
  const sets = [new Set(a.slice(0, 4)), new Set(a.slice(4))];
  assert.ok(sets[0].size === 4 && sets[1].size === 4 && [...sets[0]].every((r) => !sets[1].has(r)), a.join());
  // one group in flight in the loop; full waits only at a tile's last K block (one per set) and after the loop
  assert.is(lines.filter((l) => l.includes('WARPGROUP.DEPBAR.LE gsb0, 0x1')).length, 2);
  assert.is(lines.filter((l) => l.includes('WARPGROUP.DEPBAR.LE gsb0, 0x0')).length, 3);

  // the consumers' A decode of a K block (per thread: 2 rows x 16 elements): from the wait for one group in flight
  // to the tile's-end test; 2 LDS.64 of codes, 2 LDS.U8 of scales, one bf16x2 product per 2 elements, no stores
  const first = consumerLines.findIndex((l) => l.includes('WARPGROUP.DEPBAR.LE gsb0, 0x1'));
  const end = consumerLines.findIndex((l, i) => i > first && l.includes('WARPGROUP.DEPBAR.LE gsb0, 0x0'));
  const products = consumerLines.slice(0, end).map((l, i) => (l.includes('HMUL2.BF16_V2') ? i : -1));
  const lastProduct = Math.max(...products);
  const aPath = consumerLines.slice(first + 1, lastProduct + 1).filter((l) => !/ NOP$/.test(l));
  const count = (re: RegExp) => aPath.filter((l) => re.test(l)).length;
  assert.equal(
    [count(/\bLDS\.64\b/), count(/\bLDS\.U8\b/), count(/\bLDS\s/), count(/\bSTS/), count(/\bHMUL2\.BF16_V2\b/)],
    [2, 2, 0, 0, 16],
  );
  const aPerElement = aPath.length / 32;
  console.log(`  ${PDR}: consumer A decode ${aPath.length} SASS / 32 elements = ${aPerElement.toFixed(2)}`);
  assert.ok(aPerElement <= 3.5, `${aPerElement.toFixed(2)} instructions per A element`);

  // the decoders: 2 B rows per K block (128 elements); 2 LDS.128 + 1 LDS and 8 STS.128 per row, one proxy fence
  const p = decoderPath(decoderLines);
  assert.ok(p, 'decoder loop not found');
  const c = p.counts;
  assert.equal([c.LDS, c['LDS.128'], c['STS.128'], c.HMUL2, c.MEMBAR, c.BAR], [6, 4, 16, 64, 1, 0]);
  const perElement = p.lines.length / 128;
  console.log(`  ${PDR}: decoder path ${p.lines.length} SASS / 128 elements = ${perElement.toFixed(2)}`);
  assert.ok(perElement <= 3.25, `${perElement.toFixed(2)} instructions per B element`);
  assert.equal(
    p.loads.filter((x) => x.distance < 150),
    [],
    'decoder loads read soon after issue',
  );
});

test.run();
