// The sm_100a GEMM's resource arithmetic, in one place (PTX-FACTS §4): shared-memory stages, tensor-memory columns
// (accumulators and scale-factor sets) and warp roles. Validation (validate/validate.ts) reports its problems; lowering
// (lower/lower.ts) renders its numbers; the template static_asserts them.

/** Largest dynamic shared memory of one sm_100 block (PTX-FACTS §4.6). */
export const SM100_BLOCK_SMEM = 232448;
/** Shared memory of one sm_100 SM (228 KB) and what the driver reserves per resident block (1 KB), CUDA
 * programming guide, compute capability 10.0 table. */
export const SM100_SM_SMEM = 233472;
export const SM100_SMEM_RESERVED_PER_BLOCK = 1024;
/** Tensor memory: 128 lanes x 512 columns of 32 bits per SM (PTX-FACTS §4.1). */
export const SM100_TMEM_COLUMNS = 512;
/** Scale-factor column sets in tensor memory: the MMA warp refills set (step mod 2) only after the MMAs that read it
 * completed (a commit to sf_free), so a copy never races an MMA in flight (PTX-FACTS §9 item 5, conservatively). */
export const SM100_SF_SETS = 2;

export interface Sm100GemmLayout {
  bm: number;
  bn: number;
  bk: number;
  stages: number;
  /** Epilogue warpgroups; each owns bn / consumers accumulator columns. */
  consumers: number;
  /** 128-byte (256-element) K chunks of one stage: one SW128 tile of [rows x 128 B] per chunk and operand. */
  chunks: number;
  /** 64-wide K atoms of one stage = MMAs of K = 64 = 128x4 scale blocks per 128 rows. */
  atoms: number;
  /** 128-row scale blocks of a B tile. */
  bRowBlocks: number;
  /** Tensor-memory columns: accumulators (accBuffers x bn), then SM100_SF_SETS sets of sfColumnsPerSet. */
  accBuffers: number;
  sfColumnsPerSet: number;
  tmemColumnsUsed: number;
  /** Power of two >= tmemColumnsUsed (tcgen05.alloc). */
  tmemColumnsAllocated: number;
  smemBytes: number;
  /** CTAs that shared memory lets reside on one SM: floor(SM100_SM_SMEM / (smemBytes + reserved)). Times
   * tmemColumnsAllocated it must stay <= 512, or a second CTA's tcgen05.alloc would block until the first exits
   * (and a CTA that allocates twice could deadlock): the persistent grid relies on one CTA per SM. */
  ctasPerSm: number;
  /** Warp 0 TMA producer, warp 1 MMA issuer and tensor-memory owner, then the epilogue warpgroups. */
  threads: number;
}

/** Shared memory: stages x (A and B code tiles + 512-byte scale blocks), mbarriers, the tensor-memory address slot, 1024 B alignment slack. */
export function sm100SmemBytes(bm: number, bn: number, bk: number, stages: number): number {
  const atoms = bk / 64;
  const stageBytes = ((bm + bn) * bk) / 2 + 512 * atoms * (bm / 128 + bn / 128);
  const barriers = 8 * (2 * stages + SM100_SF_SETS + 2 * 2) + 16;
  return stages * stageBytes + barriers + 1024;
}

const pow2AtLeast = (x: number) => 2 ** Math.ceil(Math.log2(Math.max(32, x)));

/** The layout of a tiling (already inside GEMM_LIMITS.sm_100a), or what does not fit. */
export function sm100GemmLayout(
  tile: readonly [number, number, number],
  consumers: number,
  stages: number,
): { layout: Sm100GemmLayout } | { field: 'stages' | 'ctaTile[1]' | 'consumers'; message: string } {
  const [bm, bn, bk] = tile;
  const atoms = bk / 64;
  const bRowBlocks = bn / 128;
  const sfColumnsPerSet = 4 * atoms * (1 + bRowBlocks);
  const sf = SM100_SF_SETS * sfColumnsPerSet;
  const accBuffers = 2 * bn + sf <= SM100_TMEM_COLUMNS ? 2 : 1;
  const tmemColumnsUsed = accBuffers * bn + sf;
  if (tmemColumnsUsed > SM100_TMEM_COLUMNS) {
    return {
      field: 'ctaTile[1]',
      message:
        `a ${bm}x${bn}x${bk} tile needs ${tmemColumnsUsed} tensor-memory columns (${bn} accumulators + ` +
        `${SM100_SF_SETS} scale sets of ${sfColumnsPerSet}), more than the ${SM100_TMEM_COLUMNS} of an SM; use a smaller N or K`,
    };
  }
  if ((bn / consumers) % 32 !== 0) {
    return {
      field: 'consumers',
      message: `must split the ${bn} accumulator columns into multiples of 32 (one tcgen05.ld 32x32b.x32 each); got ${consumers}`,
    };
  }
  const smemBytes = sm100SmemBytes(bm, bn, bk, stages);
  if (smemBytes > SM100_BLOCK_SMEM) {
    return {
      field: 'stages',
      message:
        `${stages} stages need ${smemBytes} B of shared memory, more than the ${SM100_BLOCK_SMEM} B ` +
        `an sm_100a block can have (stages*((M+N)*K/2 + 512*(K/64)*(M+N)/128) + barriers); use fewer stages or a smaller tile`,
    };
  }
  const tmemColumnsAllocated = pow2AtLeast(tmemColumnsUsed);
  const ctasPerSm = Math.floor(SM100_SM_SMEM / (smemBytes + SM100_SMEM_RESERVED_PER_BLOCK));
  if (ctasPerSm * tmemColumnsAllocated > SM100_TMEM_COLUMNS) {
    const oneCta = Math.floor(SM100_SM_SMEM / 2) - SM100_SMEM_RESERVED_PER_BLOCK;
    return {
      field: 'stages',
      message:
        `${stages} stages need only ${smemBytes} B of shared memory, so ${ctasPerSm} ` +
        `CTAs fit on one SM and together would allocate ${ctasPerSm} x ${tmemColumnsAllocated} tensor-memory columns, ` +
        `more than the ${SM100_TMEM_COLUMNS}; use more stages (shared memory > ${oneCta} B keeps one CTA per SM) ` +
        'or fewer columns',
    };
  }
  return {
    layout: {
      bm,
      bn,
      bk,
      stages,
      consumers,
      chunks: bk / 256,
      atoms,
      bRowBlocks,
      accBuffers,
      sfColumnsPerSet,
      tmemColumnsUsed,
      tmemColumnsAllocated,
      smemBytes,
      ctasPerSm,
      threads: 64 + 128 * consumers,
    },
  };
}

/** The 32-bit instruction descriptor of tcgen05.mma kind::mxf4nvf4 (PTX-FACTS §4.3): E2M1 A and B, K-major, UE4M3 scales, M = 128. */
export function sm100InstrDescriptor(bn: number): number {
  return ((1 << 7) | (1 << 10) | ((bn >> 3) << 17) | ((128 >> 4) << 24)) >>> 0;
}
