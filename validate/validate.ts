// Spec validation: every problem of a spec (or spec file), each with its field path and a message that says what
// is allowed. Structural checks (types, enums, unknown and missing fields) come first; semantic rules (which
// combinations of numerics are defined by runtime/NUMERICS.md) and per-arch GEMM tiling limits
// (docs/ptx-facts.md §4-6) are checked only on fields that passed their structural check, so one mistake
// produces one problem rather than a cascade.
import { sm100GemmLayout, sm100SmemBytes } from '../arch/gemm_sm100.ts';
import { sm120GemmLayout, sm120SmemBytes } from '../arch/gemm_sm120.ts';
import {
  SM90_SWAP_W_ROWS,
  isProducerDecode,
  isRegisterADecode,
  sm90GemmLayout,
  sm90PdLayout,
  sm90PdSmemBytes,
  sm90SmemBytes,
  sm90SwapLayout,
} from '../arch/gemm_sm90.ts';
import {
  ARCHS,
  GEMM_DECODES,
  HADAMARD_SIZES,
  QUANTIZE_OUTPUTS,
  ROUNDINGS,
  SCALE_LAYOUTS,
  TENSOR_SCALE_MODES,
  type Arch,
  type GemmTiling,
  type KernelSpec,
  type Rounding,
  type SpecFile,
  type SpecProblem,
} from '../dsl/types.ts';
import { CEILING_EDEN, E4M3_MAX } from '../dsl/constants.ts';
import { GENERATED_SYMBOL_SUFFIXES, reservedNameReason } from './reserved.ts';

