// The element and scale formats of the numerics contract and their roundings (NUMERICS §2): E2M1, E4M3, the P4
// proxy grid, UE8M0. Codes are small integers; every function is allocation-free and works on binary32 inputs
// (an argument is first rounded to binary32, which is the identity for the binary32 values callers pass).

import * as K from '../dsl/constants.ts';

// Hot-path helpers and constants are module-local on purpose: under Node 20 + tsx, the same bit casts imported from
// fp32.ts, and constants read through imported bindings, measured 3-5x slower per call.
const f32 = Math.fround;
const E2M1_MAX: number = K.E2M1_MAX;
const E4M3_MAX: number = K.E4M3_MAX;
const E4M3_MIN_NORMAL: number = K.E4M3_MIN_NORMAL;
const castF32 = new Float32Array(1);
const castI32 = new Int32Array(castF32.buffer);

/** The bit pattern of f32(x) as an int32 (int32, not uint32: it stays a small integer for the JIT). */
function int32BitsOf(x: number): number {
  castF32[0] = x;
  return castI32[0];
}

function fromInt32Bits(b: number): number {
  castI32[0] = b;
  return castF32[0];
}

// ---------------------------------------------------------------------------------------------------------------
// E2M1 (NUMERICS §2.1, §2.2)

/** E2M1 magnitudes by magnitude code 0..7. */
export const E2M1_MAGNITUDES: readonly number[] = Object.freeze([0, 0.5, 1, 1.5, 2, 3, 4, 6]);
/** The same magnitudes for the hot paths (a typed array local to this module). */
const MAG = Float64Array.from(E2M1_MAGNITUDES);

const E2M1_SIGN = 0x8;
/** Magnitude code of 6, the saturation value; also the code of a NaN input. */
const E2M1_MAX_CODE = 0x7;

/** The value of an E2M1 code 0..15 (code 8 is -0). */
export function decodeE2M1(code: number): number {
  const m = MAG[code & 7];
  return code & E2M1_SIGN ? -m : m;
}

/** True for negative numbers and -0. */
function signBitSet(x: number): boolean {
  return x < 0 || (x === 0 && 1 / x < 0);
}

/** RN_E2M1 (NUMERICS §2.1): the threshold rule on |v|, sign copied, ±Inf -> ±6, NaN -> 0x7. */
export function rnE2M1(v: number): number {
  const x = f32(v);
  if (x !== x) return E2M1_MAX_CODE;
  const a = Math.abs(x);
  // Ties (0.25, 1.25, 2.5, 5) go down to the even codes 0, 2, 4; ties 0.75, 1.75, 3.5 go up to 2, 4, 6.
  const m = a <= 0.25 ? 0 : a < 0.75 ? 1 : a <= 1.25 ? 2 : a < 1.75 ? 3 : a <= 2.5 ? 4 : a < 3.5 ? 5 : a <= 5 ? 6 : 7;
  return signBitSet(x) ? m | E2M1_SIGN : m;
}

/** Largest magnitude code whose value is <= a, for 0 <= a < 6. */
function e2m1FloorCode(a: number): number {
  return a < 0.5 ? 0 : a < 1 ? 1 : a < 1.5 ? 2 : a < 2 ? 3 : a < 3 ? 4 : a < 4 ? 5 : 6;
}

/**
 * SR_E2M1 (NUMERICS §2.2): r16 is a 16-bit random integer. |v| >= 6 (and ±Inf) -> ±6 without using r16, NaN -> 0x7;
 * otherwise the magnitude is the upper grid neighbour iff `r16 * 2^-16 < frac`, sign copied.
 */
