// Formats and roundings of NUMERICS §2 (and the bf16 / tree-sum helpers of §1.3, §2.8) against independent oracles:
// exhaustive enumeration, exact (BigInt) nearest-value searches over decoded tables, exact counts of random inputs,
// and the hardware facts of PTX-FACTS §2.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { bf16BitsToF32, bitsOf, f32, f32ToBf16Bits, fromBits, treeSum } from '../reference/fp32.ts';
import {
  decodeE2M1,
  decodeE4M3,
  decodeUE8M0,
  E2M1_MAGNITUDES,
  rnE2M1,
  rnE4M3,
  rnP4,
  rpUE8M0,
  srE2M1,
  srE4M3,
  srP4,
} from '../reference/formats.ts';

const hex = (b: number) => '0x' + (b >>> 0).toString(16);
const isNegative = (x: number) => x < 0 || Object.is(x, -0);

/** A finite binary32 value as an exact integer multiple of 2^-149 (every binary32 and E4M3 value is one). */
function units(x: number): bigint {
  const b = bitsOf(Math.abs(x));
  const field = b >>> 23;
  const mant = b & 0x7fffff;
  return field === 0 ? BigInt(mant) : BigInt(mant | 0x800000) << BigInt(field - 1);
}
const absBig = (v: bigint) => (v < 0n ? -v : v);

/**
 * Index of the entry of `table` (ascending, exact integer units) nearest to u; ties go to the entry whose code
 * (`codes[i]`) is even. A plain linear scan: no knowledge of the grid's structure.
 */
function nearestIndex(u: bigint, table: bigint[], codes: number[]): number {
  let best = 0;
  let bestD = absBig(u - table[0]);
  for (let i = 1; i < table.length; i++) {
    const d = absBig(u - table[i]);
    if (d < bestD || (d === bestD && codes[i] % 2 === 0 && codes[best] % 2 !== 0)) {
      best = i;
      bestD = d;
    }
  }
  return best;
}

// ---------------------------------------------------------------------------------------------------------------
// fp32 helpers

test('bf16BitsToF32: every pattern is the top half of a binary32 and round-trips through f32ToBf16Bits', () => {
  for (let h = 0; h < 0x10000; h++) {
    const v = bf16BitsToF32(h);
    const e = (h >> 7) & 0xff;
    const m = h & 0x7f;
    const sign = h & 0x8000 ? -1 : 1;
    if (e === 0xff) {
      if (m === 0) assert.is(v, sign * Infinity);
      else assert.ok(Number.isNaN(v), hex(h));
      continue;
    }
    const expected = sign * (e === 0 ? m * 2 ** -133 : (128 + m) * 2 ** (e - 134));
    assert.ok(Object.is(v, expected), `${hex(h)}: ${v} vs ${expected}`);
    assert.is(f32ToBf16Bits(v), h, hex(h));
  }
});

