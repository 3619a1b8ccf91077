// The sm_90a GEMM's resource arithmetic, in one place: shared-memory layout, CTAs per SM and registers per thread. Validation (validate/validate.ts) reports its problems; lowering (lower/lower.ts) renders its numbers; the
// template static_asserts the shared-memory total.
import { GEMM_DECODES, type GemmDecode } from '../dsl/types.ts';

/** Largest dynamic shared memory of one block (PTX-FACTS §4.6); H100: 228 KiB per SM, 1 KiB reserved per block. */
export const SM90_BLOCK_SMEM = 232448;
export const SM90_SM_SMEM = 233472;
const SM90_REGISTERS = 65536;
/** How far over the register estimate an explicit tiling.fragmentSets may go (see sm90SwapLayout). */
const FRAGMENT_SETS_SLACK = 32;

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
  /** W fragment sets per consumer thread ('b' only; 0 for 'a'): 2 decode the next K block while the wgmmas run, 1
   * decodes it after them (then only the other consumers' chains overlap it). */
  wSets: number;
  /** Who decodes (tiling.decode): 'consumer' (the consumer warpgroups, between their wgmmas) or 'producer' (a
   * decoder warpgroup fills a ring of bf16 A and B tiles; the consumers issue SS wgmma only), or
   * 'producer-pipelined' (the same, the decoders' shared-memory loads a K block ahead of their decode), or
   * 'producer-cluster' (the pipelined decoder in 2-CTA clusters along M, each CTA decoding half of the shared B slab
   * into both CTAs' tiles), or 'producer-b-register-a' (the pipelined decoder for B only; the consumers decode their
   * A slab into RS wgmma fragment registers), or 'producer2-b-register-a' (the same with two decoder warpgroups,
   * one B row per decoder thread), or 'producer2-b-register-a-consumer-copies' (the same with the copies issued
   * by consumer lanes). */
  decode: 'consumer' | ProducerDecode;
  /** Dequantized tiles in flight: 2 B tiles ('consumer', 'a'), the X ring ('b'), the A + B ring ('producer'). */
  tileStages: number;
  /** 'producer*' only (0 otherwise): setmaxnreg.inc of the consumer warpgroups and setmaxnreg.dec of the decoders. */
  consumerRegs: number;
  decoderRegs: number;
}

/** Shared-memory bytes of the layout the template builds: 2 dequantized bf16 B tiles, the raw stages (codes of A and
 * B, 512-byte scale blocks per 64-wide K atom), mbarriers, 1024 bytes of alignment slack. */
export function sm90SmemBytes(bm: number, bn: number, bk: number, rawStages: number): number {
  const atoms = bk / 64;
  const raw = ((bm + bn) * bk) / 2 + (1 + Math.ceil(bn / 128)) * atoms * 512;
  return 2 * bn * 128 * atoms + rawStages * raw + 16 * rawStages + 1024;
}

const A_ROLES = {
  registerOperand: 'a',
  xStages: 0,
  wSets: 0,
  decode: 'consumer',
  tileStages: 2,
  consumerRegs: 0,
  decoderRegs: 0,
} as const;
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
/** W rows per tile of the operand-swapped kernel: one m64 wgmma slab of B rows, shared by the consumer warpgroups. */
export const SM90_SWAP_W_ROWS = 64;

/** Shared memory of the operand-swapped kernel: the X ring (bf16, xRows x bk each), the raw stages (W and X codes,
 * one 512-byte scale block per operand and 64-wide K atom), the fp32 partials of consumers 1 .. c - 1 (64 x xRows
 * each, NUMERICS §6.2 split K), mbarriers (raw full/empty, X full/empty), 1024 slack. */
export function sm90SwapSmemBytes(xRows: number, bk: number, rawStages: number, consumers = 1): number {
  const atoms = bk / 64;
  const raw = ((SM90_SWAP_W_ROWS + xRows) * bk) / 2 + 2 * atoms * 512;
  const partials = (consumers - 1) * SM90_SWAP_W_ROWS * xRows * 4;
  return (
    SM90_SWAP_X_STAGES * xRows * 128 * atoms + rawStages * raw + partials + 16 * (rawStages + SM90_SWAP_X_STAGES) + 1024
  );
}

