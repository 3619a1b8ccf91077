// The sm_120a GEMM's resource arithmetic, in one place (PTX-FACTS §5): the warp grid over the CTA tile, shared-memory
// stages and the swizzle of the code tiles. Validation (validate/validate.ts) reports its problems; lowering
// (lower/lower.ts) renders its numbers; the template static_asserts them.

/** Largest dynamic shared memory of one sm_120 block (PTX-FACTS §4.6). */
export const SM120_BLOCK_SMEM = 101376;
/** Shared memory of one sm_120 SM: the block maximum and the 1 KB the driver reserves per resident block. */
export const SM120_SM_SMEM = 102400;

export interface Sm120GemmLayout {
  bm: number;
  bn: number;
  bk: number;
  stages: number;
  /** Math warps, arranged warpsM x warpsN over the tile; each owns a warpM x warpN block of m16n8 fragments. */
  warps: number;
  warpsM: number;
  warpsN: number;
  warpM: number;
  warpN: number;
  /** Bytes of one row of a code tile chunk (<= 128) and its TMA swizzle span; chunks of them per K block. */
  chunkBytes: number;
  chunks: number;
  atoms: number;
  aRowBlocks: number;
  bRowBlocks: number;
  /** fp32 accumulators per thread. */
  accumulators: number;
  smemBytes: number;
  /** Math warps, then one TMA producer warp. */
  threads: number;
}

/** Shared memory: stages (A and B code tiles, then their 512-byte scale blocks, padded to 1024 B so that every swizzled
 * tile starts on a swizzle-pattern boundary), mbarriers, 1024 B alignment slack. */
export function sm120StageBytes(bm: number, bn: number, bk: number): number {
  const blocks = Math.ceil(bm / 128) + Math.ceil(bn / 128);
  return Math.ceil((((bm + bn) * bk) / 2 + 512 * (bk / 64) * blocks) / 1024) * 1024;
}
export function sm120SmemBytes(bm: number, bn: number, bk: number, stages: number): number {
  return stages * sm120StageBytes(bm, bn, bk) + 16 * stages + 1024;
}

/** Factorizations warpsM x warpsN = warps with 16-row and 16-column warp tiles, squarest first. */
export function sm120WarpGrids(bm: number, bn: number, warps: number): [number, number][] {
  const grids: [number, number][] = [];
  for (let wm = 1; wm <= warps; wm++) {
    if (warps % wm !== 0) continue;
    const wn = warps / wm;
    if ((bm / 16) % wm === 0 && (bn / 16) % wn === 0) grids.push([wm, wn]);
  }
  return grids.sort(
    (x, y) =>
      Math.abs(Math.log2(bm / x[0] / (bn / x[1]))) - Math.abs(Math.log2(bm / y[0] / (bn / y[1]))) || x[0] - y[0],
  );
}

/** The layout of a tiling (already inside GEMM_LIMITS.sm_120a), or what does not fit. */
export function sm120GemmLayout(
  tile: readonly [number, number, number],
  warps: number,
  stages: number,
): { layout: Sm120GemmLayout } | { field: 'stages' | 'consumers'; message: string } {
  const [bm, bn, bk] = tile;
  const grids = sm120WarpGrids(bm, bn, warps);
  if (grids.length === 0) {
    return {
      field: 'consumers',
      message:
        `${warps} warps cannot tile a ${bm}x${bn} block into equal warp tiles of whole 16x16 ` +
        `pieces (warpsM must divide ${bm / 16} and warpsN ${bn / 16}); use a power of two`,
    };
  }
  const [warpsM, warpsN] = grids[0];
  const smemBytes = sm120SmemBytes(bm, bn, bk, stages);
  if (smemBytes > SM120_BLOCK_SMEM) {
    return {
      field: 'stages',
      message:
        `${stages} stages need ${smemBytes} B of shared memory, more than the ${SM120_BLOCK_SMEM} B ` +
        `an sm_120a block can have (stages*((M+N)*K/2 + 512*(K/64)*(ceil(M/128)+ceil(N/128))), each rounded up to 1024, + barriers); use fewer stages or a smaller tile`,
    };
  }
  const chunkBytes = Math.min(128, bk / 2);
  return {
    layout: {
      bm,
      bn,
      bk,
      stages,
      warps,
      warpsM,
      warpsN,
      warpM: bm / warpsM,
      warpN: bn / warpsN,
      chunkBytes,
      chunks: bk / 2 / chunkBytes,
      atoms: bk / 64,
      aRowBlocks: Math.ceil(bm / 128),
      bRowBlocks: Math.ceil(bn / 128),
      accumulators: ((bm / warpsM) * (bn / warpsN)) / 32,
      smemBytes,
      threads: 32 * (warps + 1),
    },
  };
}
