// Linear-layer recipes: which catalog quantizer feeds each operand of the three GEMMs of one linear layer
// (METHOD §3). Plain data, like kernel specs; `qgen vendor` renders them into the PyTorch package, and the
// kernel set it vendors is the union of what they name. Y = X W^T; X [tokens, in], W [out, in], E = dL/dY.
//   forward: Y  = GEMM(Q(X) [tokens, in], Q(W) [out, in])           (reduction over in)
//   dX:      dX = GEMM(Q(E) [tokens, out], Q(W^T) [in, out])        (reduction over out)
//   dW:      dW = GEMM(Q(E^T) [out, tokens], Q(X^T) [in, tokens])   (reduction over tokens)
import type { Arch, KernelSpec, QuantizeOutputs, QuantizeSpec } from './types.ts';
import { writesPlane } from './types.ts';
import { catalogFor } from './catalog.ts';

/** Where a backward operand that is the transpose of a forward tensor (W^T, X^T) comes from. */
export type TransposeSource =
  /** Requantized in the backward pass from the saved forward NVFP4 tensor (NUMERICS §5.9): `kernel` has input 'nvfp4'. */
  | { from: 'requant'; kernel: string }
  /** The forward tensor itself, transposed: exact for 16x16 square blocks, whose scales the transpose shares (§5.7). */
  | { from: 'transpose-16x16' }
  /** Quantized in the forward pass from the bf16 tensor by a transposed-input kernel and saved (NVIDIA's X^T). */
  | { from: 'forward-bf16'; kernel: string };

export interface LinearRecipe {
  name: string;
  doc: string;
  forward: { x: string; w: string };
  dx: { e: string; wt: TransposeSource };
  dw: { et: string; xt: TransposeSource };
}

export const RECIPES: readonly LinearRecipe[] = [
  {
    name: 'quartet2',
    doc: 'Quartet II: forward 4/6 on X and W; backward RHT-128 + MS-EDEN on E, E^T and requantized Wq^T, Xq^T',
    forward: { x: 'quartet2_x_46', w: 'quartet2_w_46' },
    dx: { e: 'quartet2_e_mseden_rht128', wt: { from: 'requant', kernel: 'quartet2_wt_rq_mseden_rht128' } },
    dw: { et: 'quartet2_et_mseden_rht128', xt: { from: 'requant', kernel: 'quartet2_xt_rq_mseden_rht128' } },
  },
  {
    name: 'nvidia',
    doc: 'NVIDIA recipe: forward X 1x16 RTN, W 16x16 RTN (reused transposed for dX); dX = SR(E); dW = SR(RHT16(E^T)) . RTN(RHT16(X^T))',
    forward: { x: 'nvidia_x_rtn', w: 'nvidia_w_rtn_16x16' },
    dx: { e: 'nvidia_e_sr', wt: { from: 'transpose-16x16' } },
    dw: { et: 'nvidia_et_sr_rht16', xt: { from: 'forward-bf16', kernel: 'nvidia_xt_rtn_rht16' } },
  },
  {
    name: 'nvidia+4/6',
    doc: 'NVIDIA recipe with 4/6 in the forward (X, W and the W^T operand of dX, 1x16 groups, computed tensor scale, C = 256)',
    forward: { x: 'nvidia46_x_46', w: 'nvidia46_x_46' },
    dx: { e: 'nvidia_e_sr', wt: { from: 'forward-bf16', kernel: 'nvidia46_wt_46' } },
    dw: { et: 'nvidia_et_sr_rht16', xt: { from: 'forward-bf16', kernel: 'nvidia_xt_rtn_rht16' } },
  },
  {
    name: 'tetrajet-v2',
    doc: 'TetraJet-v2 (GPU-feasible form): forward 1x16 RTN; backward RHT-32 + SR on E, E^T and requantized Wq^T, Xq^T',
    forward: { x: 'nvidia_x_rtn', w: 'nvidia_x_rtn' },
    dx: { e: 'tetrajet2_e_sr_rht32', wt: { from: 'requant', kernel: 'tetrajet2_wt_rq_sr_rht32' } },
    dw: { et: 'tetrajet2_et_sr_rht32', xt: { from: 'requant', kernel: 'tetrajet2_wt_rq_sr_rht32' } },
  },
];