/** A-decoder groups of the operand-swapped kernel: 1, 2 or 4 warps decode one K block's (row, 64-wide atom) tasks
 * (by their count), and the 4 / warps groups take K blocks in turn. */
export function sm90SwapDecoderGroups(xRows: number, bk: number): number {
  const xTasks = xRows * (bk / 64);
  return 4 / (xTasks <= 32 ? 1 : xTasks <= 64 ? 2 : 4);
}

/** The ring period of the operand-swapped kernel with c consumers: K block s of a CTA belongs to consumer s mod c and
 * to decoder group s mod groups; raw stages and X tiles must be multiples of it (see sm90SwapLayout). */
export function sm90SwapRingPeriod(consumers: number, decoderGroups: number): number {
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  return (consumers * decoderGroups) / gcd(consumers, decoderGroups);
}

/**
 * The layout of the operand-swapped kernel (tiling.registerOperand 'b'): tile [xRows, 64, bk], `consumers` (c)
 * consumer warpgroups (W fragments, wgmma; each sums the K blocks kb mod c of every tile, NUMERICS §6.2), one
 * X-decoding warpgroup, one TMA warp. A consumer holds xRows / 2 accumulators and one or two W fragment sets (16
 * registers per 64-wide K atom each): two where they fit the register share, else one.
 */
export function sm90SwapLayout(
  tile: readonly [number, number, number],
  rawStages: number,
  consumers = 1,
  fragmentSets?: number,
): { layout: Sm90GemmLayout } | { field: 'stages' | 'ctaTile[2]' | 'consumers'; message: string } {
  const [bm, bn, bk] = tile;
  // K block s of a CTA (tiles padded to a multiple of c blocks) belongs to consumer s mod c and decoder group
  // s mod groups. Each waits only on the raw stages and X tiles of its own K blocks, with the parity of their phase;
  // an mbarrier parity wait also passes for the phase before, so the previous K block of every stage and X tile must
  // be the waiter's own: stages must be a multiple of lcm(c, groups) (otherwise a waiter can read a stage two phases
  // early). test/gemm-swap-split.test.ts simulates the schedules.
  const decoderGroups = sm90SwapDecoderGroups(bm, bk);
  const period = sm90SwapRingPeriod(consumers, decoderGroups);
  if (rawStages % period !== 0) {
    const owners =
      consumers === 1
        ? `${decoderGroups} A-decoder groups`
        : `${consumers} consumers and ${decoderGroups} A-decoder groups`;
    return {
      field: 'stages',
      message:
        `${rawStages} stages with ${owners} (tile ${bm}x${bn}x${bk}); allowed: a multiple ` +
        `of ${period} (each ${consumers === 1 ? 'group' : 'consumer and group'} waits only on the stages of its own ` +
        `K blocks)`,
    };
  }
  if (SM90_SWAP_X_STAGES % period !== 0) {
    return {
      field: 'consumers',
      message:
        `${consumers} consumers with ${decoderGroups} A-decoder groups (tile ${bm}x${bn}x${bk}) need a ring of X ` +
        `tiles that is a multiple of ${period}; the kernel has ${SM90_SWAP_X_STAGES}: use 1, 2 or 4 consumers`,
    };
  }
  const threads = 128 * consumers + 128 + 32;
  const setRegs = 16 * (bk / 64);
  const need = (sets: number) => roundUp8(bm / 2 + sets * setRegs + 64);
  const smemBytes = sm90SwapSmemBytes(bm, bk, rawStages, consumers);
  let problem: { field: 'stages' | 'ctaTile[2]' | 'consumers'; message: string } | null = null;
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
    // One consumer keeps two W fragment sets (its only overlap of decode and wgmma); more consumers keep two where
    // they fit, else one (the other consumers' chains overlap the decode). tiling.fragmentSets overrides the
    // estimate at one CTA per SM within FRAGMENT_SETS_SLACK registers (the estimate over-counts by 9-17 registers
    // against ptxas: 120 / 143 used for 136 / 160 estimated at c = 1; further over it, ptxas spills and serialises
    // the wgmmas: [64, 64, 128] with 4 consumers and one set, 128 estimated for 80, spilled 176 B); at two CTAs per
    // SM the estimate decides.
    const chosen = need(2) <= launchRegs ? 2 : consumers > 1 && need(1) <= launchRegs ? 1 : 0;
    const overridable = (sets: number) =>
      need(sets) <= launchRegs || (ctasPerSm === 1 && need(sets) - FRAGMENT_SETS_SLACK <= launchRegs);
    const wSets = fragmentSets === undefined ? chosen : overridable(fragmentSets) ? fragmentSets : 0;
    if (wSets > 0) {
      const layout = { bm, bn, bk, consumers, slabs: 1, rawStages, smemBytes, ctasPerSm, threads, launchRegs };
      const roles = { registerOperand: 'b', xStages: SM90_SWAP_X_STAGES, wSets, decode: 'consumer' } as const;
      return { layout: { ...layout, ...roles, tileStages: SM90_SWAP_X_STAGES, consumerRegs: 0, decoderRegs: 0 } };
    }
    const sets = consumers > 1 ? 'one W fragment set' : 'two W fragment sets';
    problem = {
      field: consumers > 1 ? 'consumers' : 'ctaTile[2]',
      message:
        `too deep for the operand-swapped kernel: each consumer thread needs about ${need(consumers > 1 ? 1 : 2)} ` +
        `registers (${bm / 2} accumulators + ${sets} of ${setRegs} + 64), more than the ${launchRegs} that ` +
        `${threads * ctasPerSm} threads leave; use ${consumers > 1 ? 'fewer consumers or ' : ''}a smaller K`,
    };
  }
  return problem!;
}

