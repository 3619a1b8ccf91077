// Lowering: a validated KernelSpec and a target arch become a KernelPlan — plain data that says which kernels run
// (passes), how they are launched, which runtime primitives they use, the per-arch choices and the constants.
// Renderers (render/) fill handlebars templates from plans; `qgen explain` prints `steps`.
// Numerics are runtime/NUMERICS.md's; section numbers below refer to it.
import type {
  AmaxSpec, Arch, DequantizeSpec, HadamardSpec, KernelSpec, QuantizeSpec, ElementwiseTiling,
} from '../dsl/types.ts';
import { lowerGemm } from './gemm.ts';
import {
  E2M1_MAX, INV_SQRT, STREAM_ELEMENT_SR, STREAM_SCALE_SR, STREAM_SIGNS, cudaF32, f32Bits, targetValue,
} from '../dsl/constants.ts';

/** A binary32 constant of a plan: its value, exact bit pattern and the CUDA expression that spells it. */
export interface PlanConstant {
  name: string;
  value: number;
  bits: string;
  cuda: string;
  comment: string;
}

/** Role of one kernel launch of a plan. */
export type LaunchRole = 'amax-pass' | 'quantize' | 'pass-a' | 'pass-b' | 'dequantize' | 'hadamard' | 'amax' | 'gemm';

export interface LaunchPlan {
  /** The `__global__` function, e.g. `qgen_nvfp4_rtn::quantize`. */
  kernel: string;
  role: LaunchRole;
  /** What it reads and writes in global memory. */
  reads: string;
  writes: string;
  /** Work items of the grid-stride loop, and the launch shape. */
  items: string;
  grid: string;
  block: number;
  /** Runtime primitives (header functions) it calls. */
  primitives: string[];
}

/** How the E2M1 round-to-nearest is spelled on the arch (NUMERICS §2.1). */
export type E2m1Implementation = 'hardware' | 'software';

export interface KernelPlan {
  name: string;
  kind: KernelSpec['kind'];
  arch: Arch;
  spec: KernelSpec;
  /** C ABI (runtime/qgen.h). */
  hostFunction: string;
  hostSignature: string;
  workspaceFunction: string | null;
  workspaceSignature: string | null;
  argsStruct: string;
  launches: LaunchPlan[];
  /** Runtime headers the generated source includes (copied next to it), in include order. */
  headers: string[];
  constants: PlanConstant[];
  choices: {
    e2m1Rn: E2m1Implementation | null;
    e2m1Sr: 'software' | null;
    e4m3Rn: 'hardware' | null;
  };
  /** Elements per thread (E), lanes per unit (L) and the unit width W = E * L (NUMERICS §4 chunk / §5.6 chunk). */
  mapping: { elemsPerThread: number; lanesPerUnit: number; unitWidth: number; order: 'row-major' | 'column-major' | 'block16' };
  /** Shape rule of the host entry: cols must be a positive multiple of this. */
  colsMultiple: number;
  /** Human-readable lowering, one line per step. */
  steps: string[];
  /** Launch summary that `qgen explain` prints. */
  launch: { threadsPerBlock: number; grid: string; kernels: string[]; workspace: string };
  /** Flat, template-ready facts (flags and preformatted calls); templates only lay these out. */
  render: Record<string, unknown>;
}

/** The small candidate of four-over-six (NUMERICS §5.5); exact. */
const FOUR_SIX_SMALL_TARGET = 4;

/** Thrown when a spec is valid but cannot be lowered (yet) for an arch. */
export class LoweringError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LoweringError';
  }
}

function constant(name: string, value: number, comment: string): PlanConstant {
  const v = Math.fround(value);
  return { name, value: v, bits: `0x${f32Bits(v).toString(16).padStart(8, '0')}`, cuda: cudaF32(v), comment };
}

/** E2M1 round-to-nearest: the hardware cvt exists on Blackwell (sm_100a, sm_120a), not on Hopper (PTX-FACTS §1.3). */
export function e2m1RnImplementation(arch: Arch): E2m1Implementation {
  return arch === 'sm_90a' ? 'software' : 'hardware';
}

export function cIdent(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new LoweringError(`kernel name '${name}' is not a C identifier`);
  return name;
}

function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

function checkTiling(name: string, t: ElementwiseTiling): void {
  if (!Number.isInteger(t.threadsPerBlock) || t.threadsPerBlock < 32 || t.threadsPerBlock > 1024 || t.threadsPerBlock % 32 !== 0)
    throw new LoweringError(`${name}: tiling.threadsPerBlock = ${t.threadsPerBlock}; allowed: a multiple of 32 in 32..1024`);
  if (!Number.isInteger(t.groupsPerThread) || t.groupsPerThread < 1 || t.groupsPerThread > 16)
    throw new LoweringError(`${name}: tiling.groupsPerThread = ${t.groupsPerThread}; allowed: an integer in 1..16`);
}

