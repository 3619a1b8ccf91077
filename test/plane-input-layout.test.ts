// The dequantized plane of a transposed input, stored in the input's layout (NUMERICS §6.7 "Layout"; dsl/types.ts
// planeLayout): which kernels take it, what lowering and explain say, the reference's stored order, and a model of
// pass A's staged store (runtime/qgen_quantize_plane.cuh stage_pass_a, runtime/qgen_load_transposed.cuh
// qgen_store_bf16_transposed_tile) over the staged tile's configurations, matched against the source.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { catalogFor } from '../dsl/catalog.ts';
import { planeLayout, type QuantizeSpec } from '../dsl/types.ts';
import { lower } from '../lower/lower.ts';
import { quantizeFacts } from '../render/facts.ts';
import { loweringSteps } from '../render/explain.ts';
import { storedPlane } from '../reference/dequantize.ts';

const root = fileURLToPath(new URL('../', import.meta.url));
const runtimeDir = path.join(root, 'runtime');

const quantizers = (): QuantizeSpec[] => catalogFor('sm_90a').filter((s): s is QuantizeSpec => s.kind === 'quantize');

test('the input layout is exactly the dequantized planes of transposed inputs', () => {
  let input = 0;
  for (const s of quantizers()) {
    const expected =
      s.outputs === undefined || s.outputs === 'nvfp4'
        ? null
        : s.outputs === 'nvfp4+dequantized-plane' && s.transposedInput
          ? 'input'
          : 'output';
    assert.is(planeLayout(s), expected, s.name);
    if (expected === 'input') input++;
  }
  // E^T and the two requants (X^T, W^T) of Quartet II
  assert.ok(input >= 3, `${input} input-layout planes in the catalog`);
});

test('lowering selects the input-layout output policy and explain names the layout', () => {
  for (const s of quantizers()) {
    const plan = lower(s, 'sm_90a');
    if (plan.kind !== 'quantize') throw new Error('not a quantize plan');
    const policy = quantizeFacts(plan).outputPolicy as string;
    const layout = planeLayout(s);
    assert.is(policy.endsWith('_input'), layout === 'input', `${s.name}: ${policy}`);
    const text = loweringSteps(plan).join('\n');
    if (layout === 'input') assert.match(text, /bf16 plane \[cols, rows\]/, s.name);
    if (layout === 'output') assert.match(text, /bf16 plane \[rows, cols\]/, s.name);
  }
});

test('storedPlane: the output layout as is, the input layout transposed', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 9 }), (rows, cols) => {
      const plane = Uint16Array.from({ length: rows * cols }, (_, i) => (i * 7919) & 0xffff);
      assert.is(storedPlane(plane, rows, cols, 'output'), plane);
      const t = storedPlane(plane, rows, cols, 'input');
      for (let r = 0; r < rows; r++) for (let k = 0; k < cols; k++) assert.is(t[k * rows + r], plane[r * cols + k]);
    }),
  );
  assert.throws(() => storedPlane(new Uint16Array(5), 2, 3, 'input'), /5 values for \[2, 3\]/);
});

/** qgen_transposed_tile's geometry (runtime/qgen_load_transposed.cuh). */
function tileGeometry(E: number, L: number, threads: number) {
  const rows = threads / L;
  const width = E * L;
  const stride = width + 2;
  const piecesPerLine = rows / 8;
  const column = (i: number, thread: number) =>
    2 * (Math.floor(thread / piecesPerLine) + Math.floor(i / 2) * (threads / piecesPerLine)) + (i & 1);
  return { rows, width, stride, piecesPerLine, column };
}

/**
 * Model: each thread stages its E plane values of output row thread / L, columns (thread mod L) E .. + E - 1, into
 * the tile at row * stride + column (stage_pass_a); after the barrier each thread stores, for each even i, the
 * 8-row pieces of columns column(i), column(i) + 1 from rows 8 piece .. 8 piece + 7 (piece = thread mod
 * piecesPerLine) to plane[(k0 + column) * rows + row0 + 8 piece]. Every element of the block's rectangle must be
 * written exactly once, at its input-layout address, with its own value, by 16-byte aligned stores.
 */
