// The bandwidth form of the bf16 plane (NUMERICS §6.4 / §6.6; bench/NOTES.md "Issue 15/16: bandwidth-form
// dequantize and plane pass B"): the byte-table decode of runtime/qgen_dequantize.cuh (host build of the same
// header code; the device differs only in the prmt / bf16x2 multiply / E4M3 widening intrinsics) against the
// contract's value for every code at every position and every scale byte, and models of the two thread -> piece
// mappings (plane-writing pass B, the dequantize kernel's group walk) over shapes with tails.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { compileCuda } from '../harness/nvcc.ts';
import { vendor } from '../emit/vendor.ts';
import { decodeE2M1, decodeE4M3 } from '../reference/formats.ts';

const root = fileURLToPath(new URL('../', import.meta.url));
const runtimeDir = path.join(root, 'runtime');

// Words whose 8 codes are (r + i) mod 16 at position i: over r = 0..15 every code sits at every position.
const PROGRAM = `#include <cstdio>
#include <cstdint>
#include "qgen_dequantize.cuh"
int main() {
  for (uint32_t r = 0; r < 16; ++r) {
    uint32_t word = 0;
    for (uint32_t i = 0; i < 8; ++i) word |= ((r + i) & 15u) << (4 * i);
    for (uint32_t s = 0; s < 256; ++s) {
      const uint4 v = qgen_nvfp4_bf16_piece(word, qgen_bf16x2_of_e4m3(s));
      printf("%08x %08x %08x %08x\\n", v.x, v.y, v.z, v.w);
    }
  }
  return 0;
}
`;

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const bitsOf = (x: number) => ((f32[0] = x), u32[0]);

test('bf16 piece decode: bf16(e2m1 * e4m3) exactly for every code at every position and every scale byte', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qgen-plane-bw-'));
  const src = path.join(dir, 'piece.cu');
  writeFileSync(src, PROGRAM);
  const exe = path.join(dir, 'piece');
  await compileCuda({ sources: [src], arch: 'sm_90a', out: exe, output: 'executable', includeDirs: [runtimeDir] });
  const { stdout } = await execa(exe, []);
  const lines = stdout.trim().split('\n');
  assert.is(lines.length, 16 * 256);
  let checked = 0;
  const bad: string[] = [];
  for (let r = 0; r < 16; r++) {
    for (let s = 0; s < 256; s++) {
      const words = lines[r * 256 + s].split(' ').map((h) => parseInt(h, 16));
      for (let i = 0; i < 8; i++) {
        const got = (words[i >> 1] >>> (16 * (i & 1))) & 0xffff;
        const code = (r + i) & 15;
        const want = decodeE2M1(code) * decodeE4M3(s); // binary64, exact (<= 6 significant bits)
        checked++;
        if (Number.isNaN(want)) {
          if ((got & 0x7f80) !== 0x7f80 || (got & 0x7f) === 0) bad.push(`code ${code} scale 0x${s.toString(16)}: NaN`);
          continue;
        }
        const bits = bitsOf(want);
        assert.is(bits & 0xffff, 0, `the product ${want} is not a bf16 value`);
        const where = `code ${code} at ${i}, scale 0x${s.toString(16)}`;
        if (got !== bits >>> 16 && bad.length < 5)
          bad.push(`${where}: 0x${got.toString(16)}, want 0x${(bits >>> 16).toString(16)}`);
      }
    }
  }
  assert.is(checked, 16 * 256 * 8);
  assert.equal(bad, []);
});

/**
 * Model of pass B of a plane-writing kernel (runtime/qgen_quantize_kernel.cuh qgen_one_pass_finalize_plane): per
 * warp step w0, lane l finalizes groups w0 + 8 l .. + 7 into the warp's exchanged bytes (index: group - w0), and
 * writes pieces 2 w0 + 32 k + l (k < 16) with the byte at 16 k + l / 2. Returns per piece the group whose scale it
 * used (-1: never written; -2: written twice) and how often each group was finalized.
 */
