// Lowering: a validated KernelSpec and a target arch become a KernelPlan — data made only of enums, numbers and
// names: which kernels run (launches), how the work is mapped onto threads, which per-arch choices and constants
// apply. There is no C++ and no prose here: render/ turns a plan into CUDA (render/quantize.ts and the templates),
// render/explain.ts into the words of `qgen explain` and of the generated banners.
// Numerics are runtime/NUMERICS.md's; section numbers below refer to it.
import type {
  AmaxSpec,
  Arch,
  DequantizeSpec,
  ElementwiseTiling,
  GemmSpec,
  HadamardSpec,
  KernelSpec,
  QuantizeOutputs,
  QuantizeSpec,
  Rounding,
  ScaleLayout,
} from '../dsl/types.ts';
import { writesPlane } from '../dsl/types.ts';
import { lowerGemm } from './gemm.ts';
import type { Sm90GemmLayout } from '../arch/gemm_sm90.ts';
import type { Sm100GemmLayout } from '../arch/gemm_sm100.ts';
import type { Sm120GemmLayout } from '../arch/gemm_sm120.ts';
import { cIdent, hostNames, LoweringError, type HostNames } from './names.ts';
import { E2M1_MAX, INV_SQRT, f32Bits, targetValue } from '../dsl/constants.ts';

/** A binary32 constant of a plan: its name (a device function in the kernel), value and exact bit pattern. */
export interface PlanConstant {
  name: PlanConstantName;
  value: number;
  bits: string;
}

export type PlanConstantName = 'target' | 'target6' | 'target4' | 'ceiling' | 'inv_sqrt_n';

/** Role of one kernel launch of a plan. */
export type LaunchRole = 'amax-pass' | 'quantize' | 'pass-a' | 'pass-b' | 'dequantize' | 'hadamard' | 'amax' | 'gemm';

/** One launch of an element-wise plan: its `__global__` function (e.g. `qgen_x_impl::quantize`), role and block. */
export interface KernelLaunch {
  kernel: string;
  role: LaunchRole;
  block: number;
}

/** How the E2M1 round-to-nearest is spelled on the arch (NUMERICS §2.1). */
export type E2m1Implementation = 'hardware' | 'software';

/** Work order of an element-wise kernel's items (runtime/qgen_layout.cuh segments). */
export type WorkOrder = 'row-major' | 'column-major' | 'block16';

interface PlanCommon extends HostNames {
  name: string;
  arch: Arch;
  launches: KernelLaunch[];
  /** Runtime headers the generated source includes (copied next to it), in include order. */
  headers: string[];
  constants: PlanConstant[];
  choices: {
    e2m1Rn: E2m1Implementation | null;
    e2m1Sr: 'software' | null;
    e4m3Rn: 'hardware' | null;
  };
  /** Elements per thread (E), lanes per unit (L) and the unit width W = E * L (NUMERICS §4 chunk / §5.6 chunk). */
  mapping: { elemsPerThread: number; lanesPerUnit: number; unitWidth: number; order: WorkOrder };
  /** Shape rule of the host entry: cols must be a positive multiple of this. */
  colsMultiple: number;
  /** Threads per block of every launch, and the blocks per SM its grid-stride launch aims for. */
  threadsPerBlock: number;
  blocksPerSm: number;
}

/** Tensor scale of a quantizer as lowered: the spec's mode ('none' for MXFP4). */
export type TensorScalePlan = 'computed' | 'caller' | 'one-pass' | 'none';

/** How a quantizer reads its input (runtime/qgen_load_{row,transposed,nvfp4}.cuh loaders). */
export type LoadPath =
  | 'bf16-row'
  | 'bf16-row-prefetch'
  | 'bf16-transposed'
  | 'bf16-transposed-tile'
  | 'nvfp4-transposed'
  | 'nvfp4-transposed-tile';

/** What a quantizer's workspace holds. */
export type WorkspaceKind = 'none' | 'max-word' | 'max-word+proxies';