// ---------------------------------------------------------------------------------------------------------------
// Structural helpers. Each reads obj[key], reports a problem at `${path}.${key}` when the value is not allowed, and
// returns the value when it is (undefined otherwise), so that semantic rules only look at well-formed fields.

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A value as it appears in a message: strings quoted, long values cut. */
function show(v: unknown): string {
  if (v === undefined) return 'undefined';
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

/** An allowed value as written in a message: `'rtn'`, `16`, `null`. */
function lit(v: unknown): string {
  return typeof v === 'string' ? `'${v}'` : String(v);
}

export function allowedList(values: readonly unknown[]): string {
  return values.map(lit).join(' | ');
}

class Problems {
  readonly list: SpecProblem[] = [];
  add(path: string, message: string): void {
    this.list.push({ path, message });
  }
}

/** Checks that `obj` has exactly the fields `required` (+ `optional`); reports unknown and missing ones. */
function checkFields(
  p: Problems,
  obj: Obj,
  path: string,
  required: readonly string[],
  optional: readonly string[] = [],
) {
  const known = new Set([...required, ...optional]);
  for (const key of Object.keys(obj)) {
    if (!known.has(key)) p.add(`${path}.${key}`, `unknown field "${key}"; allowed fields: ${[...known].join(', ')}`);
  }
  for (const key of required) {
    if (obj[key] === undefined) p.add(`${path}.${key}`, `missing required field "${key}"`);
  }
}

/** Reads an enum field. A missing field was already reported by checkFields. */
function oneOf<T>(p: Problems, obj: Obj, path: string, key: string, allowed: readonly T[]): T | undefined {
  const v = obj[key];
  if (v === undefined) return undefined;
  if ((allowed as readonly unknown[]).includes(v)) return v as T;
  p.add(`${path}.${key}`, `must be one of ${allowedList(allowed)} (got ${show(v)})`);
  return undefined;
}

interface IntRule {
  min: number;
  max: number;
  multipleOf?: number;
}

function describeInt(r: IntRule): string {
  return r.multipleOf && r.multipleOf > 1
    ? `a multiple of ${r.multipleOf} in ${r.min}..${r.max}`
    : `an integer in ${r.min}..${r.max}`;
}

function intValue(p: Problems, v: unknown, path: string, r: IntRule): number | undefined {
  if (v === undefined) return undefined;
  const ok =
    typeof v === 'number' &&
    Number.isInteger(v) &&
    v >= r.min &&
    v <= r.max &&
    (!r.multipleOf || v % r.multipleOf === 0);
  if (ok) return v as number;
  p.add(path, `must be ${describeInt(r)} (got ${show(v)})`);
  return undefined;
}

function int(p: Problems, obj: Obj, path: string, key: string, r: IntRule): number | undefined {
  return intValue(p, obj[key], `${path}.${key}`, r);
}

function bool(p: Problems, obj: Obj, path: string, key: string): boolean | undefined {
  const v = obj[key];
  if (v === undefined || typeof v === 'boolean') return v;
  p.add(`${path}.${key}`, `must be true or false (got ${show(v)})`);
  return undefined;
}

/** Reads a sub-object field; reports a non-object. */
function sub(p: Problems, obj: Obj, path: string, key: string, what: string): Obj | undefined {
  const v = obj[key];
  if (v === undefined) return undefined;
  if (isObj(v)) return v;
  p.add(`${path}.${key}`, `must be an object ${what} (got ${show(v)})`);
  return undefined;
}

/** Reads a fixed-length array of integers, each checked with its own rule. */
function intTuple(
  p: Problems,
  obj: Obj,
  path: string,
  key: string,
  rules: IntRule[],
  what: string,
): (number | undefined)[] | undefined {
  const v = obj[key];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.length !== rules.length) {
    p.add(`${path}.${key}`, `must be an array of ${rules.length} integers ${what} (got ${show(v)})`);
    return undefined;
  }
  return rules.map((r, i) => {
    const at = `${path}.${key}[${i}]`;
    if (v[i] === undefined) p.add(at, `must be ${describeInt(r)} (got undefined)`);
    return intValue(p, v[i], at, r);
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Shared pieces.

const C_IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Longest kernel name: it becomes part of C symbols and file names. */
export const MAX_NAME_LENGTH = 64;

function checkName(p: Problems, obj: Obj, path: string): void {
  const v = obj.name;
  if (v === undefined) return;
  if (typeof v !== 'string' || !C_IDENTIFIER.test(v) || v.length > MAX_NAME_LENGTH) {
    p.add(
      `${path}.name`,
      `must be a C identifier ([A-Za-z_][A-Za-z0-9_]*, at most ${MAX_NAME_LENGTH} characters) ` + `(got ${show(v)})`,
    );
    return;
  }
  const reserved = reservedNameReason(v);
  if (reserved) p.add(`${path}.name`, `"${v}" ${reserved}; choose another name`);
}

function checkDoc(p: Problems, obj: Obj, path: string): void {
  const v = obj.doc;
  if (v !== undefined && typeof v !== 'string') p.add(`${path}.doc`, `must be a string (got ${show(v)})`);
}

type GroupSize = 16 | 32;

/**
 * The scale group: 16 elements with an E4M3 scale (NVFP4) or 32 with a UE8M0 scale (MXFP4). Returns the size when
 * the whole group is valid.
 */
function checkScaleGroup(p: Problems, obj: Obj, path: string): GroupSize | undefined {
  const g = sub(p, obj, path, 'scaleGroup', "{ size: 16, format: 'e4m3' } or { size: 32, format: 'ue8m0' }");
  if (!g) return undefined;
  const gp = `${path}.scaleGroup`;
  const before = p.list.length;
  checkFields(p, g, gp, ['size', 'format']);
  const size = oneOf(p, g, gp, 'size', [16, 32] as const);
  const format = oneOf(p, g, gp, 'format', ['e4m3', 'ue8m0'] as const);
  if (size !== undefined && format !== undefined) {
    const expected = size === 16 ? 'e4m3' : 'ue8m0';
    if (format !== expected) {
      p.add(
        `${gp}.format`,
        `must be '${expected}' for a ${size}-element group ` +
          `(16 -> 'e4m3' scales: NVFP4; 32 -> 'ue8m0' scales: MXFP4; NUMERICS §2.3, §2.6)`,
      );
    }
  }
  return p.list.length === before ? size : undefined;
}

const THREADS: IntRule = { min: 32, max: 1024, multipleOf: 32 };
const ROWS_PER_BLOCK: IntRule = { min: 1, max: 256 };
const GROUPS_PER_THREAD = [1, 2, 4, 8] as const;

const MIN_BLOCKS_PER_SM: IntRule = { min: 1, max: 32 };
/** Resident threads per SM that lowering's grid-stride launch assumes (lower/lower.ts blocksPerSm; sm_90a, sm_100a). */
const THREADS_PER_SM = 2048;

/** quantize: whether the kernel takes tiling.minBlocksPerSm (only the quantizers' templates use it). */
function checkElementwiseTiling(p: Problems, obj: Obj, path: string, quantize = false): Obj | undefined {
  const t = sub(p, obj, path, 'tiling', '{ threadsPerBlock, rowsPerBlock, groupsPerThread }');
  if (!t) return undefined;
  const tp = `${path}.tiling`;
  checkFields(p, t, tp, ['threadsPerBlock', 'rowsPerBlock', 'groupsPerThread'], quantize ? ['minBlocksPerSm'] : []);
  const threads = int(p, t, tp, 'threadsPerBlock', THREADS);
  int(p, t, tp, 'rowsPerBlock', ROWS_PER_BLOCK);
  oneOf(p, t, tp, 'groupsPerThread', GROUPS_PER_THREAD);
  const minBlocks = int(p, t, tp, 'minBlocksPerSm', MIN_BLOCKS_PER_SM);
  if (threads !== undefined && minBlocks !== undefined && threads * minBlocks > THREADS_PER_SM) {
    p.add(
      `${tp}.minBlocksPerSm`,
      `must keep threadsPerBlock x minBlocksPerSm <= ${THREADS_PER_SM} (the threads one SM holds); ` +
        `got ${threads} x ${minBlocks}`,
    );
  }
  return t;
}

// ---------------------------------------------------------------------------------------------------------------
// Quantize.

/** The target each rounding uses (NUMERICS §5): 6 for RTN and 4/6, V_sr for SR, s_eden for MS-EDEN; MXFP4: 6. */
export function requiredTarget(rounding: Rounding, groupSize: GroupSize): 'six' | 'sr-v' | 'eden-s' {
  if (groupSize === 32) return 'six';
  return rounding === 'sr' ? 'sr-v' : rounding === 'ms-eden' ? 'eden-s' : 'six';
}

const QUANTIZE_FIELDS = [
  'kind',
  'name',
  'rounding',
  'scaleGroup',
  'block',
  'target',
  'ceiling',
  'tensorScale',
  'hadamard',
  'correction',
  'input',
  'transposedInput',
  'scaleLayout',
  'tiling',
] as const;

function checkQuantize(p: Problems, s: Obj, path: string): void {
  checkFields(p, s, path, QUANTIZE_FIELDS, ['doc', 'outputs']);
  const rounding = oneOf(p, s, path, 'rounding', ROUNDINGS);
  const group = checkScaleGroup(p, s, path);
  const block = oneOf(p, s, path, 'block', ['1x16', '16x16'] as const);
  const target = oneOf(p, s, path, 'target', ['six', 'sr-v', 'eden-s'] as const);
  const tensorScale = oneOf(p, s, path, 'tensorScale', TENSOR_SCALE_MODES);
  const correction = oneOf(p, s, path, 'correction', ['per-16', 'per-128'] as const);
  const input = oneOf(p, s, path, 'input', ['bf16', 'nvfp4'] as const);
  const transposed = bool(p, s, path, 'transposedInput');
  oneOf(p, s, path, 'scaleLayout', SCALE_LAYOUTS);
  const outputs = oneOf(p, s, path, 'outputs', QUANTIZE_OUTPUTS);
  const tiling = checkElementwiseTiling(p, s, path, true);

  let hadamard: number | null | undefined;
  if (s.hadamard === null || (HADAMARD_SIZES as readonly unknown[]).includes(s.hadamard)) {
    hadamard = s.hadamard as number | null;
  } else if (s.hadamard !== undefined) {
    p.add(
      `${path}.hadamard`,
      `must be null (no rotation) or one of ${allowedList(HADAMARD_SIZES)} ` + `(got ${show(s.hadamard)})`,
    );
  }

  let ceiling: number | undefined;
  if (s.ceiling !== undefined) {
    if (typeof s.ceiling === 'number' && Number.isFinite(s.ceiling) && s.ceiling > 0 && s.ceiling <= E4M3_MAX) {
      ceiling = s.ceiling;
    } else {
      p.add(
        `${path}.ceiling`,
        `must be a number in (0, ${E4M3_MAX}] (the largest group scale, C in NUMERICS §5.1; ` +
          `E4M3 ends at ${E4M3_MAX}) (got ${show(s.ceiling)})`,
      );
    }
  }

  const mx = group === 32;

  // Tensor scale: MXFP4 has none, NVFP4 always has one (NUMERICS §5.1, §5.8).
  if (group !== undefined && tensorScale !== undefined) {
    if (mx && tensorScale !== 'none') {
      p.add(
        `${path}.tensorScale`,
        `must be 'none' for MXFP4 (group 32, UE8M0 scales carry no tensor scale; NUMERICS §5.8)`,
      );
    } else if (!mx && tensorScale === 'none') {
      p.add(
        `${path}.tensorScale`,
        `'none' is only for MXFP4 (group 32); NVFP4 (group 16) must use ` +
          `'computed' | 'caller' | 'one-pass' (NUMERICS §5.1)`,
      );
    }
  }

  // MXFP4 defines RTN and SR only (NUMERICS §5.8).
  if (mx && rounding !== undefined && rounding !== 'rtn' && rounding !== 'sr') {
    p.add(
      `${path}.rounding`,
      `must be 'rtn' | 'sr' for MXFP4 (group 32; NUMERICS §5.8 defines no '${rounding}' there)`,
    );
  }

  // The target is fixed by the rounding (NUMERICS §5): writing it down keeps specs self-describing.
  if (rounding !== undefined && group !== undefined && target !== undefined) {
    const want = requiredTarget(rounding, group);
    if (target !== want) {
      p.add(
        `${path}.target`,
        `must be '${want}' for ${mx ? 'MXFP4 (scale = amax/6, NUMERICS §5.8)' : `rounding '${rounding}'`}` +
          ` ('six' for rtn and four-six, 'sr-v' (V = 6*16/17, SR never clips) for sr, 'eden-s' (6/0.988125) for ` +
          `ms-eden; NUMERICS §5)`,
      );
    }
  }

  // MS-EDEN is defined on a randomized rotation (NUMERICS §5.6).
  if (rounding === 'ms-eden' && s.hadamard === null) {
    p.add(
      `${path}.hadamard`,
      `must be one of ${allowedList(HADAMARD_SIZES)} for rounding 'ms-eden' ` +
        `(EDEN's correction is unbiased only over a randomized rotation; NUMERICS §5.6)`,
    );
  }

  // Correction granularity only exists for MS-EDEN; per-128 shares one S per rotated 128-chunk (NUMERICS §5.6).
  if (correction === 'per-128') {
    if (rounding !== undefined && rounding !== 'ms-eden') {
      p.add(
        `${path}.correction`,
        `must be 'per-16' unless rounding is 'ms-eden' (the correction is MS-EDEN's; NUMERICS §5.6)`,
      );
    } else if (rounding === 'ms-eden' && hadamard !== undefined && hadamard !== 128) {
      p.add(
        `${path}.correction`,
        `'per-128' requires hadamard 128 (one S per rotated 128-chunk; NUMERICS §5.6); ` +
          `use 'per-16' with hadamard ${hadamard}`,
      );
    }
  }

  // Requant: NVFP4 in, its transpose quantized (NUMERICS §5.9). Only unbiased backward quantizers requantize.
  if (input === 'nvfp4') {
    if (rounding !== undefined && rounding !== 'ms-eden' && rounding !== 'sr') {
      p.add(
        `${path}.input`,
        `'nvfp4' (requant, NUMERICS §5.9) requires rounding 'ms-eden' or 'sr' (got '${rounding}')`,
      );
    }
    if (group === 32) {
      p.add(`${path}.input`, `'nvfp4' (requant, NUMERICS §5.9) requires scaleGroup size 16 (NVFP4 to NVFP4)`);
    }
    if (transposed === false) {
      p.add(
        `${path}.transposedInput`,
        `must be true when input is 'nvfp4': requant always quantizes the transpose of ` +
          `its NVFP4 input (NUMERICS §5.9)`,
      );
    }
  }

  // 16x16 blocks (NUMERICS §5.7): RTN on NVFP4, no rotation (a rotation along K would break the tensor/transpose
  // scale sharing the blocks exist for), and whole blocks of 16 rows per thread block.
  if (block === '16x16') {
    if (rounding !== undefined && rounding !== 'rtn') {
      p.add(`${path}.block`, `'16x16' requires rounding 'rtn' (NUMERICS §5.7; got '${rounding}')`);
    }
    if (group === 32) p.add(`${path}.block`, `'16x16' requires scaleGroup size 16 (NVFP4; NUMERICS §5.7)`);
    if (hadamard !== undefined && hadamard !== null) {
      p.add(
        `${path}.block`,
        `'16x16' requires hadamard null (a rotation along K breaks the scale sharing between ` +
          `a tensor and its transpose; NUMERICS §5.7)`,
      );
    }
    const rows = tiling?.rowsPerBlock;
    if (
      typeof rows === 'number' &&
      Number.isInteger(rows) &&
      rows >= ROWS_PER_BLOCK.min &&
      rows <= ROWS_PER_BLOCK.max &&
      rows % 16 !== 0
    ) {
      p.add(
        `${path}.tiling.rowsPerBlock`,
        `must be a multiple of 16 for block '16x16' (a block's amax spans 16 rows; ` + `got ${rows})`,
      );
    }
  }

  // The bf16 plane (NUMERICS §6.6) is e2m1 * E4M3 scale: NVFP4 only (an MXFP4 UE8M0 scale reaches 2^127, beyond
  // what the exactness argument covers, and no GEMM takes MXFP4 planes).
  if ((outputs === 'nvfp4+bf16-plane' || outputs === 'nvfp4+dequantized-plane') && group === 32) {
    p.add(
      `${path}.outputs`,
      `'${outputs}' requires scaleGroup size 16 (NVFP4, E4M3 scales; NUMERICS §6.6, §6.7); ` + `use 'nvfp4'`,
    );
  }
  // The dequantized plane (§6.7) is pass A's: only a one-pass tensor scale has a pass A that lacks the final scale.
  if (outputs === 'nvfp4+dequantized-plane' && tensorScale !== undefined && tensorScale !== 'one-pass') {
    p.add(
      `${path}.outputs`,
      `'nvfp4+dequantized-plane' requires tensorScale 'one-pass' (NUMERICS §6.7); got '${tensorScale}': ` +
        `use 'nvfp4+bf16-plane'`,
    );
  }

  // MXFP4: a thread owns whole 32-element groups (two 16-groups).
  if (mx && tiling && tiling.groupsPerThread === 1) {
    p.add(`${path}.tiling.groupsPerThread`, `must be 2 | 4 | 8 for MXFP4 (a thread owns whole 32-element groups)`);
  }

  // Computed tensor scale: the 4-candidate of 4/6 has a 1.5x larger scale, and MS-EDEN's correction can raise a scale
  // above C; with C <= 256 neither reaches 448, where E4M3 saturates (METHOD §6). One-pass and caller modes
  // do not derive t from C in that way (NUMERICS §5.1).
  if (
    tensorScale === 'computed' &&
    ceiling !== undefined &&
    ceiling > CEILING_EDEN &&
    (rounding === 'four-six' || rounding === 'ms-eden')
  ) {
    p.add(
      `${path}.ceiling`,
      `must be at most ${CEILING_EDEN} for rounding '${rounding}' with tensorScale 'computed' ` +
        `(headroom for the ${rounding === 'four-six' ? "4-candidate's 1.5x scale" : 'EDEN-corrected scale'} below ` +
        `${E4M3_MAX}; NUMERICS §5.1, §5.5-5.6; got ${ceiling})`,
    );
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Hadamard, dequantize, amax.

function checkHadamard(p: Problems, s: Obj, path: string): void {
  checkFields(p, s, path, ['kind', 'name', 'size', 'input', 'output', 'tiling'], ['doc']);
  oneOf(p, s, path, 'size', HADAMARD_SIZES);
  oneOf(p, s, path, 'input', ['bf16', 'f32'] as const);
  oneOf(p, s, path, 'output', ['bf16', 'f32'] as const);
  checkElementwiseTiling(p, s, path);
}

function checkDequantize(p: Problems, s: Obj, path: string): void {
  checkFields(p, s, path, ['kind', 'name', 'scaleGroup', 'scaleLayout', 'output', 'tiling'], ['doc']);
  const group = checkScaleGroup(p, s, path);
  oneOf(p, s, path, 'scaleLayout', SCALE_LAYOUTS);
  oneOf(p, s, path, 'output', ['bf16', 'f32'] as const);
  const tiling = checkElementwiseTiling(p, s, path);
  if (group === 32 && tiling && tiling.groupsPerThread === 1) {
    p.add(`${path}.tiling.groupsPerThread`, `must be 2 | 4 | 8 for MXFP4 (a thread owns whole 32-element groups)`);
  }
}

function checkAmax(p: Problems, s: Obj, path: string): void {
  checkFields(p, s, path, ['kind', 'name', 'input', 'tiling'], ['doc']);
  oneOf(p, s, path, 'input', ['bf16', 'f32'] as const);
  checkElementwiseTiling(p, s, path);
}

// ---------------------------------------------------------------------------------------------------------------
// GEMM: per-arch tiling limits (PTX-FACTS §4 sm_100a tcgen05, §5 sm_120a mma.sync, §6 sm_90a wgmma emulation).

export interface GemmLimits {
  /** What the numbers follow from, for messages. */
  basis: string;
  m: IntRule;
  n: IntRule;
  k: IntRule;
  consumers: IntRule;
  /** Threads of one consumer unit (a warpgroup on sm_90a/sm_100a, a warp on sm_120a). */
  consumerThreads: number;
  consumerUnit: string;
  stages: IntRule;
  /** Largest cluster x*y. */
  maxClusterSize: number;
  /** Largest dynamic shared memory per block, bytes (PTX-FACTS §4.6). */
  smemBytes: number;
  /** fp32 accumulators per consumer thread in registers (null: they live in TMEM). */
  maxAccumulatorRegs: number | null;
}

/** Per-arch GEMM tiling limits. */
export const GEMM_LIMITS: Readonly<Record<Arch, GemmLimits>> = {
  sm_90a: {
    basis: 'wgmma m64nNk16 on exactly dequantized bf16, PTX-FACTS §6',
    m: { min: 64, max: 128, multipleOf: 64 },
    n: { min: 16, max: 256, multipleOf: 16 },
    k: { min: 64, max: 256, multipleOf: 64 },
    consumers: { min: 1, max: 2 },
    consumerThreads: 128,
    consumerUnit: 'warpgroup',
    stages: { min: 2, max: 16 },
    maxClusterSize: 1,
    smemBytes: 232448,
    maxAccumulatorRegs: 128,
  },
  sm_100a: {
    basis: 'tcgen05.mma cta_group::1 kind::mxf4nvf4, PTX-FACTS §4',
    m: { min: 128, max: 128 },
    // Whole 128-row scale blocks per B tile (the tensor-memory scale layout of N < 128 is UNCONFIRMED, PTX-FACTS §9).
    n: { min: 128, max: 256, multipleOf: 128 },
    k: { min: 256, max: 512, multipleOf: 256 },
    consumers: { min: 1, max: 2 },
    consumerThreads: 128,
    consumerUnit: 'epilogue warpgroup',
    stages: { min: 2, max: 8 },
    maxClusterSize: 1, // cta_group::2 (CTA pairs) is not lowered yet
    smemBytes: 232448,
    maxAccumulatorRegs: null,
  },
  sm_120a: {
    basis: 'mma.sync m16n8k64 kind::mxf4nvf4, PTX-FACTS §5',
    m: { min: 16, max: 256, multipleOf: 16 },
    n: { min: 16, max: 256, multipleOf: 16 }, // warp tiles of whole ldmatrix.x4 B loads (two n8 fragments)
    k: { min: 64, max: 512, multipleOf: 64 },
    consumers: { min: 1, max: 16 },
    consumerThreads: 32,
    consumerUnit: 'warp',
    stages: { min: 2, max: 8 },
    maxClusterSize: 1,
    smemBytes: 101376,
    maxAccumulatorRegs: 128,
  },
};

/**
 * Shared memory of a GEMM tiling, bytes: the layout each arch's kernel builds (arch/gemm_sm90.ts, gemm_sm100.ts,
 * gemm_sm120.ts).
 */
export function gemmSmemBytes(
  arch: Arch,
  m: number,
  n: number,
  k: number,
  stages: number,
  decode: GemmTiling['decode'] = 'consumer',
): number {
  if (arch === 'sm_90a')
    return isProducerDecode(decode) ? sm90PdSmemBytes(m, n, k, stages, decode) : sm90SmemBytes(m, n, k, stages);
  if (arch === 'sm_100a') return sm100SmemBytes(m, n, k, stages);
  return sm120SmemBytes(m, n, k, stages);
}

function checkGemm(p: Problems, s: Obj, path: string, arch: Arch): void {
  checkFields(p, s, path, ['kind', 'name', 'a', 'b', 'layout', 'output', 'epilogue', 'tiling'], ['doc']);
  oneOf(p, s, path, 'a', ['nvfp4'] as const);
  oneOf(p, s, path, 'b', ['nvfp4'] as const);
  oneOf(p, s, path, 'layout', ['TN'] as const);
  oneOf(p, s, path, 'output', ['bf16', 'f32'] as const);
  oneOf(p, s, path, 'epilogue', ['alpha', 'alpha-beta'] as const);

  const t = sub(p, s, path, 'tiling', '{ ctaTile, consumers, stages, cluster, tileOrder }');
  if (!t) return;
  const tp = `${path}.tiling`;
  const L = GEMM_LIMITS[arch];
  const on = `on ${arch} (${L.basis})`;
  checkFields(
    p,
    t,
    tp,
    ['ctaTile', 'consumers', 'stages', 'cluster', 'tileOrder'],
    ['registerOperand', 'fragmentSets', 'decode'],
  );
  oneOf(p, t, tp, 'tileOrder', ['row-major', 'column-major', 'swizzle-8'] as const);
  if (t.decode !== undefined) {
    if (oneOf(p, t, tp, 'decode', GEMM_DECODES) === undefined) return;
    if (arch !== 'sm_90a') {
      p.add(
        `${tp}.decode`,
        `exists on sm_90a only, not on ${arch} (its tensor cores read the FP4 operands: nothing is decoded)`,
      );
      return;
    }
    if (t.decode !== 'consumer' && t.registerOperand === 'b') {
      const where =
        typeof t.decode === 'string' && isRegisterADecode(t.decode)
          ? "B decoded into shared-memory tiles, A into the consumers' wgmma A registers"
          : 'both operands decoded into shared-memory tiles';
      p.add(`${tp}.decode`, `'${t.decode}' needs registerOperand 'a' (${where})`);
      return;
    }
  }
  if (t.registerOperand !== undefined) {
    if (oneOf(p, t, tp, 'registerOperand', ['a', 'b'] as const) === undefined) return;
    if (t.registerOperand === 'b' && arch !== 'sm_90a') {
      p.add(`${tp}.registerOperand`, `'b' (operands swapped in the wgmma) exists on sm_90a only, not on ${arch}`);
      return;
    }
  }
  if (t.registerOperand === 'b') {
    checkSwappedGemm(p, t, tp);
    return;
  }
  if (t.fragmentSets !== undefined) {
    p.add(`${tp}.fragmentSets`, `exists with registerOperand 'b' only (W fragment sets of the operand-swapped kernel)`);
  }

  const before = p.list.length;
  const tile = intTuple(p, t, tp, 'ctaTile', [L.m, L.n, L.k], '[M, N, K]');
  const consumers = int(p, t, tp, 'consumers', L.consumers);
  const stages = int(p, t, tp, 'stages', L.stages);
  // 'producer-cluster' (sm_90a) runs in 2-CTA clusters along M, [2, 1] exactly; every other tiling has none
  const pdc = t.decode === 'producer-cluster';
  const clusterRule: IntRule = pdc ? { min: 2, max: 2 } : { min: 1, max: L.maxClusterSize };
  const cluster = intTuple(p, t, tp, 'cluster', [clusterRule, pdc ? { min: 1, max: 1 } : clusterRule], '[x, y]');
  if (pdc) {
    for (let i = before; i < p.list.length; i++)
      if (p.list[i].path.startsWith(`${tp}.cluster`))
        p.list[i].message += ` with decode 'producer-cluster' (2 CTAs along M share one B slab)`;
  }
  // Per-arch wording for the plain range messages above.
  for (let i = before; i < p.list.length; i++) p.list[i].message += ` ${on}`;

  const maxCluster = pdc ? 2 : L.maxClusterSize;
  if (cluster && cluster[0] !== undefined && cluster[1] !== undefined && cluster[0] * cluster[1] > maxCluster) {
    p.add(`${tp}.cluster`, `x*y must be at most ${L.maxClusterSize} ${on} (got [${cluster[0]}, ${cluster[1]}])`);
  }
  if (!tile) return;
  const [m, n, k] = tile;
  if (m === undefined || n === undefined || k === undefined) return;

  if (consumers !== undefined) {
    if (arch === 'sm_90a' && (m / 64) % consumers !== 0) {
      p.add(`${tp}.consumers`, `must divide M/64 = ${m / 64} on sm_90a (each consumer warpgroup owns whole m64 slabs)`);
    }
    if (L.maxAccumulatorRegs !== null) {
      const regs = (m * n) / (L.consumerThreads * consumers);
      if (regs > L.maxAccumulatorRegs) {
        p.add(
          `${tp}.consumers`,
          `too few for a ${m}x${n} tile on ${arch}: each consumer thread would hold ${regs} fp32 ` +
            `accumulators (M*N/(${L.consumerThreads}*consumers); at most ${L.maxAccumulatorRegs} fit in registers); ` +
            `use more ${L.consumerUnit}s or a smaller tile`,
        );
      }
    }
  }
  if (arch === 'sm_90a') {
    if (128 % n !== 0 && n % 128 !== 0) {
      // 16, 32, 64, 128, 256
      p.add(
        `${tp}.ctaTile[1]`,
        `must divide 128 or be a multiple of 128 on sm_90a (a B tile covers whole 128-row scale blocks or lies inside one; got ${n})`,
      );
    }
    if (consumers !== undefined && stages !== undefined && (m / 64) % consumers === 0 && p.list.length === before) {
      const decode = t.decode as string | undefined;
      const r = isProducerDecode(decode)
        ? sm90PdLayout([m, n, k], consumers, stages, decode)
        : sm90GemmLayout([m, n, k], consumers, stages);
      if ('field' in r) p.add(`${tp}.${r.field}`, r.message);
    }
    return;
  }
  if (arch === 'sm_120a') {
    for (const [i, v, what] of [
      [0, m, 'an A'],
      [1, n, 'a B'],
    ] as const) {
      if (128 % v !== 0 && v % 128 !== 0) {
        p.add(
          `${tp}.ctaTile[${i}]`,
          `must divide 128 or be a multiple of 128 on sm_120a (${what} tile covers whole 128-row scale blocks or lies inside one; got ${v})`,
        );
      }
    }
  }
  if (consumers === undefined || stages === undefined || p.list.length !== before) return;
  const r =
    arch === 'sm_100a' ? sm100GemmLayout([m, n, k], consumers, stages) : sm120GemmLayout([m, n, k], consumers, stages);
  if ('field' in r) p.add(`${tp}.${r.field}`, r.message);
}

/** sm_90a with registerOperand 'b' (templates/gemm_sm90_swap.cu.hbs): A rows are the wgmma N, B rows the M. */
function checkSwappedGemm(p: Problems, t: Obj, tp: string): void {
  const on = `on sm_90a with registerOperand 'b' (A rows on the wgmma N, B rows on one m64 slab)`;
  const before = p.list.length;
  const tile = intTuple(
    p,
    t,
    tp,
    'ctaTile',
    [{ min: 8, max: 64, multipleOf: 8 }, { min: SM90_SWAP_W_ROWS, max: SM90_SWAP_W_ROWS }, GEMM_LIMITS.sm_90a.k],
    '[M, N, K]',
  );
  // c consumer warpgroups split each tile's K blocks (kb mod c, NUMERICS §6.2); the layout refuses c = 3.
  const consumers = int(p, t, tp, 'consumers', { min: 1, max: 4 });
  const sets = t.fragmentSets === undefined ? undefined : int(p, t, tp, 'fragmentSets', { min: 1, max: 2 });
  const stages = int(p, t, tp, 'stages', GEMM_LIMITS.sm_90a.stages);
  const one: IntRule = { min: 1, max: 1 };
  intTuple(p, t, tp, 'cluster', [one, one], '[x, y]');
  for (let i = before; i < p.list.length; i++) p.list[i].message += ` ${on}`;
  if (!tile || consumers === undefined || stages === undefined || p.list.length !== before) return;
  const [m, n, k] = tile;
  if (m === undefined || n === undefined || k === undefined) return;
  if (64 % m !== 0) {
    p.add(
      `${tp}.ctaTile[0]`,
      `must divide 64 ${on}: 8, 16, 32 or 64 (an A tile lies inside one scale block; got ${m})`,
    );
    return;
  }
  const r = sm90SwapLayout([m, n, k], stages, consumers, sets);
  if ('field' in r) p.add(`${tp}.${r.field}`, r.message);
}

// ---------------------------------------------------------------------------------------------------------------
// Entry points.

const KINDS = ['quantize', 'hadamard', 'dequantize', 'amax', 'gemm'] as const;

/** Every problem of one kernel spec on `arch`; `path` names the spec in messages. An empty list means valid. */
export function validate(spec: unknown, arch: Arch, path = 'kernels[i]'): SpecProblem[] {
  const p = new Problems();
  if (!(ARCHS as readonly unknown[]).includes(arch)) {
    p.add('arch', `must be one of ${ARCHS.join(', ')} (got ${show(arch)})`);
    return p.list;
  }
  if (!isObj(spec)) {
    p.add(path, `must be a kernel spec object with a "kind" field (got ${show(spec)})`);
    return p.list;
  }
  const kind = spec.kind;
  if (kind === undefined) {
    p.add(`${path}.kind`, `missing required field "kind"; must be one of ${allowedList(KINDS)}`);
    return p.list;
  }
  if (!(KINDS as readonly unknown[]).includes(kind)) {
    p.add(`${path}.kind`, `must be one of ${allowedList(KINDS)} (got ${show(kind)})`);
    return p.list;
  }
  checkName(p, spec, path);
  checkDoc(p, spec, path);
  switch (kind as KernelSpec['kind']) {
    case 'quantize':
      checkQuantize(p, spec, path);
      break;
    case 'hadamard':
      checkHadamard(p, spec, path);
      break;
    case 'dequantize':
      checkDequantize(p, spec, path);
      break;
    case 'amax':
      checkAmax(p, spec, path);
      break;
    case 'gemm':
      checkGemm(p, spec, path, arch);
      break;
  }
  return p.list;
}

/** Every problem of a spec file ({ kernels: [...] }) on `arch`, including duplicate names. */
export function validateFile(file: unknown, arch: Arch): SpecProblem[] {
  const p = new Problems();
  if (!isObj(file)) {
    p.add('(file)', `must be an object { kernels: KernelSpec[] } (got ${show(file)})`);
    return p.list;
  }
  for (const key of Object.keys(file)) {
    if (key !== 'kernels') p.add(key, `unknown field "${key}"; a spec file has only "kernels"`);
  }
  const kernels = file.kernels;
  if (!Array.isArray(kernels)) {
    p.add(
      'kernels',
      kernels === undefined
        ? 'missing required field "kernels" (a list of kernel specs)'
        : `must be a list of kernel specs (got ${show(kernels)})`,
    );
    return p.list;
  }
  if (kernels.length === 0) p.add('kernels', 'must contain at least one kernel spec');
  const firstUse = new Map<string, number>();
  const firstUseFolded = new Map<string, number>();
  const symbolOwner = new Map<string, number>();
  kernels.forEach((k, i) => {
    p.list.push(...validate(k, arch, `kernels[${i}]`));
    const name = isObj(k) ? k.name : undefined;
    if (typeof name !== 'string') return;
    const first = firstUse.get(name);
    const firstFolded = firstUseFolded.get(name.toLowerCase());
    if (first !== undefined) {
      p.add(
        `kernels[${i}].name`,
        `duplicate name "${name}" (also kernels[${first}].name); names must be unique in a file`,
      );
    } else if (firstFolded !== undefined) {
      p.add(
        `kernels[${i}].name`,
        `"${name}" differs from kernels[${firstFolded}].name only in case; their .cu files ` +
          'would be one file on case-insensitive filesystems (macOS, Windows); names must differ in more than case',
      );
    } else {
      // Kernel "a" defines qgen_a_workspace_bytes; a kernel named "a_workspace_bytes" would define it too.
      const clash = GENERATED_SYMBOL_SUFFIXES.map((x) => symbolOwner.get(`qgen_${name}${x}`)).find(
        (j) => j !== undefined,
      );
      if (clash !== undefined) {
        const defined = GENERATED_SYMBOL_SUFFIXES.map((x) => `qgen_N${x}`).join(', ');
        p.add(
          `kernels[${i}].name`,
          `"${name}" would define a C symbol that kernels[${clash}] defines already (a kernel N defines ${defined})`,
        );
      }
    }
    firstUse.set(name, first ?? i);
    firstUseFolded.set(name.toLowerCase(), firstFolded ?? i);
    for (const x of GENERATED_SYMBOL_SUFFIXES) {
      if (!symbolOwner.has(`qgen_${name}${x}`)) symbolOwner.set(`qgen_${name}${x}`, i);
    }
  });
  return p.list;
}

/** Thrown by assertValid: a user error that lists every problem, one per line. */
export class SpecError extends Error {
  constructor(
    readonly problems: SpecProblem[],
    what = 'spec',
  ) {
    super(
      `${what} has ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n` +
        problems.map((q) => `  ${q.path}: ${q.message}`).join('\n'),
    );
    this.name = 'SpecError';
  }
}

/**
 * Throws a SpecError listing every problem of `subject` on `arch`: a spec file ({ kernels }), a list of kernel specs
 * (paths `kernels[i]`), or one kernel spec (path `spec`).
 */
export function assertValid(
  subject: unknown,
  arch: Arch,
  what?: string,
): asserts subject is SpecFile | KernelSpec[] | KernelSpec {
  const problems = Array.isArray(subject)
    ? validateFile({ kernels: subject }, arch)
    : isObj(subject) && 'kernels' in subject
      ? validateFile(subject, arch)
      : validate(subject, arch, 'spec');
  if (problems.length > 0) throw new SpecError(problems, what ?? `spec (${arch})`);
}
