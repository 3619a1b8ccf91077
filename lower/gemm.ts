// GEMM lowering, one function per arch (NUMERICS §6.2-§6.3): sm_90a emulates NVFP4 exactly on bf16 wgmma; sm_100a
// uses tcgen05 block-scaled MMA with tensor memory; sm_120a uses warp-level block-scaled mma.sync. What does not
// depend on the arch (tile order, 128x4 scale blocks, host checks, tails, epilogue arithmetic) lives in the shared
// runtime headers qgen_gemm_tiles.cuh, qgen_layout.cuh, qgen_gemm_host.cuh and qgen_async.cuh.
import type { Arch, GemmSpec } from '../dsl/types.ts';
import { sm90GemmLayout } from '../arch/gemm_sm90.ts';
import { sm100GemmLayout, sm100InstrDescriptor, SM100_SF_SETS } from '../arch/gemm_sm100.ts';
import { sm120GemmLayout } from '../arch/gemm_sm120.ts';
import type { KernelPlan, LaunchPlan } from './lower.ts';
import { cIdent, hostNames, LoweringError } from './names.ts';

/** Host shape rule shared by every arch: TMA rows of k/2 bytes need 16-byte strides. */
const GEMM_K_MULTIPLE = 32;
const SHAPES_LINE = 'Shapes: m >= 1; n a positive multiple of 16; k a positive multiple of 32 (TMA rows of k/2 bytes need 16-byte strides). '
  + 'Tails: TMA reads zeros past m, n, k; scales of groups past k are replaced by 0; rows >= m and columns >= n are not written.';
const GEMM_HEADERS = ['qgen.h', 'qgen_host.cuh', 'qgen_gemm_host.cuh', 'qgen_async.cuh', 'qgen_layout.cuh'];

function lowerGemmSm90(spec: GemmSpec, name: string, arch: Arch): KernelPlan {
  const t = spec.tiling;
  const r = sm90GemmLayout(t.ctaTile, t.consumers, t.stages);
  if ('field' in r) throw new LoweringError(`${name}: tiling.${r.field}: ${r.message}`);
  const L = r.layout;
  const [bm, bn, bk] = t.ctaTile;
  const atoms = bk / 64;
  const launches: LaunchPlan[] = [{
    kernel: `qgen_${name}_impl::gemm`, role: 'gemm',
    reads: 'a_codes, b_codes (TMA), a_scales, b_scales (bulk copies of 128x4 blocks), a_tensor_scale, b_tensor_scale',
    writes: `c (${spec.output})`, items: `ceil(m/${bm}) * ceil(n/${bn}) output tiles`,
    grid: `min(tiles, SMs * ${L.ctasPerSm}) persistent CTAs`, block: L.threads,
    primitives: ['qgen_tma_load_2d', 'qgen_bulk_load', 'qgen_mbar_*', 'qgen_fp4_pair_pattern', 'qgen_fp4_scale_multiplier',
      'qgen_fp4_pair_scaled', 'qgen_sw128_offset', `wgmma m64n${bn}k16 (RS)`, 'bar.sync (consumers)', 'qgen_store_pair'],
  }];
  const steps = [
    `${name}: C = alpha * A . B^T, A [m, k] and B [n, k] NVFP4 (K-major, 128x4 E4M3 scales), alpha = tA * tB, ${spec.output} out, arch ${arch}.`,
    `Tile ${bm}x${bn}x${bk}, persistent CTAs (${L.ctasPerSm} per SM), tile order ${t.tileOrder}; ${L.threads} threads = ${t.consumers} consumer warpgroup(s) of ${L.slabs} m64 slab(s) + a TMA warpgroup (one thread issues).`,
    `Pipeline: ${L.rawStages} raw stages filled by TMA (${bm}x${bk / 2} + ${bn}x${bk / 2} code bytes, ${atoms * (1 + Math.ceil(bn / 128))} scale blocks of 512 B; mbarriers full/empty) -> 2 dequantized bf16 B tiles (${atoms} SW128 atom(s) of ${bn * 128} B); ${L.smemBytes} B shared memory.`,
    'Dequantize (NUMERICS §6.2): code -> bf16 pattern s<<15 | (e1 e0 m)<<6 (= e2m1 * 2^-126), times bf16(s_e4m3 * 2^118): exact e2m1 * s * 2^-8.',
    `Consumers, per K block: issue the ${bk / 16 * L.slabs} wgmmas of block k (A from registers), dequantize B of block k+1 into the other bf16 tile, wait, dequantize A of block k+1 straight into the RS fragments, bar.sync; K blocks continue across tiles.`,
    `Accumulate: wgmma.m64n${bn}k16.f32.bf16.bf16, fp32. Epilogue: out = f32(acc * f32(f32(tA * tB) * 2^16)) (the 2^16 undoes both operands' 2^-8 exactly)${spec.output === 'bf16' ? ', bf16 RNE' : ''}.`,
    `Registers: ${L.launchRegs}/thread (__launch_bounds__(${L.threads}, ${L.ctasPerSm})); no setmaxnreg (ptxas keeps consumer code within this share).`,
    SHAPES_LINE,
  ];
  const launch = { threadsPerBlock: L.threads, grid: launches[0].grid, kernels: launches.map((l) => `${l.role}: ${l.kernel}`), workspace: 'none' };
  return {
    name, kind: 'gemm', arch, spec, launch, ...hostNames(name, 'qgen_gemm_args', false),
    launches,
    headers: [...GEMM_HEADERS, 'qgen_sm90_wgmma.cuh', 'qgen_fp4_bf16.cuh', 'qgen_gemm_tiles.cuh'],
    constants: [],
    choices: { e2m1Rn: null, e2m1Sr: null, e4m3Rn: null },
    mapping: { elemsPerThread: 64, lanesPerUnit: 1, unitWidth: 64, order: 'row-major' },
    colsMultiple: GEMM_K_MULTIPLE, steps,
    layout: {
      bm, bn, bk, consumers: t.consumers, slabs: L.slabs, rawStages: L.rawStages, ctasPerSm: L.ctasPerSm,
      tileOrder: t.tileOrder, output: spec.output, smemBytes: L.smemBytes,
    },
  };
}

