// The dequantized plane a one-pass quantizer writes in pass A (NUMERICS §6.7): pass B's keep rule against the
// definition over random (code, scale, tensor scale, proxy), the spec field (validation, lowering, emission), the
// catalog twins and what the torch package and the GPU suite see of them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ARCHS, type QuantizeSpec } from '../dsl/types.ts';
import { catalogFor } from '../dsl/catalog.ts';
import { quantize as quantizeSpec } from '../dsl/builders.ts';
import { RECIPES, dequantizedPlaneVariant, planeVariant, recipeKernels, vendoredKernelNames } from '../dsl/recipes.ts';
import { validate } from '../validate/validate.ts';
import { lower } from '../lower/lower.ts';
import { emitKernels } from '../emit/emit.ts';
import { dequantize, dequantizedPlane } from '../reference/dequantize.ts';
import { decodeE2M1, decodeE4M3 } from '../reference/formats.ts';
import { bf16BitsToF32, f32ToBf16Bits } from '../reference/fp32.ts';
import { quantize } from '../reference/quantize.ts';
import { gaussianMatrix } from '../reference/tensor.ts';
import { bufferNames } from '../harness/gpu/bind.ts';
import { dequantizedPlaneCases } from '../harness/gpu/suite.ts';
import { regimeMatrix } from '../harness/gpu/cases.ts';

const DQ = 'nvfp4+dequantized-plane' as const;
const f32 = Math.fround;

/** Pass B's rule (runtime/qgen_quantize_plane.cuh finalize_group): pass A's value stands for this group. */
function kept(c: number, scale: number, t: number): boolean {
  return c >= 2 ** -120 && c <= 2 ** 120 && f32(decodeE4M3(scale) * t) === c;
}

/** v is a bf16 value exactly (finite). */
function exactBf16(v: number): boolean {
  return Number.isFinite(v) && bf16BitsToF32(f32ToBf16Bits(v)) === v;
}

test('§6.7: where pass B keeps a group, pass A’s bf16(e2m1 * c) is exact and equals the definition (property)', () => {
  let keptCases = 0;
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 15 }),
      fc.integer({ min: 0, max: 0x7e }), // finite, non-negative E4M3 scales (0x7f is NaN)
      fc.integer({ min: -149, max: 127 }),
      fc.constantFrom(0, 1, -1, 2), // the proxy: s * t itself, its binary32 neighbours, or twice it
      (code, scale, k, shift) => {
        const t = 2 ** k;
        const st = f32(decodeE4M3(scale) * t);
        const c = shift === 2 ? f32(2 * st) : nextF32(st, shift);
        if (!kept(c, scale, t)) return;
        keptCases++;
        const e = decodeE2M1(code);
        const passA = e * c; // a bf16 multiply of two exact bf16 values: exact when the real product is a bf16 value
        const definition = f32(f32(e * decodeE4M3(scale)) * t);
        assert.ok(exactBf16(c), `c = ${c} is not a bf16 value`);
        assert.ok(exactBf16(passA), `e2m1 * c = ${passA} rounds in bf16`);
        assert.is(f32ToBf16Bits(passA), f32ToBf16Bits(definition), `code ${code}, scale ${scale}, t 2^${k}`);
      },
    ),
    { numRuns: 20000, seed: 6007 },
  );
  assert.ok(keptCases > 2000, `only ${keptCases} kept cases: the property would be vacuous`);
  // zero groups (c = 0) and proxies outside [2^-120, 2^120] are always rewritten
  assert.not.ok(kept(0, 0x38, 1));
  assert.not.ok(kept(2 ** -121, 0x38, 2 ** -121));
  assert.not.ok(kept(2 ** 121, 0x38, 2 ** 121));
});

/** The binary32 value `steps` ulps away from x (x finite, non-negative). */
function nextF32(x: number, steps: number): number {
  const b = new Float32Array([x]);
  const u = new Uint32Array(b.buffer);
  if (steps < 0 && u[0] === 0) return x;
  u[0] += steps;
  return b[0];
}

test('reference: the dequantized plane is bf16 of dequantize (tensor scale included) on one-pass tensors', () => {
  const x = gaussianMatrix(64, 256, 5);
  const spec = quantizeSpec('q', { rounding: 'four-six', tensorScale: 'one-pass', outputs: DQ });
  const q = quantize(spec, x, { seed: 3n });
  assert.ok(q.tensorScale !== 1, 'a tensor scale other than 1 (the test would not tell §6.6 from §6.7)');
  const plane = dequantizedPlane(q),
    y = dequantize(q);
  for (let i = 0; i < y.length; i++) assert.is(bf16BitsToF32(plane[i]), y[i], `element ${i}`);
});

test('reference: zero rows holding +-Inf and NaN give zero groups whose plane is not e2m1 * c_g = 0', () => {
  const x = regimeMatrix(24, 256, 'zero-rows-specials', 9);
  const spec = quantizeSpec('q', { rounding: 'four-six', tensorScale: 'one-pass', outputs: DQ });
  const q = quantize(spec, x, { seed: 3n });
  const plane = dequantizedPlane(q);
  let nonzeroInZeroGroup = 0;
  for (let r = 0; r < 24; r += 3)
    for (let k = 0; k < 256; k++) {
      const v = bf16BitsToF32(plane[r * 256 + k]);
      if (v !== 0) nonzeroInZeroGroup++; // +-6 t or NaN where pass A would have written e2m1 * 0
    }
  assert.ok(nonzeroInZeroGroup >= 8 * 3, `${nonzeroInZeroGroup} non-zero values in the zero rows`);
});

