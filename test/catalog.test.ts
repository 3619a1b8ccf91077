// The named catalog: every entry valid on every arch (or replaced there by a valid arch variant for a per-arch
// reason), and the entries that Quartet II and its baselines need carry the numerics the method prescribes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ARCH_EXTRAS, ARCH_VARIANTS, CATALOG, catalogFor, catalogSpec } from '../dsl/catalog.ts';
import { ARCHS, type GemmSpec, type KernelSpec, type QuantizeSpec } from '../dsl/types.ts';
import { validate } from '../validate/validate.ts';
import { catalogNameProblems, derivedName, namingTables, quantizerName, tunedGemmName } from '../dsl/naming.ts';
import { quantize } from '../dsl/builders.ts';
import { readFileSync } from 'node:fs';

const REQUIRED = [
  'quartet2_x_46',
  'quartet2_w_46',
  'quartet2_e_mseden_rht128',
  'quartet2_et_mseden_rht128',
  'quartet2_wt_rq_mseden_rht128',
  'quartet2_xt_rq_mseden_rht128',
  'nvidia_x_rtn',
  'nvidia_w_rtn_16x16',
  'nvidia_e_sr',
  'nvidia_et_sr_rht16',
  'tetrajet2_e_sr_rht32',
  'dequantize_nvfp4_bf16',
  'dequantize_nvfp4_f32',
  'hadamard_rht128',
  'amax_bf16',
  'mxfp4_x_rtn',
  'gemm_nvfp4_bf16',
];

function q(name: string, arch = ARCHS[0]): QuantizeSpec {
  const s = catalogSpec(name, arch);
  assert.ok(s, `catalog has ${name}`);
  assert.is(s!.kind, 'quantize');
  return s as QuantizeSpec;
}

test('catalog: every entry of catalogFor(arch) validates on that arch', () => {
  for (const arch of ARCHS) {
    const specs = catalogFor(arch);
    for (const s of specs) assert.equal(validate(s, arch, s.name), [], `${s.name} on ${arch}`);
  }
});

test('catalog: base entries are valid everywhere except where an arch variant replaces them for a tiling rule', () => {
  for (const arch of ARCHS) {
    const replaced = new Set(ARCH_VARIANTS[arch].map((s) => s.name));
    for (const s of CATALOG) {
      const problems = validate(s, arch, s.name);
      if (!replaced.has(s.name)) {
        assert.equal(problems, [], `${s.name} on ${arch}`);
      } else {
        // A variant exists only because the base is refused there, and only by a per-arch tiling rule.
        assert.ok(problems.length > 0, `${s.name}: a variant on ${arch} although the base is valid there`);
        for (const p of problems) assert.ok(p.path.startsWith(`${s.name}.tiling.`), `${arch}: ${p.path}`);
      }
    }
    for (const v of ARCH_VARIANTS[arch]) {
      assert.ok(
        CATALOG.some((s) => s.name === v.name && s.kind === v.kind),
        `${arch} variant ${v.name} replaces an entry`,
      );
    }
  }
});

test('catalog: same names on every arch, unique, each with a doc line', () => {
  const names = CATALOG.map((s) => s.name);
  assert.is(new Set(names).size, names.length, 'unique names');
  for (const arch of ARCHS) {
    const extras = ARCH_EXTRAS[arch].map((s) => s.name);
    assert.equal(
      catalogFor(arch).map((s) => s.name),
      [...names, ...extras],
      arch,
    );
    assert.is(new Set([...names, ...extras]).size, names.length + extras.length, `${arch}: extras have new names`);
    for (const s of ARCH_EXTRAS[arch])
      assert.ok(typeof s.doc === 'string' && s.doc.length > 10, `${s.name} has a doc line`);
  }
  for (const s of CATALOG) assert.ok(typeof s.doc === 'string' && s.doc.length > 10, `${s.name} has a doc line`);
  for (const name of REQUIRED) assert.ok(names.includes(name), `catalog has ${name}`);
});

/** The catalog's default GEMM (the CATALOG entry, replaced by its arch variant), whose tile names leave out. */
const DEFAULT_GEMM = CATALOG.find((s) => s.kind === 'gemm')!.name;

test('catalog: every name is the one the naming grammar derives from its spec, on every arch', () => {
  for (const arch of ARCHS) assert.equal(catalogNameProblems(catalogFor(arch), DEFAULT_GEMM, arch), [], arch);
});

