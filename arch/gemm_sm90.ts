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
}

/** Shared-memory bytes of the layout the template builds: 2 dequantized bf16 B tiles, the raw stages (codes of A and
 * B, 512-byte scale blocks per 64-wide K atom), mbarriers, 1024 bytes of alignment slack. */
export function sm90SmemBytes(bm: number, bn: number, bk: number, rawStages: number): number {
  const atoms = bk / 64;
  const raw = ((bm + bn) * bk) / 2 + (1 + Math.ceil(bn / 128)) * atoms * 512;
  return 2 * bn * 128 * atoms + rawStages * raw + 16 * rawStages + 1024;
}

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
    const base = { bm, bn, bk, consumers, slabs, rawStages, smemBytes, ctasPerSm, threads, launchRegs };
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