export function srE2M1(v: number, r16: number): number {
  const x = f32(v);
  if (x !== x) return E2M1_MAX_CODE;
  const a = Math.abs(x);
  let m: number;
  if (a >= E2M1_MAX) {
    m = E2M1_MAX_CODE;
  } else {
    const lo = e2m1FloorCode(a);
    const loV = MAG[lo];
    // Exact: Sterbenz for a - loV (loV <= a < 2 loV, or loV = 0), and the spacing is a power of two.
    const frac = f32(f32(a - loV) / f32(MAG[lo + 1] - loV));
    m = r16 * 2 ** -16 < frac ? lo + 1 : lo;
  }
  return signBitSet(x) ? m | E2M1_SIGN : m;
}

// ---------------------------------------------------------------------------------------------------------------
// E4M3 = float8_e4m3fn (NUMERICS §2.3, §2.4)

const E4M3_SIGN = 0x80;
export const E4M3_NAN = 0x7f;
/** Code of 448, the largest finite value. */
export const E4M3_MAX_CODE = 0x7e;
/** Spacing of the E4M3 subnormals (and of the first normal binade): 2^-9. */
const E4M3_SUBNORMAL_STEP = 2 ** -9;

/** The value of an E4M3 code 0..255: bias 7, subnormals 0.mmm * 2^-6, 0x7F/0xFF NaN, 0x80 = -0. */
export function decodeE4M3(code: number): number {
  const e = (code >> 3) & 0xf;
  const m = code & 7;
  if (e === 0xf && m === 7) return NaN;
  const mag = e === 0 ? m * E4M3_SUBNORMAL_STEP : (8 + m) * 2 ** (e - 10);
  return code & E4M3_SIGN ? -mag : mag;
}

/** The E4M3 code of a binary32 P4 value p in [2^-6, 448] (exact: p keeps 3 mantissa bits). */
function e4m3CodeOfNormal(p: number): number {
  const b = int32BitsOf(p);
  return (((b >> 23) - 127 + 7) << 3) | ((b >> 20) & 7);
}

/** Round a non-negative number to the nearest integer, ties to even. */
function roundHalfEven(q: number): number {
  const fl = Math.floor(q);
  const d = q - fl;
  return d > 0.5 || (d === 0.5 && (fl & 1) === 1) ? fl + 1 : fl;
}

/** RN_E4M3 (NUMERICS §2.3): RNE including subnormals, |x| > 448 and ±Inf -> ±448, NaN (either sign) -> 0x7F. */
export function rnE4M3(x: number): number {
  const v = f32(x);
  if (v !== v) return E4M3_NAN;
  const a = Math.abs(v);
  let code: number;
  if (a > E4M3_MAX) code = E4M3_MAX_CODE;
  // Subnormal range: the code is the number of 2^-9 steps (8 steps = 0x08 = 2^-6, the first normal).
  else if (a < E4M3_MIN_NORMAL) code = roundHalfEven(a / E4M3_SUBNORMAL_STEP);
  // Normal range: RNE to 3 mantissa bits is exactly RN_P4, which cannot pass 448 (itself a P4 value).
  else code = e4m3CodeOfNormal(rnP4(a));
  return signBitSet(v) ? code | E4M3_SIGN : code;
}

/**
 * SR_E4M3 (NUMERICS §2.4) for c >= 0: c >= 448 -> 448; otherwise the code above `down` (the largest E4M3 value
 * <= c) iff `(r32 >>> 8) * 2^-24 < frac`. NaN -> 0x7F. (A negative c is outside the contract; it is rounded as |c|
 * with the sign copied.)
 */
export function srE4M3(c: number, r32: number): number {
  const v = f32(c);
  if (v !== v) return E4M3_NAN;
  const a = Math.abs(v);
  let code: number;
  if (a >= E4M3_MAX) {
    code = E4M3_MAX_CODE;
  } else {
    let down: number;
    let step: number;
    if (a < E4M3_MIN_NORMAL) {
      code = Math.floor(a / E4M3_SUBNORMAL_STEP);
      down = code * E4M3_SUBNORMAL_STEP;
      step = E4M3_SUBNORMAL_STEP;
    } else {
      const b = int32BitsOf(a);
      down = fromInt32Bits(b & P4_KEEP);
      code = e4m3CodeOfNormal(down);
      step = fromInt32Bits((b & 0x7f800000) - (3 << 23)); // 2^(exponent of a - 3)
    }
    // Exact: a - down is a Sterbenz difference (or a - 0), and step is a power of two.
    const frac = f32(f32(a - down) / step);
    if ((r32 >>> 8) * 2 ** -24 < frac) code += 1;
  }
  return signBitSet(v) ? code | E4M3_SIGN : code;
}