test('f32ToBf16Bits: round to nearest even against an exact nearest-of-two-neighbours oracle', () => {
  const oracle = (x: number): number => {
    const b = bitsOf(x);
    const sign = b & 0x80000000 ? 0x8000 : 0;
    const a = Math.abs(x);
    // The bf16 magnitudes just below and above a, found by walking the bf16 grid in float64.
    const down = bitsOf(a) >>> 16;
    const lo = bf16BitsToF32(down);
    if (lo === a) return sign | down;
    const hi = bf16BitsToF32(down + 1); // 0x7f80 is +Inf: the overflow target of RNE
    const dLo = a - lo; // both exact in float64
    const dHi = (hi === Infinity ? 2 ** 128 : hi) - a;
    const pick = dLo < dHi ? down : dHi < dLo ? down + 1 : down % 2 === 0 ? down : down + 1;
    return sign | pick;
  };
  const inputs: number[] = [];
  for (let e = 0; e < 255; e++) {
    for (const low of [0, 1, 0x7fff, 0x8000, 0x8001, 0xffff, 0x18000, 0x17fff, 0x7f8000]) {
      inputs.push(fromBits(((e << 23) | low) >>> 0));
    }
  }
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 0xffffffff }), (b) => {
      const x = fromBits(b);
      if (Number.isNaN(x)) return true;
      return f32ToBf16Bits(x) === oracle(x);
    }),
    { numRuns: 20000 },
  );
  for (const x of inputs) {
    assert.is(f32ToBf16Bits(x), oracle(x), `${x}`);
    assert.is(f32ToBf16Bits(-x), oracle(-x), `${-x}`);
  }
  // Hand-checked cases: ties to even, overflow, signed zero, NaN stays NaN.
  assert.is(f32ToBf16Bits(1 + 2 ** -8), 0x3f80);
  assert.is(f32ToBf16Bits(1 + 3 * 2 ** -8), 0x3f82);
  assert.is(f32ToBf16Bits(1 + 2 ** -8 + 2 ** -20), 0x3f81);
  assert.is(f32ToBf16Bits(fromBits(0x7f7fffff)), 0x7f80);
  assert.is(f32ToBf16Bits(-0), 0x8000);
  assert.is(f32ToBf16Bits(-Infinity), 0xff80);
  for (const nan of [NaN, fromBits(0x7f800001), fromBits(0xffc00000)]) {
    const h = f32ToBf16Bits(nan);
    assert.ok((h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0, hex(h));
  }
});

test('treeSum: pairwise halving strides (NUMERICS §1.3) equal the recursion over even/odd residues', () => {
  // After the strides n/2 .. 2, a_0 and a_1 hold the sums of the even- and odd-indexed terms, so
  // tree(a) = f32(tree(a_even) + tree(a_odd)): an independent formulation.
  const byResidue = (a: number[]): number => {
    if (a.length === 1) return f32(a[0]);
    return f32(byResidue(a.filter((_, i) => i % 2 === 0)) + byResidue(a.filter((_, i) => i % 2 === 1)));
  };
  const term = fc.oneof(
    fc.float({ noNaN: true, noDefaultInfinity: true }),
    fc.integer({ min: -40, max: 40 }).map((e) => 2 ** e),
    fc.integer({ min: -40, max: 40 }).map((e) => -(2 ** e)),
  );
  for (const n of [1, 2, 4, 16, 128]) {
    fc.assert(
      fc.property(
        fc.array(term, { minLength: n + 3, maxLength: n + 3 }),
        fc.integer({ min: 0, max: 3 }),
        (arr, off) => {
          const a = arr.map(f32);
          return Object.is(treeSum(Float32Array.from(a), off, n), byResidue(a.slice(off, off + n)));
        },
      ),
      { numRuns: 300 },
    );
  }
  // By hand: ((1 + -1) + (2^-24 + 2^-24)) = 2^-23, where a left-to-right sum gives 2^-24.
  assert.is(treeSum([1, 2 ** -24, -1, 2 ** -24], 0, 4), 2 ** -23);
  assert.throws(() => treeSum([1, 2, 3], 0, 3));
});

// ---------------------------------------------------------------------------------------------------------------
// E2M1

test('decodeE2M1: the 16 codes of PTX-FACTS §2.1', () => {
  const expected = [0, 0.5, 1, 1.5, 2, 3, 4, 6, -0, -0.5, -1, -1.5, -2, -3, -4, -6];
  for (let c = 0; c < 16; c++) assert.ok(Object.is(decodeE2M1(c), expected[c]), `code ${c}`);
  assert.equal([...E2M1_MAGNITUDES], [0, 0.5, 1, 1.5, 2, 3, 4, 6]);
});

const E2M1_UNITS = E2M1_MAGNITUDES.map(units);
const E2M1_CODES = [0, 1, 2, 3, 4, 5, 6, 7];

/** RN_E2M1 oracle: exact nearest magnitude (ties to the even code, beyond 6 -> 6), sign copied, NaN -> 0x7. */
function e2m1Oracle(x: number): number {
  if (Number.isNaN(x)) return 0x7;
  const m = Number.isFinite(x) ? nearestIndex(units(x), E2M1_UNITS, E2M1_CODES) : 7;
  return isNegative(x) ? m | 8 : m;
}