/** Ring depth of dequantized A + B tiles in the producer-decode kernel (templates/gemm_sm90_pd.cu.hbs): the decoders
 * run up to two K blocks ahead of the block whose wgmmas the consumers issue. */
export const SM90_PD_TILE_STAGES = 3;
/** setmaxnreg.dec of the producer-decode kernel's decoder warpgroup (its SASS uses fewer: test/gemm-pd.test.ts). */
export const SM90_PD_DECODER_REGS = 56;
/** setmaxnreg.dec of the pipelined producer-decode kernel's decoders (templates/gemm_sm90_pdp.cu.hbs): 27 registers
 * hold the next K block's codes and scales besides the decode's own (its SASS uses fewer: test/gemm-pdp.test.ts). */
export const SM90_PDP_DECODER_REGS = 88;
/** setmaxnreg.dec of the decoders of 'producer-b-register-a' (templates/gemm_sm90_pdr.cu.hbs): B rows only, 18
 * registers of the next K block instead of 27 (its SASS uses fewer: test/gemm-pdr.test.ts). */
export const SM90_PDR_DECODER_REGS = 72;
/** setmaxnreg.dec of the decoders of 'producer2-b-register-a' and 'producer2-b-register-a-consumer-copies' (two decoder
 * warpgroups, one B row per thread: 9
 * registers of the next K block): 2 x 128 x 200 + 2 x 128 x 56 = 65536. ptxas spills at 40 / 216 and 48 / 208
 * (bench/NOTES.md "Issue 16: two decoder warpgroups (h-pdr2)"; test/gemm-pdr2.test.ts reads its SASS). */
export const SM90_PDR2_DECODER_REGS = 56;
/** setmaxnreg.dec of the decoders of 'producer2-b-register-a-consumer-copies': the same decode as _pdr2 without the
 * copy issue (its SASS reaches R44), so 8 registers more for the consumers, which issue the copies: 2 x 128 x 208 +
 * 2 x 128 x 48 = 65536 (bench/NOTES.md "Issue 16: copies issued by a consumer lane (h-pdr3)"; at 56 / 200 the
 * consumers spill; test/gemm-pdr3.test.ts reads its SASS). */
