// The named catalog: every kernel that Quartet II (METHOD §3) and its baselines need, by name. `qgen emit`
// without --spec emits `catalogFor(arch)`. A kernel keeps its name on every arch; where a per-arch rule forbids the
// generic spec (GEMM tiling limits), ARCH_VARIANTS gives that arch's version under the same name. Every name follows
// the naming grammar of dsl/naming.ts (docs/naming.md): it is derived from the spec, and test/catalog.test.ts fails
// when a spec changes without its name.
import type { Arch, KernelSpec, QuantizeSpec } from './types.ts';
import { amax, dequantize, gemm, hadamard, MXFP4_GROUP, quantize } from './builders.ts';
import { CEILING_EDEN, E4M3_MAX } from './constants.ts';
import { assertValid } from '../validate/validate.ts';

/** Quartet II's tensor scale: one pass over the input, ceiling 448 (NUMERICS §5.1 "one-pass"). */
const ONE_PASS = { tensorScale: 'one-pass', ceiling: E4M3_MAX } as const;
/** Quartet II's backward quantizer: 128-point rotation, RTN to s_eden, per-16 stochastic scale correction (§5.6). */
const MS_EDEN = { rounding: 'ms-eden', hadamard: 128, correction: 'per-16', ...ONE_PASS } as const;

/**
 * MS-EDEN from a staged transposed tile (E^T, the requants): 128-thread blocks compiled for 6 per SM (at most 80
 * registers; ptxas 13.0 fits pass A in 80 without spills on sm_90a, sm_100a and sm_120a with the tile loop state
 * re-read per iteration, lower/lower.ts loopState), 24 resident warps per SM instead of the 16 that the default
 * 256 x 2 gives (99-106 registers there).
 */
const EDEN_TILE_TILING = { threadsPerBlock: 128, minBlocksPerSm: 6 } as const;
/**
 * MS-EDEN from a row-major bf16 input (E): 128-thread blocks compiled for 6 per SM (at most 80 registers, 24 warps
 * per SM instead of 16; ptxas 13.0 fits pass A in 80 without spills on sm_90a, sm_100a and sm_120a with the loop
 * state re-read per iteration and the per-16 finiteness tested before the magnitude path, runtime/qgen_quantize.cuh
 * qgen_ms_eden_group16 kFiniteFirst; 5 per SM, 96 registers, before that).
 */
const EDEN_ROW_TILING = { threadsPerBlock: 128, minBlocksPerSm: 6 } as const;

/** Quartet II's six quantizers (METHOD §3): 4/6 on X and W along `in` (no rotation); MS-EDEN on E, E^T and the
 * requantized transposes of the forward Wq, Xq. */
const QUARTET2: readonly QuantizeSpec[] = [
  quantize('quartet2_x_46', {
    doc: 'Quartet II forward X: 4/6 (candidates 6 and 4), one-pass tensor scale, C = 448',
    rounding: 'four-six',
    ...ONE_PASS,
  }),
  quantize('quartet2_w_46', {
    doc: 'Quartet II forward W: 4/6 (candidates 6 and 4), one-pass tensor scale, C = 448',
    rounding: 'four-six',
    ...ONE_PASS,
  }),
  quantize('quartet2_e_mseden_rht128', {
    doc: 'Quartet II backward E (dX GEMM): RHT-128 + MS-EDEN per-16, one-pass, C = 448',
    ...MS_EDEN,
    tiling: EDEN_ROW_TILING,
  }),
  quantize('quartet2_et_mseden_rht128', {
    doc: 'Quartet II backward E^T (dW GEMM): transposed bf16 input, RHT-128 + MS-EDEN per-16, one-pass',
    ...MS_EDEN,
    transposedInput: true,
    tiling: EDEN_TILE_TILING,
  }),
  quantize('quartet2_wt_rq_mseden_rht128', {
    doc: 'Quartet II requant Wq -> RHT-128 + MS-EDEN of Wq^T (dX GEMM operand), from the forward NVFP4 W',
    ...MS_EDEN,
    input: 'nvfp4',
    transposedInput: true,
    tiling: EDEN_TILE_TILING,
  }),
  quantize('quartet2_xt_rq_mseden_rht128', {
    doc: 'Quartet II requant Xq -> RHT-128 + MS-EDEN of Xq^T (dW GEMM operand), from the forward NVFP4 X',
    ...MS_EDEN,
    input: 'nvfp4',
    transposedInput: true,
    tiling: EDEN_TILE_TILING,
  }),
];

