// The sm_90a GEMM's resource arithmetic, in one place: shared-memory layout, CTAs per SM and registers per thread. Validation (validate/validate.ts) reports its problems; lowering (lower/lower.ts) renders its numbers; the
// template static_asserts the shared-memory total.

/** Largest dynamic shared memory of one block (PTX-FACTS §4.6); H100: 228 KiB per SM, 1 KiB reserved per block. */
export const SM90_BLOCK_SMEM = 232448;
const SM90_SM_SMEM = 233472;
const SM90_REGISTERS = 65536;

export interface Sm90GemmLayout {
  bm: number;
  bn: number;
  bk: number;
  consumers: number;
  /** m64 slabs per consumer warpgroup. */
  slabs: number;
  rawStages: number;
  smemBytes: number;
  ctasPerSm: number;
  /** Consumer warpgroups + one TMA warpgroup. */
  threads: number;
  /** Registers per thread (__launch_bounds__(threads, ctasPerSm)). */
  launchRegs: number;
  /** Operand decoded into the wgmma register fragments: 'a' (A rows on the wgmma M), or 'b' (operands swapped). */
  registerOperand: 'a' | 'b';
  /** Dequantized X (A) tiles in flight between the decoding warpgroup and the consumer ('b' only; 0 for 'a'). */
  xStages: number;
}

/** Shared-memory bytes of the layout the template builds: 2 dequantized bf16 B tiles, the raw stages (codes of A and
 * B, 512-byte scale blocks per 64-wide K atom), mbarriers, 1024 bytes of alignment slack. */
export function sm90SmemBytes(bm: number, bn: number, bk: number, rawStages: number): number {
  const atoms = bk / 64;
  const raw = ((bm + bn) * bk) / 2 + (1 + Math.ceil(bn / 128)) * atoms * 512;
  return 2 * bn * 128 * atoms + rawStages * raw + 16 * rawStages + 1024;
}

const A_ROLES = { registerOperand: 'a', xStages: 0 } as const;
const roundUp8 = (x: number) => Math.ceil(x / 8) * 8;
const roundDown8 = (x: number) => Math.floor(x / 8) * 8;

/** The layout of a tiling, or a message saying which resource does not fit (for tiling.stages or tiling.consumers). */
export function sm90GemmLayout(
  tile: readonly [number, number, number],
  consumers: number,
  rawStages: number,
): { layout: Sm90GemmLayout } | { field: 'stages' | 'consumers'; message: string } {
  const [bm, bn, bk] = tile;
  const slabs = bm / 64 / consumers;
  const threads = 128 * (consumers + 1);
  const fragRegs = 16 * (bk / 64) * slabs;
  // Accumulators, one set of A fragments, and room for one B row's dequantization, addresses, loop state.
  const need = roundUp8((slabs * bn) / 2 + fragRegs + 64);
  const smemBytes = sm90SmemBytes(bm, bn, bk, rawStages);
  let problem: { field: 'stages' | 'consumers'; message: string } | null = null;
  for (const ctasPerSm of [2, 1]) {
    const budget = Math.min(SM90_BLOCK_SMEM, Math.floor(SM90_SM_SMEM / ctasPerSm) - 1024);
    if (smemBytes > budget) {
      problem = {
        field: 'stages',
        message:
          `${rawStages} stages need ${smemBytes} B of shared memory, more than the ${budget} B ` +
          `an sm_90a block can have (stages*((M+N)*K/2 + 512*(K/64)*(1 + ceil(N/128))) + 2*N*K*2 + barriers); ` +
          `use fewer stages or a smaller tile`,
      };
      continue;
    }
    const launchRegs = Math.min(255, roundDown8(SM90_REGISTERS / (threads * ctasPerSm)));
    const base = { bm, bn, bk, consumers, slabs, rawStages, smemBytes, ctasPerSm, threads, launchRegs, ...A_ROLES };
    // ptxas allocates the consumer code within the launch share (measured: code past setmaxnreg.inc still spills at
    // the __launch_bounds__ limit), so the plan fits the consumers into launchRegs.
    if (need <= launchRegs) return { layout: base };
    problem = {
      field: 'consumers',
      message:
        `too few for a ${bm}x${bn}x${bk} tile on sm_90a: each consumer thread needs ` +
        `about ${need} registers (${(slabs * bn) / 2} accumulators + ${fragRegs} A fragment registers + 64), more than ` +
        `the ${launchRegs} that ${threads * ctasPerSm} threads (${ctasPerSm} CTA(s) per SM) leave; use more consumer warpgroups, a narrower tile or a smaller K`,
    };
  }
  return problem!;
}