export const SM90_PDR3_DECODER_REGS = 48;
/** The producer-decode values of tiling.decode. */
export type ProducerDecode = Exclude<GemmDecode, 'consumer'>;
/** Whether a tiling.decode value is one of the producer decodes (a decoder warpgroup; registerOperand 'a' only). */
export function isProducerDecode(d: string | undefined): d is ProducerDecode {
  return d !== 'consumer' && (GEMM_DECODES as readonly (string | undefined)[]).includes(d);
}
/** The register-A decodes with two decoder warpgroups, one B row per decoder thread: 'producer2-b-register-a' (lanes
 * 0 of decoder warps 0-2 issue the copies) and 'producer2-b-register-a-consumer-copies' (lanes 0 of consumer warps
 * 0-2 do). */
export type TwoDecoderDecode = 'producer2-b-register-a' | 'producer2-b-register-a-consumer-copies';
export function isTwoDecoderDecode(d: string | undefined): d is TwoDecoderDecode {
  return d === 'producer2-b-register-a' || d === 'producer2-b-register-a-consumer-copies';
}
/** Whether a tiling.decode value decodes A into the consumers' RS wgmma registers and B in the decoder warpgroup(s)
 * ('producer-b-register-a' with one decoder warpgroup, the two-decoder ones with two). */
export function isRegisterADecode(d: string | undefined): d is 'producer-b-register-a' | TwoDecoderDecode {
  return d === 'producer-b-register-a' || isTwoDecoderDecode(d);
}
/** Decoder threads of a producer decode: two warpgroups with the two-decoder decodes, one otherwise. */
export function sm90PdDecoderThreads(d: ProducerDecode): number {
  return isTwoDecoderDecode(d) ? 2 * SM90_PD_DECODER_THREADS : SM90_PD_DECODER_THREADS;
}
/** RS-form A fragment registers of a 'producer-b-register-a' consumer thread: two sets (the next K block's decoded
 * while the wgmmas read the current one) of 16 (64 rows x 64 K of bf16 over a warpgroup's 128 threads). */
const PDR_FRAGMENT_REGS = 2 * 16;
/** CTAs of a 'producer-cluster' cluster (along M; tiling.cluster [2, 1]), which share one B slab. */
export const SM90_PDC_CLUSTER = 2;
/** Threads of the producer-decode kernel's decoder warpgroup: one A row of a K block each. */
export const SM90_PD_DECODER_THREADS = 128;
/** Registers of a producer-decode consumer thread besides its accumulators: descriptors, ring state, epilogue. */
const PD_CONSUMER_OVERHEAD = 32;

/** Shared memory of the producer-decode kernel: the ring of bf16 A + B tiles (B only with 'producer-b-register-a'),
 * the raw stages (codes of A and B, 512-byte scale blocks per 64-wide K atom), mbarriers (raw full, with the
 * pipelined decodes raw empty too, tile full / empty), 1024 bytes of alignment slack. */
export function sm90PdSmemBytes(
  bm: number,
  bn: number,
  bk: number,
  rawStages: number,
  decode: ProducerDecode = 'producer',
): number {
  const atoms = bk / 64;
  // 'producer-cluster': a raw stage holds this CTA's half of the B slab (codes and scale blocks)
  const rawBn = decode === 'producer-cluster' ? bn / SM90_PDC_CLUSTER : bn;
  const raw = ((bm + rawBn) * bk) / 2 + (1 + Math.ceil(rawBn / 128)) * atoms * 512;
  const rawBarriers = (decode === 'producer' ? 1 : 2) * rawStages;
  const tileRows = isRegisterADecode(decode) ? bn : bm + bn;
  return (
    SM90_PD_TILE_STAGES * tileRows * 128 * atoms + rawStages * raw + 8 * (rawBarriers + 2 * SM90_PD_TILE_STAGES) + 1024
  );
}

