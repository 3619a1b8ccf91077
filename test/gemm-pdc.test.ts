// The cluster-shared B decode sm_90a GEMM (tiling.decode 'producer-cluster', cluster [2, 1],
// templates/gemm_sm90_pdc.cu.hbs; bench/NOTES.md "Issue 16: cluster-shared B decode (h-pd4)"): validation, layout,
// naming and the tuner's space, deterministic rendering, the cross-CTA hand-offs of its generated code (remote
// stores, remote arrivals, cluster-scope waits, cluster barriers, cluster launch) and (where cuobjdump is on PATH) its
// SASS: no local memory, the setmaxnreg split, the remote stores and cluster barriers, fewer decode instructions per
// K block than the 'producer-pipelined' kernel it shares everything else with.
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
import { benchFits } from '../harness/gpu/gemm_bench.ts';
import {
  buildProblems,
  functionBody,
  outOfOrder,
  setmaxnregProblems,
  skipWithoutCuobjdump,
  sm90KernelSass,
  topRegister,
} from '../harness/kernel_text.ts';

const PDC = 'gemm_nvfp4_bf16_128x256x64_pdc';
const PDP = 'gemm_nvfp4_bf16_128x256x64_pdp';
const base = () => catalogSpec(PDC, 'sm_90a') as GemmSpec;
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

test("validate: 'producer-cluster' on sm_90a only, with cluster [2, 1], tile 128x256x64, the stages that fit", () => {
  assert.equal(paths(base()), []);
  assert.equal(paths(withTiling({ stages: 3 })), []);
  one(withTiling({ registerOperand: 'b' }), 'k.tiling.decode', "'producer-cluster' needs registerOperand 'a'");
  // the two CTAs of a cluster share the B slab along M: [2, 1] exactly
  one(withTiling({ cluster: [1, 1] }), 'k.tiling.cluster[0]', "with decode 'producer-cluster'");
  one(withTiling({ cluster: [2, 2] }), 'k.tiling.cluster[1]', "with decode 'producer-cluster'");
  // and no other tiling has a cluster on sm_90a
  const pdp = catalogSpec(PDP, 'sm_90a') as GemmSpec;
  assert.ok(
    paths({ ...pdp, tiling: { ...pdp.tiling, cluster: [2, 1] } }).some((p) => p.startsWith('k.tiling.cluster')),
  );
  // half of the B slab per CTA, one row per decoder thread: N = 256 only
  one(withTiling({ ctaTile: [128, 128, 64] }), 'k.tiling.ctaTile[1]', 'must be 256');
  one(withTiling({ ctaTile: [128, 256, 128], stages: 4 }), 'k.tiling.ctaTile[2]', "must be 64 with decode 'producer-");
  one(withTiling({ stages: 2 }), 'k.tiling.stages', 'must be at least 3');
  // 3 bf16 tiles of 384 rows x 128 B + 9 raw stages of 9216 B + barriers fit in 232448 B; 10 do not
  assert.equal(paths(withTiling({ stages: 9 })), []);
  one(withTiling({ stages: 10 }), 'k.tiling.stages', 'of shared memory');
  for (const arch of ['sm_100a', 'sm_120a'] as const) {
    const spec = catalogSpec('gemm_nvfp4_bf16', arch) as GemmSpec;
    const s = { ...spec, tiling: { ...spec.tiling, decode: 'producer-cluster' as const } };
    assert.ok(
      paths(s, arch).some((p) => p.startsWith('k.tiling.decode: ') && p.includes(`sm_90a only, not on ${arch}`)),
      arch,
    );
  }
});