function passBPlaneModel(groups: number, threads: number, blocks: number) {
  const FINALIZE = 8,
    PIECES = 2 * FINALIZE;
  const pieces = 2 * groups;
  const used = new Int32Array(pieces).fill(-1);
  const finalized = new Int32Array(groups);
  const step = blocks * threads * FINALIZE;
  for (let b = 0; b < blocks; b++) {
    for (let warp = 0; warp < threads / 32; warp++) {
      const warpFirst = (b * threads + 32 * warp) * FINALIZE;
      for (let w0 = warpFirst; w0 < groups; w0 += step) {
        const exchanged = new Int32Array(32 * FINALIZE).fill(-1); // stale bytes of a previous step: not a group
        for (let lane = 0; lane < 32; lane++) {
          const i0 = w0 + FINALIZE * lane;
          if (i0 >= groups) continue;
          for (let j = 0; j < FINALIZE; j++) {
            if (i0 + j < groups) finalized[i0 + j]++;
            exchanged[FINALIZE * lane + j] = i0 + j; // the byte of group i0 + j (zero group's past the end)
          }
        }
        for (let lane = 0; lane < 32; lane++) {
          for (let k = 0; k < PIECES; k++) {
            const p = 2 * w0 + 32 * k + lane;
            if (p >= pieces) continue;
            used[p] = used[p] === -1 ? exchanged[16 * k + (lane >> 1)] : -2;
          }
        }
      }
    }
  }
  return { used, finalized };
}

test('pass B plane mapping (model): every piece written once, with the scale of its own group; tails', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 300 }), // rows
      fc.integer({ min: 1, max: 40 }), // groups per row (cols / 16)
      fc.constantFrom(32, 64, 128, 256),
      fc.integer({ min: 1, max: 5 }), // grid blocks (small: several steps per warp)
      (rows, kb, threads, blocks) => {
        const groups = rows * kb;
        const { used, finalized } = passBPlaneModel(groups, threads, blocks);
        for (let p = 0; p < used.length; p++) if (used[p] !== p >> 1) return false;
        return finalized.every((n) => n === 1);
      },
    ),
    { numRuns: 300 },
  );
  // the smallest tensors: one group, one row of 16 elements
  const one = passBPlaneModel(1, 128, 1);
  assert.equal(Array.from(one.used), [0, 0]);
});

test('pass B plane: the kernel source matches the model (piece 2 w0 + 32 k + lane, byte 16 k + lane / 2)', () => {
  const src = readFileSync(path.join(runtimeDir, 'qgen_quantize_kernel.cuh'), 'utf8');
  assert.match(src, /constexpr int QGEN_PLANE_PIECES = 2 \* QGEN_FINALIZE_GROUPS;/);
  assert.match(src, /p0 = 2 \* w0 \+ lane;/);
  assert.match(src, /scale_bytes\[16 \* k \+ \(lane >> 1\)\]/);
  assert.match(src, /exchanged\[warp\]\[2 \* lane\]/);
});

/**
 * Model of pass A's plane stores (runtime/qgen_quantize_plane.cuh store_pass_a) over the segment orders of
 * runtime/qgen_segment.cuh: lane l of a warp holds item warp_item + l (warp_item a multiple of 32); row-major:
 * (row, segment) = item divmod ceil(cols / E); column-major: item = (unit * rows + row) * L + lane, k0 = unit E L +
 * lane E (the staged tile gives each used block the same segments). Where the kernel decides that lanes pair
 * (pairs_static: L >= 2 and kColsMultiple a multiple of E L; row-major L = 1: cols a multiple of 2 E), lane pairs
 * (2j, 2j + 1) write through store_pairs: per group g, the first store at q + 32 g and the second at q + 32 g + 2 E
 * (q = own base - odd * (2 E - 16) bytes) of code word `kind` (odd: .y, even: .x) of lane src1 = odd ? partner :
 * self, resp. src2 = odd ? self : partner, with that lane's proxy. Returns the first violation, or null: every piece
 * of every active segment written exactly once, at its own address (row * cols + k0 + 16 g + 8 kind elements), from
 * its own lane's word and proxy; in paired mode both lanes of a pair active or both not, and each store instruction
 * of a pair one whole 32-byte-aligned sector.
 */
