// Tunable parameters: every field of a GEMM or quantizer spec that changes only speed, never results beyond NUMERICS'
// bounds (§6.2: a fused tiling reorders K only where an operand-swapped one splits K over consumers > 1, within the
// bound; §3: quantizer randomness is keyed logically), declared with its type and the values a sweep tries. The legal
// range of each value is not repeated here: validate/validate.ts (GEMM_LIMITS and the per-arch layout rules)
// decides, and validate/space.ts prunes every illegal point before anything compiles.
import { GEMM_DECODES, type Arch, type ElementwiseTiling, type GemmDecode, type GemmTiling } from './types.ts';

/** One declared parameter: the spec field it sets (a path inside `tiling`) and the values a sweep tries. */
export interface Tunable<T> {
  /** Field path inside the spec's `tiling`, as validation reports it (e.g. `ctaTile[0]`). */
  field: string;
  doc: string;
  values: readonly T[];
}

type TileOrder = GemmTiling['tileOrder'];
type RegisterOperand = NonNullable<GemmTiling['registerOperand']>;

/** The GEMM's tunables per arch. Tile M/N/K, consumers, stages, cluster and tile order (dsl/types.ts GemmTiling). */
export interface GemmTunables {
  tileM: Tunable<number>;
  tileN: Tunable<number>;
  tileK: Tunable<number>;
  consumers: Tunable<number>;
  stages: Tunable<number>;
  cluster: Tunable<[number, number]>;
  tileOrder: Tunable<TileOrder>;
  /** Operand decoded into the wgmma registers (sm_90a 'b': operands swapped for skinny m; elsewhere 'a' only). */
  registerOperand: Tunable<RegisterOperand>;
  /** Who dequantizes (sm_90a 'producer', 'producer-pipelined': a decoder warpgroup, SS wgmma; 'producer-cluster':
   * the same in 2-CTA clusters [2, 1] sharing the B slab; 'producer-b-register-a': the decoder warpgroup B only, the
   * consumers A into RS wgmma registers; 'producer2-b-register-a': the same with two decoder warpgroups;
   * 'producer2-b-register-a-consumer-copies': the same with the copies issued by consumer lanes; with
   * registerOperand 'a' only). */
  decode: Tunable<GemmDecode>;
}

const TILE_ORDERS: readonly TileOrder[] = ['swizzle-8', 'row-major', 'column-major'];

export const GEMM_TUNABLES: Readonly<Record<Arch, GemmTunables>> = {
  sm_90a: {
    // M = 16 only with registerOperand 'b' (A rows on the wgmma N); validation prunes it otherwise.
    tileM: { field: 'ctaTile[0]', doc: 'CTA tile M (m64 wgmma slabs; wgmma N when swapped)', values: [16, 64, 128] },
    tileN: { field: 'ctaTile[1]', doc: 'CTA tile N', values: [32, 64, 128, 256] },
    tileK: { field: 'ctaTile[2]', doc: 'K depth of one pipeline stage', values: [64, 128, 256] },
    // with registerOperand 'b': consumer warpgroups splitting each tile's K blocks (NUMERICS §6.2)
    consumers: { field: 'consumers', doc: 'consumer warpgroups', values: [1, 2] },
    // bench/results/gemm.md: fewer than 4 stages never won on the H100; column-major visits lose L2 reuse of A.
    stages: { field: 'stages', doc: 'shared-memory pipeline depth', values: [4, 6, 8] },
    cluster: { field: 'cluster', doc: 'thread-block cluster', values: [[1, 1]] },
    tileOrder: { field: 'tileOrder', doc: 'order of output tiles', values: ['swizzle-8', 'row-major'] },
    registerOperand: { field: 'registerOperand', doc: 'operand in the wgmma registers', values: ['a', 'b'] },
    decode: {
      field: 'decode',
      doc: 'who dequantizes: consumer or decoder warpgroup',
      values: GEMM_DECODES,
    },
  },
  sm_100a: {
    tileM: { field: 'ctaTile[0]', doc: 'CTA tile M (tcgen05 M)', values: [128] },
    tileN: { field: 'ctaTile[1]', doc: 'CTA tile N', values: [64, 128, 256] },
    tileK: { field: 'ctaTile[2]', doc: 'K depth of one stage', values: [256, 512] },
    consumers: { field: 'consumers', doc: 'epilogue warpgroups', values: [1] },
    stages: { field: 'stages', doc: 'shared-memory pipeline depth', values: [2, 3, 4, 6] },
    cluster: {
      field: 'cluster',
      doc: 'thread-block cluster',
      values: [
        [1, 1],
        [2, 1],
      ],
    },
    tileOrder: { field: 'tileOrder', doc: 'order of output tiles', values: TILE_ORDERS },
    registerOperand: { field: 'registerOperand', doc: 'operand in the MMA registers', values: ['a'] },
    decode: { field: 'decode', doc: 'who dequantizes (nothing is decoded: default only)', values: ['consumer'] },
  },
  sm_120a: {
    tileM: { field: 'ctaTile[0]', doc: 'CTA tile M', values: [64, 128] },
    tileN: { field: 'ctaTile[1]', doc: 'CTA tile N', values: [64, 128] },
    tileK: { field: 'ctaTile[2]', doc: 'K depth of one stage', values: [128, 256] },
    consumers: { field: 'consumers', doc: 'consumer warps', values: [2, 4, 8] },
    stages: { field: 'stages', doc: 'shared-memory pipeline depth', values: [2, 3, 4] },
    cluster: { field: 'cluster', doc: 'thread-block cluster', values: [[1, 1]] },
    tileOrder: { field: 'tileOrder', doc: 'order of output tiles', values: TILE_ORDERS },
    registerOperand: { field: 'registerOperand', doc: 'operand in the MMA registers', values: ['a'] },
    decode: { field: 'decode', doc: 'who dequantizes (nothing is decoded: default only)', values: ['consumer'] },
  },
};

