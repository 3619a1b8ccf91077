// qgen tune's CPU side: the search space (every enumerated point validates, every pruned one does not), workloads,
// tuning files (round trip, broken files refused with field paths) and the shape dispatch they feed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ARCHS, type Arch, type GemmTiling } from '../dsl/types.ts';
import { catalogFor } from '../dsl/catalog.ts';
import { GEMM_TUNABLES, gemmTilingPoints } from '../dsl/tunables.ts';
import { WORKLOADS, loadWorkload, workloadProblems } from '../dsl/workloads.ts';
import { validate } from '../validate/validate.ts';
import { lower } from '../lower/lower.ts';
import { configSpaceHash, gemmSpace, gemmWithTiling, quantizeSpace } from '../validate/space.ts';
import {
  TUNING_FORMAT,
  baseGemm,
  chooseGemm,
  gemmDispatch,
  readTuningFile,
  shapeClass,
  sourceHash,
  tuningProblems,
  type TuningFile,
} from '../tune/tuning.ts';

const quantizerNames = catalogFor('sm_90a')
  .filter((s) => s.kind === 'quantize')
  .map((s) => s.name);

test('space: a point drawn from the declared tunables is a candidate exactly when it validates and lowers', () => {
  const spaces = Object.fromEntries(
    ARCHS.map((a) => [a, new Set(gemmSpace(a, baseGemm(a)).candidates.map((s) => s.name))]),
  );
  const point = (arch: Arch) => {
    const t = GEMM_TUNABLES[arch];
    return fc
      .record({
        m: fc.constantFrom(...t.tileM.values),
        n: fc.constantFrom(...t.tileN.values),
        k: fc.constantFrom(...t.tileK.values),
        consumers: fc.constantFrom(...t.consumers.values),
        stages: fc.constantFrom(...t.stages.values),
        cluster: fc.constantFrom(...t.cluster.values),
        tileOrder: fc.constantFrom(...t.tileOrder.values),
      })
      .map((p): GemmTiling => ({
        ctaTile: [p.m, p.n, p.k],
        consumers: p.consumers,
        stages: p.stages,
        cluster: [p.cluster[0], p.cluster[1]],
        tileOrder: p.tileOrder,
      }));
  };
  fc.assert(
    fc.property(
      fc.constantFrom(...ARCHS).chain((a) => fc.tuple(fc.constant(a), point(a))),
      ([arch, tiling]) => {
        const spec = gemmWithTiling(baseGemm(arch), tiling);
        let lowers = true;
        try {
          lower(spec, arch);
        } catch {
          lowers = false;
        }
        assert.is(spaces[arch].has(spec.name), validate(spec, arch).length === 0 && lowers, `${arch} ${spec.name}`);
      },
    ),
    { numRuns: 300, seed: 15 },
  );
});

test('space: every candidate validates, every pruned point has a problem, together they are the whole product', () => {
  for (const arch of ARCHS) {
    const { candidates, pruned } = gemmSpace(arch, baseGemm(arch));
    assert.ok(candidates.length > 0, `${arch}: no legal tiling`);
    for (const c of candidates) assert.equal(validate(c, arch), [], `${arch} ${c.name}`);
    for (const p of pruned) assert.ok(/tiling/.test(p.problem), `${arch} ${p.name}: ${p.problem}`);
    assert.is(candidates.length + pruned.length, gemmTilingPoints(arch).length);
    assert.is(new Set(candidates.map((c) => c.name)).size, candidates.length, 'candidate names are unique');
    const q = quantizeSpace(arch, catalogFor(arch).find((s) => s.name === 'nvidia_w_rtn_16x16')! as never);
    assert.ok(
      q.pruned.some((p) => p.problem.includes('rowsPerBlock')),
      '16x16 blocks prune rowsPerBlock 1 and 4',
    );
    for (const c of q.candidates) assert.equal(validate(c, arch), []);
  }
  assert.is.not(configSpaceHash('sm_90a'), configSpaceHash('sm_100a'));
});

