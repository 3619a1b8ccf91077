// Template facts per kernel kind: what a template substitutes, derived from the plan's enums and numbers. The C++
// spellings of the plan's choices (policy types, calls, launch bounds) live here and in the templates, nowhere in
// lower/.
import type { AmaxPlan, DequantizePlan, GemmPlan, HadamardPlan, QuantizePlan } from '../lower/lower.ts';
import type { Arch, GemmSpec, QuantizeOutputs, ScaleLayout } from '../dsl/types.ts';
import { SM100_SF_SETS, SM100_SM_SMEM } from '../arch/gemm_sm100.ts';
import { SM120_SM_SMEM } from '../arch/gemm_sm120.ts';
import { isRegisterADecode, sm90PdDecoderThreads, SM90_SM_SMEM } from '../arch/gemm_sm90.ts';

/** Shared memory of one SM per arch (the arch models' figures), for the quantizers' resident-block arithmetic. */
const SM_SMEM: Record<Arch, number> = { sm_90a: SM90_SM_SMEM, sm_100a: SM100_SM_SMEM, sm_120a: SM120_SM_SMEM };

export function layoutPolicy(layout: ScaleLayout): string {
  return layout === '128x4' ? 'qgen_layout_128x4' : 'qgen_layout_row_major';
}

const ORDER_POLICY = {
  'block16': 'qgen_order_block16',
  'column-major': 'qgen_order_column_major',
  'row-major': 'qgen_order_row_major',
} as const;

const MODE_POLICY = {
  'computed': 'qgen_mode_computed',
  'caller': 'qgen_mode_caller',
  'one-pass': 'qgen_mode_one_pass',
  'none': 'qgen_mode_none',
} as const;

const WORKSPACE_WORDS = {
  'none': 'none',
  'max-word': 'the amax word',
  'max-word+proxies': 'the max word and one bf16 proxy per 16-group',
} as const;

function roundingPolicy(plan: QuantizePlan): string {
  const q = plan.quantize;
  if (q.scaleFormat === 'ue8m0') return q.rounding === 'sr' ? 'qgen_rounding_mx_sr' : 'qgen_rounding_mx_rtn';
  switch (q.rounding) {
    case 'rtn':
      return 'qgen_rounding_rtn';
    case 'sr':
      return 'qgen_rounding_sr';
    case 'four-six':
      return 'qgen_rounding_four_six';
    case 'ms-eden':
      return `qgen_rounding_ms_eden<${q.correction === 'per-128'}>`;
  }
}

/** The policy types of runtime/qgen_quantize_kernel.cuh that the plan selects, and the numbers the template shows. */
/** The output policy of runtime/qgen_quantize_kernel.cuh (qgen_quantize_plane.cuh) per spec outputs. */
const OUTPUT_POLICY: Record<QuantizeOutputs, string> = {
  nvfp4: 'qgen_output_nvfp4',
  'nvfp4+bf16-plane': 'qgen_output_nvfp4_plane',
  'nvfp4+dequantized-plane': 'qgen_output_nvfp4_dequantized_plane',
};

export function quantizeFacts(plan: QuantizePlan): Record<string, unknown> {
  const q = plan.quantize;
  return {
    computed: q.tensorScale === 'computed',
    onePass: q.tensorScale === 'one-pass',
    tensorScale: q.tensorScale,
    rotate: q.rotation > 0,
    hadamardSize: q.rotation,
    hadamardLanes: q.rotationLanes,
    groupSize: q.groupSize,
    groupsPerThread: q.groupsPerThread,
    codeWords: q.codeWords,
    e2m1Policy: plan.choices.e2m1Rn === 'hardware' ? 'qgen_e2m1_hardware' : 'qgen_e2m1_software',
    layoutPolicy: layoutPolicy(q.scaleLayout),
    modePolicy: MODE_POLICY[q.tensorScale],
    inputPolicy: `qgen_input_${q.load.replaceAll('-', '_')}`,
    orderPolicy: ORDER_POLICY[plan.mapping.order],
    roundingPolicy: roundingPolicy(plan),
    rotationPolicy: q.rotation > 0 ? 'qgen_rotation_hadamard' : 'qgen_rotation_none',
    outputPolicy: OUTPUT_POLICY[q.outputs],
    // pass B writes the whole plane (§6.6 one-pass), so its grid is sized by its own occupancy
    planeOutput: q.outputs === 'nvfp4+bf16-plane',
    blocksPerSm: plan.blocksPerSm,
    minBlocksPerSm: q.minBlocksPerSm,
    smemPerSm: SM_SMEM[plan.arch],
    launchBounds: `Config::kThreads, ${q.minBlocksPerSm}`,
    finalizeBlocksPerSm: q.finalizeBlocksPerSm,
    loopStateRecomputed: q.loopState === 'recomputed',
    workspaceWords: WORKSPACE_WORDS[q.workspace],
  };
}

