// NVFP4 weight all-gather (NUMERICS §5.11), on the TypeScript reference: each rank quantizes its row shard with the
// forward-W quantizer of a recipe and the tensor scale of the whole weight, forced through 128 sentinel rows whose
// one non-zero element is the all-reduced statistic (amax, or 6 m in one-pass mode); concatenating the shards'
// packed codes and 128x4 scales gives the quantization of the whole weight byte for byte. The same scheme as
// runtime/torch/qgen_torch/distributed.py; the shard boundaries that keep identity are 128-row multiples.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { QuantizeSpec } from '../dsl/types.ts';
import { catalogSpec } from '../dsl/catalog.ts';
import { RECIPES } from '../dsl/recipes.ts';
import { decodeE4M3 } from '../reference/formats.ts';
import { layoutScales, packCodes } from '../reference/layout.ts';
import { quantize } from '../reference/quantize.ts';
import { amax } from '../reference/dequantize.ts';
import { gaussianMatrix, type Matrix, type QuantizedTensor } from '../reference/tensor.ts';

const SENTINEL_ROWS = 128;
const E4M3_CODE_224 = 0x76;
const OPTS = { seed: 0n };
const bf16 = (v: number): number => {
  const b = new Float32Array([v]);
  const u = new Uint32Array(b.buffer);
  u[0] = (u[0] + 0x7fff + ((u[0] >>> 16) & 1)) & 0xffff0000;
  return b[0];
};

function forwardWeightSpecs(): QuantizeSpec[] {
  const names = [...new Set(RECIPES.map((r) => r.forward.w))];
  return names.map((n) => catalogSpec(n, 'sm_90a') as QuantizeSpec);
}

function rowsOf(x: Matrix, r0: number, r1: number): Matrix {
  return { rows: r1 - r0, cols: x.cols, data: x.data.slice(r0 * x.cols, r1 * x.cols) };
}

/** The device bytes of a quantized tensor: packed codes and 128x4 scales. */
function deviceBytes(q: QuantizedTensor): { codes: Uint8Array; scales: Uint8Array } {
  return { codes: packCodes(q.codes), scales: layoutScales(q.scales, q.rows, q.cols / 16, '128x4') };
}

/** The statistic a rank all-reduces (max): amax (computed mode) or the largest proxy m (one-pass, from its scales). */
function shardStatistic(spec: QuantizeSpec, shard: Matrix): number {
  if (spec.tensorScale === 'computed') return amax(shard);
  const q = quantize(spec, shard, OPTS);
  const top = q.scales.reduce((a, b) => Math.max(a, b), 0);
  return top > E4M3_CODE_224 ? decodeE4M3(top) * q.tensorScale : 0;
}

/** A shard quantized with the whole tensor's scale: sentinel rows appended, then cut off. */
function quantizeShard(spec: QuantizeSpec, shard: Matrix, stat: number): QuantizedTensor {
  const padded = new Float32Array((shard.rows + SENTINEL_ROWS) * shard.cols);
  padded.set(shard.data);
  padded[shard.rows * shard.cols] = bf16(spec.tensorScale === 'computed' ? stat : 6 * stat);
  const sentinel = spec.tensorScale === 'computed' ? stat : 6 * stat;
  assert.is(padded[shard.rows * shard.cols], sentinel, 'sentinel exact in bf16');
  const q = quantize(spec, { rows: shard.rows + SENTINEL_ROWS, cols: shard.cols, data: padded }, OPTS);
  const kb = shard.cols / 16;
  const codes = q.codes.slice(0, shard.rows * shard.cols);
  return { ...q, rows: shard.rows, codes, scales: q.scales.slice(0, shard.rows * kb) };
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** A weight whose shards have very different statistics: an outlier, a quiet shard, and (last rows) zeros. */
function weight(rows: number, cols: number, zeroTail: number): Matrix {
  const w = gaussianMatrix(rows, cols, 5);
  w.data[Math.floor(rows * 0.6) * cols + 7] = 40;
  for (let i = 0; i < 128 * cols; i++) w.data[i] = bf16(w.data[i] * 0.01);
  w.data.fill(0, (rows - zeroTail) * cols);
  return w;
}

function sharded(spec: QuantizeSpec, w: Matrix, shardRows: number, shared: boolean) {
  const shards: Matrix[] = [];
  for (let r = 0; r < w.rows; r += shardRows) shards.push(rowsOf(w, r, r + shardRows));
  const stat = Math.max(...shards.map((s) => shardStatistic(spec, s)));
  const parts = shards.map((s) => (shared ? quantizeShard(spec, s, stat) : quantize(spec, s, OPTS)));
  const bytes = parts.map(deviceBytes);
  return {
    codes: concat(bytes.map((b) => b.codes)),
    scales: concat(bytes.map((b) => b.scales)),
    rowMajorScales: concat(parts.map((p) => p.scales)),
    tensorScales: parts.map((p) => p.tensorScale),
  };
}

test('every recipe forward-W quantizer: 128-row shards with the shared scale = the whole tensor, byte for byte', () => {
  const specs = forwardWeightSpecs();
  assert.ok(specs.some((s) => s.tensorScale === 'one-pass') && specs.some((s) => s.tensorScale === 'computed'));
  assert.ok(specs.some((s) => s.block === '16x16'));
  for (const spec of specs) {
    for (const shardRows of [256, 128]) {
      const w = weight(512, 256, 128);
      const whole = quantize(spec, w, OPTS);
      const ref = deviceBytes(whole);
      const got = sharded(spec, w, shardRows, true);
      const at = `${spec.name}, ${512 / shardRows} shards`;
      assert.ok(
        got.tensorScales.every((t) => t === whole.tensorScale),
        `${at}: tensor scales`,
      );
      assert.equal(got.codes, ref.codes, `${at}: codes`);
      assert.equal(got.scales, ref.scales, `${at}: 128x4 scales`);
      // Without the agreed scale each shard computes its own: the gathered tensor is not the whole's quantization.
      const naive = sharded(spec, w, shardRows, false);
      assert.ok(
        naive.tensorScales.some((t) => t !== whole.tensorScale),
        `${at}: shards differ in local scale`,
      );
      assert.not.equal(naive.scales, ref.scales, `${at}: local scales give other scale bytes`);
    }
  }
});

test("shards of 64 rows: same values, but their 128x4 layouts do not concatenate into the whole tensor's", () => {
  for (const spec of forwardWeightSpecs()) {
    const w = weight(256, 128, 0);
    const whole = quantize(spec, w, OPTS);
    const got = sharded(spec, w, 64, true);
    assert.equal(got.rowMajorScales, whole.scales, `${spec.name}: row-major scales agree`);
    assert.not.equal(got.scales, deviceBytes(whole).scales, `${spec.name}: 128x4 bytes differ -> refused`);
  }
});

test('an all-zero weight: every shard keeps tensor scale 1 and zero groups', () => {
  for (const spec of forwardWeightSpecs()) {
    const w = { rows: 256, cols: 128, data: new Float32Array(256 * 128) };
    const got = sharded(spec, w, 128, true);
    assert.ok(
      got.tensorScales.every((t) => t === 1),
      spec.name,
    );
    assert.equal(got.scales, deviceBytes(quantize(spec, w, OPTS)).scales, spec.name);
  }
});

test.run();