test('catalog: a spec changed without its name is caught by the naming check', () => {
  const specs = catalogFor('sm_90a');
  const edits: [string, (s: KernelSpec) => void, string][] = [
    [
      'quartet2_e_mseden_rht128',
      (s) => {
        (s as QuantizeSpec).hadamard = 64;
      },
      'quartet2_e_mseden_rht64',
    ],
    [
      'quartet2_x_46',
      (s) => {
        (s as QuantizeSpec).tensorScale = 'computed';
      },
      'quartet2_x_46_computed',
    ],
    [
      'nvidia_x_rtn',
      (s) => {
        (s as QuantizeSpec).ceiling = 256;
      },
      'nvidia_x_rtn_c256',
    ],
    [
      'nvidia_w_rtn_16x16',
      (s) => {
        (s as QuantizeSpec).block = '1x16';
      },
      'nvidia_w_rtn',
    ],
    [
      'quartet2_wt_rq_mseden_rht128',
      (s) => {
        (s as QuantizeSpec).input = 'bf16';
      },
      'quartet2_wt_mseden_rht128',
    ],
    [
      'dequantize_nvfp4_bf16',
      (s) => {
        (s as { output: string }).output = 'f32';
      },
      'dequantize_nvfp4_f32',
    ],
    [
      'hadamard_rht128',
      (s) => {
        (s as { size: number }).size = 32;
      },
      'hadamard_rht32',
    ],
    [
      'gemm_nvfp4_bf16_64x64x128',
      (s) => {
        (s as GemmSpec).tiling.ctaTile = [64, 128, 128];
      },
      'gemm_nvfp4_bf16_64x128x128',
    ],
  ];
  for (const [name, edit, want] of edits) {
    const changed = specs.map((s) => structuredClone(s));
    edit(changed.find((s) => s.name === name)!);
    assert.equal(
      catalogNameProblems(changed, DEFAULT_GEMM, 'sm_90a'),
      [`sm_90a: '${name}' should be named '${want}' (docs/naming.md)`],
      name,
    );
  }
  // A transposed-input quantizer cannot carry a row-major operand token, nor a name outside the vocabulary.
  const et = structuredClone(catalogSpec('quartet2_et_mseden_rht128', 'sm_90a')!);
  assert.throws(
    () => derivedName({ ...et, name: 'quartet2_e_mseden_rht128' }),
    /operand 'e' needs transposedInput false/,
  );
  assert.throws(() => derivedName({ ...et, name: 'fwd_x_46' }), /starts with <recipe>_<operand>/);
});

test('catalog: quantizers that differ in one named field get different names', () => {
  const base = quantize('t', { rounding: 'sr' });
  const variants = [
    base,
    { ...base, hadamard: 16 as const },
    { ...base, block: '16x16' as const },
    { ...base, input: 'nvfp4' as const },
    { ...base, ceiling: 256 },
    { ...base, tensorScale: 'caller' as const },
    { ...base, scaleLayout: 'row-major' as const },
    { ...base, correction: 'per-128' as const },
    { ...base, scaleGroup: { size: 32, format: 'ue8m0' } as const },
  ];
  const names = variants.map((v) => quantizerName('nvidia', 'x', v));
  assert.is(new Set(names).size, names.length, names.join(' '));
  // A tuning candidate's GEMM name spells its whole tiling after the catalog stem.
  const g = catalogSpec('gemm_nvfp4_f32', 'sm_90a') as GemmSpec;
  assert.is(
    tunedGemmName({ ...g, tiling: { ...g.tiling, consumers: 1, stages: 3, tileOrder: 'row-major' } }),
    `gemm_nvfp4_f32_${g.tiling.ctaTile.join('x')}_c1_s3_row_k1x1`,
  );
});

test('catalog: docs/naming.md shows the vocabulary tables of dsl/naming.ts as they are', () => {
  const doc = readFileSync(new URL('../docs/naming.md', import.meta.url), 'utf8');
  assert.ok(
    doc.includes(namingTables()),
    'docs/naming.md: paste the output of ' +
      `npx tsx -e "import('./dsl/naming.ts').then((m) => process.stdout.write(m.namingTables()))"`,
  );
});

test('catalog: Quartet II forward quantizers: 4/6, target six, one-pass tensor scale, C = 448, 128x4', () => {
  for (const name of ['quartet2_x_46', 'quartet2_w_46']) {
    const s = q(name);
    assert.equal(
      [s.rounding, s.target, s.tensorScale, s.ceiling, s.scaleLayout, s.hadamard, s.input, s.block],
      ['four-six', 'six', 'one-pass', 448, '128x4', null, 'bf16', '1x16'],
      name,
    );
    assert.equal(s.scaleGroup, { size: 16, format: 'e4m3' });
  }
});

