// Template facts per kernel kind: what a template substitutes, derived from the plan's enums and numbers. The C++
// spellings of the plan's choices (policy types, calls, launch bounds) live here and in the templates, nowhere in
// lower/.
import type { AmaxPlan, DequantizePlan, HadamardPlan, QuantizePlan } from '../lower/lower.ts';
import type { ScaleLayout } from '../dsl/types.ts';

export function layoutPolicy(layout: ScaleLayout): string {
  return layout === '128x4' ? 'qgen_layout_128x4' : 'qgen_layout_row_major';
}

const SEGMENT_CALL = {
  'block16': 'qgen_segment_block16<kElems>(item, args.cols)',
  'column-major': 'qgen_segment_column_major<kElems, kLanes>(item, args.rows)',
  'row-major': 'qgen_segment_row_major<kElems, kLanes>(item, args.cols)',
} as const;

const ITEMS_EXPR = {
  'block16': 'qgen_items_block16(a.rows, a.cols, kElems)',
  'column-major': 'qgen_items_column_major(a.rows, a.cols, kElems, kLanes)',
  'row-major': 'qgen_items_row_major(a.rows, a.cols, kElems)',
} as const;

/** The calls of a quantizer's per-group step, per rounding and tensor-scale form (runtime/qgen_quantize.cuh). */
function groupCalls(plan: QuantizePlan) {
  const q = plan.quantize;
  const mx = q.scaleFormat === 'ue8m0';
  const tensorForm = q.tensorScale === 'computed' || q.tensorScale === 'caller';
  const groupIndex = 'group_index(s, g, args.cols)';
  const groupArgs = 'xg, amax';
  const per128 = q.correction === 'per-128';
  let groupCall = '', edenCodesCall = '', edenFinishCall = '';
  switch (q.rounding) {
    case 'rtn':
      groupCall = mx ? `qgen_mx_rtn_group<E2M1>(${groupArgs}, target())`
        : tensorForm ? `qgen_rtn_group_tensor<E2M1>(${groupArgs}, target(), t)`
          : `qgen_rtn_group_proxy<E2M1>(${groupArgs}, target())`;
      break;
    case 'sr':
      groupCall = mx ? `qgen_mx_sr_group(${groupArgs}, target(), args.seed, ${groupIndex})`
        : tensorForm ? `qgen_sr_group_tensor<E2M1>(${groupArgs}, target(), t, args.seed, ${groupIndex})`
          : `qgen_sr_group_proxy<E2M1>(${groupArgs}, target(), args.seed, ${groupIndex})`;
      break;
    case 'four-six':
      groupCall = tensorForm ? `qgen_four_six_group_tensor<E2M1>(${groupArgs}, target6(), target4(), t)`
        : `qgen_four_six_group_proxy<E2M1>(${groupArgs}, target6(), target4())`;
      break;
    case 'ms-eden':
      // per-128: the correction sums are taken in the input domain (NUMERICS §5.6), per-16 in scaled units.
      edenCodesCall = tensorForm
        ? `qgen_ms_eden_codes_tensor<E2M1, ${per128}>(${groupArgs}, target(), t, vv + 16 * g, vq + 16 * g)`
        : `qgen_ms_eden_codes_proxy<E2M1, ${per128}>(${groupArgs}, target(), vv + 16 * g, vq + 16 * g)`;
      edenFinishCall = tensorForm ? `qgen_ms_eden_scale_tensor(group[g].scale, correction, args.seed, ${groupIndex})`
        : `qgen_ms_eden_proxy(group[g].proxy, correction, args.seed, ${groupIndex})`;
      break;
  }
  return { groupCall, edenCodesCall, edenFinishCall };
}

/** The input loaders of a load path (runtime/qgen_elementwise.cuh). */
function loadCalls(plan: QuantizePlan) {
  const requant = plan.quantize.input === 'nvfp4';
  const transposed = plan.spec.transposedInput;
  return {
    tileStruct: requant ? 'qgen_nvfp4_transposed_tile' : 'qgen_transposed_tile',
    tileUsableCall: requant
      ? 'qgen_nvfp4_tile_usable<kElems, kLanes, kThreads>(args.in_codes, block_item, items, args.rows, args.cols)'
      : 'qgen_transposed_tile_usable<kElems, kLanes, kThreads>(args.x, block_item, items, args.rows, args.cols)',
    tileLoadCall: requant
      ? 'qgen_load_nvfp4_transposed_tile<kElems, kLanes, kThreads, ScaleLayout>(args.in_codes, args.in_scales, t_in, '
        + 'args.rows, block_item, tile, x)'
      : 'qgen_load_bf16_transposed_tile<kElems, kLanes, kThreads>(args.x, args.rows, block_item, tile, x)',
    loadCall: requant
      ? 'qgen_load_nvfp4_transposed<kElems, ScaleLayout>(args.in_codes, args.in_scales, t_in, args.rows, args.cols, s, '
        + 'active, x)'
      : transposed ? 'qgen_load_bf16_transposed<kElems>(args.x, args.rows, args.cols, s, active, x)'
        : 'qgen_load_bf16_row<kElems>(args.x, args.cols, s, active, x)',
  };
}

export function quantizeFacts(plan: QuantizePlan): Record<string, unknown> {
  const q = plan.quantize;
  const mode = q.tensorScale;
  const msEden = q.rounding === 'ms-eden';
  const per128 = q.correction === 'per-128';
  return {
    computed: mode === 'computed', caller: mode === 'caller', onePass: mode === 'one-pass',
    noTensorScale: mode === 'none',
    writesTensorScale: mode === 'computed' || mode === 'one-pass',
    mx: q.scaleFormat === 'ue8m0', msEden, per128, per16: msEden && !per128, block16: q.block16,
    rotate: q.rotation > 0, requant: q.input === 'nvfp4', transposed: plan.spec.transposedInput,
    columnMajor: plan.mapping.order === 'column-major',
    tile: q.load === 'bf16-transposed-tile' || q.load === 'nvfp4-transposed-tile',
    prefetch: q.load === 'bf16-row-prefetch',
    hadamardSize: q.rotation, hadamardLanes: q.rotationLanes, groupSize: q.groupSize,
    groupsPerThread: q.groupsPerThread, codeWords: q.codeWords,
    e2m1Policy: plan.choices.e2m1Rn === 'hardware' ? 'qgen_e2m1_hardware' : 'qgen_e2m1_software',
    layoutPolicy: layoutPolicy(q.scaleLayout),
    segmentCall: SEGMENT_CALL[plan.mapping.order], itemsExpr: ITEMS_EXPR[plan.mapping.order],
    ...loadCalls(plan), ...groupCalls(plan),
    targetRef: q.rounding === 'four-six' ? 'target6()' : 'target()',
    blocksPerSm: plan.blocksPerSm, launchBounds: `kThreads, ${q.minBlocksPerSm}`,
    workspaceNone: q.workspace === 'none', workspaceMaxWord: q.workspace === 'max-word',
    workspaceProxies: q.workspace === 'max-word+proxies',
  };
}

export function dequantizeFacts(plan: DequantizePlan): Record<string, unknown> {
  const d = plan.dequantize;
  return { mx: d.scaleFormat === 'ue8m0', groupSize: d.groupSize, groupsPerThread: d.groupsPerThread,
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