/** The GEMM every recipe uses, and the per-arch choice of tiling by m (first rule whose maxM >= m wins). */
export const GEMM_CHOICE: Readonly<Record<Arch, readonly { maxM: number | null; kernel: string }[]>> = {
  // bench/results/archive/gemm.md (H100): the 128x128x128 tiling wins on every large shape; at m <= 64 the
  // operand-swapped tilings (bench/NOTES.md "Skinny m on sm_90a: design"; predicted 14-28 us against 88-98 us for
  // the 64x64 one, NOT yet measured), the 64x64 one for 64 < m <= 128.
  sm_90a: [
    { maxM: 16, kernel: 'gemm_nvfp4_bf16_16x64x128_swapab' },
    { maxM: 64, kernel: 'gemm_nvfp4_bf16_64x64x128_swapab' },
    { maxM: 128, kernel: 'gemm_nvfp4_bf16_64x64x128' },
    { maxM: null, kernel: 'gemm_nvfp4_bf16_128x128x128' },
  ],
  sm_100a: [{ maxM: null, kernel: 'gemm_nvfp4_bf16' }],
  sm_120a: [{ maxM: null, kernel: 'gemm_nvfp4_bf16' }],
};

/**
 * The K-split variants of GEMM_CHOICE's operand-swapped tilings (NUMERICS §6.2 "K split inside the CTA"): vendored,
 * and used by the package in place of the kernel they are keyed by unless QGEN_SKINNY_SPLIT=0 (NUMERICS §6.5; a
 * tuning table may also pick them). Default since the H100 measured them faster (bench/NOTES.md, K split measured).
 */
export const GEMM_SPLIT_CHOICE: Readonly<Record<Arch, Readonly<Record<string, string>>>> = {
  sm_90a: {
    gemm_nvfp4_bf16_16x64x128_swapab: 'gemm_nvfp4_bf16_16x64x128_swapab_c2',
    gemm_nvfp4_bf16_64x64x128_swapab: 'gemm_nvfp4_bf16_64x64x128_swapab_c2',
  },
  sm_100a: {},
  sm_120a: {},
};

/** Support kernels the package vendors besides the recipes' (tests dequantize with them). */
export const SUPPORT_KERNELS: readonly string[] = ['dequantize_nvfp4_bf16'];

/** Every kernel a recipe names, in first-use order. */
export function recipeKernels(recipe: LinearRecipe): string[] {
  const named = [recipe.forward.x, recipe.forward.w, recipe.dx.e, recipe.dw.et];
  for (const src of [recipe.dx.wt, recipe.dw.xt]) if (src.from !== 'transpose-16x16') named.push(src.kernel);
  return [...new Set(named)];
}

/** A quantizer's spec without what does not change its codes and scales (name, doc, outputs), as JSON. */
function numericsKey(spec: QuantizeSpec): string {
  const { name: _name, doc: _doc, outputs: _outputs, ...rest } = spec;
  return JSON.stringify(rest);
}

/**
 * The catalog quantizer on `arch` that computes what `name` computes and also writes a bf16 plane of the given kind
 * (NUMERICS §6.6 'nvfp4+bf16-plane', §6.7 'nvfp4+dequantized-plane'), or null: found by spec (every numeric and
 * tiling field equal), so the pair cannot drift apart. The torch layer's two-pass path quantizes with it and skips
 * the separate dequantize pass.
 */
function planeTwin(arch: Arch, name: string, outputs: QuantizeOutputs, token: string): string | null {
  const catalog = catalogFor(arch);
  const spec = catalog.find((s) => s.name === name);
  if (!spec || spec.kind !== 'quantize' || writesPlane(spec.outputs)) return null;
  const key = numericsKey(spec);
  const twins = catalog.filter((s) => s.kind === 'quantize' && s.outputs === outputs && numericsKey(s) === key);
  // Specs shared by two roles (X and W, W^T and X^T) have a twin each: prefer the one named after this kernel.
  const found = twins.find((s) => s.name === `${name}_${token}`) ?? twins[0];
  return found ? found.name : null;
}

/** The twin of quantizer `name` that also writes the bf16 plane without tensor scale (NUMERICS §6.6), or null. */
export function planeVariant(arch: Arch, name: string): string | null {
  return planeTwin(arch, name, 'nvfp4+bf16-plane', 'plane');
}

/** The twin of quantizer `name` that also writes the dequantized plane from pass A (NUMERICS §6.7), or null. */
export function dequantizedPlaneVariant(arch: Arch, name: string): string | null {
  return planeTwin(arch, name, 'nvfp4+dequantized-plane', 'dqplane');
}

