// qgen kernel specs: plain, serialisable data. A spec says *what* a kernel computes (numerics, formats, layouts)
// and *how* it is tiled; lowering (lower/lower.ts) turns a validated spec into a plan, and per-arch renderers turn a
// plan into CUDA. Numerics follow runtime/NUMERICS.md; section numbers below refer to it.

/** Target GPU architectures. sm_90a: Hopper (H100), NVFP4 emulated; sm_100a: B200 (tcgen05); sm_120a: RTX 5090. */
export type Arch = 'sm_90a' | 'sm_100a' | 'sm_120a';
export const ARCHS: readonly Arch[] = ['sm_90a', 'sm_100a', 'sm_120a'];

/** Element rounding into E2M1 (NUMERICS §5.3-5.6). */
export type Rounding = 'rtn' | 'sr' | 'four-six' | 'ms-eden';
export const ROUNDINGS: readonly Rounding[] = ['rtn', 'sr', 'four-six', 'ms-eden'];

/** Scale group: 16 elements with an E4M3 scale (NVFP4), or 32 with a UE8M0 scale (MXFP4). */
export type ScaleGroup = { size: 16; format: 'e4m3' } | { size: 32; format: 'ue8m0' };

/** How the per-tensor fp32 scale is obtained (NUMERICS §5.1). MXFP4 has none ('none'). */
export type TensorScaleMode = 'computed' | 'caller' | 'one-pass' | 'none';
export const TENSOR_SCALE_MODES: readonly TensorScaleMode[] = ['computed', 'caller', 'one-pass', 'none'];

/** Scale-factor layout in memory (NUMERICS §7). */
export type ScaleLayout = 'row-major' | '128x4';
export const SCALE_LAYOUTS: readonly ScaleLayout[] = ['row-major', '128x4'];

export type HadamardSize = 16 | 32 | 64 | 128;
export const HADAMARD_SIZES: readonly HadamardSize[] = [16, 32, 64, 128];

/** Where the amax of a scale group is taken: 1x16 (along K) or a 16x16 square block (NUMERICS §5.7). */
export type BlockShape = '1x16' | '16x16';

/** Input element type of a quantizer: bf16 activations/weights/gradients, or an NVFP4 tensor to requantize (§5.9). */
export type InputFormat = 'bf16' | 'nvfp4';

/**
 * What a quantizer writes: NVFP4 codes and scales (and the tensor scale), and optionally a bf16 plane [rows, cols]
 * beside them (NVFP4, 16-groups and E4M3 scales, only):
 * - 'nvfp4+bf16-plane': e2m1 * scale without the tensor scale (NUMERICS §6.6), the two-pass GEMM's operand (§6.4);
 * - 'nvfp4+dequantized-plane': the dequantized tensor, tensor scale included (§6.7; one-pass tensor scale only),
 *   written by pass A, so the two-pass GEMM runs on it with alpha = 1.
 */
export type QuantizeOutputs = 'nvfp4' | 'nvfp4+bf16-plane' | 'nvfp4+dequantized-plane';
export const QUANTIZE_OUTPUTS: readonly QuantizeOutputs[] = ['nvfp4', 'nvfp4+bf16-plane', 'nvfp4+dequantized-plane'];

/** Whether a quantizer with these outputs writes a bf16 plane (and so takes the `plane` argument of qgen.h). */
export function writesPlane(outputs: QuantizeOutputs | undefined): boolean {
  return outputs === 'nvfp4+bf16-plane' || outputs === 'nvfp4+dequantized-plane';
}

/** Launch-shape knobs of a memory-bound kernel. They never change results (randomness is keyed logically). */
export interface ElementwiseTiling {
  /** Threads per block (multiple of 32, 32..1024). */
  threadsPerBlock: number;
  /** Rows of the output handled by one block per iteration. */
  rowsPerBlock: number;
  /** 16-groups (along K) owned by one thread. */
  groupsPerThread: number;
  /**
   * Quantizers only: the resident blocks per SM the kernel is compiled for (the minBlocks of
   * __launch_bounds__(threadsPerBlock, minBlocks), i.e. at most 65536 / (threadsPerBlock * minBlocks) registers per
   * thread). Absent: lowering's estimate from the elements a thread keeps live. Never changes results; a value that
   * makes ptxas spill fails the build.
   */
  minBlocksPerSm?: number;
}

export interface QuantizeSpec {
  kind: 'quantize';
  name: string;
  /** One-line description shown by `qgen list`. */
  doc?: string;
  rounding: Rounding;
  scaleGroup: ScaleGroup;
  block: BlockShape;
  /** Target: the E2M1 magnitude the group amax maps to (6, V_sr = 96/17, s_eden = 6/0.988125); see NUMERICS §5. */
  target: 'six' | 'sr-v' | 'eden-s';
  /** Largest group scale (C in NUMERICS §5.1): 448 or 256 in the paper; ignored for MXFP4. */
  ceiling: number;
  tensorScale: TensorScaleMode;
  /** Randomized Hadamard rotation along K before rounding, or null for none (NUMERICS §4). */
  hadamard: HadamardSize | null;
  /** MS-EDEN correction granularity (NUMERICS §5.6). Only meaningful for rounding 'ms-eden'. */
  correction: 'per-16' | 'per-128';
  input: InputFormat;
  /** Input is stored transposed ([K, rows] row-major); output is always [rows, K] quantized along K. */
  transposedInput: boolean;
  scaleLayout: ScaleLayout;
  /** What the kernel writes; absent means 'nvfp4' (codes, scales, tensor scale). */
  outputs?: QuantizeOutputs;
  tiling: ElementwiseTiling;
}