/**
 * Admission check on registers: kernels are built with __launch_bounds__(threads, 1), so ptxas may use up to
 * min(255, 65536 / threads) registers per thread, and a spill is a build error. The estimate grows with the values a
 * thread keeps live: its E elements, plus the Hadamard / SR working set, plus MS-EDEN's 2E products. The slopes were
 * measured with ptxas 13.0 on these kernels (e.g. MS-EDEN E=32: 148, E=64: 187 registers; SR + RHT-128 E=32: 112;
 * E=128 with a rotation spills at any block size).
 */
function checkRegisters(name: string, elems: number, threads: number, weight: 1 | 2 | 3): void {
  const estimate = 48 + weight * elems;
  const available = Math.min(255, Math.floor(65536 / threads));
  if (estimate > available) {
    throw new LoweringError(`${name}: tiling needs about ${estimate} registers per thread (${elems} elements per thread), `
      + `but ${threads} threads per block leave ${available}; lower tiling.groupsPerThread or tiling.threadsPerBlock`);
  }
}

/**
 * The minBlocks of a quantize kernel's __launch_bounds__(threads, minBlocks): as many resident blocks as a register
 * budget of about 48 + min(weight, 2) * E per thread allows (ptxas 13.0 fits the catalog's E = 32 kernels in 80
 * registers for weight 1 and in 128 for MS-EDEN and rotations, without spills; never less than 80, which four-over-six
 * with E = 16 needs), so that 16-24 warps per SM hide latency instead of 8-16. Never below 1 and never above what 2048 threads per SM allow.
 */
function minBlocksPerSm(threads: number, elems: number, weight: 1 | 2 | 3): number {
  const need = Math.max(80, 48 + Math.min(weight, 2) * elems);
  return Math.max(1, Math.min(blocksPerSm(threads), Math.floor(65536 / (threads * need))));
}

/** Blocks per SM the grid-stride launch aims for (occupancy target; never changes results). */
function blocksPerSm(threads: number): number {
  return Math.max(1, Math.floor(2048 / threads));
}

/**
 * Thread mapping for a row of K elements: E elements per thread; a unit of W >= E elements (a Hadamard chunk or an
 * MS-EDEN 128-chunk) is spread over L = W / E adjacent lanes.
 */
function mapElements(name: string, elems: number, unit: number): { elemsPerThread: number; lanesPerUnit: number; unitWidth: number } {
  const width = Math.max(elems, unit);
  if (width % elems !== 0 || (width > elems && !isPowerOfTwo(width / elems)))
    throw new LoweringError(`${name}: ${elems} elements per thread do not tile a ${unit}-element chunk; `
      + `use tiling.groupsPerThread = 1, 2, 4 or 8`);
  if (elems > unit && unit > 0 && elems % unit !== 0)
    throw new LoweringError(`${name}: ${elems} elements per thread are not whole ${unit}-element chunks; `
      + `use a tiling.groupsPerThread that is a power of two`);
  const lanes = width / elems;
  if (lanes > 32) throw new LoweringError(`${name}: a chunk would span ${lanes} lanes (more than a warp)`);
  return { elemsPerThread: elems, lanesPerUnit: lanes, unitWidth: width };
}

export function hostNames(name: string, argsStruct: string, workspace: boolean) {
  return {
    hostFunction: `qgen_${name}`,
    hostSignature: `qgen_status qgen_${name}(const ${argsStruct}* args, cudaStream_t stream)`,
    workspaceFunction: workspace ? `qgen_${name}_workspace_bytes` : null,
    workspaceSignature: workspace ? `size_t qgen_${name}_workspace_bytes(int64_t rows, int64_t cols)` : null,
    argsStruct,
  };
}

const BASE_HEADERS = ['qgen.h', 'qgen_host.cuh', 'qgen_fp32.cuh', 'qgen_philox.cuh', 'qgen_e2m1.cuh', 'qgen_e4m3.cuh',
  'qgen_ue8m0.cuh', 'qgen_layout.cuh', 'qgen_elementwise.cuh'];

// ---------------------------------------------------------------------------------------------------------------
// Quantize