export function dequantizeFacts(plan: DequantizePlan): Record<string, unknown> {
  const d = plan.dequantize;
  const mx = d.scaleFormat === 'ue8m0',
    bf16 = d.output === 'bf16';
  return {
    mx,
    groupSize: d.groupSize,
    groupsPerThread: d.groupsPerThread,
    valueWords: mx ? 'y = f32(e2m1 * 2^(e-127))' : 'y = f32(f32(e2m1 * scale) * t)',
    outputWords: bf16 ? 'bf16 (RNE, §2.8)' : 'binary32',
    storeWords: bf16 ? ' (consecutive 16-byte pieces per lane)' : '',
    codeWords: d.codeWords,
    layoutPolicy: layoutPolicy(d.scaleLayout),
    bf16Out: d.output === 'bf16',
    blocksPerSm: plan.blocksPerSm,
  };
}

export function hadamardFacts(plan: HadamardPlan): Record<string, unknown> {
  const h = plan.hadamard;
  return {
    hadamardSize: h.size,
    hadamardLanes: h.lanes,
    bf16In: h.input === 'bf16',
    bf16Out: h.output === 'bf16',
    blocksPerSm: plan.blocksPerSm,
  };
}

export function amaxFacts(plan: AmaxPlan): Record<string, unknown> {
  return { bf16In: plan.amax.input === 'bf16', perLoad: plan.amax.perLoad, blocksPerSm: plan.blocksPerSm };
}

const TILE_ORDER_ENUM: Record<GemmSpec['tiling']['tileOrder'], string> = {
  'row-major': 'QGEN_TILES_ROW_MAJOR',
  'column-major': 'QGEN_TILES_COLUMN_MAJOR',
  'swizzle-8': 'QGEN_TILES_SWIZZLE_8',
};

/**
 * The RS-form wgmma for an m64nNk16 tile: N/2 fp32 accumulators, 4 A registers, the B descriptor (PTX-FACTS §6.1).
 * With `runtimeAccumulate` it takes a fourth argument, `accumulate` (0: D = A B, the tile's first k16 step, so that
 * the accumulators are never zeroed by ordinary moves that would make ptxas serialize the wgmmas).
 */
export function wgmmaRsFunction(n: number, runtimeAccumulate = false): string {
  const regs = n / 2;
  const accumulate = runtimeAccumulate ? '"r"(accumulate)' : '"n"(1)';
  const d = Array.from({ length: regs }, (_, i) => `%${i}`).join(', ');
  const a = [0, 1, 2, 3].map((i) => `%${regs + i}`).join(', ');
  const outs = Array.from({ length: regs }, (_, i) => `"+f"(d[${i}])`);
  const outLines: string[] = [];
  for (let i = 0; i < outs.length; i += 8) outLines.push(`        ${outs.slice(i, i + 8).join(', ')}`);
  return [
    `// D[64 x ${n}] += A[64 x 16] (registers, bf16) * B[${n} x 16]^T (shared memory, K-major SW128), fp32 accumulate.`,
    runtimeAccumulate
      ? `__device__ __forceinline__ void wgmma_rs(float (&d)[${regs}], const uint32_t* a, uint64_t b_desc, ` +
        `uint32_t accumulate) {`
      : `__device__ __forceinline__ void wgmma_rs(float (&d)[${regs}], const uint32_t* a, uint64_t b_desc) {`,
    `  asm volatile(`,
    `      "{\\n.reg .pred accumulate;\\nsetp.ne.b32 accumulate, %${regs + 5}, 0;\\n"`,
    `      "wgmma.mma_async.sync.aligned.m64n${n}k16.f32.bf16.bf16 "`,
    `      "{${d}}, "`,
    `      "{${a}}, %${regs + 4}, accumulate, 1, 1, 0;\\n}\\n"`,
    `      : ${outLines.join(',\n').trimStart()}`,
    `      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b_desc), ${accumulate});`,
    `}`,
  ].join('\n');
}

