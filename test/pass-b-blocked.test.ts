// Pass B's blocked path (runtime/qgen_quantize_kernel.cuh qgen_one_pass_finalize_blocked: 128x4 scales, K a multiple
// of 256 columns): a model of its warp item / lane -> (row, 16 groups) mapping and of the byte address each 32-bit
// store goes to, checked against the reference layout (reference/layout.ts): every (row, group) of the tensor is
// finalized exactly once with its own logical group index (the Philox key), each quad's word lands where the layout
// puts those 4 groups, and every warp store covers one 128-byte aligned run, so it is one coalesced request.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { scaleOffset128x4 } from '../reference/layout.ts';

interface Store {
  item: number;
  j: number;
  lane: number;
  address: number;
  groups: number[]; // logical group indices row * Kb + kb, byte order of the word
}

/** The stores of the blocked path for a [rows, 16 Kb] tensor, as the kernel's index arithmetic computes them. */
function blockedStores(rows: number, groupsPerRow: number): Store[] {
  const chunks = groupsPerRow / 16;
  const items = Math.ceil(rows / 128) * 4 * chunks;
  const out: Store[] = [];
  for (let item = 0; item < items; item++) {
    const c = item % chunks,
      ro = Math.floor(item / chunks);
    for (let lane = 0; lane < 32; lane++) {
      const q = (lane % 8) + 32 * Math.floor(lane / 8);
      const rIn = q + 8 * (ro % 4);
      const row = Math.floor(ro / 4) * 128 + rIn;
      if (row >= rows) continue;
      const g0 = row * groupsPerRow + 16 * c;
      const rowInBlock = (rIn % 32) * 16 + Math.floor(rIn / 32) * 4; // qgen_scale_row_in_block
      const block = (Math.floor(ro / 4) * (groupsPerRow / 4) + 4 * c) * 512 + rowInBlock;
      for (let j = 0; j < 4; j++) {
        const g = g0 + 4 * j;
        out.push({ item, j, lane, address: block + 512 * j, groups: [g, g + 1, g + 2, g + 3] });
      }
    }
  }
  return out;
}

test('blocked pass B: every group once, at the layout address of its quad, under its own index', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 700 }), fc.integer({ min: 1, max: 6 }), (rows, chunks) => {
      const Kb = 16 * chunks;
      const seen = new Uint8Array(rows * Kb);
      for (const s of blockedStores(rows, Kb)) {
        const row = Math.floor(s.groups[0] / Kb),
          kb = s.groups[0] % Kb;
        assert.is(kb % 4, 0);
        assert.is(s.address, scaleOffset128x4(row, kb, Kb), `row ${row} quad ${kb / 4}`);
        for (let b = 0; b < 4; b++) {
          assert.is(s.groups[b], row * Kb + kb + b);
          assert.is(scaleOffset128x4(row, kb + b, Kb), s.address + b, 'byte b of the word is group kb + b');
          seen[s.groups[b]]++;
        }
      }
      assert.ok(
        seen.every((n) => n === 1),
        `rows ${rows}, Kb ${Kb}: every group exactly once`,
      );
    }),
    { numRuns: 60, seed: 7 },
  );
});

test('blocked pass B: a warp store writes one 128-byte aligned run (32 words when no row is past the end)', () => {
  const stores = blockedStores(300, 48);
  const byStore = new Map<string, number[]>();
  for (const s of stores) {
    const key = `${s.item}/${s.j}`;
    byStore.set(key, [...(byStore.get(key) ?? []), s.address]);
  }
  let full = 0;
  for (const [key, addrs] of byStore) {
    const lo = Math.min(...addrs);
    assert.is(Math.floor(lo / 128), Math.floor(Math.max(...addrs) / 128), `${key}: one 128-byte run`);
    assert.is(new Set(addrs).size, addrs.length, `${key}: distinct words`);
    if (addrs.length === 32) {
      full++;
      assert.is(lo % 128, 0);
    }
  }
  assert.ok(full > 0);
});

test('the kernel uses the mapping modelled here (the index lines the model copies)', () => {
  const src = readFileSync(new URL('../runtime/qgen_quantize_kernel.cuh', import.meta.url), 'utf8');
  for (const line of [
    'const uint32_t q = lane % 8u + 32u * (lane / 8u);',
    'const int64_t c = item % chunks, ro = item / chunks;',
    'const uint32_t r_in = q + 8u * static_cast<uint32_t>(ro % 4);',
    'const int64_t row = ro / 4 * 128 + r_in;',
    'const int64_t g0 = row * groups_per_row + 16 * c;',
    'uint8_t* block = args.scales + (ro / 4 * (groups_per_row / 4) + 4 * c) * 512 + qgen_scale_row_in_block(r_in);',
    '*reinterpret_cast<uint32_t*>(block + 512 * j) = s[0] | (s[1] << 8) | (s[2] << 16) | (s[3] << 24);',
    // a group finalized after the unrolled loop (MS-EDEN's stochastic scales): byte j % 4 of word j / 4, i.e. the
    // address the first test checks for group 16 c + j
    'block[512 * (j / 4) + j % 4] = static_cast<uint8_t>(s);',
  ])
    assert.ok(src.includes(line), line);
});

test.run();