/** The same quantizer, also writing the bf16 plane of NUMERICS §6.6 (the two-pass GEMM's operand, §6.4); its name
 * gains the `plane` token (dsl/naming.ts); dsl/recipes.ts planeVariant finds it by spec. */
function withPlane(spec: QuantizeSpec): QuantizeSpec {
  return {
    ...structuredClone(spec),
    name: `${spec.name}_plane`,
    doc: `${spec.doc}; also writes the bf16 plane`,
    outputs: 'nvfp4+bf16-plane',
  };
}

/** The same quantizer, also writing the dequantized bf16 plane from pass A (NUMERICS §6.7: tensor scale included, so
 * the two-pass GEMM runs on it with alpha = 1); its name gains the `dqplane` token; dsl/recipes.ts
 * dequantizedPlaneVariant finds it by spec. */
function withDequantizedPlane(spec: QuantizeSpec): QuantizeSpec {
  return {
    ...structuredClone(spec),
    name: `${spec.name}_dqplane`,
    doc: `${spec.doc}; also writes the dequantized bf16 plane (pass A)`,
    outputs: 'nvfp4+dequantized-plane',
  };
}

export const CATALOG: readonly KernelSpec[] = [
  ...QUARTET2,
  // The same six, also writing the bf16 plane for the two-pass GEMM (NUMERICS §6.4, §6.6).
  ...QUARTET2.map(withPlane),
  // The same six, also writing the dequantized plane in pass A (NUMERICS §6.7).
  ...QUARTET2.map(withDequantizedPlane),
  // The paper's formulas (computed tensor scale, ceiling 256) for comparison with the one-pass kernels; the 4/6 one
  // is the X and W quantizer of the NVIDIA+4/6 recipe.
  quantize('nvidia46_x_46', {
    doc: "4/6 with the paper's computed tensor scale amax/(6*256) (two reads of the input)",
    rounding: 'four-six',
    tensorScale: 'computed',
    ceiling: CEILING_EDEN,
  }),
  quantize('quartet2_e_mseden_rht128_computed_c256', {
    doc: "RHT-128 + MS-EDEN with the paper's computed tensor scale amax/(s*256) (two reads of the input)",
    ...MS_EDEN,
    tensorScale: 'computed',
    ceiling: CEILING_EDEN,
  }),
  // NVIDIA recipe (METHOD §3 "Baselines").
  quantize('nvidia_x_rtn', {
    doc: 'NVIDIA recipe forward X: RTN 1x16, target 6, computed tensor scale, C = 448',
    rounding: 'rtn',
    tensorScale: 'computed',
    ceiling: E4M3_MAX,
  }),
  quantize('nvidia_w_rtn_16x16', {
    doc: 'NVIDIA recipe forward W: RTN with 16x16 square blocks (W and W^T share scales), C = 448',
    rounding: 'rtn',
    block: '16x16',
    tensorScale: 'computed',
    ceiling: E4M3_MAX,
  }),
  quantize('nvidia_e_sr', {
    doc: 'NVIDIA recipe backward E (dX GEMM): SR with target V = 6*16/17, C = 448',
    rounding: 'sr',
    tensorScale: 'computed',
    ceiling: E4M3_MAX,
  }),
  quantize('nvidia_et_sr_rht16', {
    doc: 'NVIDIA recipe backward E^T (dW GEMM): RHT-16 + SR, transposed bf16 input',
    rounding: 'sr',
    hadamard: 16,
    transposedInput: true,
    tensorScale: 'computed',
    ceiling: E4M3_MAX,
  }),
  quantize('nvidia_xt_rtn_rht16', {
    doc: 'NVIDIA recipe backward X^T (dW GEMM): RHT-16 + RTN, transposed bf16 input',
    rounding: 'rtn',
    hadamard: 16,
    transposedInput: true,
    tensorScale: 'computed',
    ceiling: E4M3_MAX,
  }),
  // NVIDIA+4/6 (METHOD §3: 4/6 added to the NVIDIA recipe's forward). 4/6 is defined on 1x16 groups, so W^T
  // (the dX GEMM operand) cannot reuse the forward Wq as 16x16 RTN does: it is quantized separately, from bf16 W.
  quantize('nvidia46_wt_46', {
    doc: "NVIDIA+4/6 W^T (dX GEMM operand): 4/6 of the transposed bf16 W, the paper's computed tensor scale",
    rounding: 'four-six',
    tensorScale: 'computed',
    ceiling: CEILING_EDEN,
    transposedInput: true,
  }),
  // TetraJet-v2 (GPU-feasible form): SR after a 32-point rotation on all backward operands.
  quantize('tetrajet2_e_sr_rht32', {
    doc: 'TetraJet-v2 backward E (dX GEMM): RHT-32 + SR, C = 448',
    rounding: 'sr',
    hadamard: 32,
    tensorScale: 'computed',
    ceiling: E4M3_MAX,
  }),
  quantize('tetrajet2_et_sr_rht32', {
    doc: 'TetraJet-v2 backward E^T (dW GEMM): transposed bf16 input, RHT-32 + SR, C = 448',
    rounding: 'sr',
    hadamard: 32,
    transposedInput: true,
    tensorScale: 'computed',
    ceiling: E4M3_MAX,
  }),
  quantize('tetrajet2_wt_rq_sr_rht32', {
    doc: 'TetraJet-v2 requant of a forward NVFP4 tensor (Wq, and Xq) to its transpose: RHT-32 + SR',
    rounding: 'sr',
    hadamard: 32,
    input: 'nvfp4',
    transposedInput: true,
    tensorScale: 'computed',
    ceiling: E4M3_MAX,
  }),
  // MXFP4 for comparison (NUMERICS §5.8).
  quantize('mxfp4_x_rtn', {
    doc: 'MXFP4: RTN, 32-element groups with UE8M0 power-of-two scales, no tensor scale',
    rounding: 'rtn',
    scaleGroup: MXFP4_GROUP,
    tensorScale: 'none',
  }),
  // Support kernels.
  dequantize('dequantize_nvfp4_bf16', { doc: 'NVFP4 (128x4 scales) -> bf16', output: 'bf16' }),
  dequantize('dequantize_nvfp4_f32', { doc: 'NVFP4 (128x4 scales) -> fp32', output: 'f32' }),
  hadamard('hadamard_rht128', 128, {
    doc: 'randomized Hadamard transform on 128-chunks along K, bf16 -> bf16 (NUMERICS §4)',
  }),
  amax('amax_bf16', { doc: 'amax over the finite elements of a bf16 tensor (NUMERICS §1.4), fp32 result' }),
  // NVFP4 x NVFP4 GEMM, bf16 out; the tiling here is the sm_90a one (wgmma on exactly dequantized bf16, PTX-FACTS §6).
  gemm(
    'gemm_nvfp4_bf16',
    { ctaTile: [128, 128, 64], consumers: 2, stages: 8, cluster: [1, 1], tileOrder: 'swizzle-8' },
    { doc: 'C = alpha * A . B^T, both NVFP4 K-major, bf16 out, alpha = tA * tB', output: 'bf16' },
  ),
];

