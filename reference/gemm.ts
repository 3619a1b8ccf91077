// GEMM reference and its error bound (NUMERICS §6): C[m, n] = alpha * sum_k A[m, k] B[n, k], TN layout.

import { bf16BitsToF32, bitsOf, f32ToBf16Bits } from './fp32.ts';
import { dequantizeUnscaled } from './dequantize.ts';
import type { QuantizedTensor } from './tensor.ts';

function checkOperands(a: QuantizedTensor, b: QuantizedTensor): void {
  if (a.cols !== b.cols) throw new Error(`gemm: K mismatch, A is ${a.rows}x${a.cols}, B is ${b.rows}x${b.cols}`);
}

/**
 * C = tA * tB * A_deq . B_deq^T in binary64, [a.rows, b.rows] row-major: the operands are dequantized without their
 * tensor scales (exact), each dot product is summed in binary64 in k order, then multiplied by alpha = tA * tB
 * (binary64). Round with roundOutput for the kernel's output type.
 */
export function gemmReference(a: QuantizedTensor, b: QuantizedTensor): Float64Array {
  checkOperands(a, b);
  const A = dequantizeUnscaled(a);
  const B = dequantizeUnscaled(b);
  const M = a.rows,
    N = b.rows,
    K = a.cols;
  const alpha = a.tensorScale * b.tensorScale;
  const out = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0, ia = m * K, ib = n * K; k < K; k++) s += A[ia + k] * B[ib + k];
      out[m * N + n] = alpha * s;
    }
  }
  return out;
}

/** gamma_K = K u / (1 - K u), u = 2^-24 (NUMERICS §6). */
export function gammaK(K: number): number {
  const Ku = K * 2 ** -24;
  return Ku / (1 - Ku);
}

/**
 * Per-element bound on |c - ref| for an fp32-accumulating kernel (NUMERICS §6):
 * `alpha * gamma_K * sum_k |a_k b_k| + |ref| * u_out`, u_out = 2^-24 (f32) or 2^-8 (bf16).
 */
export function gemmErrorBound(
  a: QuantizedTensor,
  b: QuantizedTensor,
  ref: Float64Array,
  output: 'f32' | 'bf16',
): Float64Array {
  checkOperands(a, b);
  const A = dequantizeUnscaled(a);
  const B = dequantizeUnscaled(b);
  const M = a.rows,
    N = b.rows,
    K = a.cols;
  if (ref.length !== M * N) throw new Error(`gemmErrorBound: ref has ${ref.length} elements, expected ${M * N}`);
  const alpha = Math.abs(a.tensorScale * b.tensorScale);
  const g = gammaK(K);
  const uOut = output === 'f32' ? 2 ** -24 : 2 ** -8;
  const out = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0, ia = m * K, ib = n * K; k < K; k++) s += Math.abs(A[ia + k] * B[ib + k]);
      out[m * N + n] = alpha * g * s + Math.abs(ref[m * N + n]) * uOut;
    }
  }
  return out;
}

/** The reference rounded once to the kernel's output type: binary32, or bf16 (RNE, §2.8) returned as its value. */
export function roundOutput(ref: Float64Array, output: 'f32' | 'bf16'): Float32Array {
  const out = new Float32Array(ref.length);
  for (let i = 0; i < ref.length; i++) out[i] = output === 'f32' ? Math.fround(ref[i]) : bf16OfF64(ref[i]);
  return out;
}

/**
 * binary64 -> bf16, one rounding to nearest even. Going through binary32 first rounds twice; that only differs when
 * the binary32 value lands exactly on a bf16 midpoint without being exact, and then the binary64 value decides.
 */
function bf16OfF64(x: number): number {
  const v = Math.fround(x);
  const b = bitsOf(v);
  if (v === x || !Number.isFinite(v) || (b & 0xffff) !== 0x8000) return bf16BitsToF32(f32ToBf16Bits(v));
  const awayFromZero = Math.abs(x) > Math.abs(v);
  return bf16BitsToF32((b >>> 16) + (awayFromZero ? 1 : 0));
}

/**
 * Per-element bound on |c - ref| for the sm_90a kernel (NUMERICS §6.2): its products are exact, its fp32 accumulation
 * order is the tensor core's (and may truncate: unit roundoff 2^-23 per addition, hence 2 gamma_K), alpha is rounded
 * to binary32 and multiplied once (2^-23 |ref|), and the result is rounded once to the output type:
 * `e = alpha * 2 gamma_K * sum_k |a_k b_k| + 2^-23 |ref|`, bound `= (1 + u_out) e + u_out |ref|`. It also bounds the
 * operand-swapped kernels that split K over c consumers (NUMERICS §6.2 derives it: at most K - 1 roundings per term).
 */
export function gemmKernelBound(
  a: QuantizedTensor,
  b: QuantizedTensor,
  ref: Float64Array,
  output: 'f32' | 'bf16',
): Float64Array {
  const plain = gemmErrorBound(a, b, ref, 'f32'); // alpha gamma_K sum|ab| + 2^-24 |ref|
  const uOut = output === 'f32' ? 2 ** -24 : 2 ** -8;
  const out = new Float64Array(ref.length);
  for (let i = 0; i < ref.length; i++) {
    const r = Math.abs(ref[i]);
    const e = 2 * (plain[i] - r * 2 ** -24) + r * 2 ** -23;
    out[i] = (1 + uOut) * e + uOut * r;
  }
  return out;
}