test('validate: the dequantized plane needs a one-pass tensor scale and NVFP4', () => {
  assert.equal(validate(quantizeSpec('p', { tensorScale: 'one-pass', outputs: DQ }), 'sm_90a'), []);
  for (const tensorScale of ['computed', 'caller'] as const) {
    const problems = validate(quantizeSpec('p', { tensorScale, outputs: DQ }), 'sm_90a');
    assert.is(problems.length, 1, JSON.stringify(problems));
    assert.is(problems[0].path, 'kernels[i].outputs');
    assert.match(problems[0].message, new RegExp(`requires tensorScale 'one-pass'.*got '${tensorScale}'`));
  }
  const mx = quantizeSpec('m', {
    scaleGroup: { size: 32, format: 'ue8m0' },
    tensorScale: 'none',
    outputs: DQ,
    tiling: { groupsPerThread: 2 },
  });
  const problems = validate(mx, 'sm_100a').map((p) => `${p.path}: ${p.message}`);
  assert.ok(
    problems.some((p) => /^kernels\[i\]\.outputs: .*requires scaleGroup size 16/.test(p)),
    problems.join('\n'),
  );
});

test('lowering and emission: the dequantized-plane policy, its headers, deterministic text on every arch', async () => {
  for (const arch of ARCHS) {
    const plan = lower(quantizeSpec('q', { tensorScale: 'one-pass', outputs: DQ }), arch);
    assert.ok(plan.kind === 'quantize');
    if (plan.kind !== 'quantize') return;
    assert.is(plan.quantize.outputs, DQ);
    assert.ok(plan.headers.includes('qgen_quantize_plane.cuh'));
  }
  const specs = catalogFor('sm_90a').filter((s) => s.kind === 'quantize' && s.outputs === DQ);
  assert.is(specs.length, 6);
  const dirs = [0, 1].map((i) => mkdtempSync(path.join(os.tmpdir(), `qgen-dqplane-${i}-`)));
  for (const dir of dirs) await emitKernels(specs, 'sm_90a', dir);
  for (const s of specs) {
    const [a, b] = dirs.map((d) => readFileSync(path.join(d, `${s.name}.cu`), 'utf8'));
    assert.is(a, b, `${s.name}: two emissions differ`);
    assert.match(a, /using Output = qgen_output_nvfp4_dequantized_plane;/);
    // pass B is the ordinary one (its grid is not sized for a whole-plane pass B)
    assert.not.match(a, /qgen_resident_blocks_per_sm/);
  }
});

test('catalog: each Quartet II quantizer has a dequantized-plane twin with identical numerics, vendored', () => {
  const quartet2 = RECIPES.find((r) => r.name === 'quartet2')!;
  for (const arch of ARCHS) {
    const catalog = catalogFor(arch);
    const vendored = new Set(vendoredKernelNames(arch));
    for (const name of recipeKernels(quartet2)) {
      const twin = dequantizedPlaneVariant(arch, name);
      assert.is(twin, `${name}_dqplane`, `${arch}: the dequantized-plane twin of ${name}`);
      const a = catalog.find((s) => s.name === name) as QuantizeSpec;
      const b = catalog.find((s) => s.name === twin) as QuantizeSpec;
      const { outputs, ...rest } = b;
      assert.is(outputs, DQ);
      assert.equal({ ...rest, name: a.name, doc: a.doc }, a, `${arch}: ${twin} vs ${name}`);
      assert.ok(vendored.has(twin!), `${arch}: ${twin} not vendored`);
      assert.is(dequantizedPlaneVariant(arch, twin!), null, 'a plane kernel has no twin of its own');
      assert.is(planeVariant(arch, twin!), null);
    }
    assert.is(dequantizedPlaneVariant(arch, 'nvidia_x_rtn'), null, 'a computed-scale kernel has none');
  }
});

test('GPU harness: the plane buffer comes last; fixed rewrite cases reach both pass B paths in six regimes', () => {
  const spec = catalogFor('sm_90a').find((s) => s.name === 'quartet2_et_mseden_rht128_dqplane')!;
  assert.equal(bufferNames(spec), ['x', 'codes', 'scales', 'tensor_scale', 'plane']);
  const cases = dequantizedPlaneCases(spec);
  const blocked = cases.filter((c) => c.cols % 256 === 0),
    general = cases.filter((c) => c.cols % 256 !== 0);
  assert.is(blocked.length, 6);
  assert.is(general.length, 6);
  for (const group of [blocked, general]) {
    assert.equal(group.map((c) => c.regime).sort(), [
      'huge',
      'mixed-rows',
      'specials',
      'tiny',
      'zero-rows',
      'zero-rows-specials',
    ]);
    for (const c of group) assert.is(c.cols % 128, 0, 'whole Hadamard chunks');
  }
});

test.run();
