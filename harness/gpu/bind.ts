// How the GPU runner binds request buffers to each kernel kind's argument struct (runtime/qgen.h), and the
// generated dispatch table that lets one runner binary serve every emitted kernel. The C++ is in
// templates/runner/ (dispatch.h.hbs, dispatch.cu.hbs, one run_<kind>.cpp.hbs adapter per kind), rendered by the
// project's one renderer (render/render.ts); this file only says which buffer sits at which index.
//
// Buffer order per kind (the runner passes them as void*[] to the adapters):
//   quantize, bf16 input : x, codes, scales, tensor_scale
//   quantize, NVFP4 input: in_codes, in_scales, in_tensor_scale, codes, scales, tensor_scale
//   (a quantizer that writes a bf16 plane takes one more: plane, bf16 [rows, cols]; NUMERICS §6.6, §6.7)
//   dequantize           : codes, scales, tensor_scale, y
//   hadamard             : x, y
//   amax                 : x, amax
//   gemm                 : a_codes, a_scales, a_tensor_scale, b_codes, b_scales, b_tensor_scale, c
// Shapes: rows x cols; a GEMM reads m = rows, k = cols, n = depth.
// Seeds (NUMERICS §3.2): a quantizer gets seed (stochastic rounding) and sign_seed (Hadamard signs); a Hadamard
// kernel gets sign_seed as its seed, so that it rotates like a quantizer given the same sign_seed.
import type { KernelSpec } from '../../dsl/types.ts';
import { writesPlane } from '../../dsl/types.ts';
import { renderTemplate } from '../../render/render.ts';

export function bufferNames(spec: KernelSpec): string[] {
  switch (spec.kind) {
    case 'quantize':
      return [
        ...(spec.input === 'nvfp4' ? ['in_codes', 'in_scales', 'in_tensor_scale'] : ['x']),
        'codes',
        'scales',
        'tensor_scale',
        ...(writesPlane(spec.outputs) ? ['plane'] : []),
      ];
    case 'dequantize':
      return ['codes', 'scales', 'tensor_scale', 'y'];
    case 'hadamard':
      return ['x', 'y'];
    case 'amax':
      return ['x', 'amax'];
    case 'gemm':
      return ['a_codes', 'a_scales', 'a_tensor_scale', 'b_codes', 'b_scales', 'b_tensor_scale', 'c'];
  }
}

/** True when the kind's host ABI has a workspace-size query. */
function hasWorkspace(spec: KernelSpec): boolean {
  return spec.kind === 'quantize' || spec.kind === 'amax';
}

/** What the runner templates see of one kernel: its name, kind, buffer indices by name, workspace query. */
function dispatchKernel(spec: KernelSpec) {
  const names = bufferNames(spec);
  return {
    name: spec.name,
    kind: spec.kind,
    hasWorkspace: hasWorkspace(spec),
    bufferCount: names.length,
    buffer: Object.fromEntries(names.map((n, i) => [n, i])),
    nvfp4Input: spec.kind === 'quantize' && spec.input === 'nvfp4',
    plane: spec.kind === 'quantize' && writesPlane(spec.outputs),
  };
}

/** dispatch.cu for the runner: one adapter per kernel and a lookup table by name. */
export function renderDispatch(specs: KernelSpec[]): { header: string; source: string } {
  const kernels = specs.map(dispatchKernel);
  const adapters = kernels.map((k) => renderTemplate(`runner/run_${k.kind}.cpp.hbs`, k));
  return {
    header: renderTemplate('runner/dispatch.h.hbs', {}),
    source: renderTemplate('runner/dispatch.cu.hbs', { kernels, adapters }),
  };
}