test('rnE2M1: every bf16 input (65536 patterns) against the exact-nearest oracle', () => {
  let mismatches = 0;
  const first: string[] = [];
  for (let h = 0; h < 0x10000; h++) {
    const x = bf16BitsToF32(h);
    const got = rnE2M1(x);
    const want = e2m1Oracle(x);
    if (got !== want) {
      mismatches++;
      if (first.length < 5) first.push(`${hex(h)} (${x}): ${got} vs ${want}`);
    }
  }
  assert.is(mismatches, 0, first.join('; '));
});

test('rnE2M1: binary32 neighbours of every threshold, specials', () => {
  for (const t of [0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5, 6, 0.5, 1e-45]) {
    const b = bitsOf(t);
    for (let d = -3; d <= 3; d++) {
      for (const s of [1, -1]) {
        const x = s * fromBits(b + d);
        assert.is(rnE2M1(x), e2m1Oracle(x), `${x}`);
      }
    }
  }
  assert.is(rnE2M1(-0), 0x8);
  assert.is(rnE2M1(-0.1), 0x8);
  assert.is(rnE2M1(Infinity), 0x7);
  assert.is(rnE2M1(-Infinity), 0xf);
  assert.is(rnE2M1(NaN), 0x7);
  assert.is(rnE2M1(fromBits(0xffc00000)), 0x7);
  assert.is(rnE2M1(1e30), 0x7);
});

/** Grid neighbours (lo, hi magnitude codes) and frac of 0 <= a < 6, found by scanning the grid. */
function e2m1Bracket(a: number): { lo: number; hi: number; frac: number } {
  let lo = 0;
  while (lo + 1 < 8 && E2M1_MAGNITUDES[lo + 1] <= a) lo++;
  const frac = (a - E2M1_MAGNITUDES[lo]) / (E2M1_MAGNITUDES[lo + 1] - E2M1_MAGNITUDES[lo]);
  return { lo, hi: lo + 1, frac };
}

test('srE2M1: exact P(hi) over all 2^16 values of r16, neighbours only, threshold in r16', () => {
  const samples: number[] = [];
  for (const m of E2M1_MAGNITUDES.slice(0, 7)) samples.push(m, f32(m + 2 ** -20), f32(m + 0.125), f32(m + 0.25));
  for (let i = 0; i < 160; i++) samples.push(f32((i * 6) / 160 + i * 1e-4));
  samples.push(1e-40, 2 ** -17, 2 ** -18 + 2 ** -30, f32(6 - 2 ** -21), f32(0.5 - 2 ** -25));
  for (const a of samples) {
    assert.ok(a >= 0 && a < 6);
    const { lo, hi, frac } = e2m1Bracket(a);
    const expectedUp = Math.ceil(frac * 2 ** 16);
    let ups = 0;
    for (let r = 0; r < 0x10000; r++) {
      const c = srE2M1(a, r);
      if (c === hi) {
        // The first ceil(frac * 2^16) values of r16 round up: a threshold, not just a count.
        if (r !== ups) assert.unreachable(`a = ${a}: r16 = ${r} rounds up after a value that rounded down`);
        ups++;
      } else if (c !== lo) {
        assert.unreachable(`a = ${a}, r16 = ${r}: code ${c} is neither neighbour ${lo} nor ${hi}`);
      }
    }
    assert.is(ups, expectedUp, `a = ${a}, frac = ${frac}`);
  }
});

