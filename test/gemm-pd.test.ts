// The producer-decode sm_90a GEMM (tiling.decode 'producer', templates/gemm_sm90_pd.cu.hbs; bench/NOTES.md "Issue
// 16: fused GEMM with producer-side decode"): validation, layout arithmetic, lowering and rendering, the hand-offs
// of its generated code, and (where cuobjdump is on PATH) what its SASS must keep: one asynchronous HGMMA group per K
// block, the setmaxnreg split, the decoders within their register share, and the decode's instructions per element.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Arch, GemmSpec } from '../dsl/types.ts';
import { catalogSpec } from '../dsl/catalog.ts';
import { validate } from '../validate/validate.ts';
import { gemmSpace } from '../validate/space.ts';
import { lower, type GemmPlan } from '../lower/lower.ts';
import { renderKernel } from '../render/render.ts';
import { gemmFacts } from '../render/facts.ts';
import { loweringSteps } from '../render/explain.ts';
import { tunedGemmName } from '../dsl/naming.ts';
import { SM90_BLOCK_SMEM, SM90_PD_DECODER_REGS, SM90_PD_TILE_STAGES, sm90PdSmemBytes } from '../arch/gemm_sm90.ts';
import {
  functionBody,
  haveCuobjdump,
  outOfOrder,
  setmaxnregProblems,
  sm90KernelSass,
  topRegister,
} from '../harness/kernel_text.ts';

const WIDE = 'gemm_nvfp4_bf16_128x256x64_pd';
const NARROW = 'gemm_nvfp4_bf16_pd';
const base = () => catalogSpec(WIDE, 'sm_90a') as GemmSpec;
const withTiling = (t: Partial<GemmSpec['tiling']>): GemmSpec => ({ ...base(), tiling: { ...base().tiling, ...t } });
const paths = (s: unknown, arch: Arch = 'sm_90a') => validate(s, arch, 'k').map((p) => `${p.path}: ${p.message}`);
/** The sm_90a layout of a catalog kernel. */
const layoutOf = (spec: GemmSpec | undefined) => {
  const g = (lower(spec!, 'sm_90a') as GemmPlan).gemm;
  assert.ok(g.arch === 'sm_90a');
  return g.layout;
};
const one = (s: unknown, path: string, part: string, arch: Arch = 'sm_90a') => {
  const got = paths(s, arch);
  assert.is(got.length, 1, JSON.stringify(got));
  assert.ok(got[0].startsWith(`${path}: `) && got[0].includes(part), got[0]);
};

test("validate: decode 'producer' on sm_90a with registerOperand 'a', M = 128, the stages that fit", () => {
  assert.equal(paths(base()), []);
  assert.equal(paths(catalogSpec(NARROW, 'sm_90a')), []);
  assert.equal(paths(withTiling({ decode: 'consumer', ctaTile: [128, 128, 64], stages: 8 })), []);
  one(withTiling({ decode: 'decoder' as never }), 'k.tiling.decode', "one of 'consumer' | 'producer'");
  one(withTiling({ registerOperand: 'b' }), 'k.tiling.decode', "needs registerOperand 'a'");
  one(withTiling({ ctaTile: [64, 256, 64], consumers: 1 }), 'k.tiling.ctaTile[0]', 'must be 128');
  // 3 bf16 tiles of (128 + 256) rows x 128 B = 147456 B leave room for 6 raw stages of 13824 B, not 7
  assert.equal(paths(withTiling({ stages: 6 })), []);
  one(withTiling({ stages: 7 }), 'k.tiling.stages', 'of shared memory');
  // K = 128: 3 tiles of 98304 B do not fit at all
  one(withTiling({ ctaTile: [128, 256, 128], stages: 2 }), 'k.tiling.stages', 'of shared memory');
  // one consumer warpgroup would hold 256 accumulators; with 128 (a 128x128 tile) it would have no registers to gain
  one(withTiling({ consumers: 1 }), 'k.tiling.consumers', 'would hold 256 fp32 accumulators');
  one(withTiling({ consumers: 1, ctaTile: [128, 128, 64] }), 'k.tiling.consumers', "must be 2 with decode 'producer'");
  // K = 192 fits in shared memory at n = 16 but has no TMA swizzle for its 96-byte code rows
  one(withTiling({ ctaTile: [128, 16, 192], stages: 2 }), 'k.tiling.ctaTile[2]', 'must be 64, 128 or 256');
  // the Blackwell kernels decode nothing: the field is refused there, whatever its value
  for (const arch of ['sm_100a', 'sm_120a'] as const) {
    const spec = catalogSpec('gemm_nvfp4_bf16', arch) as GemmSpec;
    for (const decode of ['producer', 'consumer'] as const) {
      one({ ...spec, tiling: { ...spec.tiling, decode } }, 'k.tiling.decode', `sm_90a only, not on ${arch}`, arch);
      // lowering refuses it too (a caller that skips validation gets the same field named, not a silent default)
      assert.throws(() => lower({ ...spec, tiling: { ...spec.tiling, decode } }, arch), /tiling\.decode: exists on/);
    }
  }
});

