// Template facts per kernel kind: what a template substitutes, derived from the plan's enums and numbers. The C++
// spellings of the plan's choices (policy types, calls, launch bounds) live here and in the templates, nowhere in
// lower/.
import type { AmaxPlan, DequantizePlan, HadamardPlan, QuantizePlan } from '../lower/lower.ts';
import type { ScaleLayout } from '../dsl/types.ts';

export function layoutPolicy(layout: ScaleLayout): string {
  return layout === '128x4' ? 'qgen_layout_128x4' : 'qgen_layout_row_major';
}

const ORDER_POLICY = {
  'block16': 'qgen_order_block16', 'column-major': 'qgen_order_column_major', 'row-major': 'qgen_order_row_major',
} as const;

const MODE_POLICY = {
  'computed': 'qgen_mode_computed', 'caller': 'qgen_mode_caller', 'one-pass': 'qgen_mode_one_pass',
  'none': 'qgen_mode_none',
} as const;

const WORKSPACE_WORDS = {
  'none': 'none', 'max-word': 'the amax word', 'max-word+proxies': 'the max word and one bf16 proxy per 16-group',
} as const;

function roundingPolicy(plan: QuantizePlan): string {
  const q = plan.quantize;
  if (q.scaleFormat === 'ue8m0') return q.rounding === 'sr' ? 'qgen_rounding_mx_sr' : 'qgen_rounding_mx_rtn';
  switch (q.rounding) {
    case 'rtn': return 'qgen_rounding_rtn';
    case 'sr': return 'qgen_rounding_sr';
    case 'four-six': return 'qgen_rounding_four_six';
    case 'ms-eden': return `qgen_rounding_ms_eden<${q.correction === 'per-128'}>`;
  }
}

/** The policy types of runtime/qgen_quantize_kernel.cuh that the plan selects, and the numbers the template shows. */
export function quantizeFacts(plan: QuantizePlan): Record<string, unknown> {
  const q = plan.quantize;
  return {
    computed: q.tensorScale === 'computed', onePass: q.tensorScale === 'one-pass', tensorScale: q.tensorScale,
    rotate: q.rotation > 0, hadamardSize: q.rotation, hadamardLanes: q.rotationLanes, groupSize: q.groupSize,
    groupsPerThread: q.groupsPerThread, codeWords: q.codeWords,
    e2m1Policy: plan.choices.e2m1Rn === 'hardware' ? 'qgen_e2m1_hardware' : 'qgen_e2m1_software',
    layoutPolicy: layoutPolicy(q.scaleLayout),
    modePolicy: MODE_POLICY[q.tensorScale],
    inputPolicy: `qgen_input_${q.load.replaceAll('-', '_')}`,
    orderPolicy: ORDER_POLICY[plan.mapping.order],
    roundingPolicy: roundingPolicy(plan),
    rotationPolicy: q.rotation > 0 ? 'qgen_rotation_hadamard' : 'qgen_rotation_none',
    outputPolicy: q.outputs === 'nvfp4+bf16-plane' ? 'qgen_output_nvfp4_plane' : 'qgen_output_nvfp4',
    blocksPerSm: plan.blocksPerSm, launchBounds: `Config::kThreads, ${q.minBlocksPerSm}`,
    workspaceWords: WORKSPACE_WORDS[q.workspace],
  };
}

export function dequantizeFacts(plan: DequantizePlan): Record<string, unknown> {
  const d = plan.dequantize;
  const mx = d.scaleFormat === 'ue8m0', bf16 = d.output === 'bf16';
  return { mx, groupSize: d.groupSize, groupsPerThread: d.groupsPerThread,
    valueWords: mx ? 'y = f32(e2m1 * 2^(e-127))' : 'y = f32(f32(e2m1 * scale) * t)',
    outputWords: bf16 ? 'bf16 (RNE, §2.8)' : 'binary32',
    storeWords: bf16 ? ' (consecutive 16-byte pieces per lane)' : '',
    codeWords: d.codeWords, layoutPolicy: layoutPolicy(d.scaleLayout), bf16Out: d.output === 'bf16',
    blocksPerSm: plan.blocksPerSm };
}

export function hadamardFacts(plan: HadamardPlan): Record<string, unknown> {
  const h = plan.hadamard;
  return { hadamardSize: h.size, hadamardLanes: h.lanes, bf16In: h.input === 'bf16', bf16Out: h.output === 'bf16',
    blocksPerSm: plan.blocksPerSm };
}

export function amaxFacts(plan: AmaxPlan): Record<string, unknown> {
  return { bf16In: plan.amax.input === 'bf16', perLoad: plan.amax.perLoad, blocksPerSm: plan.blocksPerSm };
}