function lowerQuantize(spec: QuantizeSpec, arch: Arch): KernelPlan {
  const name = cIdent(spec.name);
  checkTiling(name, spec.tiling);
  const mx = spec.scaleGroup.format === 'ue8m0';
  const groupSize = spec.scaleGroup.size;
  const rounding = spec.rounding;
  const msEden = rounding === 'ms-eden';
  const per128 = msEden && spec.correction === 'per-128';
  const block16 = spec.block === '16x16';
  const requant = spec.input === 'nvfp4';
  const columnMajor = spec.transposedInput || requant;
  const rotate = spec.hadamard !== null;
  const n = spec.hadamard ?? 0;
  const mode = mx ? 'none' : spec.tensorScale;

  if (mx && (rounding === 'four-six' || msEden))
    throw new LoweringError(`${name}: MXFP4 (group 32, UE8M0) supports rounding 'rtn' or 'sr', not '${rounding}'`);
  if (mx !== (spec.tensorScale === 'none'))
    throw new LoweringError(`${name}: tensorScale 'none' goes with MXFP4 scales and only with them`);
  if (block16 && mx)
    throw new LoweringError(`${name}: 16x16 blocks need 16-element E4M3 groups`);

  // Elements per thread: whole scale groups (NUMERICS §5.8: 32 for MXFP4).
  const elems = Math.ceil((16 * spec.tiling.groupsPerThread) / groupSize) * groupSize;
  if (per128 && elems > 128)
    throw new LoweringError(`${name}: MS-EDEN per-128 correction needs tiling.groupsPerThread <= 8 (one 128-chunk per thread at most)`);
  const mapping = mapElements(name, elems, Math.max(n, per128 ? 128 : 0));
  const E = mapping.elemsPerThread, L = mapping.lanesPerUnit;
  if (block16 && L !== 1)
    throw new LoweringError(`${name}: 16x16 blocks need the whole rotation chunk in one thread (tiling.groupsPerThread >= ${n / 16})`);
  // Four-over-six of a transposed input holds both candidates next to the staged tile's addressing: 80 registers
  // spilled 24 bytes with ptxas 13.0 on sm_90a, so it gets the rotation/SR budget.
  const fourSixTransposed = rounding === 'four-six' && spec.transposedInput;
  const registerWeight = msEden ? 3 : rotate || rounding === 'sr' || fourSixTransposed ? 2 : 1;
  checkRegisters(name, E, spec.tiling.threadsPerBlock, registerWeight);
  const hadamardLanes = rotate ? Math.max(1, n / E) : 1;
  // A transposed bf16 input is staged through shared memory, one tile of (threads / L) rows x (E * L) columns per
  // block iteration, when the tile fits in 32 KiB (qgen_transposed_tile in runtime/qgen_elementwise.cuh).
  // An NVFP4 input (NUMERICS §5.9) is staged the same way as dequantized f32 values, (threads / L) x L * (E + 4)
  // floats (qgen_nvfp4_transposed_tile), when E is whole 16-byte code pieces, the tile has a multiple of 32 rows and it
  // fits in 40 KiB.
  const threadsPerBlock = spec.tiling.threadsPerBlock;
  const tile = block16 ? false
    : requant ? E % 32 === 0 && (threadsPerBlock / L) % 32 === 0 && threadsPerBlock * (E + 4) * 4 <= 40960
      : spec.transposedInput && E * threadsPerBlock * 2 <= 32768;
  // A row-major bf16 input is software-pipelined: the next iteration's 16-byte loads are in flight during this one's
  // arithmetic (E / 2 more registers).
  // Only where it costs no occupancy (RTN, SR, MXFP4 with E <= 32, measured with ptxas 13.0): four-over-six and
  // MS-EDEN need about E / 2 more registers with it, and measured slower on an H100 at the lower occupancy.
  const prefetch = !spec.transposedInput && !requant && !block16 && E <= 32 && rounding !== 'four-six' && !msEden;
  const minBlocks = minBlocksPerSm(spec.tiling.threadsPerBlock, E, registerWeight);
  const order = block16 ? 'block16' : columnMajor ? 'column-major' : 'row-major';
  const colsMultiple = Math.max(groupSize, n, per128 ? 128 : 0);

  const e2m1Rn = e2m1RnImplementation(arch);
  const e2m1Policy = e2m1Rn === 'hardware' ? 'qgen_e2m1_hardware' : 'qgen_e2m1_software';
  const layoutPolicy = spec.scaleLayout === '128x4' ? 'qgen_layout_128x4' : 'qgen_layout_row_major';

  // Targets (NUMERICS §5): T per rounding, T_ref for the computed tensor scale (6 for four-over-six).
  const target = rounding === 'four-six' ? E2M1_MAX : mx ? E2M1_MAX : targetValue(spec.target);
  const constants: PlanConstant[] = [];
  if (rounding === 'four-six') {
    constants.push(constant('target6', E2M1_MAX, 'NUMERICS §5.5: candidate 6 (also T_ref)'));
    constants.push(constant('target4', FOUR_SIX_SMALL_TARGET, 'NUMERICS §5.5: candidate 4'));
  } else {
    constants.push(constant('target', target, mx ? 'NUMERICS §5.8: s_g = RP_UE8M0(amax_g / 6)'
      : `NUMERICS §5: target T (${spec.target})`));
  }
  if (mode === 'computed' || mode === 'one-pass') constants.push(constant('ceiling', spec.ceiling, 'NUMERICS §5.1: ceiling C'));
  if (rotate) constants.push(constant('inv_sqrt_n', INV_SQRT[spec.hadamard!], `NUMERICS §1.5: f32(1/sqrt(${n}))`));

  const targetRef = rounding === 'four-six' ? 'target6()' : 'target()';
  const groupIndex = 'group_index(s, g, args.cols)';
  const groupArgs = 'xg, amax';
  let groupCall = '';
  let edenCodesCall = '';
  let edenFinishCall = '';
  const tensorForm = mode === 'computed' || mode === 'caller';
  switch (rounding) {
    case 'rtn':
      groupCall = mx ? `qgen_mx_rtn_group<E2M1>(${groupArgs}, target())`
        : tensorForm ? `qgen_rtn_group_tensor<E2M1>(${groupArgs}, target(), t)` : `qgen_rtn_group_proxy<E2M1>(${groupArgs}, target())`;
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
      edenCodesCall = tensorForm ? `qgen_ms_eden_codes_tensor<E2M1, ${per128}>(${groupArgs}, target(), t, vv + 16 * g, vq + 16 * g)`
        : `qgen_ms_eden_codes_proxy<E2M1, ${per128}>(${groupArgs}, target(), vv + 16 * g, vq + 16 * g)`;
      edenFinishCall = tensorForm ? `qgen_ms_eden_scale_tensor(group[g].scale, correction, args.seed, ${groupIndex})`
        : `qgen_ms_eden_proxy(group[g].proxy, correction, args.seed, ${groupIndex})`;
      break;
  }

  const segmentCall = order === 'block16' ? 'qgen_segment_block16<kElems>(item, args.cols)'
    : order === 'column-major' ? 'qgen_segment_column_major<kElems, kLanes>(item, args.rows)'
      : 'qgen_segment_row_major<kElems, kLanes>(item, args.cols)';
  const itemsExpr = order === 'block16' ? 'qgen_items_block16(a.rows, a.cols, kElems)'
    : order === 'column-major' ? 'qgen_items_column_major(a.rows, a.cols, kElems, kLanes)'
      : 'qgen_items_row_major(a.rows, a.cols, kElems)';
  const tileStruct = requant ? 'qgen_nvfp4_transposed_tile' : 'qgen_transposed_tile';
  const tileUsableCall = requant ? 'qgen_nvfp4_tile_usable<kElems, kLanes, kThreads>(args.in_codes, block_item, items, args.rows, args.cols)'
    : 'qgen_transposed_tile_usable<kElems, kLanes, kThreads>(args.x, block_item, items, args.rows, args.cols)';
  const tileLoadCall = requant
    ? 'qgen_load_nvfp4_transposed_tile<kElems, kLanes, kThreads, ScaleLayout>(args.in_codes, args.in_scales, t_in, args.rows, block_item, tile, x)'
    : 'qgen_load_bf16_transposed_tile<kElems, kLanes, kThreads>(args.x, args.rows, block_item, tile, x)';
  const loadCall = requant ? `qgen_load_nvfp4_transposed<kElems, ScaleLayout>(args.in_codes, args.in_scales, t_in, args.rows, args.cols, s, active, x)`
    : spec.transposedInput ? 'qgen_load_bf16_transposed<kElems>(args.x, args.rows, args.cols, s, active, x)'
      : 'qgen_load_bf16_row<kElems>(args.x, args.cols, s, active, x)';

  // Primitives per launch.
  const loadPrims = [requant ? 'qgen_load_nvfp4_transposed' : spec.transposedInput ? 'qgen_load_bf16_transposed' : 'qgen_load_bf16_row',
    ...(tile ? [requant ? 'qgen_load_nvfp4_transposed_tile' : 'qgen_load_bf16_transposed_tile'] : []),
    ...(rotate ? ['qgen_hadamard_signs', 'qgen_hadamard_segment'] : [])];
  const groupPrims = [
    mx ? 'qgen_group_amax<32>' : 'qgen_group_amax<16>',
    ...(block16 ? ['qgen_block16x16_amax'] : []),
    ...(groupCall ? [groupCall.slice(0, groupCall.indexOf('('))] : []),
    ...(msEden ? [edenCodesCall.slice(0, edenCodesCall.indexOf('(')), 'qgen_tree16', ...(per128 ? ['qgen_chunk_tree'] : []),
      'qgen_eden_ratio', edenFinishCall.slice(0, edenFinishCall.indexOf('('))] : []),
    `E2M1 RN: ${e2m1Rn === 'hardware' ? 'qgen_rn_e2m1x2_hw (cvt.rn.satfinite.e2m1x2.f32, NaN -> +6 first)' : 'qgen_rn_e2m1_arith (exact binary32 rounding onto the grid, equal to the threshold rule)'}`,
    ...(rounding === 'sr' ? ['qgen_sr_e2m1', 'qgen_random_block'] : []),
    ...(mx ? ['qgen_rp_ue8m0_bits'] : ['qgen_rn_e4m3 (cvt.rn.satfinite.e4m3x2.f32)']),
    ...(msEden && tensorForm ? ['qgen_sr_e4m3'] : []),
    ...(mode === 'one-pass' ? ['qgen_rn_p4_bits', ...(msEden ? ['qgen_sr_p4_bits'] : [])] : []),
    'qgen_store_codes',
  ];
  const scaleWrites = `scales (${spec.scaleLayout}${spec.scaleLayout === '128x4' ? ', padding zeroed' : ''})`;
  const threads = spec.tiling.threadsPerBlock;
  const input = requant ? 'NVFP4 input (in_codes, in_scales, in_tensor_scale)' : spec.transposedInput ? 'x (bf16, [cols, rows])' : 'x (bf16, [rows, cols])';
  const ns = `qgen_${name}_impl`;
  const launches: LaunchPlan[] = [];
  const grid = `min(ceil(items / ${threads}), SMs * ${blocksPerSm(threads)})`;
  if (mode === 'computed') {
    launches.push({ kernel: `${ns}::amax_pass`, role: 'amax-pass', reads: input, writes: 'workspace max word (atomicMax)',
      items: itemsExpr, grid, block: threads, primitives: [...loadPrims, `qgen_group_amax<${E}>`, 'qgen_block_max_to_global'] });
  }
  if (mode === 'one-pass') {
    launches.push({ kernel: `${ns}::pass_a`, role: 'pass-a', reads: input,
      writes: 'codes, bf16 proxies (workspace), workspace max word (atomicMax)', items: itemsExpr, grid, block: threads,
      primitives: [...loadPrims, ...groupPrims, 'qgen_block_max_to_global'] });
    launches.push({ kernel: `${ns}::pass_b`, role: 'pass-b', reads: 'bf16 proxies, max word', writes: `${scaleWrites}, tensor_scale`,
      items: 'rows * (cols / 16)', grid, block: threads,
      primitives: ['qgen_one_pass_tensor_scale', msEden ? 'qgen_finalize_proxy_eden' : 'qgen_finalize_proxy_rn', 'qgen_zero_scale_padding'] });
  } else {
    launches.push({ kernel: `${ns}::quantize`, role: 'quantize',
      reads: `${input}${mode === 'computed' ? ', max word' : mode === 'caller' ? ', tensor_scale' : ''}`,
      writes: `codes, ${scaleWrites}${mode === 'computed' ? ', tensor_scale' : ''}`, items: itemsExpr, grid, block: threads,
      primitives: [...loadPrims, ...(mode === 'computed' ? ['qgen_computed_tensor_scale'] : []), ...groupPrims, 'qgen_zero_scale_padding'] });
  }

  const workspace = mode === 'computed' ? 'max-word' : mode === 'one-pass' ? 'max-word+proxies' : 'none';
  const steps: string[] = [];
  steps.push(`${name}: ${mx ? 'MXFP4 (32-groups, UE8M0 scales, no tensor scale; NUMERICS §5.8)' : 'NVFP4 (16-groups, E4M3 scales)'}, `
    + `rounding ${rounding}${block16 ? ' over 16x16 blocks (§5.7)' : ''}, tensor scale ${mode}, scale layout ${spec.scaleLayout} (§7), arch ${arch}.`);
  if (requant) steps.push(`Input: NVFP4 A [cols, rows] dequantized as f32(f32(e2m1 * e4m3) * t_in) and read transposed (§5.9); rows must be a multiple of 16.`
    + (tile ? ` Each block iteration stages a ${threadsPerBlock / L}-row x ${E * L}-column tile through shared memory (16-byte code loads along A's rows, dequantized into f32); partial or unaligned tiles read A directly.` : ''));
  else if (spec.transposedInput) steps.push(tile
    ? `Input: bf16 stored [cols, rows]; element (r, k) is at x[k * rows + r]. Each block iteration stages a ${spec.tiling.threadsPerBlock / L}-row x ${E * L}-column tile through shared memory (16-byte coalesced loads along rows, then each thread reads its row segment as bf16 pairs); partial tiles read x directly.`
    : 'Input: bf16 stored [cols, rows]; element (r, k) is read at x[k * rows + r] (coalesced across lanes: consecutive rows).');
  else steps.push('Input: bf16 [rows, cols] row-major, 16-byte loads.');
  steps.push(`Mapping: ${E} consecutive elements of one row per thread${L > 1 ? `, a ${mapping.unitWidth}-element chunk over ${L} adjacent lanes` : ''}; `
    + `${order} work order, grid-stride over ${threads}-thread blocks (tiling never changes results, §3.2).`);
  if (rotate) steps.push(`Rotate each ${n}-chunk along K (§4): signs from word(sign_seed, STREAM_SIGNS=${STREAM_SIGNS}, 0, j >> 5); butterfly stages `
    + `h < ${Math.min(E, n)} in registers${hadamardLanes > 1 ? `, h >= ${E} with __shfl_xor_sync over ${hadamardLanes} lanes` : ''}; scale by inv_sqrt_n = ${constants.find((c) => c.name === 'inv_sqrt_n')!.bits}.`);
  if (mode === 'computed') steps.push(`Pass 1 (amax-pass): amax over the${rotate ? ' rotated' : ''} tensor (finite values, §1.4) into a workspace word (zeroed by cudaMemsetAsync; atomicMax on bit patterns).`);
  if (mode === 'computed') steps.push(`Tensor scale (§5.1 computed): t = f32(amax / f32(T_ref * C)), T_ref = ${Math.fround(target)}, C = ${spec.ceiling}; t = 1 when amax = 0; written to tensor_scale.`);
  if (mode === 'caller') steps.push('Tensor scale (§5.1 caller): t is read from *tensor_scale.');
  if (mode === 'one-pass') steps.push('Pass A (§5.1 one-pass): per group the proxy p_g = RN_P4(f32(amax_g / T)) replaces s_g * t; codes are written, c_g is stored as bf16 in the workspace, and m = max c_g goes to a workspace word (zeroed by cudaMemsetAsync).');
  const amaxText = block16 ? 'amax over the 16x16 block (16 lanes, __shfl_xor_sync)' : `amax_g over the ${groupSize}-group`;
  switch (rounding) {
    case 'rtn':
      steps.push(mx ? `Per 32-group: ${amaxText}; s_g = RP_UE8M0(f32(amax_g / 6)) (1.0 for a zero group); q_i = RN_E2M1(f32(x_i * 2^(127-e))).`
        : `Per group: ${amaxText}; ${tensorForm ? 's_g = RN_E4M3(f32(amax_g / f32(T * t))), inv = f32(1 / f32(s_g * t))' : 'inv = f32(1 / p_g)'}; q_i = RN_E2M1(f32(x_i * inv)) (§5.3).`);
      break;
    case 'sr':
      steps.push(`Per group: ${amaxText}; ${mx ? 's_g = RP_UE8M0(f32(amax_g / 6))' : tensorForm ? 's_g = RN_E4M3(f32(amax_g / f32(V_sr * t)))' : 'p_g = RN_P4(f32(amax_g / V_sr))'}; `
        + `q_i = SR_E2M1(v_i, r16) with r16 from word(seed, STREAM_ELEMENT_SR=${STREAM_ELEMENT_SR}, g16, e >> 1) (§5.4, §3.2; software on every arch).`);
      break;
    case 'four-six':
      steps.push(`Per group: ${amaxText}; candidates T = 6 and T = 4 (§5.5), each RTN; errors tree16(f32(d_i^2)); keep 6 unless e_4 < e_6.`);
      break;
    case 'ms-eden':
      steps.push(per128 ? `Per group: ${amaxText}; RTN codes with T = s_eden; products f32(y_i^2), f32(y_i * f32(q_i * D_g)) in the input domain (§5.6).`
        : `Per group: ${amaxText}; RTN codes with T = s_eden; products f32(v_i^2), f32(v_i q_i) in scaled units (§5.6).`);
      steps.push(per128 ? 'Correction S per 128-chunk: tree128 over 128 products (cross-lane strides by __shfl_xor_sync, then registers); zero groups contribute 0.'
        : 'Correction S per 16-group: S = f32(tree16(v^2) / tree16(v q)), 1 when the denominator is 0 or S is not finite.');
      steps.push(tensorForm ? `Scale: s'_g = SR_E4M3(f32(S * s_g), word(seed, STREAM_SCALE_SR=${STREAM_SCALE_SR}, g, 0)); codes are not changed.`
        : `Proxy: c_g = SR_P4(f32(S * p_g), word(seed, STREAM_SCALE_SR=${STREAM_SCALE_SR}, g, 0)).`);
      break;
  }
  if (!mx) steps.push(`Zero groups (§5.2): amax_g = 0 or a ${mode === 'one-pass' ? 'proxy' : 'scale'} that rounds to 0 -> scale 1.0 (E4M3 0x38), `
    + `finite elements -> ±0, non-finite -> RN_E2M1${msEden ? '; in a correction sum their elements count as v = 0 (finite) or x (non-finite)' : ''}.`);
  if (mode === 'one-pass') {
    steps.push(`Pass B (§5.1): t = 2^k, the smallest k with m / 2^k <= C = ${spec.ceiling} (k in [-149, 127]; t = 1 when m = 0); `
      + (msEden ? `w = f32(c_g / t); s'_g = w when w >= 2^-6, else SR_E4M3(w, word(seed, ${STREAM_SCALE_SR}, g, 1)).` : 's_g = RN_E4M3(f32(c_g / t)).'));
  }
  steps.push(`E2M1 round-to-nearest on ${arch}: ${e2m1Rn === 'hardware' ? 'hardware cvt.rn.satfinite.e2m1x2.f32 with NaN mapped to +6 first (§2.1)' : 'software, f32((a + c) - c) onto the grid (equal to the threshold rule; no FP4 cvt on Hopper)'}; `
    + 'E4M3 RN: hardware cvt.rn.satfinite.e4m3x2.f32 (all archs).');
  steps.push(`Outputs: codes [rows, cols/2] (low index in the low nibble), ${scaleWrites}${mode === 'none' ? '' : ', tensor_scale'}.`);
  steps.push(`Launches: ${launches.map((l) => `${l.role} (${l.kernel})`).join(' -> ')}; workspace: ${workspace}.`);
  steps.push(`Shapes (§8): rows >= 1, cols a positive multiple of ${colsMultiple}${requant ? ', rows a multiple of 16' : ''}; checked before any launch.`);

  // ptxas's default register target would make some mappings spill, and spills are build errors; minBlocks caps the
  // registers at what the mapping needs (minBlocksPerSm) so that several blocks share an SM.
  steps.push(`Registers: __launch_bounds__(${threads}, ${minBlocks}) (at most ${Math.min(255, Math.floor(65536 / (threads * minBlocks)))} per thread, no spills).`);
  const headers = [...BASE_HEADERS, ...(rotate ? ['qgen_hadamard.cuh'] : []), 'qgen_quantize.cuh'];
  const launch = { threadsPerBlock: threads, grid, kernels: launches.map((l) => `${l.role}: ${l.kernel}`), workspace };
  return {
    name, kind: 'quantize', arch, spec, launch,
    ...hostNames(name, 'qgen_quantize_args', true),
    launches, headers, constants,
    choices: { e2m1Rn, e2m1Sr: rounding === 'sr' ? 'software' : null, e4m3Rn: mx ? null : 'hardware' },
    mapping: { ...mapping, order },
    colsMultiple,
    steps,
    render: {
      computed: mode === 'computed', caller: mode === 'caller', onePass: mode === 'one-pass', noTensorScale: mode === 'none',
      writesTensorScale: mode === 'computed' || mode === 'one-pass',
      mx, msEden, per128, per16: msEden && !per128, block16, rotate, requant, transposed: spec.transposedInput, columnMajor, tile, prefetch,
      hadamardSize: n, hadamardLanes, groupSize,
      groupsPerThread: E / groupSize, codeWords: E / 16,
      e2m1Policy, layoutPolicy, segmentCall, itemsExpr, loadCall, tileStruct, tileUsableCall, tileLoadCall, groupCall, edenCodesCall, edenFinishCall,
      targetRef, blocksPerSm: blocksPerSm(threads), launchBounds: `kThreads, ${minBlocks}`,
      workspaceNone: workspace === 'none', workspaceMaxWord: workspace === 'max-word', workspaceProxies: workspace === 'max-word+proxies',
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Dequantize, Hadamard, amax

function lowerDequantize(spec: DequantizeSpec, arch: Arch): KernelPlan {
  const name = cIdent(spec.name);
  checkTiling(name, spec.tiling);
  const mx = spec.scaleGroup.format === 'ue8m0';
  const groupSize = spec.scaleGroup.size;
  const E = Math.ceil((16 * spec.tiling.groupsPerThread) / groupSize) * groupSize;
  const threads = spec.tiling.threadsPerBlock;
  checkRegisters(name, E, threads, 1);
  const layoutPolicy = spec.scaleLayout === '128x4' ? 'qgen_layout_128x4' : 'qgen_layout_row_major';
  const launches: LaunchPlan[] = [{
    kernel: `qgen_${name}_impl::dequantize`, role: 'dequantize', reads: `codes, scales (${spec.scaleLayout})${mx ? '' : ', tensor_scale'}`,
    writes: `y (${spec.output})`, items: 'rows * cols / 8 (8-element pieces)', grid: `min(ceil(items / (${threads} * ${E / 8})), SMs * ${blocksPerSm(threads)})`,
    block: threads, primitives: ['qgen_e2m1_values_4 (prmt table)', mx ? 'qgen_dequantize_mxfp4_8' : 'qgen_dequantize_nvfp4_8',
      spec.output === 'bf16' ? '16-byte bf16 stores (cvt.rn.bf16.f32)' : '16-byte f32 stores'],
  }];
  const steps = [
    `${name}: dequantize ${mx ? 'MXFP4 (32-groups, UE8M0)' : 'NVFP4 (16-groups, E4M3, tensor scale t)'} with ${spec.scaleLayout} scales to ${spec.output}, arch ${arch}.`,
    mx ? 'y_i = f32(e2m1_i * 2^(e-127)) (NUMERICS §6).' : 'y_i = f32(f32(e2m1_i * s_g) * t) (NUMERICS §6; the inner product is exact).',
    ...(spec.output === 'bf16' ? ['bf16 output: RNE, NaN stays NaN (§2.8).'] : []),
    `Mapping: ${E / 8} pieces of 8 elements per thread and iteration, piece 32 * c + lane of its warp's run (32-bit coalesced code loads, 16-byte stores), grid-stride.`,
    `Shapes: rows >= 1, cols a positive multiple of ${groupSize}.`,
  ];
  const launch = { threadsPerBlock: threads, grid: launches[0].grid, kernels: launches.map((l) => `${l.role}: ${l.kernel}`), workspace: 'none' };
  return {
    name, kind: 'dequantize', arch, spec, launch, ...hostNames(name, 'qgen_dequantize_args', false),
    launches, headers: [...BASE_HEADERS, 'qgen_dequantize.cuh'], constants: [],
    choices: { e2m1Rn: null, e2m1Sr: null, e4m3Rn: null },
    mapping: { elemsPerThread: E, lanesPerUnit: 1, unitWidth: E, order: 'row-major' },
    colsMultiple: groupSize, steps,
    render: { mx, groupSize, groupsPerThread: E / groupSize, codeWords: E / 16, layoutPolicy, bf16Out: spec.output === 'bf16',
      blocksPerSm: blocksPerSm(threads) },
  };
}

function lowerHadamard(spec: HadamardSpec, arch: Arch): KernelPlan {
  const name = cIdent(spec.name);
  checkTiling(name, spec.tiling);
  const n = spec.size;
  const mapping = mapElements(name, 16 * spec.tiling.groupsPerThread, n);
  const E = mapping.elemsPerThread;
  const threads = spec.tiling.threadsPerBlock;
  checkRegisters(name, E, threads, 2);
  const constants = [constant('inv_sqrt_n', INV_SQRT[n], `NUMERICS §1.5: f32(1/sqrt(${n}))`)];
  const launches: LaunchPlan[] = [{
    kernel: `qgen_${name}_impl::hadamard`, role: 'hadamard', reads: `x (${spec.input})`, writes: `y (${spec.output})`,
    items: 'qgen_items_row_major(rows, cols, kElems)', grid: `min(ceil(items / ${threads}), SMs * ${blocksPerSm(threads)})`, block: threads,
    primitives: [spec.input === 'bf16' ? 'qgen_load_bf16_row' : 'qgen_load_f32_row', 'qgen_hadamard_signs', 'qgen_hadamard_segment',
      spec.output === 'bf16' ? 'qgen_store_bf16_row' : 'qgen_store_f32_row'],
  }];
  const steps = [
    `${name}: randomized Hadamard transform of size ${n} along cols (NUMERICS §4), ${spec.input} -> ${spec.output}, arch ${arch}.`,
    `Signs: word(seed, STREAM_SIGNS=${STREAM_SIGNS}, 0, j >> 5), bit j & 31 (set -> -1); args.seed is the sign seed (a quantizer's sign_seed, §3.2).`,
    `Mapping: ${E} elements per thread${mapping.lanesPerUnit > 1 ? `; a ${n}-chunk over ${mapping.lanesPerUnit} lanes: stages h >= ${E} by __shfl_xor_sync` : ''}; stages h < ${Math.min(E, n)} in registers.`,
    `Every butterfly output is one binary32 add/sub (__fadd_rn/__fsub_rn); then y_j = f32(a_j * ${constants[0].bits}).`,
    `Registers: __launch_bounds__(${threads}, 1) (no spills).`,
    ...(spec.output === 'bf16' ? ['bf16 output: RNE (§2.8).'] : []),
    `Shapes: rows >= 1, cols a positive multiple of ${n}.`,
  ];
  const launch = { threadsPerBlock: threads, grid: launches[0].grid, kernels: launches.map((l) => `${l.role}: ${l.kernel}`), workspace: 'none' };
  return {
    name, kind: 'hadamard', arch, spec, launch, ...hostNames(name, 'qgen_hadamard_args', false),
    launches, headers: [...BASE_HEADERS, 'qgen_hadamard.cuh'], constants,
    choices: { e2m1Rn: null, e2m1Sr: null, e4m3Rn: null },
    mapping: { ...mapping, order: 'row-major' }, colsMultiple: n, steps,
    render: { hadamardSize: n, hadamardLanes: mapping.lanesPerUnit, bf16In: spec.input === 'bf16', bf16Out: spec.output === 'bf16',
      blocksPerSm: blocksPerSm(threads) },
  };
}

function lowerAmax(spec: AmaxSpec, arch: Arch): KernelPlan {
  const name = cIdent(spec.name);
  checkTiling(name, spec.tiling);
  const threads = spec.tiling.threadsPerBlock;
  const perLoad = spec.input === 'bf16' ? 8 : 4;
  const launches: LaunchPlan[] = [{
    kernel: `qgen_${name}_impl::amax`, role: 'amax', reads: `x (${spec.input})`, writes: 'amax (atomicMax on its bit pattern)',
    items: `ceil(rows * cols / ${perLoad})`, grid: `min(ceil(items / ${threads}), SMs * ${blocksPerSm(threads)})`, block: threads,
    primitives: ['qgen_finite_abs', 'qgen_block_max_to_global'],
  }];
  const steps = [
    `${name}: amax over the finite elements of x (${spec.input}; NUMERICS §1.4), arch ${arch}.`,
    `The result word is zeroed with cudaMemsetAsync on the caller's stream, then every block folds its maximum in with atomicMax on the bit pattern.`,
    `Mapping: the tensor as one flat array, ${perLoad} elements per 16-byte load, grid-stride; a scalar tail.`,
    'Shapes: rows >= 1, cols >= 1.',
  ];
  const launch = { threadsPerBlock: threads, grid: launches[0].grid, kernels: launches.map((l) => `${l.role}: ${l.kernel}`), workspace: 'none (the result word accumulates)' };
  return {
    name, kind: 'amax', arch, spec, launch, ...hostNames(name, 'qgen_amax_args', true),
    launches, headers: BASE_HEADERS, constants: [],
    choices: { e2m1Rn: null, e2m1Sr: null, e4m3Rn: null },
    mapping: { elemsPerThread: perLoad, lanesPerUnit: 1, unitWidth: perLoad, order: 'row-major' }, colsMultiple: 1, steps,
    render: { bf16In: spec.input === 'bf16', perLoad, blocksPerSm: blocksPerSm(threads) },
  };
}

/** Lowers a validated spec for an arch. Throws LoweringError for combinations not supported. */
export function lower(spec: KernelSpec, arch: Arch): KernelPlan {
  switch (spec.kind) {
    case 'quantize': return lowerQuantize(spec, arch);
    case 'dequantize': return lowerDequantize(spec, arch);
    case 'hadamard': return lowerHadamard(spec, arch);
    case 'amax': return lowerAmax(spec, arch);
    case 'gemm': return lowerGemm(spec, arch);
  }
}