test('layout: threads, registers moved by setmaxnreg, the ring and shared memory within 227 KB', () => {
  const L = layoutOf(base());
  assert.equal(
    [L.decode, L.bm, L.bn, L.bk, L.consumers, L.slabs, L.threads, L.ctasPerSm],
    ['producer', 128, 256, 64, 2, 1, 384, 1],
  );
  // 12 warps: 3 per register-file quarter, 168 registers each; the decoders give up 168 - 56 for the two
  // consumer warpgroups: 168 + 128 * 112 / 256 = 224
  assert.equal([L.launchRegs, L.decoderRegs, L.consumerRegs], [168, SM90_PD_DECODER_REGS, 224]);
  assert.ok(128 * (L.launchRegs - L.decoderRegs) >= 256 * (L.consumerRegs - L.launchRegs));
  assert.is(L.tileStages, SM90_PD_TILE_STAGES);
  // 3 x (128 + 256) x 128 B tiles + 4 x (384 x 32 B codes + 3 scale blocks of 512 B) + 8 x (4 + 6) B barriers + slack
  assert.is(L.smemBytes, 3 * 384 * 128 + 4 * (384 * 32 + 3 * 512) + 8 * 10 + 1024);
  assert.is(L.smemBytes, sm90PdSmemBytes(128, 256, 64, 4));
  assert.ok(L.smemBytes <= SM90_BLOCK_SMEM);
  const N = layoutOf(catalogSpec(NARROW, 'sm_90a') as GemmSpec);
  assert.equal([N.bn, N.rawStages, N.consumerRegs], [128, 6, 224]);
  assert.ok(N.smemBytes <= SM90_BLOCK_SMEM);
  // the default (decode absent or 'consumer') keeps the consumer-decode layout: no setmaxnreg, 2 B tiles
  const plain = layoutOf(catalogSpec('gemm_nvfp4_bf16', 'sm_90a') as GemmSpec);
  assert.equal([plain.decode, plain.tileStages, plain.consumerRegs, plain.decoderRegs], ['consumer', 2, 0, 0]);
});

test('lower + render: the SS wgmma (both descriptors, runtime scale-d), the _pd template; others unchanged', () => {
  const p = lower(base(), 'sm_90a') as GemmPlan;
  const wgmma = String(gemmFacts(p).wgmmaFunction);
  assert.ok(wgmma.includes('wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16'), wgmma);
  assert.ok(wgmma.includes('"l"(a_desc), "l"(b_desc), "r"(accumulate)'), wgmma);
  assert.ok(wgmma.includes('accumulate, 1, 1, 0, 0;'), 'both operands K-major');
  const src = renderKernel(p);
  for (const line of [
    'constexpr int kTileStages = 3;',
    'constexpr int kConsumerRegs = 224;',
    'constexpr int kDecoderRegs = 56;',
    'constexpr int kThreads = 384;',
    'constexpr int kLaunchRegs = 168;',
    // a build with another launch allocation would hang in setmaxnreg.inc: the launcher refuses it
    'if (attributes.numRegs != kLaunchRegs)',
  ])
    assert.ok(src.includes(line), line);
  // qgen explain: who decodes, the ring, the SS wgmma and the register split
  const steps = loweringSteps(p).join('\n');
  for (const part of ["Producer-side decode (tiling.decode 'producer')", 'a ring of 3 dequantized bf16 A + B tiles']) {
    assert.ok(steps.includes(part), part);
  }
  assert.ok(steps.includes('4 SS wgmmas') && steps.includes('setmaxnreg: decoders 56, consumers 224'), steps);
  const plain = lower(catalogSpec('gemm_nvfp4_bf16', 'sm_90a')!, 'sm_90a') as GemmPlan;
  assert.not.ok(loweringSteps(plain).join('\n').includes('Producer-side decode'));
  assert.not.ok(renderKernel(plain).includes('wgmma_ss') || renderKernel(plain).includes('setmaxnreg.'));
});