test('workloads: the built-ins validate; a broken file is refused with field paths', () => {
  for (const w of WORKLOADS) assert.equal(workloadProblems(w, quantizerNames), [], w.name);
  const llama = WORKLOADS.find((w) => w.name === 'llama-7b')!;
  assert.ok(
    llama.gemms.some((g) => g.m === 32768 && g.n === 22016 && g.k === 4096),
    'fwd 4096->22016 at 32k tokens',
  );
  assert.ok(
    llama.gemms.some((g) => g.m === 4096 && g.n === 11008 && g.k === 16384),
    'dW of the down projection',
  );
  const layerDefaults = [
    'quartet2_et_mseden_rht128_dqplane',
    'quartet2_xt_rq_mseden_rht128_dqplane',
    'quartet2_wt_rq_mseden_rht128_dqplane',
  ];
  for (const k of layerDefaults)
    assert.ok(
      llama.quantizers.some((q) => q.kernel === k),
      `${k}: a kernel the torch layer runs by default`,
    );
  // the layer benchmark's 32k tokens, where a table entry is chosen (the winner at the kernel's largest shape)
  for (const k of ['quartet2_et_mseden_rht128_dqplane', 'quartet2_xt_rq_mseden_rht128_dqplane'])
    assert.ok(
      llama.quantizers.some((q) => q.kernel === k && q.rows * q.cols === 32768 * 4096),
      `${k}: at 32k tokens`,
    );
  const bad = {
    name: 'x',
    gemms: [{ label: 'a', m: 0, n: 24, k: 64, extra: 1 }],
    quantizers: [{ label: 'q', kernel: 'nope', rows: 4, cols: 100 }],
  };
  assert.equal(
    workloadProblems(bad, quantizerNames)
      .map((p) => p.path)
      .sort(),
    ['gemms[0].extra', 'gemms[0].m', 'gemms[0].n', 'quantizers[0].cols', 'quantizers[0].kernel'],
  );
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qgen-wl-'));
  writeFileSync(path.join(dir, 'w.json'), JSON.stringify(bad));
  assert.throws(() => loadWorkload(path.join(dir, 'w.json'), quantizerNames), /gemms\[0\]\.m: must be/);
  assert.throws(() => loadWorkload('no-such-workload', quantizerNames), /neither a built-in workload/);
});

function sampleTuning(): TuningFile {
  const k128: GemmTiling = {
    ctaTile: [128, 128, 128],
    consumers: 2,
    stages: 6,
    cluster: [1, 1],
    tileOrder: 'swizzle-8',
  };
  const w = (m: number, n: number, k: number, strategy: 'fused' | 'two-pass', tiling: GemmTiling | null) => {
    const [mMin, mMax] = m <= 64 ? [1, 64] : [4097, null];
    return {
      shape: shapeClass(m, n, k),
      mMin,
      mMax,
      n,
      k,
      strategy,
      tiling,
      us: 100,
      twoPassUs: 120,
      cublasBf16Us: 99,
      candidate: tiling ? 'fused' : 'two-pass',
    };
  };
  return {
    format: TUNING_FORMAT,
    arch: 'sm_90a',
    workload: 'small',
    provenance: { format: 'qgen-provenance/1', commit: 'a'.repeat(40), dirty: false },
    cacheKey: {
      sourceHash: 'abc',
      configSpaceHash: configSpaceHash('sm_90a'),
      gpu: 'NVIDIA H100 80GB HBM3',
      smCount: 132,
      driver: '570',
      cuda: '12.8',
      qgenVersion: '0.1.0',
    },
    candidates: [],
    winners: [
      w(64, 8192, 8192, 'fused', k128),
      w(8192, 8192, 8192, 'two-pass', null),
      w(16384, 4096, 4096, 'two-pass', null),
      w(16384, 4096, 11008, 'fused', k128),
    ] as TuningFile['winners'],
  };
}

test('tuning file: round trip, and a broken file is refused naming the field', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qgen-tuning-'));
  const file = path.join(dir, 't.json');
  const t = sampleTuning();
  writeFileSync(file, JSON.stringify(t));
  assert.equal(readTuningFile(file, 'sm_90a'), t);
  assert.throws(() => readTuningFile(file, 'sm_100a'), /tuned for sm_90a/);
  const broken = structuredClone(t) as any;
  broken.winners[0].tiling.stages = 40;
  broken.winners[1].tiling = { ctaTile: [1, 2, 3] };
  broken.winners[2].mMin = 7;
  broken.cacheKey.smCount = 0;
  const paths = tuningProblems(broken).map((p) => p.path);
  for (const want of ['winners[0].tiling.stages', 'winners[1].tiling', 'winners[2].mMin', 'cacheKey.smCount']) {
    assert.ok(paths.includes(want), `${want} in ${paths.join(', ')}`);
  }
  writeFileSync(file, '{"format": ');
  assert.throws(() => readTuningFile(file, 'sm_90a'), /cannot read .* as JSON/);
});