test('srE2M1: sign copied, saturation and NaN never use the draw, grid values never move', () => {
  fc.assert(
    fc.property(fc.float({ min: 0, max: 7, noNaN: true }), fc.integer({ min: 0, max: 0xffff }), (a, r) => {
      const pos = srE2M1(a, r);
      return srE2M1(-a, r) === (pos | 8) && (a >= 6 ? pos === 7 : true);
    }),
    { numRuns: 5000 },
  );
  for (let r = 0; r < 0x10000; r += 97) {
    assert.is(srE2M1(Infinity, r), 0x7);
    assert.is(srE2M1(-Infinity, r), 0xf);
    assert.is(srE2M1(6, r), 0x7);
    assert.is(srE2M1(-1e9, r), 0xf);
    assert.is(srE2M1(NaN, r), 0x7);
    assert.is(srE2M1(-0, r), 0x8);
    for (let m = 0; m < 8; m++) assert.is(srE2M1(E2M1_MAGNITUDES[m], r), m);
  }
  assert.is(srE2M1(0.75, 0x7fff), 2); // frac 1/2: r16 < 2^15 rounds up
  assert.is(srE2M1(0.75, 0x8000), 1);
  assert.is(srE2M1(-5, 0x7fff), 0xf); // frac 1/2 between 4 and 6
  assert.is(srE2M1(-5, 0x8000), 0xe);
});

// ---------------------------------------------------------------------------------------------------------------
// E4M3

test('decodeE4M3: all 256 codes against the facts of PTX-FACTS §2.2', () => {
  const facts: [number, number][] = [
    [0x00, 0],
    [0x01, 2 ** -9],
    [0x07, 0.013671875],
    [0x08, 2 ** -6],
    [0x38, 1],
    [0x7e, 448],
    [0xfe, -448],
    [0x80, -0],
    [0x3f, 1.875],
    [0x40, 2],
  ];
  for (const [c, v] of facts) assert.ok(Object.is(decodeE4M3(c), v), `${hex(c)} -> ${decodeE4M3(c)}`);
  assert.ok(Number.isNaN(decodeE4M3(0x7f)));
  assert.ok(Number.isNaN(decodeE4M3(0xff)));
  // Structure: codes 0x00..0x7E increase with steps 2^-9 over the subnormals and the first binade, the step
  // doubling every 8 codes after that; the sign bit negates.
  for (let c = 0; c < 0x7e; c++) {
    const step = 2 ** (Math.max(c >> 3, 1) - 10);
    assert.is(decodeE4M3(c + 1) - decodeE4M3(c), step, `step after ${hex(c)}`);
  }
  for (let c = 0; c < 0x7f; c++) assert.ok(Object.is(decodeE4M3(c | 0x80), -decodeE4M3(c)), hex(c | 0x80));
});

const E4M3_CODES = Array.from({ length: 0x7f }, (_, c) => c); // the 127 non-negative finite codes
const E4M3_UNITS = E4M3_CODES.map((c) => units(decodeE4M3(c)));

/** RN_E4M3 oracle: exact nearest over the decoded table (ties to the even code), |x| > 448 -> 448, NaN -> 0x7F. */
function e4m3Oracle(x: number): number {
  if (Number.isNaN(x)) return 0x7f;
  const a = Math.abs(x);
  const code = a > 448 ? 0x7e : nearestIndex(units(a), E4M3_UNITS, E4M3_CODES);
  return isNegative(x) ? code | 0x80 : code;
}

/** Binary32 inputs stratified over every exponent, near every E4M3 rounding boundary, and random patterns. */
function e4m3Inputs(): number[] {
  const bits = new Set<number>();
  for (let e = 0; e < 255; e++) {
    for (let p = 0; p < 8; p++) {
      const base = (e << 23) | (p << 20);
      for (const low of [0, 1, 0x7ffff, 0x80000, 0x80001, 0xfffff]) bits.add((base | low) >>> 0);
    }
  }
  // Every exact E4M3 value and every midpoint between neighbours, with the binary32 patterns around it.
  for (let c = 0; c < 0x7e; c++) {
    for (const v of [decodeE4M3(c), (decodeE4M3(c) + decodeE4M3(c + 1)) / 2]) {
      const b = bitsOf(v);
      for (let d = -2; d <= 2; d++) if (b + d >= 0) bits.add(b + d);
    }
  }
  let s = 12345;
  for (let i = 0; i < 20000; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    bits.add((Math.imul(s ^ (s >>> 13), 0x9e3779b1) >>> 0) & 0x7fffffff);
  }
  return [...bits].map(fromBits).filter((x) => !Number.isNaN(x));
}