/** Per-arch replacements (same name) for catalog entries that a per-arch rule forbids there. */
export const ARCH_VARIANTS: Readonly<Record<Arch, readonly KernelSpec[]>> = {
  sm_90a: [],
  // tcgen05: M = 128, K a multiple of 256 (one 128-byte swizzle row of FP4); one epilogue warpgroup (PTX-FACTS §4).
  sm_100a: [
    gemm(
      'gemm_nvfp4_bf16',
      { ctaTile: [128, 256, 256], consumers: 1, stages: 4, cluster: [1, 1], tileOrder: 'swizzle-8' },
      { doc: 'C = alpha * A . B^T, both NVFP4 K-major, bf16 out (tcgen05, 128x256x256 tile)', output: 'bf16' },
    ),
  ],
  // mma.sync m16n8k64: 101376 B of shared memory and accumulators in registers: 128x128 tile, 4 warps (PTX-FACTS §5).
  sm_120a: [
    gemm(
      'gemm_nvfp4_bf16',
      { ctaTile: [128, 128, 128], consumers: 4, stages: 4, cluster: [1, 1], tileOrder: 'swizzle-8' },
      { doc: 'C = alpha * A . B^T, both NVFP4 K-major, bf16 out (mma.sync, 128x128x128 tile)', output: 'bf16' },
    ),
  ],
};