/** The kernel names `qgen vendor` emits for `arch`: recipes (and their plane variants), GEMM tilings, support kernels. */
export function vendoredKernelNames(arch: Arch, recipes: readonly LinearRecipe[] = RECIPES): string[] {
  const quantizers = recipes.flatMap(recipeKernels);
  const planes = quantizers
    .flatMap((n) => [planeVariant(arch, n), dequantizedPlaneVariant(arch, n)])
    .filter((n): n is string => n !== null);
  const gemms = GEMM_CHOICE[arch].map((g) => g.kernel);
  return [
    ...new Set([...quantizers, ...planes, ...gemms, ...Object.values(GEMM_SPLIT_CHOICE[arch]), ...SUPPORT_KERNELS]),
  ];
}

/**
 * Every problem with the recipes on `arch` (empty when valid): each kernel exists and is an NVFP4 quantizer with 128x4
 * scales in the right role (input format, transposition), 16x16 reuse needs a 16x16 forward W, and the two operands of
 * each backward GEMM rotate along K with the same Hadamard size (their rotations cancel only then).
 */
export function recipeProblems(arch: Arch, recipes: readonly LinearRecipe[] = RECIPES): string[] {
  const catalog = new Map<string, KernelSpec>(catalogFor(arch).map((s) => [s.name, s]));
  const problems: string[] = [];
  const names = new Set<string>();
  for (const r of recipes) {
    if (names.has(r.name)) problems.push(`recipes: duplicate name '${r.name}'`);
    names.add(r.name);
    const at = (role: string) => `recipe '${r.name}' ${role}`;
    const quantizer = (
      role: string,
      name: string,
      input: 'bf16' | 'nvfp4',
      transposed: boolean,
    ): QuantizeSpec | null => {
      const spec = catalog.get(name);
      if (!spec) {
        problems.push(`${at(role)}: no catalog kernel '${name}' on ${arch}`);
        return null;
      }
      if (spec.kind !== 'quantize') {
        problems.push(`${at(role)}: '${name}' is a ${spec.kind} kernel; allowed: a quantize kernel`);
        return null;
      }
      if (spec.scaleGroup.size !== 16 || spec.scaleLayout !== '128x4') {
        problems.push(`${at(role)}: '${name}' must be NVFP4 with 128x4 scales (the GEMM's operand format)`);
      }
      if (spec.input !== input) problems.push(`${at(role)}: '${name}' has input '${spec.input}'; allowed: '${input}'`);
      if (spec.transposedInput !== transposed) {
        problems.push(`${at(role)}: '${name}' has transposedInput ${spec.transposedInput}; allowed: ${transposed}`);
      }
      return spec;
    };
    const source = (
      role: string,
      src: TransposeSource,
      w: QuantizeSpec | null,
    ): QuantizeSpec | 'same-as-forward' | null => {
      if (src.from === 'requant') return quantizer(role, src.kernel, 'nvfp4', true);
      if (src.from === 'forward-bf16') return quantizer(role, src.kernel, 'bf16', true);
      if (role !== 'dx.wt') problems.push(`${at(role)}: 'transpose-16x16' is only for W^T`);
      if (w && w.block !== '16x16')
        problems.push(`${at(role)}: 'transpose-16x16' needs a forward W with 16x16 blocks; '${w.name}' has ${w.block}`);
      return 'same-as-forward';
    };
    const x = quantizer('forward.x', r.forward.x, 'bf16', false);
    const w = quantizer('forward.w', r.forward.w, 'bf16', false);
    for (const [role, spec] of [
      ['forward.x', x],
      ['forward.w', w],
    ] as const) {
      if (spec && spec.hadamard !== null)
        problems.push(`${at(role)}: '${spec.name}' rotates; the forward pass has no rotation`);
    }
    const pairs: [string, QuantizeSpec | null, string, QuantizeSpec | 'same-as-forward' | null][] = [
      ['dx.e', quantizer('dx.e', r.dx.e, 'bf16', false), 'dx.wt', source('dx.wt', r.dx.wt, w)],
      ['dw.et', quantizer('dw.et', r.dw.et, 'bf16', true), 'dw.xt', source('dw.xt', r.dw.xt, w)],
    ];
    for (const [roleA, a, roleB, b] of pairs) {
      const hb = b === 'same-as-forward' ? (w ? w.hadamard : undefined) : b?.hadamard;
      if (a && hb !== undefined && a.hadamard !== hb) {
        problems.push(
          `${at(roleA)} rotates with Hadamard ${a.hadamard ?? 'none'} but ${roleB} with ${hb ?? 'none'}; ` +
            'the two operands of a GEMM must share the rotation along K',
        );
      }
    }
  }
  return problems;
}