/** Ring depth of dequantized X tiles in the operand-swapped kernel (templates/gemm_sm90_swap.cu.hbs). */
export const SM90_SWAP_X_STAGES = 4;
/** W rows per tile of the operand-swapped kernel: one m64 wgmma slab of B rows, one consumer warpgroup. */
export const SM90_SWAP_W_ROWS = 64;

/** Shared memory of the operand-swapped kernel: the X ring (bf16, xRows x bk each), the raw stages (W and X codes,
 * one 512-byte scale block per operand and 64-wide K atom), mbarriers (raw full/empty, X full/empty), 1024 slack. */
export function sm90SwapSmemBytes(xRows: number, bk: number, rawStages: number): number {
  const atoms = bk / 64;
  const raw = ((SM90_SWAP_W_ROWS + xRows) * bk) / 2 + 2 * atoms * 512;
  return SM90_SWAP_X_STAGES * xRows * 128 * atoms + rawStages * raw + 16 * (rawStages + SM90_SWAP_X_STAGES) + 1024;
}

/**
 * The layout of the operand-swapped kernel (tiling.registerOperand 'b'): tile [xRows, 64, bk], one consumer
 * warpgroup (W fragments, wgmma), one X-decoding warpgroup, one TMA warp. The consumer holds xRows / 2 accumulators
 * and two W fragment sets (16 registers per 64-wide K atom each).
 */
export function sm90SwapLayout(
  tile: readonly [number, number, number],
  rawStages: number,
): { layout: Sm90GemmLayout } | { field: 'stages' | 'ctaTile[2]'; message: string } {
  const [bm, bn, bk] = tile;
  // The A decoders: 1, 2 or 4 warps per K block (by the tile's row x 64-wide atom tasks), groups of them taking K
  // blocks in turn. A group waits only on the raw stages of its own K blocks, with the parity of their phase; an
  // mbarrier parity wait also passes for the phase before, so the stage's previous K block must be the group's
  // own: stages must be a multiple of the groups (otherwise a decoder can read a stage two phases early).
  const xTasks = bm * (bk / 64);
  const decoderGroups = 4 / (xTasks <= 32 ? 1 : xTasks <= 64 ? 2 : 4);
  if (rawStages % decoderGroups !== 0) {
    return {
      field: 'stages',
      message:
        `${rawStages} stages with ${decoderGroups} A-decoder groups (tile ${bm}x${bn}x${bk}); allowed: a multiple ` +
        `of ${decoderGroups} (each group waits only on the stages of its own K blocks)`,
    };
  }
  const threads = 128 + 128 + 32;
  const fragRegs = 2 * 16 * (bk / 64);
  const need = roundUp8(bm / 2 + fragRegs + 64);
  const smemBytes = sm90SwapSmemBytes(bm, bk, rawStages);
  let problem: { field: 'stages' | 'ctaTile[2]'; message: string } | null = null;
  for (const ctasPerSm of [2, 1]) {
    const budget = Math.min(SM90_BLOCK_SMEM, Math.floor(SM90_SM_SMEM / ctasPerSm) - 1024);
    if (smemBytes > budget) {
      problem = {
        field: 'stages',
        message:
          `${rawStages} stages need ${smemBytes} B of shared memory, more than the ${budget} B an sm_90a block can ` +
          `have (stages*((64+M)*K/2 + 1024*(K/64)) + ${SM90_SWAP_X_STAGES}*M*K*2 + barriers); use fewer stages`,
      };
      continue;
    }
    // The register file is four 16384-register quarters, one per scheduler, each holding whole warps: 9 warps put
    // 3 on one quarter (ptxas: 168 registers at __launch_bounds__(288, 1), not 65536 / 288).
    const warpsPerQuarter = Math.ceil(((threads / 32) * ctasPerSm) / 4);
    const launchRegs = Math.min(255, roundDown8(SM90_REGISTERS / 4 / (warpsPerQuarter * 32)));
    if (need <= launchRegs) {
      const layout = { bm, bn, bk, consumers: 1, slabs: 1, rawStages, smemBytes, ctasPerSm, threads, launchRegs };
      return { layout: { ...layout, registerOperand: 'b', xStages: SM90_SWAP_X_STAGES } };
    }
    problem = {
      field: 'ctaTile[2]',
      message:
        `too deep for the operand-swapped kernel: each consumer thread needs about ${need} registers ` +
        `(${bm / 2} accumulators + ${fragRegs} for two W fragment sets + 64), more than the ${launchRegs} that ` +
        `${threads * ctasPerSm} threads leave; use a smaller K`,
    };
  }
  return problem!;
}
