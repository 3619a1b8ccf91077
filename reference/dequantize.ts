// Dequantize and amax (NUMERICS §6, §1.4).

import { decodeE2M1, decodeE4M3, decodeUE8M0 } from './formats.ts';
import { f32ToBf16Bits } from './fp32.ts';
import type { Matrix, QuantizedTensor } from './tensor.ts';

const f32 = Math.fround;

/** Signed E2M1 values by code (0..15). */
export const E2M1_VALUE: Float32Array = Float32Array.from({ length: 16 }, (_, c) => decodeE2M1(c));

/** Decoded scale values by code (0..255) for a scale format (E4M3 0x7F/0xFF decode to NaN). */
export function scaleValues(format: 'e4m3' | 'ue8m0'): Float64Array {
  const decode = format === 'e4m3' ? decodeE4M3 : decodeUE8M0;
  return Float64Array.from({ length: 256 }, (_, c) => decode(c));
}
const E4M3_VALUE = scaleValues('e4m3');
const UE8M0_VALUE = scaleValues('ue8m0');

function scaleTable(q: QuantizedTensor): Float64Array {
  return q.scaleFormat === 'e4m3' ? E4M3_VALUE : UE8M0_VALUE;
}

/**
 * Dequantized binary32 values, row-major [rows, cols] (NUMERICS §6):
 * NVFP4 `f32(f32(e2m1 * e4m3) * t)`; MXFP4 `f32(e2m1 * 2^(e-127))`.
 */
export function dequantize(q: QuantizedTensor): Float32Array {
  const { rows, cols, groupSize, codes, scales } = q;
  const table = scaleTable(q);
  const t = q.tensorScale;
  const mx = q.scaleFormat === 'ue8m0';
  const out = new Float32Array(rows * cols);
  const groups = rows * (cols / groupSize);
  for (let g = 0; g < groups; g++) {
    const s = table[scales[g]];
    const base = g * groupSize;
    for (let i = 0; i < groupSize; i++) {
      const p = f32(E2M1_VALUE[codes[base + i]] * s);
      out[base + i] = mx ? p : f32(p * t);
    }
  }
  return out;
}

/**
 * The dequantized values without the tensor scale, `e2m1 * scale` (exact in binary32 and binary64): the GEMM
 * operands of NUMERICS §6.
 */
export function dequantizeUnscaled(q: QuantizedTensor): Float64Array {
  const { rows, cols, groupSize, codes, scales } = q;
  const table = scaleTable(q);
  const out = new Float64Array(rows * cols);
  const groups = rows * (cols / groupSize);
  for (let g = 0; g < groups; g++) {
    const s = table[scales[g]];
    const base = g * groupSize;
    for (let i = 0; i < groupSize; i++) out[base + i] = E2M1_VALUE[codes[base + i]] * s;
  }
  return out;
}

/** Maximum of |x| over the finite elements of data[off, off + n); 0 when none (NUMERICS §1.4). */
export function amaxOf(data: ArrayLike<number>, off: number, n: number): number {
  let m = 0;
  for (let i = off; i < off + n; i++) {
    const a = Math.abs(data[i]);
    if (a > m && a !== Infinity) m = a; // NaN fails `a > m`
  }
  return m;
}

/** amax of a matrix: max |x| over finite elements, 0 when none (NUMERICS §1.4); a binary32 value. */
export function amax(x: Matrix): number {
  return amaxOf(x.data, 0, x.data.length);
}

/**
 * The bf16 plane of an NVFP4 tensor (NUMERICS §6.6): bit patterns [rows, cols] of `bf16(e2m1 * e4m3)`, no tensor
 * scale: what a quantizer with outputs 'nvfp4+bf16-plane' writes beside its codes and scales. The product is taken
 * in binary64 and converted once (exact either way, §6.6; test/plane.test.ts checks both claims).
 */
export function bf16Plane(q: QuantizedTensor): Uint16Array {
  if (q.scaleFormat !== 'e4m3') throw new Error('bf16Plane: the plane is NVFP4 only (NUMERICS §6.6)');
  const { rows, cols, groupSize, codes, scales } = q;
  const out = new Uint16Array(rows * cols);
  const groups = rows * (cols / groupSize);
  for (let g = 0; g < groups; g++) {
    const s = E4M3_VALUE[scales[g]];
    const base = g * groupSize;
    for (let i = 0; i < groupSize; i++) out[base + i] = f32ToBf16Bits(E2M1_VALUE[codes[base + i]] * s);
  }
  return out;
}

/**
 * The dequantized bf16 plane of an NVFP4 tensor (NUMERICS §6.7): bit patterns [rows, cols] of `bf16(xhat)`, xhat the
 * binary32 dequantize of §6 with the tensor scale; what a quantizer with outputs 'nvfp4+dequantized-plane' writes.
 */
export function dequantizedPlane(q: QuantizedTensor): Uint16Array {
  if (q.scaleFormat !== 'e4m3') throw new Error('dequantizedPlane: the plane is NVFP4 only (NUMERICS §6.7)');
  return Uint16Array.from(dequantize(q), (v) => f32ToBf16Bits(v));
}