function lowerGemmSm100(spec: GemmSpec, name: string, arch: Arch): KernelPlan {
  const t = spec.tiling;
  const r = sm100GemmLayout(t.ctaTile, t.consumers, t.stages);
  if ('field' in r) throw new LoweringError(`${name}: tiling.${r.field}: ${r.message}`);
  const L = r.layout;
  const { bm, bn, bk } = L;
  const idesc = sm100InstrDescriptor(bn);
  const launches: LaunchPlan[] = [{
    kernel: `qgen_${name}_impl::gemm`, role: 'gemm',
    reads: 'a_codes, b_codes (TMA, 128-byte swizzle), a_scales, b_scales (bulk copies of 128x4 blocks), a_tensor_scale, b_tensor_scale',
    writes: `c (${spec.output})`, items: `ceil(m/${bm}) * ceil(n/${bn}) output tiles`,
    grid: 'min(tiles, SMs) persistent CTAs', block: L.threads,
    primitives: ['qgen_tma_load_2d', 'qgen_bulk_load', 'qgen_mbar_*', 'qgen_tmem_alloc/dealloc', 'qgen_tcgen05_copy_scales',
      'qgen_tcgen05_mma_nvfp4', 'qgen_tcgen05_commit', 'qgen_tmem_load_32x32', 'qgen_store_pair'],
  }];
  const steps = [
    `${name}: C = alpha * A . B^T, A [m, k] and B [n, k] NVFP4 (K-major, 128x4 E4M3 scales), alpha = tA * tB, ${spec.output} out, arch ${arch}.`,
    `Tile ${bm}x${bn}x${bk}, persistent CTAs (1 per SM), tile order ${t.tileOrder}; ${L.threads} threads: warp 0 issues TMA, warp 1 issues tcgen05 (one lane) and owns tensor memory, ${L.consumers} epilogue warpgroup(s).`,
    `Pipeline: ${L.stages} stages of ${L.chunks} SW128 chunk(s) per operand (${bm}x${bk / 2} + ${bn}x${bk / 2} code bytes) and ${L.atoms * (1 + L.bRowBlocks)} scale blocks of 512 B; mbarriers full (TMA bytes) / empty (tcgen05.commit); ${L.smemBytes} B shared memory.`,
    `Tensor memory (${L.tmemColumnsAllocated} columns allocated, ${L.tmemColumnsUsed} used): ${L.accBuffers} fp32 accumulator(s) of ${bn} columns, then ${SM100_SF_SETS} scale sets of ${L.sfColumnsPerSet} columns (SFA 4 + SFB ${4 * L.bRowBlocks} per K = 64); a set is refilled only after the MMAs that read it completed.`,
    `MMA (one thread), per K block: tcgen05.cp of the ${L.atoms * (1 + L.bRowBlocks)} scale blocks, then ${L.atoms} x tcgen05.mma.cta_group::1.kind::mxf4nvf4.block_scale.block16 (M 128, N ${bn}, K 64; idesc 0x${idesc.toString(16).padStart(8, '0')}), commit to the stage's empty barrier; after a tile's last K block, commit to acc_full.`,
    'K tail: the MMA warp zeroes the scale bytes of groups past k in shared memory before copying them (NaN padding never multiplies the zero codes TMA read past k); 64-wide K atoms past k are not issued.',
    `Epilogue: each warp reads its 32 TMEM lanes (= rows) with tcgen05.ld.32x32b.x32, out = f32(acc * f32(tA * tB))${spec.output === 'bf16' ? ', bf16 RNE' : ''}, then releases the accumulator buffer (acc_empty).`,
    SHAPES_LINE,
    'Verification: compiled and SASS-inspected only (no Blackwell GPU here); `qgen check --arch sm_100a` is the first-hardware test.',
  ];
  const launch = { threadsPerBlock: L.threads, grid: launches[0].grid, kernels: launches.map((l) => `${l.role}: ${l.kernel}`), workspace: 'none' };
  return {
    name, kind: 'gemm', arch, spec, launch, ...hostNames(name, 'qgen_gemm_args', false),
    launches, headers: [...GEMM_HEADERS, 'qgen_sm100_tcgen05.cuh', 'qgen_gemm_tiles.cuh'], constants: [],
    choices: { e2m1Rn: null, e2m1Sr: null, e4m3Rn: null },
    mapping: { elemsPerThread: 32, lanesPerUnit: 1, unitWidth: 32, order: 'row-major' },
    colsMultiple: GEMM_K_MULTIPLE, steps,
    layout: {
      bm, bn, bk, consumers: L.consumers, stages: L.stages, chunks: L.chunks, atoms: L.atoms, bRowBlocks: L.bRowBlocks,
      accBuffers: L.accBuffers, sfSets: SM100_SF_SETS, sfColumnsPerSet: L.sfColumnsPerSet, tmemColumns: L.tmemColumnsAllocated,
      tmemColumnsUsed: L.tmemColumnsUsed, smemBytes: L.smemBytes, blockThreads: L.threads,
      idesc, tileOrder: t.tileOrder, output: spec.output,
    },
  };
}