type PairOrder = 'row-major' | 'column-major';
interface PairMapping {
  oddOffset: number; // bytes below its own segment the odd lane's first store goes (kernel: 2 E - 16)
  secondOffset: number; // bytes above the first store the second goes (kernel: 2 E)
  srcFirstOdd: 'partner' | 'self'; // where the odd lane's first word comes from (kernel: partner)
  rowMajorL1Multiple: number; // row-major L = 1 pairs iff cols % this == 0 (kernel: 2 E)
}
const E = 32,
  G = 2;
const KERNEL_MAPPING: PairMapping = {
  oddOffset: 2 * E - 16,
  secondOffset: 2 * E,
  srcFirstOdd: 'partner',
  rowMajorL1Multiple: 2 * E,
};

function planePassAModel(
  order: PairOrder,
  L: number,
  colsMultiple: number,
  rows: number,
  cols: number,
  threads: number,
  blocks: number,
  m: PairMapping,
): string | null {
  const pairsStatic = L >= 2 && colsMultiple % (E * L) === 0;
  const pairs = pairsStatic || (order === 'row-major' && L === 1 && cols % m.rowMajorL1Multiple === 0);
  const segsPerRow = Math.ceil(cols / E);
  const items = order === 'row-major' ? rows * segsPerRow : Math.ceil(cols / (E * L)) * rows * L;
  const segment = (item: number) => {
    if (order === 'row-major') return { row: Math.floor(item / segsPerRow), k0: (item % segsPerRow) * E };
    const q = Math.floor(item / L);
    return { row: q % rows, k0: Math.floor(q / rows) * E * L + (item % L) * E };
  };
  const written = new Map<number, number>(); // byte address of a piece -> times written
  const stride = blocks * threads;
  for (let b = 0; b < blocks; b++) {
    for (let warp = 0; warp < threads / 32; warp++) {
      for (let w0 = b * threads + 32 * warp; w0 < items; w0 += stride) {
        const lanes = Array.from({ length: 32 }, (_, l) => {
          const s = segment(w0 + l);
          return { ...s, active: w0 + l < items && s.row < rows, base: 2 * (s.row * cols + s.k0) };
        });
        // what a store writes: the piece (kind) of group g of lane src, whose own address it must be
        const put = (l: number, addr: number, src: number, g: number, kind: number) => {
          const want = lanes[src].base + 32 * g + 16 * kind;
          if (!lanes[src].active || addr !== want)
            return `lane ${l} writes piece ${2 * g + kind} of lane ${src} at ${addr}, not ${want}`;
          written.set(addr, (written.get(addr) ?? 0) + 1);
          return null;
        };
        for (let l = 0; l < 32; l++) {
          const me = lanes[l];
          if (!pairs) {
            if (!me.active) continue;
            for (let g = 0; g < G && me.k0 + 16 * g < cols; g++)
              for (let kind = 0; kind < 2; kind++) {
                const bad = put(l, me.base + 32 * g + 16 * kind, l, g, kind);
                if (bad) return bad;
              }
            continue;
          }
          const odd = l & 1,
            partner = l ^ 1;
          if (me.active !== lanes[partner].active) return `pair ${l >> 1}: one lane active`;
          if (!me.active) continue;
          const q = me.base - odd * m.oddOffset;
          for (let g = 0; g < G; g++) {
            const src1 = odd ? (m.srcFirstOdd === 'partner' ? partner : l) : l,
              src2 = odd ? l : partner;
            const bad = put(l, q + 32 * g, src1, g, odd) ?? put(l, q + 32 * g + m.secondOffset, src2, g, odd);
            if (bad) return bad;
            if (!odd) {
              // the pair's two instructions for g: this lane's address and its partner's, 16 bytes above
              const qb = lanes[partner].base - m.oddOffset;
              for (const [a, c] of [
                [q + 32 * g, qb + 32 * g],
                [q + 32 * g + m.secondOffset, qb + 32 * g + m.secondOffset],
              ])
                if (a % 32 !== 0 || c !== a + 16)
                  return `pair ${l >> 1}, group ${g}: bytes ${a} and ${c}: not one sector`;
            }
          }
        }
      }
    }
  }
  // every piece of the tensor exactly once (pieces past cols are never written)
  let expected = 0;
  for (let r = 0; r < rows; r++)
    for (let k = 0; k < cols; k += 8) {
      expected++;
      const n = written.get(2 * (r * cols + k)) ?? 0;
      if (n !== 1) return `row ${r} column ${k}: written ${n} times`;
    }
  return written.size === expected ? null : `${written.size - expected} pieces written outside the tensor`;
}