test('layout + name: raw stages hold half the B slab, the pipelined decoder registers, _pdc', () => {
  const L = layoutOf(base());
  assert.equal(
    [L.decode, L.bm, L.bn, L.bk, L.consumers, L.threads, L.ctasPerSm, L.rawStages, L.tileStages],
    ['producer-cluster', 128, 256, 64, 2, 384, 1, 8, 3],
  );
  assert.equal([L.launchRegs, L.decoderRegs, L.consumerRegs], [168, SM90_PDP_DECODER_REGS, 208]);
  // the tiles are whole (each CTA holds both B halves), a raw stage holds A (128 rows) + half of B (128 rows) codes
  // and one scale block each
  assert.is(L.smemBytes, 3 * 384 * 128 + 8 * (256 * 32 + 2 * 512) + 8 * (2 * 8 + 2 * 3) + 1024);
  assert.is(L.smemBytes, sm90PdSmemBytes(128, 256, 64, 8, 'producer-cluster'));
  assert.ok(L.smemBytes <= SM90_BLOCK_SMEM);
  const tile = (catalogSpec('gemm_nvfp4_bf16', 'sm_90a') as GemmSpec).tiling.ctaTile;
  assert.is(derivedName(base(), tile), PDC);
  assert.ok(benchFits(base(), 8192) && !benchFits(base(), 64));
});

test("space: 'producer-cluster' is swept with cluster [2, 1]; its points are named _k2x1_pdc", () => {
  assert.ok(GEMM_TUNABLES.sm_90a.decode.values.includes('producer-cluster'));
  const points = gemmTilingPoints('sm_90a');
  for (const t of points) assert.is(t.decode === 'producer-cluster', t.cluster[0] === 2, JSON.stringify(t));
  const { candidates, pruned } = gemmSpace('sm_90a', catalogSpec('gemm_nvfp4_bf16', 'sm_90a') as GemmSpec);
  const pdc = candidates.filter((c) => c.tiling.decode === 'producer-cluster');
  const names = pdc.map((c) => c.name);
  for (const n of ['gemm_nvfp4_bf16_128x256x64_c2_s6_sw8_k2x1_pdc', 'gemm_nvfp4_bf16_128x256x64_c2_s8_sw8_k2x1_pdc'])
    assert.ok(names.includes(n), names.join());
  for (const c of pdc) {
    assert.ok(c.name === tunedGemmName(c), c.name);
    assert.equal([c.tiling.ctaTile, c.tiling.consumers, c.tiling.cluster], [[128, 256, 64], 2, [2, 1]], c.name);
  }
  const all = [...candidates, ...pruned].filter((c) => c.name.endsWith('_pdc'));
  assert.is(all.length, [...candidates, ...pruned].filter((c) => c.name.endsWith('_pdp')).length);
  const problem = (name: string) => pruned.find((p) => p.name === name)?.problem ?? '';
  assert.match(problem('gemm_nvfp4_bf16_128x128x64_c2_s4_sw8_k2x1_pdc'), /tiling\.ctaTile\[1\]: must be 256/);
});

test('render: deterministic, the _pdc template, the committed generated text; explain says what differs', () => {
  const p = lower(base(), 'sm_90a') as GemmPlan;
  const src = renderKernel(p);
  assert.is(renderKernel(lower(base(), 'sm_90a') as GemmPlan), src, 'same plan, same text');
  assert.is(readFileSync(path.join('generated', 'sm_90a', `${PDC}.cu`), 'utf8'), src, 'generated/ is current');
  for (const line of [
    'constexpr int kRawStages = 8;',
    'constexpr int kClusterM = 2;',
    'qgen_mbar_init(&bar.tile_full[i], kDecoderThreads + kDecoderThreads / 32);',
    'qgen_mbar_init(&bar.tile_empty[i], kClusterM * 4 * kConsumers);',
    'cluster_dim.id = cudaLaunchAttributeClusterDimension;',
    'cudaOccupancyMaxActiveClusters(&fit, gemm, &config)',
    'cudaLaunchKernelEx(&config, gemm, map_a, map_b, a, g)',
    'g.tiles_m = (g.tiles_m + kClusterM - 1) / kClusterM;',
  ])
    assert.ok(src.includes(line), line);
  const steps = loweringSteps(p).join('\n');
  for (const part of ['2-CTA clusters along M', 'st.shared::cluster', "tile empty both CTAs' consumers"])
    assert.ok(steps.includes(part), part);
  const pdp = loweringSteps(lower(catalogSpec(PDP, 'sm_90a') as GemmSpec, 'sm_90a')).join('\n');
  assert.not.ok(pdp.includes('cluster'), pdp);
});