export interface HadamardSpec {
  kind: 'hadamard';
  name: string;
  doc?: string;
  size: HadamardSize;
  input: 'bf16' | 'f32';
  output: 'bf16' | 'f32';
  tiling: ElementwiseTiling;
}

export interface DequantizeSpec {
  kind: 'dequantize';
  name: string;
  doc?: string;
  scaleGroup: ScaleGroup;
  scaleLayout: ScaleLayout;
  output: 'bf16' | 'f32';
  tiling: ElementwiseTiling;
}

export interface AmaxSpec {
  kind: 'amax';
  name: string;
  doc?: string;
  input: 'bf16' | 'f32';
  tiling: ElementwiseTiling;
}

/** The values of tiling.decode (sm_90a: who dequantizes the FP4 operands; GemmTiling.decode says what each does),
 * the one list that the type, the tuner's space and validation read. */
export const GEMM_DECODES = [
  'consumer',
  'producer',
  'producer-pipelined',
  'producer-cluster',
  'producer-b-register-a',
  'producer2-b-register-a',
  'producer2-b-register-a-consumer-copies',
] as const;
export type GemmDecode = (typeof GEMM_DECODES)[number];

export interface GemmTiling {
  /** CTA tile [M, N, K] in elements. */
  ctaTile: [number, number, number];
  /** Consumer warpgroups (sm_90a/sm_100a epilogue) or warps (sm_120a) per CTA. */
  consumers: number;
  /** Shared-memory pipeline depth. */
  stages: number;
  /** Thread-block cluster [x, y]. */
  cluster: [number, number];
  /** Order in which output tiles are visited. */
  tileOrder: 'row-major' | 'column-major' | 'swizzle-8';
  /**
   * sm_90a only: the operand decoded into the wgmma register fragments (default 'a'). 'b' swaps the operands for
   * skinny m: the CTA computes C^T = B . A^T, B's rows on the wgmma M (ctaTile[1] = 64), A's rows on the wgmma N
   * (ctaTile[0] = 8, 16, 32 or 64); same products and K order (NUMERICS §6.2).
   */
  registerOperand?: 'a' | 'b';
  /**
   * registerOperand 'b' only: W fragment sets per consumer thread. 2 decode the next K block while the wgmmas run, 1
   * after them. Default: 2 where arch/gemm_sm90.ts's register estimate allows, else 1 (consumers > 1); an explicit
   * value skips the estimate (ptxas decides: builds treat spills as errors). Never changes results.
   */
  fragmentSets?: 1 | 2;
  /**
   * sm_90a only: who dequantizes the FP4 operands (default 'consumer': the consumer warpgroups, A into RS fragments
   * and B into a bf16 tile, between their wgmmas). 'producer': a decoder warpgroup writes bf16 A and B tiles into a
   * ring of shared-memory tiles ahead of the consumers, which only issue SS wgmma (registerOperand 'a' only).
   * 'producer-pipelined': the same, with the decoders loading each K block's codes and scales into registers one K
   * block ahead of its decode (ctaTile[2] = 64 only). 'producer-cluster': the pipelined decoder in 2-CTA clusters
   * along M (cluster [2, 1], ctaTile [128, 256, 64]): the two CTAs share one B slab, each decodes its A slab and half
   * of the B slab and stores that half into both CTAs' tiles (distributed shared memory). 'producer-b-register-a':
   * the pipelined decoder for B only (a ring of bf16 B tiles); each consumer warpgroup decodes its A slab from the
   * raw stage into RS wgmma fragment registers, the next K block's while the current one's wgmmas run (ctaTile
   * [128, 128 or 256, 64]). 'producer2-b-register-a': the same with two decoder warpgroups, one B row of a K block
   * per decoder thread (ctaTile [128, 256, 64]). 'producer2-b-register-a-consumer-copies': the same, with the TMA
   * and bulk copies issued by lanes 0 of consumer warps 0-2 instead of decoder warps 0-2 (every decoder warp decodes
   * only). Same products and K order (NUMERICS §6.2); never changes results.
   */
  decode?: GemmDecode;
}

export interface GemmSpec {
  kind: 'gemm';
  name: string;
  doc?: string;
  /** Operand formats: both NVFP4 (E2M1 codes, E4M3 16-group scales in the 128x4 layout, fp32 tensor scale). */
  a: 'nvfp4';
  b: 'nvfp4';
  /** Both operands K-major: C[M,N] = alpha * A[M,K] . B[N,K]^T. */
  layout: 'TN';
  output: 'bf16' | 'f32';
  epilogue: 'alpha' | 'alpha-beta';
  tiling: GemmTiling;
}

export type KernelSpec = QuantizeSpec | HadamardSpec | DequantizeSpec | AmaxSpec | GemmSpec;
export type KernelKind = KernelSpec['kind'];

/** A spec file (TypeScript module or JSON) exports this shape: a list of kernel specs. */
export interface SpecFile {
  kernels: KernelSpec[];
}

/** One validation problem: where (a field path like `kernels[2].tiling.ctaTile[0]`) and what is allowed. */
export interface SpecProblem {
  path: string;
  message: string;
}
