// The one place for qgen's numeric constants (NUMERICS §1.5, §3.3). Generated code receives them from here,
// written as exact hexadecimal bit patterns; the TypeScript reference imports them from here.

const f32 = Math.fround;

/** E2M1 largest magnitude and the forward target. */
export const E2M1_MAX = 6;
/** E4M3 (float8_e4m3fn) largest finite value. */
export const E4M3_MAX = 448;
/** Smallest normal E4M3 value; below it E4M3 is subnormal. */
export const E4M3_MIN_NORMAL = 2 ** -6;
/** SR target V = 6 * 16/17 (NVIDIA recipe): with it, SR never clips after the E4M3 scale rounding. */
export const V_SR = f32(96 / 17);
/** MS-EDEN target s = 6 / 0.988125 (Quartet II): 0.988125 = (17/16) * 0.93. */
export const S_EDEN = f32(6 / 0.988125);
/** Ceilings of the paper: 448 for RTN and SR, 256 for 4/6 and MS-EDEN (computed tensor scale). */
export const CEILING_RTN = 448;
export const CEILING_EDEN = 256;

/** binary32 1/sqrt(n) for the Hadamard sizes (exact for 16 and 64). */
export const INV_SQRT: Readonly<Record<16 | 32 | 64 | 128, number>> = {
  16: f32(1 / 4),
  32: f32(1 / Math.sqrt(32)),
  64: f32(1 / 8),
  128: f32(1 / Math.sqrt(128)),
};

/** Philox streams (NUMERICS §3.3). */
export const STREAM_SIGNS = 1;
export const STREAM_ELEMENT_SR = 2;
export const STREAM_SCALE_SR = 3;

/** The target constant of a spec's `target` field. */
export function targetValue(target: 'six' | 'sr-v' | 'eden-s'): number {
  return target === 'six' ? E2M1_MAX : target === 'sr-v' ? V_SR : S_EDEN;
}

/** Bit pattern of a binary32 number, as an unsigned 32-bit integer. */
export function f32Bits(x: number): number {
  const b = new DataView(new ArrayBuffer(4));
  b.setFloat32(0, x);
  return b.getUint32(0);
}

/** A binary32 constant as an exact CUDA expression, e.g. `__uint_as_float(0x40c24f0du) /* 6.0721... *\/`. */
export function cudaF32(x: number): string {
  return `__uint_as_float(0x${f32Bits(x).toString(16).padStart(8, '0')}u) /* ${x} */`;
}