const pairShapes = fc.record({
  config: fc.constantFrom<[PairOrder, number, number]>(
    ['row-major', 1, 16], // quartet2_{x,w}_46_dqplane
    ['row-major', 4, 128], // quartet2_e_mseden_rht128_dqplane
    ['column-major', 4, 128], // the transposed-tile ones (et, xt_rq, wt_rq)
    ['column-major', 1, 16], // never pairs: adjacent lanes are adjacent rows
    ['row-major', 2, 64],
  ),
  rows: fc.integer({ min: 1, max: 40 }),
  cols16: fc.integer({ min: 1, max: 24 }), // cols / 16 before rounding up to the config's multiple
  threads: fc.constantFrom(32, 64, 128),
  blocks: fc.integer({ min: 1, max: 3 }),
});
const colsOf = (cols16: number, multiple: number) => Math.ceil((16 * cols16) / multiple) * multiple;

test('pass A plane stores (model): pairs fill whole sectors, each piece once at its own address; mutants fail', () => {
  fc.assert(
    fc.property(pairShapes, ({ config: [order, L, multiple], rows, cols16, threads, blocks }) => {
      const cols = colsOf(cols16, multiple);
      const bad = planePassAModel(order, L, multiple, rows, cols, threads, blocks, KERNEL_MAPPING);
      assert.is(bad, null, `${order} L=${L} ${rows}x${cols} (${threads} x ${blocks})`);
    }),
    { numRuns: 400 },
  );
  // each mutation of the mapping or of the pairing decision is caught on some shape
  const mutants: [string, PairMapping][] = [
    ['odd offset 32', { ...KERNEL_MAPPING, oddOffset: 32 }],
    ['odd offset 2E', { ...KERNEL_MAPPING, oddOffset: 2 * E }],
    ['second store 32 above', { ...KERNEL_MAPPING, secondOffset: 32 }],
    ['odd first word its own', { ...KERNEL_MAPPING, srcFirstOdd: 'self' }],
    ['row-major L=1 pairs when cols % E == 0', { ...KERNEL_MAPPING, rowMajorL1Multiple: E }],
  ];
  for (const [name, mapping] of mutants) {
    let caught = false;
    for (const [order, L, multiple] of [
      ['row-major', 1, 16],
      ['row-major', 4, 128],
      ['column-major', 4, 128],
    ] as const)
      for (const cols of [16, 48, 96, 128, 160, 256])
        if (cols % multiple === 0 && planePassAModel(order, L, multiple, 5, cols, 64, 2, mapping) !== null)
          caught = true;
    assert.ok(caught, `mutant not caught: ${name}`);
  }
});