test('catalog: Quartet II backward quantizers: MS-EDEN, RHT-128, per-16, one-pass, C = 448', () => {
  const expected = {
    quartet2_e_mseden_rht128: ['bf16', false],
    quartet2_et_mseden_rht128: ['bf16', true],
    quartet2_wt_rq_mseden_rht128: ['nvfp4', true],
    quartet2_xt_rq_mseden_rht128: ['nvfp4', true],
  } as const;
  for (const [name, [input, transposed]] of Object.entries(expected)) {
    const s = q(name);
    assert.equal(
      [s.rounding, s.target, s.hadamard, s.correction, s.tensorScale, s.ceiling, s.input, s.transposedInput],
      ['ms-eden', 'eden-s', 128, 'per-16', 'one-pass', 448, input, transposed],
      name,
    );
  }
});

test('catalog: baselines (NVIDIA recipe, TetraJet-v2, MXFP4)', () => {
  const rows: [string, unknown[]][] = [
    // name: [rounding, block, target, ceiling, tensorScale, hadamard, transposedInput]
    ['nvidia_x_rtn', ['rtn', '1x16', 'six', 448, 'computed', null, false]],
    ['nvidia_w_rtn_16x16', ['rtn', '16x16', 'six', 448, 'computed', null, false]],
    ['nvidia_e_sr', ['sr', '1x16', 'sr-v', 448, 'computed', null, false]],
    ['nvidia_et_sr_rht16', ['sr', '1x16', 'sr-v', 448, 'computed', 16, true]],
    ['tetrajet2_e_sr_rht32', ['sr', '1x16', 'sr-v', 448, 'computed', 32, false]],
  ];
  for (const [name, want] of rows) {
    const s = q(name);
    assert.equal([s.rounding, s.block, s.target, s.ceiling, s.tensorScale, s.hadamard, s.transposedInput], want, name);
  }
  const mx = q('mxfp4_x_rtn');
  assert.equal([mx.rounding, mx.scaleGroup, mx.tensorScale], ['rtn', { size: 32, format: 'ue8m0' }, 'none']);
});

test('catalog: support kernels and the GEMM', () => {
  const get = (name: string, arch = ARCHS[0]) => catalogSpec(name, arch) as KernelSpec;
  assert.equal(get('dequantize_nvfp4_bf16'), { ...get('dequantize_nvfp4_bf16'), kind: 'dequantize', output: 'bf16' });
  assert.equal(get('dequantize_nvfp4_f32'), { ...get('dequantize_nvfp4_f32'), kind: 'dequantize', output: 'f32' });
  assert.equal(get('hadamard_rht128'), { ...get('hadamard_rht128'), kind: 'hadamard', size: 128 });
  assert.equal(get('amax_bf16'), { ...get('amax_bf16'), kind: 'amax', input: 'bf16' });
  const g = get('gemm_nvfp4_bf16', 'sm_90a') as GemmSpec;
  assert.equal([g.kind, g.a, g.b, g.layout, g.output], ['gemm', 'nvfp4', 'nvfp4', 'TN', 'bf16']);
  assert.equal(
    [g.tiling.ctaTile, g.tiling.consumers, g.tiling.stages, g.tiling.cluster],
    [[128, 128, 64], 2, 8, [1, 1]],
  );
  // sm_90a extras: the same GEMM with other tilings, and an fp32-output variant.
  const names = ARCH_EXTRAS.sm_90a.map((s) => s.name);
  assert.ok(names.includes('gemm_nvfp4_f32') && names.includes('gemm_nvfp4_bf16_64x32x256'), names.join(', '));
  assert.is((get('gemm_nvfp4_f32', 'sm_90a') as GemmSpec).output, 'f32');
  // The sm_100a variant's K is one 128-byte swizzle row of FP4 (256 elements) or more.
  const b = get('gemm_nvfp4_bf16', 'sm_100a') as GemmSpec;
  assert.is(b.tiling.ctaTile[0], 128);
  assert.is(b.tiling.ctaTile[2] % 256, 0);
  const r = get('gemm_nvfp4_bf16', 'sm_120a') as GemmSpec;
  assert.equal(r.tiling.cluster, [1, 1]);
});

test('catalog: catalogFor returns copies', () => {
  const a = catalogFor('sm_90a');
  (a[0] as QuantizeSpec).rounding = 'sr';
  (a[0] as QuantizeSpec).tiling.threadsPerBlock = 32;
  const b = catalogFor('sm_90a');
  assert.is((b[0] as QuantizeSpec).rounding, 'four-six');
  assert.is((b[0] as QuantizeSpec).tiling.threadsPerBlock, 256);
  assert.is((CATALOG[0] as QuantizeSpec).tiling.threadsPerBlock, 256);
});

test.run();
