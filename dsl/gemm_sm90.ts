// The sm_90a GEMM's resource arithmetic, in one place: shared-memory layout, dequantized-tile pipeline depth, CTAs
// per SM and the warpgroup register split. Validation (dsl/validate.ts) reports its problems; lowering (dsl/lower.ts)
// renders its numbers; the template static_asserts the shared-memory total.

/** Largest dynamic shared memory of one block, and of one SM (ptx.md §4.6; H100: 228 KiB per SM, 1 KiB reserved per block). */
export const SM90_BLOCK_SMEM = 232448;
const SM90_SM_SMEM = 233472;
const SM90_REGISTERS = 65536;
/** K block of the sm_90a GEMM: 64 bf16 = one 128-byte swizzle row. */
export const SM90_BK = 64;

export interface Sm90GemmLayout {
  bm: number; bn: number; consumers: number;
  /** m64 slabs per consumer warpgroup. */
  slabs: number;
  rawStages: number;
  /** Dequantized bf16 B tiles in flight (2..4): as many as shared memory holds after the raw stages. */
  bf16Stages: number;
  smemBytes: number;
  ctasPerSm: number;
  threads: number;
  /** Registers per thread at launch (__launch_bounds__), and the warpgroup split when consumers need more. */
  launchRegs: number;
  consumerRegs: number;
  transformRegs: number;
  setmaxnreg: boolean;
}

/** Shared-memory bytes of the layout the template builds (including 1024 bytes of alignment slack). */
export function sm90SmemBytes(bm: number, bn: number, rawStages: number, bf16Stages: number): number {
  const raw = bm * 32 + bn * 32 + 512 + Math.ceil(bn / 128) * 512;
  return bf16Stages * bn * 128 + rawStages * raw + 8 * (2 * rawStages + 2 * bf16Stages) + 1024;
}

const roundUp8 = (x: number) => Math.ceil(x / 8) * 8;
const roundDown8 = (x: number) => Math.floor(x / 8) * 8;

/** The layout of a tiling, or a message saying which resource does not fit (for tiling.stages or tiling.consumers). */
export function sm90GemmLayout(tile: readonly [number, number, number], consumers: number, rawStages: number):
  { layout: Sm90GemmLayout } | { field: 'stages' | 'consumers'; message: string } {
  const [bm, bn] = tile;
  const slabs = bm / 64 / consumers;
  const threads = 128 * (1 + consumers);
  // Accumulators, two sets of A fragments, and room for addresses and loop state.
  const consumerNeed = roundUp8(slabs * bn / 2 + 32 * slabs + 64);
  let lastProblem: { field: 'stages' | 'consumers'; message: string } | null = null;
  for (const ctasPerSm of [2, 1]) {
    const budget = Math.min(SM90_BLOCK_SMEM, Math.floor(SM90_SM_SMEM / ctasPerSm) - 1024);
    let bf16Stages = 0;
    for (let s = 4; s >= 2; s--) if (sm90SmemBytes(bm, bn, rawStages, s) <= budget) { bf16Stages = s; break; }
    if (bf16Stages === 0) {
      lastProblem = { field: 'stages', message: `${rawStages} raw stages leave no room for 2 dequantized bf16 tiles: `
        + `${sm90SmemBytes(bm, bn, rawStages, 2)} B of shared memory needed, ${budget} B available on sm_90a `
        + `(stages*(M*32 + N*32 + 512*(1 + ceil(N/128))) + 2*N*128 + barriers); use fewer stages or a smaller tile` };
      continue;
    }
    const launchRegs = Math.min(255, roundDown8(SM90_REGISTERS / (threads * ctasPerSm)));
    let consumerRegs = launchRegs, transformRegs = launchRegs, setmaxnreg = false;
    if (consumerNeed > launchRegs) {
      consumerRegs = Math.min(240, consumerNeed);
      transformRegs = Math.min(255, roundDown8((1 + consumers) * launchRegs - consumers * consumerRegs));
      setmaxnreg = true;
      if (transformRegs < 56) {
        lastProblem = { field: 'consumers', message: `too few for a ${bm}x${bn} tile on sm_90a: each consumer thread needs `
          + `${consumerNeed} registers (${slabs * bn / 2} accumulators + A fragments), which leaves the dequantizing `
          + `warpgroup ${transformRegs} (< 56); use more consumer warpgroups or a narrower tile` };
        continue;
      }
    }
    return { layout: { bm, bn, consumers, slabs, rawStages, bf16Stages, smemBytes: sm90SmemBytes(bm, bn, rawStages, bf16Stages),
      ctasPerSm, threads, launchRegs, consumerRegs, transformRegs, setmaxnreg } };
  }
  return lastProblem!;
}
