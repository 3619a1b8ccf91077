// Typed helpers that build kernel specs from a few fields and sensible defaults. A spec is plain data; these only
// save typing (the catalog and TypeScript spec files may use them, JSON files spell every field out).
import type {
  AmaxSpec,
  DequantizeSpec,
  ElementwiseTiling,
  GemmSpec,
  GemmTiling,
  HadamardSize,
  HadamardSpec,
  QuantizeSpec,
  Rounding,
  ScaleGroup,
} from './types.ts';
import { E4M3_MAX } from './constants.ts';
import { requiredTarget } from '../validate/validate.ts';

export const NVFP4_GROUP: ScaleGroup = { size: 16, format: 'e4m3' };
export const MXFP4_GROUP: ScaleGroup = { size: 32, format: 'ue8m0' };

/** Default launch shape of memory-bound kernels: 256 threads, 16 rows per block (whole 16x16 blocks), 2 groups. */
export const DEFAULT_ELEMENTWISE_TILING: Readonly<ElementwiseTiling> = {
  threadsPerBlock: 256,
  rowsPerBlock: 16,
  groupsPerThread: 2,
};

function tiling(t?: Partial<ElementwiseTiling>): ElementwiseTiling {
  return { ...DEFAULT_ELEMENTWISE_TILING, ...t };
}

type QuantizeFields = Partial<Omit<QuantizeSpec, 'kind' | 'name' | 'tiling'>> & { tiling?: Partial<ElementwiseTiling> };

/**
 * A quantizer. Defaults: NVFP4 RTN along K, 1x16 groups, computed tensor scale with ceiling 448, no rotation, bf16
 * input, 128x4 scale layout; the target follows the rounding (NUMERICS §5) unless given.
 */
export function quantize(name: string, fields: QuantizeFields = {}): QuantizeSpec {
  const rounding: Rounding = fields.rounding ?? 'rtn';
  const scaleGroup = fields.scaleGroup ?? NVFP4_GROUP;
  return {
    kind: 'quantize',
    name,
    ...(fields.doc !== undefined ? { doc: fields.doc } : {}),
    rounding,
    scaleGroup: { ...scaleGroup },
    block: fields.block ?? '1x16',
    target: fields.target ?? requiredTarget(rounding, scaleGroup.size),
    ceiling: fields.ceiling ?? E4M3_MAX,
    tensorScale: fields.tensorScale ?? (scaleGroup.size === 32 ? 'none' : 'computed'),
    hadamard: fields.hadamard ?? null,
    correction: fields.correction ?? 'per-16',
    input: fields.input ?? 'bf16',
    transposedInput: fields.transposedInput ?? fields.input === 'nvfp4',
    scaleLayout: fields.scaleLayout ?? '128x4',
    ...(fields.outputs !== undefined ? { outputs: fields.outputs } : {}),
    tiling: tiling(fields.tiling),
  };
}

export function hadamard(
  name: string,
  size: HadamardSize,
  fields: Partial<Omit<HadamardSpec, 'kind' | 'name' | 'size' | 'tiling'>> & {
    tiling?: Partial<ElementwiseTiling>;
  } = {},
): HadamardSpec {
  return {
    kind: 'hadamard',
    name,
    ...(fields.doc !== undefined ? { doc: fields.doc } : {}),
    size,
    input: fields.input ?? 'bf16',
    output: fields.output ?? 'bf16',
    tiling: tiling(fields.tiling),
  };
}

export function dequantize(
  name: string,
  fields: Partial<Omit<DequantizeSpec, 'kind' | 'name' | 'tiling'>> & { tiling?: Partial<ElementwiseTiling> } = {},
): DequantizeSpec {
  return {
    kind: 'dequantize',
    name,
    ...(fields.doc !== undefined ? { doc: fields.doc } : {}),
    scaleGroup: { ...(fields.scaleGroup ?? NVFP4_GROUP) },
    scaleLayout: fields.scaleLayout ?? '128x4',
    output: fields.output ?? 'bf16',
    tiling: tiling(fields.tiling),
  };
}

export function amax(
  name: string,
  fields: Partial<Omit<AmaxSpec, 'kind' | 'name' | 'tiling'>> & { tiling?: Partial<ElementwiseTiling> } = {},
): AmaxSpec {
  return {
    kind: 'amax',
    name,
    ...(fields.doc !== undefined ? { doc: fields.doc } : {}),
    input: fields.input ?? 'bf16',
    tiling: tiling(fields.tiling),
  };
}

/** An NVFP4 x NVFP4 TN GEMM; the tiling must be given (its limits are per arch, see GEMM_LIMITS in validate.ts). */
export function gemm(
  name: string,
  tilingFields: GemmTiling,
  fields: Partial<Omit<GemmSpec, 'kind' | 'name' | 'a' | 'b' | 'layout' | 'tiling'>> = {},
): GemmSpec {
  return {
    kind: 'gemm',
    name,
    ...(fields.doc !== undefined ? { doc: fields.doc } : {}),
    a: 'nvfp4',
    b: 'nvfp4',
    layout: 'TN',
    output: fields.output ?? 'bf16',
    epilogue: fields.epilogue ?? 'alpha',
    tiling: {
      ...tilingFields,
      ctaTile: [...tilingFields.ctaTile] as [number, number, number],
      cluster: [...tilingFields.cluster] as [number, number],
    },
  };
}
