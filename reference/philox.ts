// Philox4x32-10 exactly as curand implements it (PTX-FACTS §8), and the contract's random words (NUMERICS §3.1).
// The hot paths (philox4x32_10, randomWord, randomBlock) use plain numbers: uint32 values held in JS numbers,
// 32x32 -> 64-bit products split into 16-bit halves. BigInt appears only in the curand state object and splitSeed.

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;
const TWO_POW_32 = 2 ** 32;

/** High 32 bits of the 64-bit product of two uint32 values. */
function mulhi32(a: number, b: number): number {
  const al = a & 0xffff;
  const ah = a >>> 16;
  const bl = b & 0xffff;
  const bh = b >>> 16;
  const low = al * bl;
  const mid1 = ah * bl;
  const mid2 = al * bh;
  // Carry out of bit 31 of the low word: the three contributions to bits 16..31 and above.
  const carry = Math.floor(((low >>> 16) + (mid1 & 0xffff) + (mid2 & 0xffff)) / 0x10000);
  return (ah * bh + Math.floor(mid1 / 0x10000) + Math.floor(mid2 / 0x10000) + carry) >>> 0;
}

/**
 * Philox4x32-10 of counter (c0, c1, c2, c3) under key (k0, k1), all uint32; the 4 output words go to out[0..3].
 * Round: (hi0, lo0) = M0*c0, (hi1, lo1) = M1*c2, ctr = (hi1^c1^k0, lo1, hi0^c3^k1, lo0); the key is bumped by
 * (W0, W1) between rounds (9 bumps for 10 rounds).
 */
export function philox4x32_10(
  c0: number,
  c1: number,
  c2: number,
  c3: number,
  k0: number,
  k1: number,
  out: Uint32Array,
): void {
  let x = c0 >>> 0,
    y = c1 >>> 0,
    z = c2 >>> 0,
    w = c3 >>> 0;
  let ka = k0 >>> 0,
    kb = k1 >>> 0;
  for (let round = 0; round < 10; round++) {
    if (round > 0) {
      ka = (ka + W0) >>> 0;
      kb = (kb + W1) >>> 0;
    }
    const hi0 = mulhi32(M0, x);
    const lo0 = Math.imul(M0, x) >>> 0;
    const hi1 = mulhi32(M1, z);
    const lo1 = Math.imul(M1, z) >>> 0;
    x = (hi1 ^ y ^ ka) >>> 0;
    y = lo1;
    z = (hi0 ^ w ^ kb) >>> 0;
    w = lo0;
  }
  out[0] = x;
  out[1] = y;
  out[2] = z;
  out[3] = w;
}

const U64_MASK = (1n << 64n) - 1n;
const U32_MASK = 0xffffffffn;

function checkU64(name: string, v: bigint): void {
  if (v < 0n || v > U64_MASK) throw new RangeError(`${name} = ${v} is not an unsigned 64-bit integer`);
}

/** The (low, high) uint32 halves of a 64-bit seed, 0 <= seed < 2^64. */
export function splitSeed(seed: bigint): [number, number] {
  checkU64('seed', seed);
  return [Number(seed & U32_MASK), Number((seed >> 32n) & U32_MASK)];
}

/**
 * A curandStatePhilox4_32_10_t: `new CurandPhilox(seed, subsequence, offset)` is curand_init, next() is curand(),
 * nextUniform() is curand_uniform(). Follows the curand header's counter arithmetic, carries included (PTX-FACTS §8).
 */
export class CurandPhilox {
  private readonly ctr = new Uint32Array(4);
  private readonly key: [number, number];
  private readonly output = new Uint32Array(4);
  private state = 0;

  constructor(seed: bigint, subsequence: bigint, offset: bigint) {
    checkU64('subsequence', subsequence);
    checkU64('offset', offset);
    this.key = splitSeed(seed);
    this.skipaheadSequence(subsequence);
    this.skipahead(offset);
  }

  /** curand(): the next 32-bit word. */
  next(): number {
    const ret = this.output[this.state];
    this.state++;
    if (this.state === 4) {
      this.incrementCounter();
      this.refill();
      this.state = 0;
    }
    return ret;
  }

  /** curand_uniform(): `(float)x * 2^-32 + 2^-33` in binary32, one rounding; a value in (0, 1]. */
  nextUniform(): number {
    return Math.fround(Math.fround(this.next()) * 2 ** -32 + 2 ** -33);
  }

  private refill(): void {
    const c = this.ctr;
    philox4x32_10(c[0], c[1], c[2], c[3], this.key[0], this.key[1], this.output);
  }

  /** skipahead_sequence: add the 64-bit subsequence to (ctr.z, ctr.w), carry z -> w. */
  private skipaheadSequence(n: bigint): void {
    const c = this.ctr;
    const nlo = Number(n & U32_MASK);
    let nhi = Number(n >> 32n);
    c[2] = c[2] + nlo;
    if (c[2] < nlo) nhi = (nhi + 1) >>> 0;
    c[3] = c[3] + nhi;
    this.refill();
  }

  /** skipahead: whole blocks go into (ctr.x, ctr.y) with the header's carry rule, the rest into STATE. */
  private skipahead(offset: bigint): void {
    this.state += Number(offset & 3n);
    let n = offset >> 2n;
    if (this.state > 3) {
      n += 1n;
      this.state -= 4;
    }
    this.addToCounter(n);
    this.refill();
  }

  /** Philox_State_Incr(s, n) of the curand header, carry rule included (uint32 stores wrap). */
  private addToCounter(n: bigint): void {
    const c = this.ctr;
    const nlo = Number(n & U32_MASK);
    let nhi = Number((n >> 32n) & U32_MASK);
    c[0] = c[0] + nlo;
    if (c[0] < nlo) nhi = (nhi + 1) >>> 0;
    c[1] = c[1] + nhi;
    if (nhi <= c[1]) return;
    c[2] = c[2] + 1;
    if (c[2] !== 0) return;
    c[3] = c[3] + 1;
  }

  /** Philox_State_Incr(s): the 128-bit counter plus one. */
  private incrementCounter(): void {
    const c = this.ctr;
    for (let i = 0; i < 4; i++) {
      c[i] = c[i] + 1;
      if (c[i] !== 0) return;
    }
  }
}

const blockScratch = new Uint32Array(4);

/**
 * word(seed, stream, index, w) of NUMERICS §3.1: word `w mod 4` of Philox4x32_10(ctr = (w div 4, stream,
 * index_lo32, index_hi32), key = (seedLo, seedHi)); 0 <= index < 2^53, 0 <= w < 2^34.
 */
export function randomWord(seedLo: number, seedHi: number, stream: number, index: number, w: number): number {
  philox4x32_10(Math.floor(w / 4), stream, index >>> 0, Math.floor(index / TWO_POW_32), seedLo, seedHi, blockScratch);
  return blockScratch[w & 3];
}

/** Words 4*block .. 4*block+3 of (seed, stream, index) (NUMERICS §3.1) into out[0..3]. */
export function randomBlock(
  seedLo: number,
  seedHi: number,
  stream: number,
  index: number,
  block: number,
  out: Uint32Array,
): void {
  philox4x32_10(block, stream, index >>> 0, Math.floor(index / TWO_POW_32), seedLo, seedHi, out);
}
