// A qgen spec file in TypeScript: the Quartet II linear layer's quantizers and its GEMM (sm_90a tiling).
// Emit with:  npx qgen emit --arch sm_90a --spec examples/quartet2.spec.ts --out kernels/
// The file is type-checked (strict) against dsl/types.ts before anything is emitted, then validated.
import type { ElementwiseTiling, QuantizeSpec, SpecFile } from '../dsl/types.ts';

const tiling: ElementwiseTiling = { threadsPerBlock: 256, rowsPerBlock: 16, groupsPerThread: 2 };

/** Forward: 4/6 with the one-pass tensor scale and ceiling 448 (NUMERICS §5.1, §5.5). */
const forward: QuantizeSpec = {
  kind: 'quantize',
  name: 'my_fwd_fourSix',
  doc: 'forward X and W: 4/6, one-pass tensor scale',
  rounding: 'four-six',
  scaleGroup: { size: 16, format: 'e4m3' },
  block: '1x16',
  target: 'six',
  ceiling: 448,
  tensorScale: 'one-pass',
  hadamard: null,
  correction: 'per-16',
  input: 'bf16',
  transposedInput: false,
  scaleLayout: '128x4',
  tiling,
};

/** Backward: rotate 128-chunks, RTN to s_eden, stochastic per-16 scale correction (NUMERICS §4, §5.6). */
const backward: QuantizeSpec = {
  ...forward,
  name: 'my_bwd_msEden',
  doc: 'backward E: RHT-128 + MS-EDEN',
  rounding: 'ms-eden',
  target: 'eden-s',
  hadamard: 128,
};

const spec: SpecFile = {
  kernels: [
    forward,
    backward,
    { ...backward, name: 'my_bwd_et_msEden', doc: 'backward E^T: transposed input', transposedInput: true },
    {
      ...backward,
      name: 'my_requant_msEden',
      doc: 'requant an NVFP4 tensor to its transpose',
      input: 'nvfp4',
      transposedInput: true,
    },
    {
      kind: 'gemm',
      name: 'my_gemm',
      doc: 'NVFP4 x NVFP4 -> bf16 (sm_90a tiling)',
      a: 'nvfp4',
      b: 'nvfp4',
      layout: 'TN',
      output: 'bf16',
      epilogue: 'alpha',
      tiling: { ctaTile: [128, 128, 64], consumers: 2, stages: 8, cluster: [1, 1], tileOrder: 'swizzle-8' },
    },
  ],
};

export default spec;