function lowerGemmSm120(spec: GemmSpec, name: string, arch: Arch): KernelPlan {
  const t = spec.tiling;
  const r = sm120GemmLayout(t.ctaTile, t.consumers, t.stages);
  if ('field' in r) throw new LoweringError(`${name}: tiling.${r.field}: ${r.message}`);
  const L = r.layout;
  const { bm, bn, bk } = L;
  const mmas = (L.warpM / 16) * (L.warpN / 8);
  const launches: LaunchPlan[] = [{
    kernel: `qgen_${name}_impl::gemm`, role: 'gemm',
    reads: `a_codes, b_codes (TMA, ${L.chunkBytes}-byte swizzle), a_scales, b_scales (bulk copies of 128x4 blocks), a_tensor_scale, b_tensor_scale`,
    writes: `c (${spec.output})`, items: `ceil(m/${bm}) * ceil(n/${bn}) output tiles`,
    grid: 'min(tiles, SMs) persistent CTAs', block: L.threads,
    primitives: ['qgen_tma_load_2d', 'qgen_bulk_load', 'qgen_mbar_*', 'qgen_swizzled_offset', 'qgen_ldmatrix_x4',
      'qgen_mma_nvfp4_m16n8k64', 'qgen_store_pair'],
  }];
  const steps = [
    `${name}: C = alpha * A . B^T, A [m, k] and B [n, k] NVFP4 (K-major, 128x4 E4M3 scales), alpha = tA * tB, ${spec.output} out, arch ${arch}.`,
    `Tile ${bm}x${bn}x${bk}, persistent CTAs (1 per SM), tile order ${t.tileOrder}; ${L.threads} threads: ${L.warps} math warps as ${L.warpsM}x${L.warpsN} warp tiles of ${L.warpM}x${L.warpN}, then one TMA warp (one lane issues).`,
    `Pipeline: ${L.stages} stages (${bm}x${bk / 2} + ${bn}x${bk / 2} code bytes in ${L.chunks} chunk(s) of ${L.chunkBytes}-byte rows, TMA swizzle ${L.chunkBytes} B; ${L.atoms * (L.aRowBlocks + L.bRowBlocks)} scale blocks of 512 B); mbarriers full (TMA bytes) / empty (one arrival per math warp); ${L.smemBytes} B shared memory.`,
    `Per K = 64 atom and warp: ldmatrix.x4 of ${L.warpM / 16} A and ${L.warpN / 16} B 16-row pieces, one 32-bit scale word per fragment row (SFA row g + 8 (lane mod 2), SFB column g: every lane holds valid scales), then ${mmas} x mma.sync.m16n8k64.kind::mxf4nvf4.block_scale.scale_vec::4X (fp32, ${L.accumulators} accumulators per thread).`,
    'K tail: scale bytes of groups past k are masked to 0 in registers (zero codes from TMA times zero scales).',
    `Epilogue: out = f32(acc * f32(tA * tB))${spec.output === 'bf16' ? ', bf16 RNE' : ''}, fragment pairs (row g / g + 8, columns 2c, 2c + 1) stored directly.`,
    SHAPES_LINE,
    'Verification: compiled and SASS-inspected only (no sm_120 GPU here); `qgen check --arch sm_120a` is the first-hardware test.',
  ];
  const launch = { threadsPerBlock: L.threads, grid: launches[0].grid, kernels: launches.map((l) => `${l.role}: ${l.kernel}`), workspace: 'none' };
  return {
    name, kind: 'gemm', arch, spec, launch, ...hostNames(name, 'qgen_gemm_args', false),
    launches, headers: [...GEMM_HEADERS, 'qgen_sm120_mma.cuh', 'qgen_gemm_tiles.cuh'], constants: [],
    choices: { e2m1Rn: null, e2m1Sr: null, e4m3Rn: null },
    mapping: { elemsPerThread: L.accumulators, lanesPerUnit: 1, unitWidth: L.accumulators, order: 'row-major' },
    colsMultiple: GEMM_K_MULTIPLE, steps,
    layout: {
      bm, bn, bk, warps: L.warps, warpsM: L.warpsM, warpsN: L.warpsN, warpM: L.warpM, warpN: L.warpN, stages: L.stages,
      chunkBytes: L.chunkBytes, chunks: L.chunks, atoms: L.atoms, aRowBlocks: L.aRowBlocks, bRowBlocks: L.bRowBlocks,
      smemBytes: L.smemBytes, blockThreads: L.threads,
      tileOrder: t.tileOrder, output: spec.output,
    },
  };
}

/** Lowers a validated GEMM spec for an arch (alpha epilogue only). */
export function lowerGemm(spec: GemmSpec, arch: Arch): KernelPlan {
  const name = cIdent(spec.name);
  if (spec.epilogue !== 'alpha') throw new LoweringError(`${name}: epilogue '${spec.epilogue}' is not implemented on ${arch}; allowed: 'alpha'`);
  switch (arch) {
    case 'sm_90a': return lowerGemmSm90(spec, name, arch);
    case 'sm_100a': return lowerGemmSm100(spec, name, arch);
    case 'sm_120a': return lowerGemmSm120(spec, name, arch);
  }
}