/** Launch shape of the memory-bound kernels (quantizers, dequantize): dsl/types.ts ElementwiseTiling. */
export interface ElementwiseTunables {
  threadsPerBlock: Tunable<number>;
  rowsPerBlock: Tunable<number>;
  groupsPerThread: Tunable<number>;
  /** The register budget: tiling.minBlocksPerSm, null for lowering's estimate (the field left out). */
  minBlocksPerSm: Tunable<number | null>;
}

export const ELEMENTWISE_TUNABLES: Readonly<ElementwiseTunables> = {
  threadsPerBlock: { field: 'threadsPerBlock', doc: 'threads per block', values: [128, 256, 512] },
  rowsPerBlock: { field: 'rowsPerBlock', doc: 'rows per block and iteration', values: [1, 4, 16, 32] },
  groupsPerThread: { field: 'groupsPerThread', doc: '16-groups along K per thread', values: [1, 2, 4, 8] },
  // 65536 / (threads x minBlocks) registers per thread: 128 x 8 = 64, 128 x 6 = 85 -> 80, 128 x 4 = 128, 128 x 3 =
  // 170 -> 168, 128 x 2 = 255. A budget ptxas cannot meet without spilling fails the candidate's build
  // (harness/nvcc.ts) and is recorded as such. Fewer warps with more registers can win: E^T's plane twin ran 8%
  // faster under a 128-register budget (ptxas used 98) than at 80 (bench/NOTES.md, "Measured on the H100 at 4b91a23").
  minBlocksPerSm: {
    field: 'minBlocksPerSm',
    doc: 'resident blocks per SM the registers are budgeted for (null: estimate)',
    values: [null, 2, 3, 4, 6, 8],
  },
};

/** The fewest registers per thread a swept budget leaves: no quantizer fits under 64 (bench/NOTES.md). */
export const MIN_SWEPT_REGISTERS = 64;

/** The GEMM strategies a sweep compares (NUMERICS §6.2 fused, §6.4 two-pass). */
export type GemmStrategy = 'fused' | 'two-pass';
export const GEMM_STRATEGIES: readonly GemmStrategy[] = ['fused', 'two-pass'];

/** Every point of the Cartesian product of the GEMM tunables of `arch`, unvalidated, in a fixed order. */
export function gemmTilingPoints(arch: Arch): GemmTiling[] {
  const t = GEMM_TUNABLES[arch];
  const out: GemmTiling[] = [];
  for (const m of t.tileM.values)
    for (const n of t.tileN.values)
      for (const k of t.tileK.values) {
        for (const consumers of t.consumers.values)
          for (const stages of t.stages.values) {
            for (const cluster of t.cluster.values)
              for (const tileOrder of t.tileOrder.values)
                for (const registerOperand of t.registerOperand.values) {
                  const point: GemmTiling = {
                    ctaTile: [m, n, k],
                    consumers,
                    stages,
                    cluster: [cluster[0], cluster[1]],
                    tileOrder,
                  };
                  // 'a' is the default: its points carry no field, so their names and specs are the unswapped ones.
                  out.push(registerOperand === 'a' ? point : { ...point, registerOperand });
                  // likewise decode 'consumer'; the producer decodes exist with registerOperand 'a' only, and
                  // 'producer-cluster' with its own cluster [2, 1] (the cluster tunable's other values stay [1, 1])
                  if (registerOperand === 'a')
                    for (const decode of t.decode.values)
                      if (decode === 'producer-cluster') out.push({ ...point, cluster: [2, 1], decode });
                      else if (decode !== 'consumer') out.push({ ...point, decode });
                }
          }
      }
  return out;
}

/**
 * The short label of a launch shape, as candidate names carry it: `t<threads>_r<rows>_g<groups>`, then `_b<blocks>`
 * where the tiling budgets the registers for that many blocks per SM (minBlocksPerSm).
 */
export function tilingLabel(t: ElementwiseTiling): string {
  const b = t.minBlocksPerSm === undefined ? '' : `_b${t.minBlocksPerSm}`;
  return `t${t.threadsPerBlock}_r${t.rowsPerBlock}_g${t.groupsPerThread}${b}`;
}

/**
 * Every point of the elementwise tunables, unvalidated, in a fixed order (the register budget innermost). Budgets
 * under MIN_SWEPT_REGISTERS registers per thread are not generated: legal, but every quantizer spills there.
 */
export function elementwiseTilingPoints(): ElementwiseTiling[] {
  const t = ELEMENTWISE_TUNABLES;
  const out: ElementwiseTiling[] = [];
  for (const threadsPerBlock of t.threadsPerBlock.values)
    for (const rowsPerBlock of t.rowsPerBlock.values)
      for (const groupsPerThread of t.groupsPerThread.values)
        for (const minBlocksPerSm of t.minBlocksPerSm.values) {
          if (minBlocksPerSm === null) out.push({ threadsPerBlock, rowsPerBlock, groupsPerThread });
          else if (Math.floor(65536 / (threadsPerBlock * minBlocksPerSm)) >= MIN_SWEPT_REGISTERS)
            out.push({ threadsPerBlock, rowsPerBlock, groupsPerThread, minBlocksPerSm });
        }
  return out;
}