function checkTile(E: number, L: number, threads: number, tensorRows: number, row0: number, k0: number) {
  const g = tileGeometry(E, L, threads);
  const tile = new Array<number | undefined>(g.rows * g.stride).fill(undefined);
  const tag = (r: number, k: number) => r * 1_000_000 + k; // output element (r, k) of the tensor
  for (let t = 0; t < threads; t++) {
    const base = Math.floor(t / L) * g.stride + (t % L) * E;
    for (let j = 0; j < E; j++) {
      assert.is(tile[base + j], undefined, `E${E} L${L} T${threads}: thread ${t} overwrites ${base + j}`);
      tile[base + j] = tag(row0 + Math.floor(t / L), k0 + (t % L) * E + j);
    }
  }
  const written = new Map<number, number>();
  for (let t = 0; t < threads; t++) {
    const piece = t % g.piecesPerLine;
    for (let i = 0; i < E / 8; i += 2) {
      const line = g.column(i, t);
      assert.is(line % 2, 0);
      for (const c of [line, line + 1]) {
        const address = (k0 + c) * tensorRows + row0 + piece * 8; // in bf16 elements
        assert.is(address % 8, 0, 'a 16-byte aligned store');
        for (let e = 0; e < 8; e++) {
          const value = tile[(piece * 8 + e) * g.stride + c];
          assert.ok(value !== undefined, `E${E} L${L} T${threads}: row ${piece * 8 + e} column ${c} never staged`);
          assert.ok(!written.has(address + e), `address ${address + e} stored twice`);
          written.set(address + e, value);
        }
      }
    }
  }
  assert.is(written.size, g.rows * g.width);
  for (let r = 0; r < g.rows; r++) {
    for (let k = 0; k < g.width; k++) {
      assert.is(written.get((k0 + k) * tensorRows + row0 + r), tag(row0 + r, k0 + k));
    }
  }
}

test('model: the staged store writes every element of a tile once, in the input layout', () => {
  // the staged tile's configurations: kRows a multiple of 8, E a multiple of 16 (qgen_transposed_tile)
  for (const [E, L, threads] of [
    [32, 4, 128],
    [32, 4, 256],
    [32, 2, 128],
    [64, 2, 128],
    [16, 8, 128],
    [32, 4, 64],
  ] as const) {
    const rows = threads / L;
    checkTile(E, L, threads, rows, 0, 0);
    checkTile(E, L, threads, 5 * rows + 8, 2 * rows + 8, 3 * E * L);
  }
});

test('the source matches the model', () => {
  const load = readFileSync(path.join(runtimeDir, 'qgen_load_transposed.cuh'), 'utf8');
  const store = load.slice(load.indexOf('void qgen_store_bf16_transposed_tile'));
  assert.match(store, /const int piece = thread % Tile::kPiecesPerLine;/);
  assert.match(store, /static_cast<uint16_t\*>\(plane\) \+ block\.k0 \* rows \+ block\.row \+ piece \* 8;/);
  assert.match(store, /for \(int i = 0; i < E \/ 8; i \+= 2\) \{\n\s+const int line = Tile::column\(i, thread\);/);
  assert.match(store, /tile \+ \(piece \* 8 \+ e\) \* Tile::kStride \+ line\)/);
  assert.match(store, /low\.x = __byte_perm\(pairs\[0\], pairs\[1\], 0x5410u\);/);
  assert.match(store, /high\.w = __byte_perm\(pairs\[6\], pairs\[7\], 0x7632u\);/);
  assert.match(store, /base \+ static_cast<int64_t>\(line\) \* rows\) = low;/);
  assert.match(store, /base \+ static_cast<int64_t>\(line \+ 1\) \* rows\) = high;/);
  // the load reads a thread's values from the place stage_pass_a writes them
  assert.match(load, /const int row = thread \/ L, lane_in_unit = thread % L;/);
  assert.match(load, /tile \+ row \* Tile::kStride \+ lane_in_unit \* E\);/);
  const plane = readFileSync(path.join(runtimeDir, 'qgen_quantize_plane.cuh'), 'utf8');
  assert.match(
    plane,
    /qgen_plane_stage<C>\(\) \+ thread \/ C::kLanes \* PlaneTile::kStride \+ thread % C::kLanes \* C::kElems/,
  );
  assert.match(plane, /reinterpret_cast<uint32_t\*>\(stage \+ 16 \* g \+ 8 \* h\)/);
  const kernel = readFileSync(path.join(runtimeDir, 'qgen_quantize_kernel.cuh'), 'utf8');
  const staged = kernel.slice(kernel.indexOf('body(s, active, x, kStagePlane && use_tile);'));
  assert.match(staged, /^body\(s, active, x, kStagePlane && use_tile\);\n\s+if constexpr \(kStagePlane\) \{/);
  assert.match(staged, /^[^]{0,80}\n\s+if \(use_tile\) \{\n\s+__syncthreads\(\);/);
});

test.run();