export interface QuantizeFacts {
  scaleFormat: 'e4m3' | 'ue8m0';
  groupSize: number;
  rounding: Rounding;
  /** MS-EDEN correction granularity; null for the other roundings. */
  correction: 'per-16' | 'per-128' | null;
  tensorScale: TensorScalePlan;
  block16: boolean;
  /** Hadamard chunk size n (NUMERICS §4), 0 for none, and the lanes one chunk spans. */
  rotation: number;
  rotationLanes: number;
  input: 'bf16' | 'nvfp4';
  load: LoadPath;
  scaleLayout: ScaleLayout;
  workspace: WorkspaceKind;
  /**
   * What the kernel writes; the bf16 plane (NUMERICS §6.6) comes from the quantize pass or from pass B (one-pass),
   * the dequantized plane (§6.7) from pass A, with pass B rewriting the groups pass A could not know.
   */
  outputs: QuantizeOutputs;
  groupsPerThread: number;
  codeWords: number;
  /** minBlocks of __launch_bounds__(threads, minBlocks). */
  minBlocksPerSm: number;
  /**
   * Blocks per SM of the one-pass pass B's grid: 2048 / threads. Pass B takes fewer registers than pass A (~50),
   * so more of its blocks are resident than pass A's whole-wave grid (PlanCommon.blocksPerSm) is made for.
   */
  finalizeBlocksPerSm: number;
  /**
   * Whether the grid-stride loop of the quantize pass keeps its per-thread state (thread index and what derives from
   * it, staged-tile piece signs, rotation signs, the walk's step, the segment across the body) in registers or
   * re-reads it in every iteration (qgen_for_each_segment).
   */
  loopState: LoopState;
}

/** See QuantizeFacts.loopState and loopState(). */
export type LoopState = 'registers' | 'recomputed';

export interface QuantizePlan extends PlanCommon {
  kind: 'quantize';
  spec: QuantizeSpec;
  quantize: QuantizeFacts;
}

export interface DequantizePlan extends PlanCommon {
  kind: 'dequantize';
  spec: DequantizeSpec;
  dequantize: {
    scaleFormat: 'e4m3' | 'ue8m0';
    groupSize: number;
    groupsPerThread: number;
    codeWords: number;
    scaleLayout: ScaleLayout;
    output: 'bf16' | 'f32';
  };
}

export interface HadamardPlan extends PlanCommon {
  kind: 'hadamard';
  spec: HadamardSpec;
  hadamard: { size: number; lanes: number; input: 'bf16' | 'f32'; output: 'bf16' | 'f32' };
}

export interface AmaxPlan extends PlanCommon {
  kind: 'amax';
  spec: AmaxSpec;
  amax: { input: 'bf16' | 'f32'; perLoad: number };
}

/** A GEMM tiling as the arch model lays it out (arch/gemm_sm*.ts), with sm_100a's MMA instruction descriptor. */
export type GemmTiling =
  | { arch: 'sm_90a'; layout: Sm90GemmLayout }
  | { arch: 'sm_100a'; layout: Sm100GemmLayout; idesc: number }
  | { arch: 'sm_120a'; layout: Sm120GemmLayout };

/** A GEMM plan (lower/gemm.ts): one persistent launch; render/facts.ts and render/explain.ts spell `gemm`. */
export interface GemmPlan extends Omit<PlanCommon, 'blocksPerSm'> {
  kind: 'gemm';
  spec: GemmSpec;
  gemm: GemmTiling & { tileOrder: GemmSpec['tiling']['tileOrder']; output: GemmSpec['output'] };
}

// Shared with lower/gemm.ts through lower/names.ts (so that gemm.ts does not import this file back).
export { cIdent, hostNames, LoweringError, type HostNames };

export type KernelPlan = QuantizePlan | DequantizePlan | HadamardPlan | AmaxPlan | GemmPlan;

/** The small candidate of four-over-six (NUMERICS §5.5); exact. */
const FOUR_SIX_SMALL_TARGET = 4;

function constant(name: PlanConstantName, value: number): PlanConstant {
  const v = Math.fround(value);
  return { name, value: v, bits: `0x${f32Bits(v).toString(16).padStart(8, '0')}` };
}

/** E2M1 round-to-nearest: the hardware cvt exists on Blackwell (sm_100a, sm_120a), not on Hopper (PTX-FACTS §1.3). */
export function e2m1RnImplementation(arch: Arch): E2m1Implementation {
  return arch === 'sm_90a' ? 'software' : 'hardware';
}

function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

