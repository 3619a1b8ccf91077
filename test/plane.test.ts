// The bf16 plane a quantizer writes beside its codes and scales (NUMERICS §6.6): the exactness claim over every
// (code, scale) pair, the reference plane against dequantize with tensor scale 1, the spec field (validation,
// lowering to a policy, deterministic emission, the catalog's plane variants and what the torch package vendors).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ARCHS, type QuantizeSpec } from '../dsl/types.ts';
import { catalogFor } from '../dsl/catalog.ts';
import { quantize as quantizeSpec } from '../dsl/builders.ts';
import { RECIPES, planeVariant, recipeKernels, vendoredKernelNames } from '../dsl/recipes.ts';
import { validate } from '../validate/validate.ts';
import { lower } from '../lower/lower.ts';
import { emitKernels } from '../emit/emit.ts';
import { bf16Plane, dequantize } from '../reference/dequantize.ts';
import { decodeE2M1, decodeE4M3 } from '../reference/formats.ts';
import { bf16BitsToF32, f32ToBf16Bits } from '../reference/fp32.ts';
import { quantize } from '../reference/quantize.ts';
import { gaussianMatrix, type QuantizedTensor } from '../reference/tensor.ts';
import { bufferNames } from '../harness/gpu/bind.ts';

const PLANE = 'nvfp4+bf16-plane' as const;

test('§6.6: e2m1 * e4m3 is exact in bf16 for every code and every non-NaN scale byte (and -0 stays -0)', () => {
  let checked = 0;
  for (let code = 0; code < 16; code++) {
    for (let scale = 0; scale < 256; scale++) {
      const s = decodeE4M3(scale);
      if (Number.isNaN(s)) continue;
      const exact = decodeE2M1(code) * s; // binary64: exact for 2- and 4-bit significands
      const one = new QuantizedTensor1(code, scale);
      const got = bf16BitsToF32(bf16Plane(one)[0]);
      assert.ok(Object.is(got, exact), `code ${code} scale 0x${scale.toString(16)}: bf16 ${got}, exact ${exact}`);
      checked++;
    }
  }
  assert.is(checked, 16 * 254);
});

/** A 1x16 NVFP4 tensor whose first element has `code` and whose group has scale byte `scale`. */
class QuantizedTensor1 implements QuantizedTensor {
  rows = 1;
  cols = 16;
  groupSize = 16 as const;
  scaleFormat = 'e4m3' as const;
  tensorScale = 1;
  codes: Uint8Array;
  scales: Uint8Array;
  constructor(code: number, scale: number) {
    this.codes = new Uint8Array(16);
    this.codes[0] = code;
    this.scales = Uint8Array.of(scale);
  }
}

/** Any NVFP4 tensor: codes 0..15, non-NaN E4M3 scale bytes, any finite positive tensor scale. */
const nvfp4Tensor = fc
  .record({
    rows: fc.integer({ min: 1, max: 9 }),
    groups: fc.integer({ min: 1, max: 6 }),
    seed: fc.integer({ min: 0, max: 1 << 30 }),
    tensorScale: fc.float({ min: Math.fround(2 ** -40), max: Math.fround(2 ** 40), noNaN: true }),
  })
  .map(({ rows, groups, seed, tensorScale }) => {
    const cols = 16 * groups;
    let h = seed >>> 0;
    const next = () => {
      h = (Math.imul(h ^ (h >>> 13), 0x5bd1e995) + 0x6b43a9b5) >>> 0;
      return h;
    };
    const codes = Uint8Array.from({ length: rows * cols }, () => next() & 15);
    const scales = Uint8Array.from({ length: rows * groups }, () => {
      const b = next() & 0xff;
      return (b & 0x7f) === 0x7f ? 0x38 : b;
    });
    return { rows, cols, groupSize: 16, scaleFormat: 'e4m3', codes, scales, tensorScale } as QuantizedTensor;
  });

test('reference: the plane equals dequantize(codes, scales) with tensor scale 1, bit for bit (property)', () => {
  fc.assert(
    fc.property(nvfp4Tensor, (q) => {
      const plane = bf16Plane(q);
      const y = dequantize({ ...q, tensorScale: 1 });
      for (let i = 0; i < y.length; i++) {
        if (plane[i] !== f32ToBf16Bits(y[i])) return false;
        // and the bf16 value is the f32 one (nothing rounded on the way to bf16)
        if (!Object.is(bf16BitsToF32(plane[i]), y[i])) return false;
      }
      return true;
    }),
    { numRuns: 300 },
  );
});

test('reference: the plane times the tensor scale is dequantize (the scale goes to the GEMM alpha)', () => {
  const spec = catalogFor('sm_90a').find((s) => s.name === 'quartet2_x_46')! as QuantizeSpec;
  const q = quantize(spec, gaussianMatrix(32, 64, 5), { seed: 1n });
  assert.ok(q.tensorScale !== 1, 'a tensor scale other than 1 (the test would be vacuous)');
  const plane = bf16Plane(q),
    y = dequantize(q);
  for (let i = 0; i < y.length; i++) {
    assert.is(Math.fround(bf16BitsToF32(plane[i]) * q.tensorScale), y[i], `element ${i}`);
  }
});