/**
 * The layout of the producer-decode kernel (tiling.decode 'producer'): `consumers` warpgroups of bm / 64 /
 * consumers m64 slabs issue SS wgmma; one decoder warpgroup (thread 0 also issues TMA) dequantizes both operands.
 * The consumers hold only their accumulators (slabs * bn / 2) and a few registers, within the launch share (ptxas
 * allocates them there); setmaxnreg moves what the decoders give up to them.
 */
export function sm90PdLayout(
  tile: readonly [number, number, number],
  consumers: number,
  rawStages: number,
  decode: ProducerDecode = 'producer',
):
  | { layout: Sm90GemmLayout }
  | { field: 'stages' | 'consumers' | 'ctaTile[0]' | 'ctaTile[1]' | 'ctaTile[2]'; message: string } {
  const [bm, bn, bk] = tile;
  if (bm !== SM90_PD_DECODER_THREADS) {
    return {
      field: 'ctaTile[0]',
      message: `must be ${SM90_PD_DECODER_THREADS} with decode '${decode}' (${
        isRegisterADecode(decode)
          ? 'two m64 consumer slabs, one 128-row A scale block per tile'
          : 'one A row per decoder thread'
      }; got ${bm})`,
    };
  }
  const piped = decode !== 'producer';
  // the pipelined decoders hold one K block of their rows in registers: 9 per row (32 code bytes, 4 scale bytes)
  if (piped && bk !== 64) {
    return {
      field: 'ctaTile[2]',
      message:
        `must be 64 with decode '${decode}' (each decoder thread holds the next K block's codes and ` +
        `scales of its rows in registers, 9 per row of a 64-wide K block; got ${bk})`,
    };
  }
  // the decoders wait for K block j + 1's stage at the start of block j, and thread 0 refills a stage one K block
  // after its release: K block j is copied at the end of block j + 1 - stages, so stages >= 3 (2 would deadlock)
  if (piped && rawStages < 3) {
    return {
      field: 'stages',
      message:
        `must be at least 3 with decode '${decode}' (K block j + 1 is waited for while block j is decoded, ` +
        `and copied one K block after its stage's release; got ${rawStages})`,
    };
  }
  // 'producer-cluster': each CTA decodes half of the B slab, one row of it per decoder thread
  if (decode === 'producer-cluster' && bn !== SM90_PDC_CLUSTER * SM90_PD_DECODER_THREADS) {
    return {
      field: 'ctaTile[1]',
      message:
        `must be ${SM90_PDC_CLUSTER * SM90_PD_DECODER_THREADS} with decode 'producer-cluster' (each of the ` +
        `${SM90_PDC_CLUSTER} CTAs of a cluster decodes half of the B slab, one row per decoder thread; got ${bn})`,
    };
  }
  // the two-decoder decodes: one B row per decoder thread, 256 decoder threads
  if (isTwoDecoderDecode(decode) && bn !== 2 * SM90_PD_DECODER_THREADS) {
    return {
      field: 'ctaTile[1]',
      message:
        `must be ${2 * SM90_PD_DECODER_THREADS} with decode '${decode}' (its ${2 * SM90_PD_DECODER_THREADS} ` +
        `decoder threads decode one B row each; got ${bn})`,
    };
  }
  if ((decode === 'producer-pipelined' || decode === 'producer-b-register-a') && bn % SM90_PD_DECODER_THREADS !== 0) {
    return {
      field: 'ctaTile[1]',
      message:
        `must be 128 or 256 with decode '${decode}' (every decoder thread decodes one row of each ` +
        `128-row block of B; got ${bn})`,
    };
  }
  // the raw codes of a K block are one TMA box row of bk / 2 bytes with the 32/64/128-byte swizzle the decoders read
  if (bk !== 64 && bk !== 128 && bk !== 256) {
    return {
      field: 'ctaTile[2]',
      message:
        `must be 64, 128 or 256 with decode '${decode}' (a TMA swizzle of 32, 64 or 128 bytes per row; ` + `got ${bk})`,
    };
  }
  // 2 consumers of one m64 slab each: 384 threads, 168 registers at launch, which setmaxnreg can raise (one consumer
  // would be 256 threads with 255 registers at launch: nothing left to move, and setmaxnreg.inc cannot go past 255)
  if (consumers !== 2) {
    return {
      field: 'consumers',
      message: `must be 2 with decode '${decode}' (two m64 consumer warpgroups; got ${consumers})`,
    };
  }
  const slabs = bm / 64 / consumers;
  const decoderThreads = sm90PdDecoderThreads(decode);
  const threads = 128 * consumers + decoderThreads;
  // 'producer-b-register-a', 'producer2-b-register-a': the consumers also hold two A fragment sets
  const fragRegs = isRegisterADecode(decode) ? PDR_FRAGMENT_REGS : 0;
  const need = roundUp8((slabs * bn) / 2 + fragRegs + PD_CONSUMER_OVERHEAD);
  const smemBytes = sm90PdSmemBytes(bm, bn, bk, rawStages, decode);
  const decoderRegs =
    decode === 'producer2-b-register-a-consumer-copies'
      ? SM90_PDR3_DECODER_REGS
      : decode === 'producer2-b-register-a'
        ? SM90_PDR2_DECODER_REGS
        : decode === 'producer-b-register-a'
          ? SM90_PDR_DECODER_REGS
          : piped
            ? SM90_PDP_DECODER_REGS
            : SM90_PD_DECODER_REGS;
  let problem: { field: 'stages' | 'consumers'; message: string } | null = null;
  for (const ctasPerSm of [2, 1]) {
    const budget = Math.min(SM90_BLOCK_SMEM, Math.floor(SM90_SM_SMEM / ctasPerSm) - 1024);
    if (smemBytes > budget) {
      problem = {
        field: 'stages',
        message:
          `${rawStages} stages need ${smemBytes} B of shared memory, more than the ${budget} B an sm_90a block can ` +
          `have with decode '${decode}' (stages*((M+N)*K/2 + 512*(K/64)*(1 + ceil(N/128))) + ` +
          `${SM90_PD_TILE_STAGES}*${fragRegs ? 'N' : '(M+N)'}*K*2 + barriers); use fewer stages or a smaller tile`,
      };
      continue;
    }
    const warpsPerQuarter = Math.ceil(((threads / 32) * ctasPerSm) / 4);
    const launchRegs = Math.min(255, roundDown8(SM90_REGISTERS / 4 / (warpsPerQuarter * 32)));
    // what the decoder warpgroup(s) free, shared by the consumer warpgroups (setmaxnreg counts are multiples of 8)
    const freed = decoderThreads * (launchRegs - decoderRegs);
    const consumerRegs = Math.min(240, launchRegs + roundDown8(freed / (128 * consumers)));
    // the SS consumers fit the launch share; the fragment sets of 'producer-b-register-a' need the setmaxnreg share
    // (ptxas allocates the code after setmaxnreg.inc within it: its SASS reaches past the launch share)
    const share = fragRegs ? consumerRegs : launchRegs;
    if (need <= share && decoderRegs <= launchRegs) {
      const base = { bm, bn, bk, consumers, slabs, rawStages, smemBytes, ctasPerSm, threads, launchRegs };
      const roles = { registerOperand: 'a', xStages: 0, wSets: 0, decode } as const;
      const regs = { tileStages: SM90_PD_TILE_STAGES, consumerRegs, decoderRegs };
      return { layout: { ...base, ...roles, ...regs } };
    }
    problem = {
      field: 'consumers',
      message:
        `too few for a ${bm}x${bn}x${bk} tile with decode '${decode}': each consumer thread needs about ${need} ` +
        `registers (${(slabs * bn) / 2} accumulators + ${fragRegs ? `${fragRegs} A fragment registers + ` : ''}` +
        `${PD_CONSUMER_OVERHEAD}), more than the ${share} that ${threads * ctasPerSm} threads leave` +
        `${fragRegs ? ' after setmaxnreg' : ''}; use more consumer warpgroups or a narrower tile`,
    };
  }
  return problem!;
}