test('generated: remote stores and arrivals after the cluster-scope waits; cluster barriers at both ends', () => {
  const src = readFileSync(path.join('generated', 'sm_90a', `${PDC}.cu`), 'utf8');
  const kernel = functionBody(src, 'gemm');
  // barriers initialised and fenced, then both CTAs meet before any remote arrival
  assert.is(
    outOfOrder(kernel, ['qgen_mbar_init(&bar.tile_full[i]', 'qgen_fence_mbar_init();', 'cluster_sync();', 'if (steps']),
    '',
  );
  const decoder = kernel.slice(kernel.indexOf('setmaxnreg.dec'), kernel.indexOf('setmaxnreg.inc'));
  const loop = decoder.slice(decoder.indexOf('for (int32_t step = 0;'));
  assert.is(
    outOfOrder(loop, [
      'wait_cluster(&bar.tile_empty[c.tslot], c.tphase ^ 1u);',
      'decode_task(task[t], mult[t], chunk, t, c.rank, bar.peer);',
      'if (t == kTasks - 1) {',
      'asm volatile("fence.proxy.async.shared::cluster;" ::: "memory");',
      'qgen_mbar_arrive(&bar.tile_full[c.tslot]);',
      '__syncwarp();',
      'if (dtid % 32 == 0) arrive_remote(qgen_smem_addr(&bar.tile_full[c.tslot]) + bar.peer);',
      'qgen_mbar_arrive(&bar.raw_empty[c.slot]);',
    ]),
    '',
  );
  assert.match(decoder, /load\.next\(g\);\s*\}\s*\}\s*cluster_sync\(\);[^\n]*\n\s*return;/);
  const consumer = kernel.slice(kernel.indexOf('setmaxnreg.inc'));
  assert.is(
    outOfOrder(consumer, [
      'wait_cluster(&bar.tile_full[c.tslot], c.tphase);',
      'issue_mma(',
      'qgen_wgmma_wait<0>();\n  cluster_sync();',
    ]),
    '',
  );
  // the B task (task 0) stores every chunk locally and into the peer; the A task locally only
  const decode = functionBody(src, 'decode_task');
  assert.is(outOfOrder(decode, ['st.shared.v4.b32', 'if (t == 0)', 'st.shared::cluster.v4.b32']), '');
  assert.match(functionBody(src, 'release_tile'), /qgen_mbar_arrive\(&bar\.tile_empty\[tslot\]\);\s*arrive_remote\(/);
  assert.match(functionBody(src, 'arrive_remote'), /mbarrier\.arrive\.release\.cluster\.shared::cluster\.b64/);
  assert.match(functionBody(src, 'wait_cluster'), /mbarrier\.try_wait\.parity\.acquire\.cluster\.shared::cta\.b64/);
  // the issuers copy this CTA's B half only; a CTA past m copies the last A slab
  const issue = functionBody(src, 'issue_loads');
  assert.ok(issue.includes('const int32_t m0 = min(c.tm, static_cast<int32_t>((args.m - 1) / kBM)) * kBM;'));
  assert.ok(issue.includes('n0 = c.tn * kBN + c.rank * kBHalf'));
  // every other function is the _pdp kernel's
  const pdp = readFileSync(path.join('generated', 'sm_90a', `${PDP}.cu`), 'utf8');
  for (const f of ['issue_mma', 'wait_mma', 'store_tile']) assert.is(functionBody(src, f), functionBody(pdp, f), f);
});

// ---------------------------------------------------------------------------------------------------------------
// SASS (cuobjdump reads sm_90a cubins; without it the test says so and checks nothing).