/**
 * Per-arch additions: other tilings of the same GEMM, kept as data so that benchmarks (and a later autotuner) can
 * pick per shape. bench/results/archive/gemm.md records which wins where on the H100.
 */
export const ARCH_EXTRAS: Readonly<Record<Arch, readonly KernelSpec[]>> = {
  sm_90a: [
    gemm(
      'gemm_nvfp4_bf16_128x128x128',
      { ctaTile: [128, 128, 128], consumers: 2, stages: 6, cluster: [1, 1], tileOrder: 'swizzle-8' },
      { doc: 'the NVFP4 GEMM with a 128x128x128 tile (half the barrier rounds per FLOP)', output: 'bf16' },
    ),
    gemm(
      'gemm_nvfp4_bf16_64x64x128',
      { ctaTile: [64, 64, 128], consumers: 1, stages: 6, cluster: [1, 1], tileOrder: 'swizzle-8' },
      { doc: 'the NVFP4 GEMM with a 64x64x128 tile (skinny m)', output: 'bf16' },
    ),
    gemm(
      'gemm_nvfp4_bf16_64x32x256',
      { ctaTile: [64, 32, 256], consumers: 1, stages: 4, cluster: [1, 1], tileOrder: 'swizzle-8' },
      { doc: 'the NVFP4 GEMM with a 64x32x256 tile (skinny m: the most CTAs streaming B)', output: 'bf16' },
    ),
    // Skinny m (bench/NOTES.md "Skinny m on sm_90a: design"): operands exchanged in the wgmma, B rows streamed by
    // 64-row tiles (n / 64 CTAs), each weight decoded once; the A tile is the wgmma N (16 or 64 rows). 8 stages:
    // ~37 KB of B in flight per SM, twice what the SM's share of DRAM bandwidth needs; a point of the tuning space.
    gemm(
      'gemm_nvfp4_bf16_16x64x128_swapab',
      {
        ctaTile: [16, 64, 128],
        consumers: 1,
        stages: 8,
        cluster: [1, 1],
        tileOrder: 'swizzle-8',
        registerOperand: 'b',
      },
      { doc: 'the NVFP4 GEMM for m <= 16: C^T = B . A^T on wgmma m64n16, weights decoded once', output: 'bf16' },
    ),
    gemm(
      'gemm_nvfp4_bf16_64x64x128_swapab',
      {
        ctaTile: [64, 64, 128],
        consumers: 1,
        stages: 8,
        cluster: [1, 1],
        tileOrder: 'swizzle-8',
        registerOperand: 'b',
      },
      { doc: 'the NVFP4 GEMM for m <= 64: C^T = B . A^T on wgmma m64n64, weights decoded once', output: 'bf16' },
    ),
    // The same with K split over two consumer warpgroups inside the CTA (kb mod 2, NUMERICS §6.2): two independent
    // decode -> wgmma chains per SM (bench/NOTES.md "Skinny m: K split inside the CTA"). Low bits may differ from the
    // c = 1 kernels', within the bound; the torch package routes to them unless QGEN_SKINNY_SPLIT=0.
    gemm(
      'gemm_nvfp4_bf16_16x64x128_swapab_c2',
      {
        ctaTile: [16, 64, 128],
        consumers: 2,
        stages: 8,
        cluster: [1, 1],
        tileOrder: 'swizzle-8',
        registerOperand: 'b',
      },
      { doc: 'the m <= 16 swapped NVFP4 GEMM, K split over 2 consumer warpgroups (NUMERICS §6.2)', output: 'bf16' },
    ),
    gemm(
      'gemm_nvfp4_bf16_64x64x128_swapab_c2',
      {
        ctaTile: [64, 64, 128],
        consumers: 2,
        stages: 8,
        cluster: [1, 1],
        tileOrder: 'swizzle-8',
        registerOperand: 'b',
      },
      { doc: 'the m <= 64 swapped NVFP4 GEMM, K split over 2 consumer warpgroups (NUMERICS §6.2)', output: 'bf16' },
    ),
    // The same two with two W fragment sets per consumer (decode overlapped with the consumer's own wgmmas too): the
    // register estimate refuses them, ptxas fits them in the 128 registers of 416 threads (124 / 128, no spills).
    gemm(
      'gemm_nvfp4_bf16_16x64x128_swapab_c2_f2',
      {
        ctaTile: [16, 64, 128],
        consumers: 2,
        stages: 8,
        cluster: [1, 1],
        tileOrder: 'swizzle-8',
        registerOperand: 'b',
        fragmentSets: 2,
      },
      { doc: 'the m <= 16 K-split swapped NVFP4 GEMM with two W fragment sets per consumer', output: 'bf16' },
    ),
    gemm(
      'gemm_nvfp4_bf16_64x64x128_swapab_c2_f2',
      {
        ctaTile: [64, 64, 128],
        consumers: 2,
        stages: 8,
        cluster: [1, 1],
        tileOrder: 'swizzle-8',
        registerOperand: 'b',
        fragmentSets: 2,
      },
      { doc: 'the m <= 64 K-split swapped NVFP4 GEMM with two W fragment sets per consumer', output: 'bf16' },
    ),
    // Four consumers (672 threads: 80 registers each; the estimate refuses even one fragment set, ptxas fits it in 80
    // without spills): four chains of 16 K blocks each at n = k = 8192.
    gemm(
      'gemm_nvfp4_bf16_16x64x128_swapab_c4_f1',
      {
        ctaTile: [16, 64, 128],
        consumers: 4,
        stages: 8,
        cluster: [1, 1],
        tileOrder: 'swizzle-8',
        registerOperand: 'b',
        fragmentSets: 1,
      },
      { doc: 'the m <= 16 swapped NVFP4 GEMM, K split over 4 consumer warpgroups (NUMERICS §6.2)', output: 'bf16' },
    ),
    // Producer-side decode (bench/NOTES.md "Issue 16"): a decoder warpgroup dequantizes both operands into a ring of
    // bf16 tiles; two consumer warpgroups of 64x256 (128 accumulators each) issue SS wgmma only.
    gemm(
      'gemm_nvfp4_bf16_128x256x64_pd',
      {
        ctaTile: [128, 256, 64],
        consumers: 2,
        stages: 4,
        cluster: [1, 1],
        tileOrder: 'swizzle-8',
        decode: 'producer',
      },
      { doc: 'the NVFP4 GEMM with producer-side decode: 128x256 tile, SS wgmma only in the consumers', output: 'bf16' },
    ),
    // The same with the pipelined decoder (bench/NOTES.md "Issue 16: latency-tolerant decoder (h-pd3)"): codes and
    // scales loaded into registers a K block ahead of their decode; 6 raw stages (thread 0 refills a stage one K block
    // after it is released).
    gemm(
      'gemm_nvfp4_bf16_128x256x64_pdp',
      {
        ctaTile: [128, 256, 64],
        consumers: 2,
        stages: 6,
        cluster: [1, 1],
        tileOrder: 'swizzle-8',
        decode: 'producer-pipelined',
      },
      {
        doc: 'the NVFP4 GEMM with pipelined producer-side decode (loads a K block ahead): 128x256 tile, SS wgmma only',
        output: 'bf16',
      },
    ),
    // The pipelined decoder in 2-CTA clusters along M (bench/NOTES.md "Issue 16: cluster-shared B decode (h-pd4)"):
    // the two CTAs share one 256-row B slab, each decodes its A slab and half of the B slab into both CTAs' tiles;
    // 8 raw stages (a raw stage holds half the B codes, so two more fit than with 'producer-pipelined').
    gemm(
      'gemm_nvfp4_bf16_128x256x64_pdc',
      {
        ctaTile: [128, 256, 64],
        consumers: 2,
        stages: 8,
        cluster: [2, 1],
        tileOrder: 'swizzle-8',
        decode: 'producer-cluster',
      },
      {
        doc: 'the NVFP4 GEMM with cluster-shared B decode (2-CTA clusters along M, half a B slab each): 128x256 tile',
        output: 'bf16',
      },
    ),
    // The pipelined decoder for B only; each consumer warpgroup decodes its A slab into RS wgmma fragment registers
    // (bench/NOTES.md "Issue 16: A decoded in consumer registers (h-pdr)"): no bf16 A in shared memory; 8 raw stages
    // (the ring holds B tiles only; a raw stage is held until the consumers decoded its A, a K block before its
    // wgmmas).
    gemm(
      'gemm_nvfp4_bf16_128x256x64_pdr',
      {
        ctaTile: [128, 256, 64],
        consumers: 2,
        stages: 8,
        cluster: [1, 1],
        tileOrder: 'swizzle-8',
        decode: 'producer-b-register-a',
      },
      {
        doc: 'the NVFP4 GEMM with producer-side B decode, A decoded into RS wgmma registers by the consumers: 128x256',
        output: 'bf16',
      },
    ),
    // _pdr with two decoder warpgroups, one B row per decoder thread (bench/NOTES.md "Issue 16: two decoder
    // warpgroups (h-pdr2)"): two independent decode chains per scheduler instead of one; setmaxnreg 40 / 216.
    gemm(
      'gemm_nvfp4_bf16_128x256x64_pdr2',
      {
        ctaTile: [128, 256, 64],
        consumers: 2,
        stages: 8,
        cluster: [1, 1],
        tileOrder: 'swizzle-8',
        decode: 'producer2-b-register-a',
      },
      {
        doc: 'the _pdr GEMM with two B decoder warpgroups (one B row per decoder thread): 128x256',
        output: 'bf16',
      },
    ),
    // _pdr2 with the copies issued by lanes 0 of consumer warps 0-2 (bench/NOTES.md "Issue 16: copies issued by a
    // consumer lane (h-pdr3)"): every decoder warp decodes only, so no issuer warp paces tile_full.
    gemm(
      'gemm_nvfp4_bf16_128x256x64_pdr3',
      {
        ctaTile: [128, 256, 64],
        consumers: 2,
        stages: 8,
        cluster: [1, 1],
        tileOrder: 'swizzle-8',
        decode: 'producer2-b-register-a-consumer-copies',
      },
      {
        doc: 'the _pdr2 GEMM with the TMA copies issued by consumer lanes: 128x256',
        output: 'bf16',
      },
    ),
    gemm(
      'gemm_nvfp4_bf16_pd',
      {
        ctaTile: [128, 128, 64],
        consumers: 2,
        stages: 6,
        cluster: [1, 1],
        tileOrder: 'swizzle-8',
        decode: 'producer',
      },
      { doc: 'the NVFP4 GEMM with producer-side decode, 128x128 tile (twice the decode per FLOP)', output: 'bf16' },
    ),
    gemm(
      'gemm_nvfp4_f32',
      { ctaTile: [128, 128, 64], consumers: 2, stages: 8, cluster: [1, 1], tileOrder: 'swizzle-8' },
      { doc: 'C = alpha * A . B^T, both NVFP4 K-major, fp32 out', output: 'f32' },
    ),
  ],
  sm_100a: [],
  sm_120a: [],
};

/** The catalog for one arch: every entry, replaced by its arch variant where there is one, then the arch's extras. Always valid on `arch`. */
export function catalogFor(arch: Arch): KernelSpec[] {
  const variants = new Map(ARCH_VARIANTS[arch].map((s) => [s.name, s]));
  const specs = [...CATALOG.map((s) => variants.get(s.name) ?? s), ...ARCH_EXTRAS[arch]];
  assertValid(specs, arch, `catalog (${arch})`);
  return specs.map((s) => structuredClone(s));
}

/** A catalog kernel by name on `arch`, or undefined. */
export function catalogSpec(name: string, arch: Arch): KernelSpec | undefined {
  return catalogFor(arch).find((s) => s.name === name);
}