test('rnE4M3: stratified binary32 inputs of both signs against the exact-nearest oracle', () => {
  let checked = 0;
  for (const a of e4m3Inputs()) {
    for (const x of [a, -a]) {
      const got = rnE4M3(x);
      if (got !== e4m3Oracle(x)) assert.unreachable(`${x} (${hex(bitsOf(x))}): ${hex(got)} vs ${hex(e4m3Oracle(x))}`);
      checked++;
    }
  }
  assert.ok(checked > 50000, `${checked} inputs`);
});

test('rnE4M3: the hardware facts of PTX-FACTS §2.2', () => {
  assert.is(rnE4M3(2 ** -10), 0x00);
  assert.is(rnE4M3(3 * 2 ** -11), 0x01);
  assert.is(rnE4M3(15 / 1024), 0x08);
  assert.is(rnE4M3(448), 0x7e);
  assert.is(rnE4M3(464), 0x7e);
  assert.is(rnE4M3(480), 0x7e);
  assert.is(rnE4M3(1e9), 0x7e);
  assert.is(rnE4M3(Infinity), 0x7e);
  assert.is(rnE4M3(-Infinity), 0xfe);
  assert.is(rnE4M3(-464), 0xfe);
  assert.is(rnE4M3(NaN), 0x7f);
  assert.is(rnE4M3(fromBits(0xffc00000)), 0x7f);
  assert.is(rnE4M3(fromBits(0xff800001)), 0x7f);
  assert.is(rnE4M3(-0), 0x80);
  assert.is(rnE4M3(0), 0x00);
  assert.is(rnE4M3(1), 0x38);
  assert.is(rnE4M3(1.0625), 0x38); // tie between 1 and 1.125 -> even
  assert.is(rnE4M3(1.1875), 0x3a); // tie between 1.125 and 1.25 -> even
});

/** E4M3 neighbours of 0 <= c < 448 from the decoded table: down = largest value <= c, up = the next code. */
function e4m3Bracket(c: number): { down: number; up: number; frac: number } {
  let down = 0;
  while (decodeE4M3(down + 1) <= c) down++;
  const lo = decodeE4M3(down);
  return { down, up: down + 1, frac: (c - lo) / (decodeE4M3(down + 1) - lo) };
}

test('srE4M3: neighbours and exact P(up) over the 2^24 classes of r32 >>> 8', () => {
  const samples: number[] = [
    0,
    2 ** -12,
    1e-30,
    2 ** -9,
    f32(2 ** -9 * 1.3),
    f32(2 ** -6 - 2 ** -30),
    2 ** -6,
    f32(0.3),
    1,
    f32(1 + 2 ** -23),
    f32(1.0625),
    f32(3.14159),
    f32(100.5),
    f32(447.9),
    f32(416 + 2 ** -15),
  ];
  fc.sample(fc.float({ min: 0, max: Math.fround(447.99), noNaN: true }), { numRuns: 200, seed: 7 }).forEach((v) =>
    samples.push(v),
  );
  // Exhaustive over every class for a few values, the class threshold for the rest.
  const exhaustive = new Set([f32(0.3), f32(2 ** -9 * 1.3), f32(1 + 2 ** -23)]);
  for (const c of samples) {
    const { down, up, frac } = e4m3Bracket(c);
    const expectedUp = Math.ceil(frac * 2 ** 24);
    if (exhaustive.has(c)) {
      let ups = 0;
      for (let k = 0; k < 2 ** 24; k++) {
        const got = srE4M3(c, k * 256);
        if (got === up) ups++;
        else if (got !== down) assert.unreachable(`${c}: class ${k} gives ${hex(got)}`);
      }
      assert.is(ups, expectedUp, `${c}`);
    }
    // Classes below the threshold round up, the others down; the low 8 bits of r32 never matter.
    for (const k of [0, 1, expectedUp - 2, expectedUp - 1, expectedUp, expectedUp + 1, 2 ** 24 - 1]) {
      if (k < 0 || k >= 2 ** 24) continue;
      const want = k < expectedUp ? up : down;
      assert.is(srE4M3(c, k * 256), want, `${c} class ${k}`);
      assert.is(srE4M3(c, k * 256 + 255), want, `${c} class ${k} low bits`);
    }
  }
  for (const r of [0, 0x12345678, 0xffffffff]) {
    assert.is(srE4M3(448, r), 0x7e);
    assert.is(srE4M3(1e6, r), 0x7e);
    assert.is(srE4M3(Infinity, r), 0x7e);
    assert.is(srE4M3(NaN, r), 0x7f);
    for (let code = 0; code < 0x7f; code++) assert.is(srE4M3(decodeE4M3(code), r), code);
  }
  assert.is(srE4M3(2 ** -10, 0x7fffff00), 0x01); // frac 1/2 between 0 and 2^-9
  assert.is(srE4M3(2 ** -10, 0x80000000), 0x00);
});