test("space: decode is swept on sm_90a; 'producer' points are named _pd and pruned where the ring does not fit", () => {
  const { candidates, pruned } = gemmSpace('sm_90a', catalogSpec('gemm_nvfp4_bf16', 'sm_90a') as GemmSpec);
  const pd = candidates.filter((c) => c.tiling.decode === 'producer');
  assert.ok(
    pd.some((c) => c.name === 'gemm_nvfp4_bf16_128x256x64_c2_s4_sw8_k1x1_pd'),
    pd.map((c) => c.name).join(),
  );
  for (const c of pd) {
    assert.ok(c.name.endsWith('_pd') && c.name === tunedGemmName(c), c.name);
    assert.equal([c.tiling.ctaTile[0], c.tiling.consumers], [128, 2], c.name);
  }
  const problem = (name: string) => pruned.find((p) => p.name === name)?.problem ?? '';
  assert.match(problem('gemm_nvfp4_bf16_128x256x128_c2_s4_sw8_k1x1_pd'), /tiling\.stages: .*shared memory/);
  assert.match(problem('gemm_nvfp4_bf16_64x256x64_c1_s4_sw8_k1x1_pd'), /tiling\.ctaTile\[0\]/);
  assert.match(problem('gemm_nvfp4_bf16_128x64x64_c1_s4_sw8_k1x1_pd'), /tiling\.consumers: must be 2/);
});

test('generated producer-decode GEMMs keep their hand-offs: raw stages, the tile ring, wgmma completion', () => {
  for (const name of [WIDE, NARROW]) {
    const src = readFileSync(path.join('generated', 'sm_90a', `${name}.cu`), 'utf8');
    assert.match(src, /qgen_mbar_init\(&bar\.tile_full\[i\], kDecoderThreads\);/, name);
    assert.match(src, /qgen_mbar_init\(&bar\.tile_empty\[i\], 4 \* kConsumers\);/, name);
    const kernel = functionBody(src, 'gemm');
    // decoder: bytes landed and tile free -> decode -> proxy fence -> arrival; all decoders done with the raw stage
    // (named barrier) before thread 0 refills it
    const decoder = kernel.slice(kernel.indexOf('for (int32_t step = 0;'), kernel.indexOf('setmaxnreg.inc'));
    assert.is(
      outOfOrder(decoder, [
        'qgen_mbar_wait(&bar.raw_full[c.slot], c.phase);',
        'qgen_mbar_wait(&bar.tile_empty[c.tslot], c.tphase ^ 1u);',
        'decode_step(',
        'qgen_fence_proxy_async();',
        'qgen_mbar_arrive(&bar.tile_full[c.tslot]);',
        '"bar.sync %0, %1;" ::"n"(kDecoderBarrier), "n"(kDecoderThreads)',
        'issue_loads(&map_a, &map_b, args, g, smem, bar, load);',
      ]),
      '',
      name,
    );
    // consumer: wait for the tile, issue; release a tile only after a wait_group that covers its wgmmas (at a tile's
    // last K block all of them, else all but this block's)
    const consumer = kernel.slice(kernel.indexOf('setmaxnreg.inc'));
    const last = consumer.indexOf('if (c.kb == g.ksteps - 1) {');
    const other = consumer.indexOf('} else {');
    const issue = ['qgen_mbar_wait(&bar.tile_full[c.tslot], c.tphase);', 'issue_mma(smem', 'if (c.kb == g.ksteps - 1)'];
    assert.is(outOfOrder(consumer, issue), '', name);
    const lastOrder = ['wait_mma<0>(acc);', 'release_tile(bar, held);', 'release_tile(bar, c.tslot);', 'store_tile('];
    assert.is(outOfOrder(consumer.slice(last, other), lastOrder), '', name);
    assert.is(
      outOfOrder(consumer.slice(other), ['wait_mma<1>(acc);', 'release_tile(bar, held);', 'held = c.tslot;']),
      '',
      name,
    );
  }
});