function checkTiling(name: string, t: ElementwiseTiling): void {
  const threads = t.threadsPerBlock;
  if (!Number.isInteger(threads) || threads < 32 || threads > 1024 || threads % 32 !== 0)
    throw new LoweringError(`${name}: tiling.threadsPerBlock = ${threads}; allowed: a multiple of 32 in 32..1024`);
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
function checkRegisters(name: string, elems: number, threads: number, weight: RegisterWeight): void {
  const estimate = 48 + weight * elems;
  const available = Math.min(255, Math.floor(65536 / threads));
  if (estimate > available) {
    throw new LoweringError(
      `${name}: tiling needs about ${estimate} registers per thread ` +
        `(${elems} elements per thread), ` +
        `but ${threads} threads per block leave ${available}; lower tiling.groupsPerThread or tiling.threadsPerBlock`,
    );
  }
}

type RegisterWeight = 1 | 2 | 3;

/**
 * The minBlocks of a quantize kernel's __launch_bounds__(threads, minBlocks) when its tiling.minBlocksPerSm does not
 * set it: as many resident blocks as a register
 * budget of about 48 + min(weight, 2) * E per thread allows (ptxas 13.0 fits the catalog's E = 32 kernels in 80
 * registers for weight 1 and in 128 for MS-EDEN and rotations, without spills; never less than 80, which
 * four-over-six with E = 16 needs), so that 16-24 warps per SM hide latency instead of 8-16. Never below 1 and never
 * above what 2048 threads per SM allow.
 */
function minBlocksPerSm(threads: number, elems: number, weight: RegisterWeight, need64 = false): number {
  const need = need64 ? 64 : Math.max(80, 48 + Math.min(weight, 2) * elems);
  return Math.max(1, Math.min(blocksPerSm(threads), Math.floor(65536 / (threads * need))));
}

/**
 * The measured exceptions to minBlocksPerSm's estimate (ptxas 13.0), both from a row-major bf16 input (1x16 groups,
 * E = 32) with the loop state re-read per iteration (loopState): one-pass four-over-six with the software E2M1
 * rounding (sm_90a) fits 64 registers without spills (32 warps per SM instead of 24 at 80; with the hardware rounding
 * of sm_100a / sm_120a it spills 28-36 bytes, with a computed tensor scale 28), and NVFP4 SR without the prefetch
 * fits 62-64 on every arch (nvidia_e_sr; 94 registers, 16 warps, with the prefetch).
 */
function fitsIn64(spec: QuantizeSpec, elems: number, load: LoadPath, e2m1Rn: E2m1Implementation): boolean {
  if (load !== 'bf16-row' || spec.block !== '1x16' || elems !== 32) return false;
  const fourSix = spec.rounding === 'four-six' && spec.tensorScale === 'one-pass' && e2m1Rn === 'software';
  const sr = spec.rounding === 'sr' && spec.scaleGroup.format === 'e4m3';
  return fourSix || sr;
}

/**
 * Blocks per SM a quantizer's grid-stride launch aims for when its tiling sets minBlocksPerSm: the most whole waves
 * of minBlocks resident blocks (every block does the same work, so a grid of 16 blocks per SM with 5 resident would
 * run a last wave of one block per SM at a fifth of the occupancy). Only there: a kernel whose registers come from
 * the estimate may fit more blocks than minBlocks (an amax pass of 42 registers fits 5 of 256 threads where its
 * quantize pass fits 3), and 2048 / threads is then the safer grid. Never changes results.
 */
function gridBlocksPerSm(threads: number, minBlocks: number): number {
  return Math.max(minBlocks, Math.floor(blocksPerSm(threads) / minBlocks) * minBlocks);
}

/** Blocks per SM the grid-stride launch aims for (occupancy target; never changes results). */
export function blocksPerSm(threads: number): number {
  return Math.max(1, Math.floor(2048 / threads));
}

/**
 * Thread mapping for a row of K elements: E elements per thread; a unit of W >= E elements (a Hadamard chunk or an
 * MS-EDEN 128-chunk) is spread over L = W / E adjacent lanes.
 */
function mapElements(name: string, elems: number, unit: number) {
  const width = Math.max(elems, unit);
  if (width % elems !== 0 || (width > elems && !isPowerOfTwo(width / elems)))
    throw new LoweringError(
      `${name}: ${elems} elements per thread do not tile a ${unit}-element chunk; ` +
        `use tiling.groupsPerThread = 1, 2, 4 or 8`,
    );
  if (elems > unit && unit > 0 && elems % unit !== 0)
    throw new LoweringError(
      `${name}: ${elems} elements per thread are not whole ${unit}-element chunks; ` +
        `use a tiling.groupsPerThread that is a power of two`,
    );
  const lanes = width / elems;
  if (lanes > 32) throw new LoweringError(`${name}: a chunk would span ${lanes} lanes (more than a warp)`);
  return { elemsPerThread: elems, lanesPerUnit: lanes, unitWidth: width };
}

const BASE_HEADERS = [
  'qgen.h',
  'qgen_host.cuh',
  'qgen_fp32.cuh',
  'qgen_philox.cuh',
  'qgen_e2m1.cuh',
  'qgen_e4m3.cuh',
  'qgen_ue8m0.cuh',
  'qgen_layout.cuh',
  'qgen_segment.cuh',
  'qgen_async.cuh',
  'qgen_load_row.cuh',
  'qgen_load_transposed.cuh',
  'qgen_load_nvfp4.cuh',
  'qgen_codes_io.cuh',
  'qgen_store_row.cuh',
  'qgen_reduce.cuh',
];

const NO_CHOICES = { e2m1Rn: null, e2m1Sr: null, e4m3Rn: null } as const;

// ---------------------------------------------------------------------------------------------------------------
// Quantize, in named steps: combination checks, thread mapping, load path, constants, launches.

/** Combinations the spec language allows but lowering does not define. */
function checkQuantizeCombination(name: string, spec: QuantizeSpec): void {
  const mx = spec.scaleGroup.format === 'ue8m0';
  if (mx && (spec.rounding === 'four-six' || spec.rounding === 'ms-eden'))
    throw new LoweringError(`${name}: MXFP4 (group 32, UE8M0) supports rounding 'rtn' or 'sr', not '${spec.rounding}'`);
  if (mx !== (spec.tensorScale === 'none'))
    throw new LoweringError(`${name}: tensorScale 'none' goes with MXFP4 scales and only with them`);
  if (spec.block === '16x16' && mx) throw new LoweringError(`${name}: 16x16 blocks need 16-element E4M3 groups`);
}

/** Register weight of a quantizer: how many values per element a thread keeps live (see checkRegisters). */
function quantizeRegisterWeight(spec: QuantizeSpec): RegisterWeight {
  // Four-over-six of a transposed input holds both candidates next to the staged tile's addressing: 80 registers
  // spilled 24 bytes with ptxas 13.0 on sm_90a, so it gets the rotation/SR budget.
  const fourSixTransposed = spec.rounding === 'four-six' && spec.transposedInput;
  if (spec.rounding === 'ms-eden') return 3;
  return spec.hadamard !== null || spec.rounding === 'sr' || fourSixTransposed ? 2 : 1;
}

/** E elements per thread (whole scale groups; NUMERICS §5.8: 32 for MXFP4), L lanes per chunk, the work order. */
function quantizeMapping(name: string, spec: QuantizeSpec): PlanCommon['mapping'] {
  const groupSize = spec.scaleGroup.size;
  const per128 = spec.rounding === 'ms-eden' && spec.correction === 'per-128';
  const n = spec.hadamard ?? 0;
  const elems = Math.ceil((16 * spec.tiling.groupsPerThread) / groupSize) * groupSize;
  if (per128 && elems > 128) {
    throw new LoweringError(
      `${name}: MS-EDEN per-128 correction needs tiling.groupsPerThread <= 8 ` + '(one 128-chunk per thread at most)',
    );
  }
  const mapping = mapElements(name, elems, Math.max(n, per128 ? 128 : 0));
  const block16 = spec.block === '16x16';
  if (block16 && mapping.lanesPerUnit !== 1) {
    throw new LoweringError(
      `${name}: 16x16 blocks need the whole rotation chunk in one thread ` + `(tiling.groupsPerThread >= ${n / 16})`,
    );
  }
  const columnMajor = spec.transposedInput || spec.input === 'nvfp4';
  return { ...mapping, order: block16 ? 'block16' : columnMajor ? 'column-major' : 'row-major' };
}

/**
 * The input path. A transposed bf16 input is staged through shared memory, one tile of (threads / L) rows x (E * L)
 * columns per block iteration, when the tile fits in 32 KiB (qgen_transposed_tile in runtime/qgen_load_transposed.cuh).
 * An NVFP4 input (NUMERICS §5.9) is staged the same way as dequantized f32 values, (threads / L) x L * (E + 4) floats
 * (qgen_nvfp4_transposed_tile), when E is whole 16-byte code pieces, the tile has a multiple of 32 rows and it fits
 * in 40 KiB. A row-major bf16 input is software-pipelined (the next iteration's 16-byte loads are in flight during
 * this one's arithmetic, E / 2 more registers) only where it costs no occupancy (RTN and MXFP4 with E <= 32,
 * measured with ptxas 13.0): four-over-six and MS-EDEN need about E / 2 more registers with it, and measured slower
 * on an H100 at the lower occupancy; NVFP4 SR (nvidia_e_sr) takes 94 registers with it (16 warps per SM) and 59-64
 * without it (fitsIn64: 32 warps). (A cp.async row path for four-over-six and NVFP4 SR, pieces of the iteration after
 * next copied into shared memory, ran slower on an H100 at 51f093b: nvidia_e_sr 133 -> 194 us, quartet2_x_46 94 ->
 * 114 us at 8192^2; removed, bench/NOTES.md.)
 */
function quantizeLoadPath(spec: QuantizeSpec, mapping: PlanCommon['mapping']): LoadPath {
  const E = mapping.elemsPerThread,
    L = mapping.lanesPerUnit,
    threads = spec.tiling.threadsPerBlock;
  const block16 = spec.block === '16x16';
  if (spec.input === 'nvfp4') {
    const tile = !block16 && E % 32 === 0 && (threads / L) % 32 === 0 && threads * (E + 4) * 4 <= 40960;
    return tile ? 'nvfp4-transposed-tile' : 'nvfp4-transposed';
  }
  if (spec.transposedInput) return !block16 && E * threads * 2 <= 32768 ? 'bf16-transposed-tile' : 'bf16-transposed';
  const nvfp4Sr = spec.rounding === 'sr' && spec.scaleGroup.format === 'e4m3';
  const prefetch = !block16 && E <= 32 && spec.rounding !== 'four-six' && spec.rounding !== 'ms-eden' && !nvfp4Sr;
  return prefetch ? 'bf16-row-prefetch' : 'bf16-row';
}

/**
 * The loop's per-thread state. Re-reading it in every iteration costs a few instructions (a thread-index read, one
 * or two shared loads, re-derived addresses) and frees ~10-25 registers: measured with ptxas 13.0 on sm_90a, it
 * takes the MS-EDEN tile kernels from 91-92 to 80 registers at 128 x 6 (they spill 8-32 bytes there without it),
 * the row-input MS-EDEN kernel from 121 to 96 at 128 x 5 (68 bytes of spills without it), SR tile kernels from 95
 * to 79 (24 instead of 16 resident warps at 256 threads) and one-pass four-over-six into 64 (fitsIn64; 56 bytes
 * of spills without it). Elsewhere (RTN, the other four-over-six kernels) it gains no resident warps, and a
 * prefetching loop needs its next segment early: those keep the registers.
 */
function loopState(spec: QuantizeSpec, elems: number, load: LoadPath, e2m1Rn: E2m1Implementation): LoopState {
  if (load === 'bf16-row-prefetch') return 'registers';
  if (spec.rounding === 'ms-eden' || spec.rounding === 'sr') return 'recomputed';
  return fitsIn64(spec, elems, load, e2m1Rn) ? 'recomputed' : 'registers';
}

/** Targets (NUMERICS §5): T per rounding, T_ref for the computed tensor scale (6 for four-over-six). */
function quantizeConstants(spec: QuantizeSpec, mode: TensorScalePlan): PlanConstant[] {
  const mx = spec.scaleGroup.format === 'ue8m0';
  const constants: PlanConstant[] = [];
  if (spec.rounding === 'four-six') {
    constants.push(constant('target6', E2M1_MAX), constant('target4', FOUR_SIX_SMALL_TARGET));
  } else {
    constants.push(constant('target', mx ? E2M1_MAX : targetValue(spec.target)));
  }
  if (mode === 'computed' || mode === 'one-pass') constants.push(constant('ceiling', spec.ceiling));
  if (spec.hadamard !== null) constants.push(constant('inv_sqrt_n', INV_SQRT[spec.hadamard]));
  return constants;
}

/** The passes of a tensor-scale mode (NUMERICS §5.1). */
function quantizeLaunches(name: string, mode: TensorScalePlan, threads: number): KernelLaunch[] {
  const ns = `qgen_${name}_impl`;
  const launch = (entry: string, role: LaunchRole): KernelLaunch => ({
    kernel: `${ns}::${entry}`,
    role,
    block: threads,
  });
  switch (mode) {
    case 'computed':
      return [launch('amax_pass', 'amax-pass'), launch('quantize', 'quantize')];
    case 'one-pass':
      return [launch('pass_a', 'pass-a'), launch('pass_b', 'pass-b')];
    case 'caller':
    case 'none':
      return [launch('quantize', 'quantize')];
  }
}

function workspaceKind(mode: TensorScalePlan): WorkspaceKind {
  return mode === 'computed' ? 'max-word' : mode === 'one-pass' ? 'max-word+proxies' : 'none';
}

function lowerQuantize(spec: QuantizeSpec, arch: Arch): QuantizePlan {
  const name = cIdent(spec.name);
  checkTiling(name, spec.tiling);
  checkQuantizeCombination(name, spec);
  const mx = spec.scaleGroup.format === 'ue8m0';
  const groupSize = spec.scaleGroup.size;
  const mode: TensorScalePlan = mx ? 'none' : spec.tensorScale;
  const per128 = spec.rounding === 'ms-eden' && spec.correction === 'per-128';
  const n = spec.hadamard ?? 0;
  const threads = spec.tiling.threadsPerBlock;
  const outputs: QuantizeOutputs = spec.outputs ?? 'nvfp4';
  if (writesPlane(outputs) && mx) throw new LoweringError(`${name}: the bf16 plane is NVFP4 only`);
  if (outputs === 'nvfp4+dequantized-plane' && mode !== 'one-pass') {
    throw new LoweringError(`${name}: the dequantized plane is written by a one-pass pass A (NUMERICS §6.7)`);
  }

  const mapping = quantizeMapping(name, spec);
  const E = mapping.elemsPerThread;
  const weight = quantizeRegisterWeight(spec);
  checkRegisters(name, E, threads, weight);
  const e2m1Rn = e2m1RnImplementation(arch);
  const load = quantizeLoadPath(spec, mapping);
  const minBlocks = spec.tiling.minBlocksPerSm ?? minBlocksPerSm(threads, E, weight, fitsIn64(spec, E, load, e2m1Rn));
  return {
    name,
    kind: 'quantize',
    arch,
    spec,
    ...hostNames(name, 'qgen_quantize_args', true),
    launches: quantizeLaunches(name, mode, threads),
    headers: [
      ...BASE_HEADERS,
      'qgen_hadamard.cuh',
      'qgen_quantize.cuh',
      'qgen_quantize_kernel.cuh',
      ...(writesPlane(outputs) ? ['qgen_dequantize.cuh', 'qgen_quantize_plane.cuh'] : []),
    ],
    constants: quantizeConstants(spec, mode),
    choices: { e2m1Rn, e2m1Sr: spec.rounding === 'sr' ? 'software' : null, e4m3Rn: mx ? null : 'hardware' },
    mapping,
    colsMultiple: Math.max(groupSize, n, per128 ? 128 : 0),
    threadsPerBlock: threads,
    // whole waves where the spec sizes the registers (other passes of a kernel may fit more blocks than minBlocks)
    blocksPerSm: spec.tiling.minBlocksPerSm ? gridBlocksPerSm(threads, minBlocks) : blocksPerSm(threads),
    quantize: {
      scaleFormat: spec.scaleGroup.format,
      groupSize,
      rounding: spec.rounding,
      correction: spec.rounding === 'ms-eden' ? spec.correction : null,
      tensorScale: mode,
      block16: spec.block === '16x16',
      rotation: n,
      rotationLanes: n ? Math.max(1, n / E) : 1,
      input: spec.input,
      load,
      scaleLayout: spec.scaleLayout,
      workspace: workspaceKind(mode),
      outputs,
      groupsPerThread: E / groupSize,
      codeWords: E / 16,
      minBlocksPerSm: minBlocks,
      finalizeBlocksPerSm: blocksPerSm(threads),
      loopState: loopState(spec, E, load, e2m1Rn),
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Dequantize, Hadamard, amax

function lowerDequantize(spec: DequantizeSpec, arch: Arch): DequantizePlan {
  const name = cIdent(spec.name);
  checkTiling(name, spec.tiling);
  const groupSize = spec.scaleGroup.size;
  const E = Math.ceil((16 * spec.tiling.groupsPerThread) / groupSize) * groupSize;
  const threads = spec.tiling.threadsPerBlock;
  checkRegisters(name, E, threads, 1);
  return {
    name,
    kind: 'dequantize',
    arch,
    spec,
    ...hostNames(name, 'qgen_dequantize_args', false),
    launches: [{ kernel: `qgen_${name}_impl::dequantize`, role: 'dequantize', block: threads }],
    headers: [...BASE_HEADERS, 'qgen_dequantize.cuh'],
    constants: [],
    choices: NO_CHOICES,
    mapping: { elemsPerThread: E, lanesPerUnit: 1, unitWidth: E, order: 'row-major' },
    colsMultiple: groupSize,
    threadsPerBlock: threads,
    blocksPerSm: blocksPerSm(threads),
    dequantize: {
      scaleFormat: spec.scaleGroup.format,
      groupSize,
      groupsPerThread: E / groupSize,
      codeWords: E / 16,
      scaleLayout: spec.scaleLayout,
      output: spec.output,
    },
  };
}

function lowerHadamard(spec: HadamardSpec, arch: Arch): HadamardPlan {
  const name = cIdent(spec.name);
  checkTiling(name, spec.tiling);
  const n = spec.size;
  const mapping = mapElements(name, 16 * spec.tiling.groupsPerThread, n);
  const threads = spec.tiling.threadsPerBlock;
  checkRegisters(name, mapping.elemsPerThread, threads, 2);
  return {
    name,
    kind: 'hadamard',
    arch,
    spec,
    ...hostNames(name, 'qgen_hadamard_args', false),
    launches: [{ kernel: `qgen_${name}_impl::hadamard`, role: 'hadamard', block: threads }],
    headers: [...BASE_HEADERS, 'qgen_hadamard.cuh'],
    constants: [constant('inv_sqrt_n', INV_SQRT[n])],
    choices: NO_CHOICES,
    mapping: { ...mapping, order: 'row-major' },
    colsMultiple: n,
    threadsPerBlock: threads,
    blocksPerSm: blocksPerSm(threads),
    hadamard: { size: n, lanes: mapping.lanesPerUnit, input: spec.input, output: spec.output },
  };
}

function lowerAmax(spec: AmaxSpec, arch: Arch): AmaxPlan {
  const name = cIdent(spec.name);
  checkTiling(name, spec.tiling);
  const threads = spec.tiling.threadsPerBlock;
  const perLoad = spec.input === 'bf16' ? 8 : 4;
  return {
    name,
    kind: 'amax',
    arch,
    spec,
    ...hostNames(name, 'qgen_amax_args', true),
    launches: [{ kernel: `qgen_${name}_impl::amax`, role: 'amax', block: threads }],
    headers: BASE_HEADERS,
    constants: [],
    choices: NO_CHOICES,
    mapping: { elemsPerThread: perLoad, lanesPerUnit: 1, unitWidth: perLoad, order: 'row-major' },
    colsMultiple: 1,
    threadsPerBlock: threads,
    blocksPerSm: blocksPerSm(threads),
    amax: { input: spec.input, perLoad },
  };
}

/** Lowers a validated spec for an arch. Throws LoweringError for combinations not supported. */
export function lower(spec: KernelSpec, arch: Arch): KernelPlan {
  switch (spec.kind) {
    case 'quantize':
      return lowerQuantize(spec, arch);
    case 'dequantize':
      return lowerDequantize(spec, arch);
    case 'hadamard':
      return lowerHadamard(spec, arch);
    case 'amax':
      return lowerAmax(spec, arch);
    case 'gemm':
      return lowerGemm(spec, arch);
  }
}