// ---------------------------------------------------------------------------------------------------------------
// P4

/** Spacing of the P4 grid around a >= 0: 3 explicit mantissa bits in binary32's exponent range. */
function p4Spacing(a: number): number {
  if (a < 2 ** -126) return 2 ** -129; // binary32 subnormals: bit 20 of the pattern weighs 2^-129
  let e = -126;
  while (2 ** (e + 1) <= a) e++;
  return 2 ** (e - 3);
}

function rnP4Oracle(a: number): number {
  if (a === Infinity) return Infinity;
  const step = p4Spacing(a);
  const q = a / step; // exact
  const fl = Math.floor(q);
  const r = q - fl > 0.5 || (q - fl === 0.5 && fl % 2 === 1) ? fl + 1 : fl;
  return f32(r * step); // 2^128 -> Infinity, as RNE overflow
}

function p4Inputs(): number[] {
  const out: number[] = [0, Infinity, fromBits(0x7f7fffff), fromBits(0x7f780000), fromBits(0x7f7fffff - 0x80000)];
  for (let e = 0; e < 255; e++) {
    for (let p = 0; p < 8; p++) {
      for (const low of [0, 1, 0x7ffff, 0x80000, 0x80001, 0xfffff, 0x3a5c1]) {
        out.push(fromBits(((e << 23) | (p << 20) | low) >>> 0));
      }
    }
  }
  return out;
}

test('rnP4: RNE to 3 mantissa bits against an arithmetic oracle over every exponent, ties included', () => {
  for (const a of p4Inputs()) {
    const want = rnP4Oracle(a);
    assert.ok(Object.is(rnP4(a), want), `${a} (${hex(bitsOf(a))}): ${rnP4(a)} vs ${want}`);
    assert.ok(Object.is(rnP4(-a), -want), `${-a}`);
  }
  assert.is(rnP4(1 + 2 ** -4), 1); // tie -> even
  assert.is(rnP4(1 + 3 * 2 ** -4), 1.25); // tie -> even
  assert.is(rnP4(447), 448);
  assert.is(rnP4(460), 448);
  assert.is(rnP4(472), 480);
  assert.ok(Number.isNaN(rnP4(NaN)));
  assert.ok(Number.isNaN(rnP4(fromBits(0x7f800001))));
});

test('P4 values are exact in bf16 and, scaled into [2^-6, 448], in E4M3', () => {
  fc.assert(
    fc.property(
      fc.float({ min: 2 ** -120, max: 2 ** 120, noNaN: true }),
      fc.integer({ min: 0, max: 0xffffffff }),
      (x, r) => {
        for (const p of [rnP4(x), srP4(x, r)]) {
          if (bf16BitsToF32(f32ToBf16Bits(p)) !== p) return false;
          let k = 0;
          while (p * 2 ** k > 448) k--;
          while (p * 2 ** k < 2 ** -6) k++;
          const scaled = p * 2 ** k;
          if (decodeE4M3(rnE4M3(scaled)) !== scaled) return false;
        }
        return true;
      },
    ),
    { numRuns: 20000 },
  );
});