test('pass A plane stores: the kernel source matches the model (offsets, words, proxies, the pairing rule)', () => {
  const src = readFileSync(path.join(runtimeDir, 'qgen_quantize_plane.cuh'), 'utf8');
  assert.match(
    src,
    /return C::kLanes >= 2 && !C::Order::kBlock16 && C::kColsMultiple % \(C::kElems \* C::kLanes\) == 0;/,
  );
  assert.match(src, /return pairs_static<C>\(\) \|\| cols % \(2 \* C::kElems\) == 0;/);
  assert.match(src, /__shfl_xor_sync\(0xFFFFFFFFu, odd \? codes\[g\]\.x : codes\[g\]\.y, 1\)/);
  assert.match(src, /first\[g\] = odd \? other : codes\[g\]\.x;\n\s+second\[g\] = odd \? codes\[g\]\.y : other;/);
  assert.match(src, /first_proxies\[w\] = odd \? other : own;\n\s+second_proxies\[w\] = odd \? own : other;/);
  assert.match(src, /q = own - parity \* \(C::kElems \/ 8 - 1\);/); // uint4 units: 2 E - 16 bytes
  assert.match(src, /q\[2 \* g\] = qgen_nvfp4_bf16_piece\(first\[g\], half_pair\(first_proxies\[g \/ 2\], g % 2\)\);/);
  assert.match(src, /q\[2 \* g \+ C::kElems \/ 8\] = qgen_nvfp4_bf16_piece\(second\[g\],/); // 2 E bytes above
  // every lane reaches the exchange: the call is outside qgen_quantize_pass's `if (active)`
  const kernel = readFileSync(path.join(runtimeDir, 'qgen_quantize_kernel.cuh'), 'utf8');
  assert.match(kernel, /store_pass_a<C>\(args, cols, s, active, codes, stored\);/);
});

/**
 * Model of the dequantize kernel's group walk (templates/dequantize.cu.hbs): qgen_item_walk<P> over base (a
 * division at the start, then additions), and piece base + 32 c in group g0 + c * (32 / P), advanced by additions
 * with wrap-around. Returns false at the first piece whose (row, group) differs from (p / P) divmod Kb.
 */
function dequantizeWalkAgrees(rows: number, kb: number, P: number, threads: number, blocks: number, C: number) {
  const pieces = (rows * kb * 16 * P) / 2 / 8; // rows * cols / 8, cols = 8 P kb
  const stride = blocks * threads * C;
  const stepQ = Math.floor(stride / P / kb),
    stepR = (stride / P) % kb;
  for (let b = 0; b < blocks; b++) {
    for (let t = 0; t < threads; t++) {
      const first = (b * threads + (t & ~31)) * C + (t & 31);
      let q = Math.floor(Math.floor(first / P) / kb),
        r = Math.floor(first / P) % kb;
      for (let base = first; base < pieces; base += stride) {
        let row = q,
          group = r;
        for (let c = 0; c < C; c++) {
          const p = base + 32 * c;
          if (c > 0) {
            group += 32 / P;
            while (group >= kb) {
              group -= kb;
              ++row;
            }
          }
          if (p < pieces && (row !== Math.floor(Math.floor(p / P) / kb) || group !== Math.floor(p / P) % kb))
            return false;
        }
        q += stepQ;
        r += stepR;
        if (r >= kb) {
          r -= kb;
          ++q;
        }
      }
    }
  }
  return true;
}

test('dequantize group walk (model): (row, group) of every piece equals the division it replaces', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 200 }),
      fc.integer({ min: 1, max: 40 }),
      fc.constantFrom(2, 4), // pieces per group: NVFP4, MXFP4
      fc.constantFrom(32, 64, 256),
      fc.integer({ min: 1, max: 4 }),
      fc.constantFrom(1, 2, 4, 8),
      dequantizeWalkAgrees,
    ),
    { numRuns: 300 },
  );
});

test('dequantize template: the walk and the per-piece step the model checks', () => {
  const src = readFileSync(path.join(root, 'templates', 'dequantize.cu.hbs'), 'utf8');
  assert.match(src, /qgen_item_walk<kPiecesPerGroup> walk\(first, stride, groups_per_row\);/);
  assert.match(src, /constexpr int64_t kGroupStep = 32 \/ kPiecesPerGroup;/);
  assert.match(src, /group \+= kGroupStep;\n\s+while \(group >= groups_per_row\)/);
});

