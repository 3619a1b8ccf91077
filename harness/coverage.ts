// A set of kernel specs that together exercise every rendering path of the templates (each rounding in each
// tensor-scale mode, rotation in registers and across lanes, transposed and NVFP4 inputs, both scale layouts,
// 16x16 blocks, MXFP4, the bf16 plane output in each pass that writes it, dequantize, Hadamard, amax). Tests compile it for every arch; it is not a catalog.
import type {
  AmaxSpec,
  DequantizeSpec,
  ElementwiseTiling,
  HadamardSpec,
  KernelSpec,
  QuantizeSpec,
} from '../dsl/types.ts';
import { CEILING_EDEN, CEILING_RTN, E4M3_MAX } from '../dsl/constants.ts';

const tiling = (groupsPerThread: number, threadsPerBlock = 256, rowsPerBlock = 16): ElementwiseTiling => ({
  threadsPerBlock,
  rowsPerBlock,
  groupsPerThread,
});

function quantize(name: string, fields: Partial<QuantizeSpec>): QuantizeSpec {
  return {
    kind: 'quantize',
    name,
    rounding: 'rtn',
    scaleGroup: { size: 16, format: 'e4m3' },
    block: '1x16',
    target: 'six',
    ceiling: CEILING_RTN,
    tensorScale: 'computed',
    hadamard: null,
    correction: 'per-16',
    input: 'bf16',
    transposedInput: false,
    scaleLayout: '128x4',
    tiling: tiling(1),
    ...fields,
  };
}