test('srP4: neighbours, exact P(up) over the 2^20 classes of r32 >>> 12, sign and specials', () => {
  const inputs = p4Inputs().filter((a) => Number.isFinite(a) && a < 2 ** 127);
  for (const a of inputs) {
    const step = p4Spacing(a);
    const down = Math.floor(a / step) * step;
    const up = down + step;
    const lowBits = ((a - down) / step) * 2 ** 20; // frac * 2^20: an integer
    for (const k of [0, lowBits - 1, lowBits, 2 ** 20 - 1]) {
      if (k < 0) continue;
      const want = k < lowBits ? up : down;
      assert.is(srP4(a, k * 4096), want, `${a} class ${k}`);
      assert.is(srP4(a, k * 4096 + 4095), want, `${a} class ${k} low bits`);
      assert.ok(Object.is(srP4(-a, k * 4096), -want));
    }
  }
  for (const a of [f32(1.3), f32(3e-20), 2 ** -140 * 3]) {
    const step = p4Spacing(a);
    const frac = (a - Math.floor(a / step) * step) / step;
    let ups = 0;
    for (let k = 0; k < 2 ** 20; k++) if (srP4(a, k * 4096) > a) ups++;
    assert.is(ups, Math.ceil(frac * 2 ** 20), `${a}`);
  }
  assert.is(srP4(1.5, 0), 1.5);
  assert.is(srP4(Infinity, 0), Infinity);
  assert.ok(Number.isNaN(srP4(NaN, 0)));
  assert.is(srP4(fromBits(0x7f7fffff), 0), Infinity); // up from the largest P4 binade is the overflow pattern
});

// ---------------------------------------------------------------------------------------------------------------
// UE8M0

test('UE8M0: powers of two, values with mantissa bits set, clamps, decode', () => {
  const smallestPowerAtLeast = (x: number): number => {
    let k = -160;
    while (2 ** k < x) k++;
    return Math.min(127, Math.max(-127, k));
  };
  for (let e = -149; e <= 127; e++) {
    assert.is(rpUE8M0(2 ** e), Math.max(-127, e) + 127, `2^${e}`);
    if (e >= -126 && e < 127) {
      assert.is(rpUE8M0(f32(2 ** e * (1 + 2 ** -23))), e + 128, `2^${e}(1+ulp)`);
      assert.is(rpUE8M0(f32(2 ** e * 1.5)), e + 128, `1.5*2^${e}`);
      assert.is(rpUE8M0(f32(2 ** e * (2 - 2 ** -23))), e + 128, `2^${e + 1}-ulp`);
    }
  }
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 0x7f7fffff }), (b) => {
      const x = fromBits(b);
      return rpUE8M0(x) === smallestPowerAtLeast(x) + 127;
    }),
    { numRuns: 20000 },
  );
  assert.is(rpUE8M0(2 ** 127 * 1.5), 254);
  assert.is(rpUE8M0(fromBits(0x7f7fffff)), 254);
  assert.is(rpUE8M0(Infinity), 254);
  assert.is(rpUE8M0(2 ** -127), 0);
  assert.is(rpUE8M0(fromBits(0x00400001)), 1); // just above 2^-127 -> 2^-126
  assert.is(rpUE8M0(2 ** -149), 0);
  assert.is(rpUE8M0(1), 127);
  assert.is(rpUE8M0(6), 130);
  assert.is(rpUE8M0(f32(6 / 6)), 127);
  for (let c = 0; c < 255; c++) assert.is(decodeUE8M0(c), 2 ** (c - 127), `code ${c}`);
  assert.ok(Number.isNaN(decodeUE8M0(255)));
});

test.run();