// ---------------------------------------------------------------------------------------------------------------
// SASS (cuobjdump reads sm_90a cubins; CI and users may lack it: the test then says so and checks nothing).

test('SASS: an async HGMMA group per K block, setmaxnreg, decoder registers, <= 3 decode SASS / element', async () => {
  if (!(await haveCuobjdump())) {
    console.log('  (skipped: cuobjdump is not on PATH; the SASS checks need it)');
    return;
  }
  for (const name of [WIDE, NARROW]) {
    const L = layoutOf(catalogSpec(name, 'sm_90a') as GemmSpec);
    const k = await sm90KernelSass(name);
    const { lines, dealloc, registers, log } = k;
    // ptxas must not inject a full wgmma wait of its own (C7517): it would serialise every K block
    assert.not.match(log, /C7517/, `${name}: ptxas injected a warpgroup.wait`);
    const fullWaits = lines.filter((l) => l.includes('WARPGROUP.DEPBAR.LE gsb0, 0x0'));
    assert.is(fullWaits.length, 2, `${name}: full waits only at a tile's last K block and before exit`);
    assert.ok(dealloc > 0, `${name}: no setmaxnreg.dec`);
    // the launch allocation the setmaxnreg split is computed from (the launcher refuses any other build)
    assert.is(registers, L.launchRegs, `${name}: ptxas registers`);
    assert.is(setmaxnregProblems(k, L.decoderRegs, L.consumerRegs), '', name);
    // the consumers' K loop: kAtoms * 4 HGMMAs of m64nN (one commit group), waited to <= 1 in flight
    const hgmma = lines.filter((l) => l.includes(`HGMMA.64x${L.bn}x16.F32.BF16`));
    assert.is(hgmma.length, (L.bk / 64) * 4 * L.slabs, name);
    assert.ok(
      lines.some((l) => l.includes('WARPGROUP.DEPBAR.LE gsb0, 0x1')),
      `${name}: no wgmma left in flight`,
    );
    // the decoders never touch a register at or above their setmaxnreg.dec share
    const decoder = lines.slice(dealloc);
    const top = topRegister(decoder);
    assert.ok(top < L.decoderRegs, `${name}: decoder uses R${top}, share ${L.decoderRegs}`);
    // the decode path of one K block: from the loop head (the raw_full wait) through the decoders' named barrier
    const head = decoder.findIndex((l) => /SYNCS\.PHASECHK\.TRANS64\.TRYWAIT P\d, \[UR\d+\+0x[0-9a-f]+\]/.test(l));
    const barrier = decoder.findIndex((l) => l.includes('BAR.SYNC.DEFER_BLOCKING 0x1, 0x80'));
    assert.ok(head > 0 && barrier > head, `${name}: decoder loop not found`);
    const elements = ((L.bm + L.bn) * L.bk) / 128; // per decoder thread and K block
    const path_ = decoder.slice(head, barrier + 1).filter((l) => !/ NOP$/.test(l));
    const hmul = path_.filter((l) => l.includes('HMUL2.BF16_V2')).length;
    assert.is(hmul, elements / 2, `${name}: one bf16x2 scale product per two elements`);
    const perElement = path_.length / elements;
    console.log(
      `  ${name}: decode path ${path_.length} SASS instructions / ${elements} elements = ${perElement.toFixed(2)}`,
    );
    assert.ok(perElement <= 3, `${name}: ${perElement.toFixed(2)} instructions per element`);
  }
});

test.run();