test('SASS: no local memory, remote stores and cluster barriers in place, fewer decode instructions', async () => {
  if (await skipWithoutCuobjdump()) return;
  const L = layoutOf(base());
  const sass = await sm90KernelSass(PDC);
  assert.is(buildProblems(sass, L.launchRegs, /C7517/), '');
  const { lines, dealloc } = sass;
  assert.is(lines.filter((l) => l.includes('HGMMA.64x256x16.F32.BF16')).length, 4);
  assert.is(lines.filter((l) => l.includes('WARPGROUP.DEPBAR.LE gsb0, 0x0')).length, 2);
  // three cluster barriers (start, the consumers' end, the decoders' end)
  assert.is(lines.filter((l) => /\bUCGABAR_ARV\b/.test(l)).length, 3);
  assert.is(lines.filter((l) => /\bUCGABAR_WAIT\b/.test(l)).length, 3);
  assert.is(setmaxnregProblems(sass, L.decoderRegs, L.consumerRegs), '');
  const consumer = lines.slice(0, dealloc);
  // the consumers' releases: local arrive, then the remote one (SYNCS.ARRIVE...RED on a shared::cluster address)
  assert.ok(consumer.filter((l) => /SYNCS\.ARRIVE\.TRANS64\.RED\.A1T0/.test(l)).length >= 1);
  const decoder = lines.slice(dealloc);
  const top = topRegister(decoder);
  assert.ok(top < L.decoderRegs, `decoder uses R${top}, share ${L.decoderRegs}`);
  const p = decoderPath(decoder);
  assert.ok(p, 'decoder loop not found');
  const c = p.counts;
  // per K block and decoder thread: 2 rows (A, B half): 2 LDS.128 + 1 LDS each; 16 local STS.128; the B row's 8
  // chunks again to the peer (generic ST.E.128 on the shared::cluster window); one remote tile_full arrival per warp
  const remote = p.lines.filter((l) => /\bST\.E\.128\b/.test(l)).length;
  const red = p.lines.filter((l) => /SYNCS\.ARRIVE\.TRANS64\.RED\.A1T0/.test(l)).length;
  assert.equal([c.LDS, c['LDS.128'], c['STS.128'], remote, red, c.HMUL2, c.BAR], [6, 4, 16, 8, 1, 64, 0]);
  // in the path: the tile_empty wait (acquire.cluster: CCTL.IVALL) before the first tile store; the 8 remote stores
  // (the B task, first) before the local A stores' end; then the proxy fence (a GPU-scope MEMBAR and
  // FENCE.VIEW.ASYNC), the local tile_full arrival, and lane 0's remote arrival behind its own membar
  const at = (re: RegExp, from = 0) => p.lines.findIndex((l, i) => i >= from && re.test(l));
  const last = (re: RegExp) => p.lines.reduce((k, l, i) => (re.test(l) ? i : k), -1);
  const firstStore = at(/\b(STS|ST\.E)\.128\b/);
  const cctl = at(/CCTL\.IVALL/);
  const fence = at(/FENCE\.VIEW\.ASYNC/);
  const redArrive = at(/SYNCS\.ARRIVE\.TRANS64\.RED/);
  assert.ok(cctl >= 0 && cctl < firstStore, `${cctl} < ${firstStore}`);
  assert.ok(last(/\bST\.E\.128\b/) < last(/\bSTS\.128\b/), 'remote stores before the A stores end');
  assert.ok(last(/\bSTS\.128\b/) < fence && /MEMBAR\.ALL\.GPU/.test(p.lines[fence - 1]), 'proxy fence');
  assert.ok(fence < redArrive && at(/MEMBAR\.ALL\.GPU/, fence + 1) < redArrive, 'remote arrival after its membar');
  const pdp = await sm90KernelSass(PDP);
  const q = decoderPath(pdp.lines.slice(pdp.dealloc));
  assert.ok(q);
  console.log(
    `  ${PDC}: decode path ${p.lines.length} SASS per K block (${PDP}: ${q.lines.length}), ` +
      `${(p.lines.length / 128).toFixed(2)} per decoded element, ${(p.lines.length / 192).toFixed(2)} per element ` +
      'of the CTA tile',
  );
  // the decode multiplicity: a K block of the CTA tile costs each decoder thread at most 80% of the _pdp path
  assert.ok(p.lines.length <= 0.8 * q.lines.length, `${p.lines.length} against ${q.lines.length}`);
  const near = p.loads.filter((x) => x.distance < 200);
  assert.equal(near, [], 'loads read soon after issue');
});

test.run();