/** SASS lines of the function of generated/sm_90a/<name>.cu whose mangled name has `fn`; null without cuobjdump. */
async function sassLines(name: string, fn: string): Promise<string[] | null> {
  const probe = await execa('cuobjdump', ['--version'], { reject: false }).catch(() => null);
  if (!probe || probe.exitCode !== 0) return null;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qgen-plane-sass-'));
  try {
    const out = path.join(dir, `${name}.cubin`);
    await compileCuda({
      sources: [path.join(root, 'generated', 'sm_90a', `${name}.cu`)],
      arch: 'sm_90a',
      out,
      output: 'cubin',
    });
    const text = (await execa('cuobjdump', ['-sass', out])).stdout;
    const functions = text.split(/\n\s*Function : /).slice(1);
    const body = functions.find((f) => f.split('\n')[0].includes(fn));
    return body ? body.split('\n').map((l) => l.replace(/\/\*[0-9a-f]{4,}\*\/|\/\* 0x[0-9a-f]+ \*\//g, '').trim()) : [];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const offsetsOf = (lines: string[], op: RegExp) =>
  lines.filter((l) => op.test(l)).map((l) => parseInt(/\+0x([0-9a-f]+)\]/.exec(l)?.[1] ?? '0', 16));

test('SASS (sm_90a): the plane is written in warp runs of 512 bytes, codes read in runs of 128 bytes', async () => {
  const pieces = Array.from({ length: 16 }, (_, k) => k);
  for (const name of ['quartet2_x_46_plane', 'quartet2_e_mseden_rht128_plane']) {
    const lines = await sassLines(name, '6pass_b');
    if (lines === null) {
      console.log('  (skipped: cuobjdump is not on PATH; the SASS checks need it)');
      return;
    }
    // pass B: 16 plane stores per lane and step, pieces 32 k + lane (16-byte stores 0x200 apart per lane)
    assert.equal(
      offsetsOf(lines, /^STG\.E\.128 /).sort((a, b) => a - b),
      pieces.map((k) => 0x200 * k),
      name,
    );
    // ... from 16 32-bit code loads 0x80 apart, issued together
    const loads = offsetsOf(lines, /LDG\.E\.CONSTANT R\d+, /).sort((a, b) => a - b);
    assert.equal(
      loads,
      pieces.map((k) => 0x80 * k),
      name,
    );
  }
  const dequantize = await sassLines('dequantize_nvfp4_bf16', 'dequantize');
  if (dequantize === null) return;
  // both paths (bf16 form at t = 1, f32 otherwise) store pieces 32 c + lane: 4 x 2 stores, 0x200 apart
  const stores = offsetsOf(dequantize, /^STG\.E\.128 /).sort((a, b) => a - b);
  assert.equal(stores, [0, 0, 0x200, 0x200, 0x400, 0x400, 0x600, 0x600]);
  assert.ok(dequantize.filter((l) => /^(HMUL2|HFMA2\.MMA)\.BF16_V2 /.test(l)).length >= 16, 'no bf16x2 multiplies');
});

test('SASS (sm_90a): dequantized-plane pass A stores by lane pairs (0x20 apart, 0x40 up)', async () => {
  // codes (one 16-byte store at 0) and the plane: the paired stores at q + 0, 0x20, 0x40, 0x60; the row kernels with
  // L = 1 keep the per-lane stores (0, 0x10, 0x20, 0x30) for cols not a multiple of 64
  const want: [string, number[]][] = [
    ['quartet2_e_mseden_rht128_dqplane', [0, 0, 0x20, 0x40, 0x60]],
    ['quartet2_et_mseden_rht128_dqplane', [0, 0, 0x20, 0x40, 0x60]],
    ['quartet2_x_46_dqplane', [0, 0, 0, 0x10, 0x20, 0x20, 0x30, 0x40, 0x60]],
  ];
  for (const [name, offsets] of want) {
    const lines = await sassLines(name, '6pass_a');
    if (lines === null) {
      console.log('  (skipped: cuobjdump is not on PATH; the SASS checks need it)');
      return;
    }
    assert.equal(
      offsetsOf(lines, /^STG\.E\.128 /).sort((a, b) => a - b),
      offsets,
      name,
    );
    assert.ok(lines.filter((l) => /^SHFL\.BFLY PT, R\d+, R\d+, 0x1, 0x1f/.test(l)).length >= 3, `${name}: no exchange`);
  }
});

test('torch package: tuned takes planes where it runs two-pass unless QGEN_PLANES=0; bad values', async () => {
  const probe = await execa('python3', ['-c', 'import torch'], { reject: false });
  if (probe.exitCode !== 0) {
    console.log('  plane-bandwidth: python3 has no torch; the package routing check did not run');
    return;
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qgen-planes-'));
  try {
    await vendor({ target: 'torch', arch: 'sm_90a', out: dir });
    // (m, n, k) of a 4096 -> 4096 forward at 32768 tokens (two-pass) and at 16 tokens (fused), in each mode
    const script =
      'import json, sys, torch\nsys.path.insert(0, sys.argv[1])\nimport qgen_torch.ops as o, qgen_torch.linear as L\n' +
      "r = L.G.RECIPES['quartet2']['forward']\ncpu = torch.device('cpu')\nout = {}\n" +
      "for mode in ('tuned', 'two-pass', 'planes', 'fused'):\n  o.set_gemm_mode(mode)\n" +
      "  out[mode] = [L._uses_planes(m, 4096, 4096, cpu, r['x'], r['w']) for m in (32768, 16)]\n" +
      "out['kind'] = [o.plane_kind(), o.plane_kernel(r['x']), o.plane_kernel(r['x'], 'bf16')]\n" +
      "o.set_gemm_mode('tuned')\no.set_layer_planes(False)\nout['set_layer_planes(False)'] = o.layer_planes()\n" +
      'print(json.dumps(out))';
    const run = async (env: Record<string, string>) => {
      const base = { ...process.env };
      delete base.QGEN_PLANES; // the default is what an unset variable gives
      delete base.QGEN_PLANE_KIND;
      return await execa('python3', ['-c', script, dir], { reject: false, env: { ...base, ...env }, extendEnv: false });
    };
    for (const env of [{ QGEN_PLANES: '1' }, {}] as Record<string, string>[]) {
      const on = await run(env);
      assert.is(on.exitCode, 0, on.stderr);
      assert.equal(JSON.parse(on.stdout.trim().split('\n').pop()!), {
        tuned: [true, false],
        'two-pass': [false, false],
        planes: [true, true],
        fused: [false, false],
        kind: ['dequantized', 'quartet2_x_46_dqplane', 'quartet2_x_46_plane'],
        'set_layer_planes(False)': false,
      });
    }
    const off = await run({ QGEN_PLANES: '0' });
    assert.is(off.exitCode, 0, off.stderr);
    const got = JSON.parse(off.stdout.trim().split('\n').pop()!) as Record<string, boolean[]>;
    assert.equal(got.tuned, [false, false], 'QGEN_PLANES=0: tuned dequantizes');
    assert.equal(got.planes, [true, true], "QGEN_PLANES=0: mode 'planes' is not affected");
    const bad = await run({ QGEN_PLANES: 'yes' });
    assert.is.not(bad.exitCode, 0);
    assert.match(bad.stderr, /ValueError: qgen_torch: QGEN_PLANES='yes'; allowed: 0 or 1/);
    const badKind = await run({ QGEN_PLANE_KIND: 'scaled' });
    assert.is.not(badKind.exitCode, 0);
    assert.match(badKind.stderr, /ValueError: qgen_torch: QGEN_PLANE_KIND='scaled'; allowed: dequantized, bf16/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