// ---------------------------------------------------------------------------------------------------------------
// P4: binary32 with 3 explicit mantissa bits (NUMERICS §2.5)

// Bit patterns are handled as int32 (see int32BitsOf); P4_KEEP is 0xFFF00000 as an int32.
const P4_KEEP = 0xfff00000 | 0;
const P4_ULP = 0x100000;
const P4_LOW = 0xfffff;
const SIGN_BIT = 0x80000000 | 0;
const EXP_ALL_ONES = 0x7f800000;

/**
 * RN_P4 (NUMERICS §2.5): RNE of a binary32 to 3 explicit mantissa bits, on the bit pattern:
 * `(b + 0x7FFFF + ((b >> 20) & 1)) & 0xFFF00000`. Defined for x >= 0; a negative x is rounded as |x| with the
 * sign kept (RNE is symmetric). NaN stays NaN; values above the largest P4 binary32 overflow to Inf as RNE does.
 */
export function rnP4(x: number): number {
  const b = int32BitsOf(x);
  const mag = b & 0x7fffffff;
  if (mag > EXP_ALL_ONES) return NaN;
  return fromInt32Bits(((mag + 0x7ffff + ((mag >> 20) & 1)) & P4_KEEP) | (b & SIGN_BIT));
}

/**
 * SR_P4 (NUMERICS §2.5): down = `b & 0xFFF00000`, up = down + 0x100000, up iff `(r32 >>> 12) < (b & 0xFFFFF)`.
 * Defined for x >= 0; a negative x is rounded as |x| with the sign kept. NaN stays NaN.
 */
export function srP4(x: number, r32: number): number {
  const b = int32BitsOf(x);
  const mag = b & 0x7fffffff;
  if (mag > EXP_ALL_ONES) return NaN;
  let r = mag & P4_KEEP;
  if (r32 >>> 12 < (mag & P4_LOW)) r += P4_ULP;
  return fromInt32Bits(r | (b & SIGN_BIT));
}

// ---------------------------------------------------------------------------------------------------------------
// UE8M0 (NUMERICS §2.6)

export const UE8M0_BIAS = 127;
export const UE8M0_NAN = 0xff;
const UE8M0_MAX_CODE = 254;

/**
 * RP_UE8M0 (NUMERICS §2.6) for binary32 x > 0: the code of the smallest power of two >= x, clamped to
 * [2^-127, 2^127] (codes 0..254); +Inf -> 254. Outside the contract: x <= 0 -> 0 (the lower clamp), NaN -> 0xFF.
 */
export function rpUE8M0(x: number): number {
  const v = f32(x);
  if (v !== v) return UE8M0_NAN;
  if (v <= 0) return 0;
  const b = int32BitsOf(v); // v > 0: the sign bit is clear
  const field = b >> 23;
  const mant = b & 0x7fffff;
  let e: number; // unbiased exponent of the power of two
  if (field === 0) {
    // Subnormal x = mant * 2^-149: the power of two >= x is 2^(-149 + ceil(log2 mant)).
    e = -149 + (32 - Math.clz32(mant - 1));
  } else {
    e = field - 127 + (mant !== 0 ? 1 : 0);
  }
  return Math.min(UE8M0_MAX_CODE, Math.max(0, e + UE8M0_BIAS));
}

/** The value 2^(code - 127) of a UE8M0 code; 0xFF is NaN. */
export function decodeUE8M0(code: number): number {
  return code === UE8M0_NAN ? NaN : 2 ** (code - UE8M0_BIAS);
}