/** The SS-form wgmma wrapper of the producer-decode kernel (tiling.decode 'producer'): both operands K-major SW128
 * tiles in shared memory, the accumulate flag (scale-d) a runtime value. */
export function wgmmaSsFunction(n: number): string {
  const regs = n / 2;
  const d = Array.from({ length: regs }, (_, i) => `%${i}`).join(', ');
  const outs = Array.from({ length: regs }, (_, i) => `"+f"(d[${i}])`);
  const outLines: string[] = [];
  for (let i = 0; i < outs.length; i += 8) outLines.push(`        ${outs.slice(i, i + 8).join(', ')}`);
  return [
    `// D[64 x ${n}] += A[64 x 16] * B[${n} x 16]^T, both from shared memory (K-major SW128), fp32 accumulate.`,
    `__device__ __forceinline__ void wgmma_ss(float (&d)[${regs}], uint64_t a_desc, uint64_t b_desc, ` +
      `uint32_t accumulate) {`,
    `  asm volatile(`,
    `      "{\\n.reg .pred accumulate;\\nsetp.ne.b32 accumulate, %${regs + 2}, 0;\\n"`,
    `      "wgmma.mma_async.sync.aligned.m64n${n}k16.f32.bf16.bf16 "`,
    `      "{${d}}, "`,
    `      "%${regs}, %${regs + 1}, accumulate, 1, 1, 0, 0;\\n}\\n"`,
    `      : ${outLines.join(',\n').trimStart()}`,
    `      : "l"(a_desc), "l"(b_desc), "r"(accumulate));`,
    `}`,
  ].join('\n');
}

/** A GEMM plan's layout numbers under the names the templates use, with its tile order, output type and (sm_100a)
 * instruction descriptor in C++, and (sm_90a) the wgmma wrapper for the tile's N. */
export function gemmFacts(plan: GemmPlan): Record<string, unknown> {
  const g = plan.gemm;
  const common = {
    ...g.layout,
    blockThreads: g.layout.threads,
    tileOrder: TILE_ORDER_ENUM[g.tileOrder],
    outType: g.output === 'bf16' ? '__nv_bfloat16' : 'float',
  };
  switch (g.arch) {
    case 'sm_90a': {
      // The wgmma N is the tile's B rows, or its A rows when the operands are exchanged (registerOperand 'b').
      const swapped = g.layout.registerOperand === 'b';
      // 'producer-b-register-a' (one decoder warpgroup), 'producer2-b-register-a' and its consumer-copies form (two):
      // A from the consumers' registers (RS), the first K block's scale-d a runtime 0
      if (isRegisterADecode(g.layout.decode)) {
        const decoderThreads = sm90PdDecoderThreads(g.layout.decode);
        const twoDecoders = decoderThreads > 128;
        // 512 threads launch with 128 registers, under what ptxas needs for one m64n256k16 wgmma (C7602 asks for
        // 158, checked against the launch share, not setmaxnreg's): the two decoder warpgroups' consumers issue
        // two m64n128k16 wgmmas per k16 step, the accumulators' halves (the same products and K order per element)
        const wgmmaN = twoDecoders ? g.layout.bn / 2 : g.layout.bn;
        // lanes 0 of consumer warps 0-2 issue the copies instead of decoder lanes (bench/NOTES.md, h-pdr3)
        const consumerCopies = g.layout.decode === 'producer2-b-register-a-consumer-copies';
        const wgmmaFunction = wgmmaRsFunction(wgmmaN, true);
        return { ...common, decoderThreads, twoDecoders, consumerCopies, wgmmaN, wgmmaFunction };
      }
      if (g.layout.decode !== 'consumer') return { ...common, wgmmaFunction: wgmmaSsFunction(g.layout.bn) };
      return { ...common, wgmmaFunction: wgmmaRsFunction(swapped ? g.layout.bm : g.layout.bn, swapped) };
    }
    case 'sm_100a':
      return {
        ...common,
        idesc: `0x${g.idesc.toString(16).padStart(8, '0')}u`,
        sfSets: SM100_SF_SETS,
        tmemColumns: g.layout.tmemColumnsAllocated,
      };
    case 'sm_120a':
      return common;
  }
}
