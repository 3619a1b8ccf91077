// binary32 and bf16 helpers of the numerics contract (NUMERICS §1, §2.8). Allocation-free: bit casts go through
// one shared 4-byte buffer.

/** Round a number to binary32 (round to nearest even): every contract operation is `f32(a op b)` (NUMERICS §1.1). */
export const f32: (x: number) => number = Math.fround;

const castF32 = new Float32Array(1);
const castU32 = new Uint32Array(castF32.buffer);

/** The uint32 bit pattern of f32(x). */
export function bitsOf(x: number): number {
  castF32[0] = x;
  return castU32[0];
}

/** The binary32 value of a uint32 bit pattern (NaN payloads are not preserved by JS numbers). */
export function fromBits(b: number): number {
  castU32[0] = b;
  return castF32[0];
}

/** The binary32 value of a bf16 bit pattern (exact: bf16 is the top half of binary32). */
export function bf16BitsToF32(h: number): number {
  return fromBits((h & 0xffff) << 16);
}

/**
 * The bf16 bit pattern of a binary32 value, round to nearest even (NUMERICS §2.8); overflow goes to ±Inf as RNE
 * does, and a NaN stays a NaN (quiet bit set, sign kept).
 */
export function f32ToBf16Bits(x: number): number {
  const b = bitsOf(x);
  if ((b & 0x7fffffff) > 0x7f800000) return (b >>> 16) | 0x0040;
  // RNE on the low 16 bits; the sum stays below 2^32 for every non-NaN pattern.
  return (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
}

let treeScratch = new Float64Array(128);

/**
 * The pairwise sum of NUMERICS §1.3 over a[off .. off+n), n a power of two: `a_i += a_(i+n/2)` for i < n/2, then
 * stride n/4, ..., 1; every addition is one binary32 operation. The terms are taken as binary32 values.
 */
export function treeSum(a: ArrayLike<number>, off: number, n: number): number {
  if (n <= 0 || (n & (n - 1)) !== 0) throw new RangeError(`treeSum: n = ${n} is not a power of two`);
  if (treeScratch.length < n) treeScratch = new Float64Array(n);
  const s = treeScratch;
  for (let i = 0; i < n; i++) s[i] = f32(a[off + i]);
  for (let stride = n >> 1; stride >= 1; stride >>= 1) {
    for (let i = 0; i < stride; i++) s[i] = f32(s[i] + s[i + stride]);
  }
  return s[0];
}