test('validate: outputs is one of the two values, and the plane is NVFP4 only', () => {
  const ok = quantizeSpec('p', { outputs: PLANE });
  assert.equal(validate(ok, 'sm_90a'), []);
  const bad = { ...ok, outputs: 'bf16' };
  assert.match(
    validate(bad, 'sm_90a')
      .map((p) => `${p.path}: ${p.message}`)
      .join('\n'),
    /kernels\[i\]\.outputs: must be one of 'nvfp4' \| 'nvfp4\+bf16-plane'/,
  );
  const mx = quantizeSpec('m', {
    scaleGroup: { size: 32, format: 'ue8m0' },
    tensorScale: 'none',
    outputs: PLANE,
    tiling: { groupsPerThread: 2 },
  });
  const problems = validate(mx, 'sm_100a');
  assert.is(problems.length, 1, JSON.stringify(problems));
  assert.is(problems[0].path, 'kernels[i].outputs');
  assert.match(problems[0].message, /requires scaleGroup size 16/);
});

test('lowering: the plan carries the outputs enum; the render selects the plane policy and its headers', () => {
  for (const arch of ARCHS) {
    const plain = lower(quantizeSpec('q', {}), arch);
    const plane = lower(quantizeSpec('q', { outputs: PLANE }), arch);
    assert.ok(plain.kind === 'quantize' && plane.kind === 'quantize');
    if (plain.kind !== 'quantize' || plane.kind !== 'quantize') return;
    assert.is(plain.quantize.outputs, 'nvfp4');
    assert.is(plane.quantize.outputs, PLANE);
    assert.not.ok(plain.headers.includes('qgen_quantize_plane.cuh'));
    assert.ok(plane.headers.includes('qgen_quantize_plane.cuh') && plane.headers.includes('qgen_dequantize.cuh'));
  }
});

test('emission of plane kernels is deterministic and selects qgen_output_nvfp4_plane', async () => {
  const specs = catalogFor('sm_90a').filter((s) => s.kind === 'quantize' && s.outputs === PLANE);
  assert.is(specs.length, 6);
  const dirs = [0, 1].map((i) => mkdtempSync(path.join(os.tmpdir(), `qgen-plane-${i}-`)));
  for (const dir of dirs) await emitKernels(specs, 'sm_90a', dir);
  for (const s of specs) {
    const [a, b] = dirs.map((d) => readFileSync(path.join(d, `${s.name}.cu`), 'utf8'));
    assert.is(a, b, `${s.name}: two emissions differ`);
    assert.match(a, /using Output = qgen_output_nvfp4_plane;/);
  }
  const runtime = readFileSync(path.join(dirs[0], 'qgen_quantize_plane.cuh'), 'utf8');
  assert.match(runtime, /struct qgen_output_nvfp4_plane/);
});

test('catalog: each Quartet II quantizer has a plane variant with identical numerics on every arch, vendored', () => {
  const quartet2 = RECIPES.find((r) => r.name === 'quartet2')!;
  for (const arch of ARCHS) {
    const catalog = catalogFor(arch);
    const vendored = new Set(vendoredKernelNames(arch));
    for (const name of recipeKernels(quartet2)) {
      const plane = planeVariant(arch, name);
      assert.is(plane, `${name}_plane`, `${arch}: the plane twin of ${name}`);
      const a = catalog.find((s) => s.name === name) as QuantizeSpec;
      const b = catalog.find((s) => s.name === plane) as QuantizeSpec;
      assert.is(b.outputs, PLANE);
      const { outputs: _outputs, ...rest } = b;
      assert.equal({ ...rest, name: a.name, doc: a.doc }, a, `${arch}: ${plane} vs ${name}`);
      assert.ok(vendored.has(plane!), `${arch}: ${plane} not vendored`);
      assert.is(planeVariant(arch, plane!), null, 'a plane kernel has no plane variant of its own');
    }
    // a kernel without one (NVIDIA's RTN) gets null, and is not given a plane kernel by accident
    assert.is(planeVariant(arch, 'nvidia_x_rtn'), null);
  }
});

test('GPU runner binding: a plane kernel takes one more buffer, the plane, last', () => {
  const spec = catalogFor('sm_90a').find((s) => s.name === planeVariant('sm_90a', 'quartet2_xt_rq_mseden_rht128'))!;
  assert.equal(bufferNames(spec), [
    'in_codes',
    'in_scales',
    'in_tensor_scale',
    'codes',
    'scales',
    'tensor_scale',
    'plane',
  ]);
  const plain = catalogFor('sm_90a').find((s) => s.name === 'quartet2_x_46')!;
  assert.equal(bufferNames(plain), ['x', 'codes', 'scales', 'tensor_scale']);
});

test.run();
