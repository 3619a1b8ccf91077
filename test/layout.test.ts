// Packed E2M1 codes (NUMERICS §2.7) and scale layouts (NUMERICS §7, PTX-FACTS §4.5): hand-computed offsets, an
// independent construction of the 128x4 layout from its atoms, bijectivity, zero padding and round trips.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { layoutScales, packCodes, readScales, scaleBytes, scaleOffset128x4, unpackCodes } from '../reference/layout.ts';

test('packCodes: lower index in bits 3:0; unpackCodes inverts it', () => {
  assert.equal(Array.from(packCodes(Uint8Array.from([0x1, 0x2, 0xf, 0x8]))), [0x21, 0x8f]);
  assert.equal(Array.from(unpackCodes(Uint8Array.from([0x21, 0x8f]), 4)), [0x1, 0x2, 0xf, 0x8]);
  assert.equal(Array.from(unpackCodes(Uint8Array.from([0x21, 0x8f]), 3)), [0x1, 0x2, 0xf]);
  assert.throws(() => packCodes(new Uint8Array(3)), RangeError);
  assert.throws(() => unpackCodes(new Uint8Array(1), 3), RangeError);
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 0, max: 15 }), { maxLength: 200 }).filter((a) => a.length % 2 === 0),
      (codes) => {
        const packed = packCodes(Uint8Array.from(codes));
        if (packed.length !== codes.length / 2) return false;
        for (let i = 0; i < packed.length; i++) {
          if (packed[i] !== codes[2 * i] + 16 * codes[2 * i + 1]) return false;
        }
        return unpackCodes(packed, codes.length).join() === codes.join();
      },
    ),
    { numRuns: 500 },
  );
});

test('scaleOffset128x4: small cases computed by hand from the formula of PTX-FACTS §4.5', () => {
  // off = ((r div 128) * ceil(Kb/4) + kb div 4) * 512 + (r mod 32) * 16 + ((r mod 128) div 32) * 4 + kb mod 4
  assert.is(scaleOffset128x4(0, 0, 1), 0);
  assert.is(scaleOffset128x4(33, 5, 8), 533); // (0*2 + 1)*512 + 1*16 + 1*4 + 1
  assert.is(scaleOffset128x4(1, 0, 4), 16);
  assert.is(scaleOffset128x4(32, 0, 4), 4);
  assert.is(scaleOffset128x4(96, 3, 4), 15); // 0 + 0*16 + 3*4 + 3
  assert.is(scaleOffset128x4(127, 3, 4), 511); // the last byte of the first atom
  assert.is(scaleOffset128x4(128, 0, 4), 512);
  assert.is(scaleOffset128x4(130, 2, 5), 1058); // (1*2 + 0)*512 + 2*16 + 0 + 2
  assert.is(scaleOffset128x4(200, 9, 10), 2697); // (1*3 + 2)*512 + 8*16 + 2*4 + 1
  assert.is(scaleBytes(1, 1, '128x4'), 512);
  assert.is(scaleBytes(129, 5, '128x4'), 256 * 8);
  assert.is(scaleBytes(128, 4, '128x4'), 512);
  assert.is(scaleBytes(3, 5, 'row-major'), 15);
});

/**
 * The 128x4 layout built from its description instead of the formula: atoms of 128 rows x 4 scale columns, stored
 * K-atom-fastest; inside an atom the bytes are a [32][4][4] array indexed [r mod 32][(r mod 128) div 32][kb mod 4].
 * Returns, for every byte of the buffer, the (r, kb) it holds, or null for padding.
 */
function atomMap(rows: number, Kb: number): ([number, number] | null)[] {
  const map: ([number, number] | null)[] = [];
  const rowBlocks = Math.ceil(rows / 128);
  const colBlocks = Math.ceil(Kb / 4);
  for (let rb = 0; rb < rowBlocks; rb++) {
    for (let cb = 0; cb < colBlocks; cb++) {
      for (let r32 = 0; r32 < 32; r32++) {
        for (let quarter = 0; quarter < 4; quarter++) {
          for (let c = 0; c < 4; c++) {
            const r = rb * 128 + quarter * 32 + r32;
            const kb = cb * 4 + c;
            map.push(r < rows && kb < Kb ? [r, kb] : null);
          }
        }
      }
    }
  }
  return map;
}

const shapes: [number, number][] = [
  [1, 1],
  [1, 4],
  [5, 3],
  [33, 8],
  [127, 5],
  [128, 4],
  [129, 1],
  [200, 9],
  [256, 12],
  [300, 17],
];

test('128x4: the formula equals the atom construction, a bijection onto the non-padding bytes', () => {
  for (const [rows, Kb] of shapes) {
    const map = atomMap(rows, Kb);
    assert.is(map.length, scaleBytes(rows, Kb, '128x4'), `${rows}x${Kb} size`);
    const seen = new Set<number>();
    for (let r = 0; r < rows; r++) {
      for (let kb = 0; kb < Kb; kb++) {
        const off = scaleOffset128x4(r, kb, Kb);
        assert.equal(map[off], [r, kb], `${rows}x${Kb}: (${r}, ${kb}) at ${off}`);
        assert.not.ok(seen.has(off), `offset ${off} used twice`);
        seen.add(off);
      }
    }
    assert.is(seen.size, map.filter((e) => e !== null).length);
  }
});

test('layoutScales / readScales: padding is zero, both layouts round-trip', () => {
  for (const [rows, Kb] of shapes) {
    // Codes 1..255 so that no real scale is 0 and padding is recognisable.
    const scales = Uint8Array.from({ length: rows * Kb }, (_, i) => 1 + ((i * 37 + 11) % 255));
    const tiled = layoutScales(scales, rows, Kb, '128x4');
    const map = atomMap(rows, Kb);
    assert.is(tiled.length, map.length);
    for (let off = 0; off < map.length; off++) {
      const e = map[off];
      assert.is(tiled[off], e === null ? 0 : scales[e[0] * Kb + e[1]], `${rows}x${Kb} byte ${off}`);
    }
    assert.equal(readScales(tiled, rows, Kb, '128x4'), scales);
    const plain = layoutScales(scales, rows, Kb, 'row-major');
    assert.equal(plain, scales);
    assert.ok(plain !== scales, 'a copy');
    assert.equal(readScales(plain, rows, Kb, 'row-major'), scales);
  }
  assert.throws(() => layoutScales(new Uint8Array(5), 2, 3, '128x4'), RangeError);
  assert.throws(() => readScales(new Uint8Array(100), 2, 3, '128x4'), RangeError);
});

test.run();