test('dispatch: exact shape class, then the m bucket, then the documented fallback', () => {
  const fb = gemmDispatch('sm_90a');
  assert.equal([chooseGemm(fb, 1, 16, 64).strategy, chooseGemm(fb, 64, 8192, 8192).strategy], ['fused', 'fused']);
  assert.is(chooseGemm(fb, 65, 8192, 8192).strategy, 'two-pass');
  // skinny m: the operand-swapped tilings (GEMM_CHOICE), the 16-row one up to m = 16
  assert.equal(
    [1, 16, 17, 64].map((m) => chooseGemm(fb, m, 8192, 8192).kernel),
    [
      'gemm_nvfp4_bf16_16x64x128_swapab',
      'gemm_nvfp4_bf16_16x64x128_swapab',
      'gemm_nvfp4_bf16_64x64x128_swapab',
      'gemm_nvfp4_bf16_64x64x128_swapab',
    ],
  );
  assert.is(chooseGemm(gemmDispatch('sm_100a'), 32768, 4096, 4096).strategy, 'fused');
  const d = gemmDispatch('sm_90a', sampleTuning());
  const fusedName = 'gemm_nvfp4_bf16_128x128x128'; // the catalog's name for that tiling: no duplicate kernel
  assert.equal(chooseGemm(d, 16384, 4096, 11008), { ...d.shapes[3], from: 'shape' });
  assert.is(chooseGemm(d, 16384, 4096, 11008).kernel, fusedName);
  // same bucket, other (n, k): the bucket's majority (two-pass, 2 of 3)
  assert.equal(
    [chooseGemm(d, 30000, 1024, 1024).strategy, chooseGemm(d, 30000, 1024, 1024).from],
    ['two-pass', 'bucket'],
  );
  assert.equal([chooseGemm(d, 32, 1024, 1024).kernel, chooseGemm(d, 32, 1024, 1024).from], [fusedName, 'bucket']);
  // no winner in the 65..512 bucket: fallback
  assert.equal(
    [chooseGemm(d, 300, 8192, 8192).strategy, chooseGemm(d, 300, 8192, 8192).from],
    ['two-pass', 'fallback'],
  );
});

test('sourceHash: kernel templates and runtime headers count; NUMERICS prose, the torch package, vendor do not', () => {
  const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qgen-hash-'));
  try {
    for (const sub of ['templates', 'runtime']) cpSync(path.join(root, sub), path.join(dir, sub), { recursive: true });
    const base = sourceHash(dir);
    assert.is(base, sourceHash(root), 'a copy hashes like the tree');
    const edit = (rel: string, changes: boolean) => {
      const p = path.join(dir, rel);
      writeFileSync(p, 'edited\n', { flag: 'a' });
      const got = sourceHash(dir);
      assert.is(got !== base, changes, `${rel}: ${changes ? 'must' : 'must not'} change the hash`);
    };
    edit('runtime/NUMERICS.md', false);
    edit('runtime/torch/qgen_torch/ops.py', false);
    edit('templates/vendor/torch_README.md.hbs', false);
    edit('runtime/qgen_quantize_plane.cuh', true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const dir2 = mkdtempSync(path.join(os.tmpdir(), 'qgen-hash-'));
  try {
    for (const sub of ['templates', 'runtime']) cpSync(path.join(root, sub), path.join(dir2, sub), { recursive: true });
    const base = sourceHash(dir2);
    writeFileSync(path.join(dir2, 'templates/quantize.cu.hbs'), '// edited\n', { flag: 'a' });
    assert.is.not(sourceHash(dir2), base, 'a kernel template changes the hash');
  } finally {
    rmSync(dir2, { recursive: true, force: true });
  }
});

test.run();