export function coverageSpecs(): KernelSpec[] {
  const q: QuantizeSpec[] = [
    quantize('cov_rtn_computed', {}),
    quantize('cov_rtn_caller_rowmajor', { tensorScale: 'caller', scaleLayout: 'row-major', tiling: tiling(2, 128, 1) }),
    quantize('cov_rtn_onepass', { tensorScale: 'one-pass', ceiling: E4M3_MAX }),
    quantize('cov_rtn_16x16', { block: '16x16' }),
    quantize('cov_rtn_16x16_transposed_onepass', {
      block: '16x16',
      transposedInput: true,
      tensorScale: 'one-pass',
      tiling: tiling(2),
    }),
    quantize('cov_sr_computed_h16', { rounding: 'sr', target: 'sr-v', hadamard: 16 }),
    quantize('cov_sr_caller_transposed_h32', {
      rounding: 'sr',
      target: 'sr-v',
      tensorScale: 'caller',
      hadamard: 32,
      transposedInput: true,
    }),
    quantize('cov_sr_onepass', {
      rounding: 'sr',
      target: 'sr-v',
      tensorScale: 'one-pass',
      ceiling: E4M3_MAX,
      tiling: tiling(2),
    }),
    quantize('cov_four_six_computed', { rounding: 'four-six', ceiling: CEILING_EDEN }),
    quantize('cov_four_six_onepass', { rounding: 'four-six', tensorScale: 'one-pass', ceiling: E4M3_MAX }),
    quantize('cov_eden_computed_h128', {
      rounding: 'ms-eden',
      target: 'eden-s',
      ceiling: CEILING_EDEN,
      hadamard: 128,
      tiling: tiling(2),
    }),
    quantize('cov_eden_onepass_h128', {
      rounding: 'ms-eden',
      target: 'eden-s',
      tensorScale: 'one-pass',
      ceiling: E4M3_MAX,
      hadamard: 128,
    }),
    quantize('cov_eden_onepass_per128_transposed', {
      rounding: 'ms-eden',
      target: 'eden-s',
      tensorScale: 'one-pass',
      ceiling: E4M3_MAX,
      hadamard: 128,
      correction: 'per-128',
      transposedInput: true,
      tiling: tiling(2),
    }),
    quantize('cov_eden_caller_per128_g4', {
      rounding: 'ms-eden',
      target: 'eden-s',
      tensorScale: 'caller',
      ceiling: CEILING_EDEN,
      hadamard: 128,
      correction: 'per-128',
      tiling: tiling(4),
    }),
    quantize('cov_eden_computed_h64', {
      rounding: 'ms-eden',
      target: 'eden-s',
      ceiling: CEILING_EDEN,
      hadamard: 64,
      scaleLayout: 'row-major',
    }),
    quantize('cov_eden_requant_onepass', {
      rounding: 'ms-eden',
      target: 'eden-s',
      tensorScale: 'one-pass',
      ceiling: E4M3_MAX,
      hadamard: 128,
      input: 'nvfp4',
      transposedInput: true,
    }),
    quantize('cov_sr_requant_computed_h32', {
      rounding: 'sr',
      target: 'sr-v',
      hadamard: 32,
      input: 'nvfp4',
      transposedInput: true,
      scaleLayout: 'row-major',
      tiling: tiling(4),
    }),
    // The bf16 plane (NUMERICS §6.6), written by the quantize pass (computed, caller; partial 64-element segments,
    // staged transposed input) and by pass B (one-pass, row-major scales); the catalog's planes are one-pass 128x4.
    quantize('cov_rtn_computed_plane', { outputs: 'nvfp4+bf16-plane' }),
    quantize('cov_sr_caller_transposed_h32_plane', {
      rounding: 'sr',
      target: 'sr-v',
      tensorScale: 'caller',
      hadamard: 32,
      transposedInput: true,
      outputs: 'nvfp4+bf16-plane',
    }),
    quantize('cov_sr_requant_computed_h32_plane', {
      rounding: 'sr',
      target: 'sr-v',
      hadamard: 32,
      input: 'nvfp4',
      transposedInput: true,
      scaleLayout: 'row-major',
      tiling: tiling(4),
      outputs: 'nvfp4+bf16-plane',
    }),
    quantize('cov_four_six_onepass_plane', {
      rounding: 'four-six',
      tensorScale: 'one-pass',
      ceiling: E4M3_MAX,
      scaleLayout: 'row-major',
      tiling: tiling(2),
      outputs: 'nvfp4+bf16-plane',
    }),
    quantize('cov_mxfp4_rtn', {
      scaleGroup: { size: 32, format: 'ue8m0' },
      tensorScale: 'none',
      scaleLayout: 'row-major',
      tiling: tiling(2),
    }),
    quantize('cov_mxfp4_sr_h32', {
      rounding: 'sr',
      scaleGroup: { size: 32, format: 'ue8m0' },
      tensorScale: 'none',
      hadamard: 32,
      tiling: tiling(4),
    }),
  ];
  const d: DequantizeSpec[] = [
    {
      kind: 'dequantize',
      name: 'cov_dequant_nvfp4_bf16',
      scaleGroup: { size: 16, format: 'e4m3' },
      scaleLayout: '128x4',
      output: 'bf16',
      tiling: tiling(2),
    },
    {
      kind: 'dequantize',
      name: 'cov_dequant_nvfp4_f32',
      scaleGroup: { size: 16, format: 'e4m3' },
      scaleLayout: 'row-major',
      output: 'f32',
      tiling: tiling(1),
    },
    {
      kind: 'dequantize',
      name: 'cov_dequant_mxfp4_bf16',
      scaleGroup: { size: 32, format: 'ue8m0' },
      scaleLayout: 'row-major',
      output: 'bf16',
      tiling: tiling(4),
    },
  ];
  const h: HadamardSpec[] = [
    { kind: 'hadamard', name: 'cov_hadamard128_bf16', size: 128, input: 'bf16', output: 'bf16', tiling: tiling(1) },
    { kind: 'hadamard', name: 'cov_hadamard16_f32', size: 16, input: 'f32', output: 'f32', tiling: tiling(2) },
  ];
  const a: AmaxSpec[] = [
    { kind: 'amax', name: 'cov_amax_bf16', input: 'bf16', tiling: tiling(1) },
    { kind: 'amax', name: 'cov_amax_f32', input: 'f32', tiling: tiling(1) },
  ];
  return [...q, ...d, ...h, ...a];
}
