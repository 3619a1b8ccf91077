// The consumers of a tuning file: `qgen emit --tuning` (deterministic; the winning tilings and gemm_dispatch.json),
// `qgen vendor --tuning` (the package's GEMM_DISPATCH is the table; its Python dispatch rule agrees with
// tune/tuning.ts chooseGemm on every case), and broken tuning files refused with exit 2 and nothing written.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { GemmTiling } from '../dsl/types.ts';
import { main } from '../cli/main.ts';
import { vendor } from '../emit/vendor.ts';
import { configSpaceHash } from '../validate/space.ts';
import { TUNING_FORMAT, chooseGemm, gemmDispatch, shapeClass, type TuningFile } from '../tune/tuning.ts';

const TMP = mkdtempSync(path.join(os.tmpdir(), 'qgen-tuning-consumers-'));

function tuningFile(): TuningFile {
  const t64: GemmTiling = { ctaTile: [64, 64, 256], consumers: 1, stages: 4, cluster: [1, 1], tileOrder: 'row-major' };
  const t128: GemmTiling = {
    ctaTile: [128, 128, 128],
    consumers: 2,
    stages: 8,
    cluster: [1, 1],
    tileOrder: 'swizzle-8',
  };
  const w = (m: number, n: number, k: number, strategy: 'fused' | 'two-pass', tiling: GemmTiling | null) => {
    const [mMin, mMax] = m <= 64 ? [1, 64] : m <= 512 ? [65, 512] : [4097, null];
    return {
      shape: shapeClass(m, n, k),
      mMin,
      mMax,
      n,
      k,
      strategy,
      tiling,
      us: 10,
      twoPassUs: 11,
      cublasBf16Us: 9,
      candidate: 'x',
    };
  };
  return {
    format: TUNING_FORMAT,
    arch: 'sm_90a',
    workload: 'small',
    provenance: { format: 'qgen-provenance/1' },
    cacheKey: {
      sourceHash: 'not-these-sources',
      configSpaceHash: configSpaceHash('sm_90a'),
      gpu: 'NVIDIA H100 80GB HBM3',
      smCount: 132,
      driver: '570.1',
      cuda: '12.8',
      qgenVersion: '0.1.0',
    },
    candidates: [],
    winners: [
      w(64, 8192, 8192, 'fused', t64),
      w(8192, 8192, 8192, 'two-pass', null),
      w(300, 4096, 4096, 'fused', t128),
      w(16384, 4096, 11008, 'fused', t128),
    ] as TuningFile['winners'],
  };
}

async function quiet(args: string[]): Promise<{ code: number; err: string }> {
  const write = process.stderr.write.bind(process.stderr);
  const log = console.log;
  let err = '';
  process.stderr.write = ((s: string) => {
    err += s;
    return true;
  }) as typeof process.stderr.write;
  console.log = () => {};
  try {
    const code = await main(args);
    return { code, err };
  } finally {
    process.stderr.write = write;
    console.log = log;
    process.exitCode = 0;
  }
}

test('qgen emit --tuning: deterministic, adds the winning tilings and gemm_dispatch.json; warns on other sources', async () => {
  const file = path.join(TMP, 't.json');
  writeFileSync(file, JSON.stringify(tuningFile()));
  const outs = [path.join(TMP, 'e1'), path.join(TMP, 'e2')];
  for (const out of outs) {
    const r = await quiet(['emit', '--arch', 'sm_90a', '--out', out, '--tuning', file]);
    assert.is(r.code, 0, r.err);
    assert.match(r.err, /warning: tuning file was measured with templates\/runtime not-these-sources/);
  }
  const files = readdirSync(outs[0]).sort();
  assert.equal(readdirSync(outs[1]).sort(), files);
  for (const f of files) assert.ok(readFileSync(path.join(outs[0], f)).equals(readFileSync(path.join(outs[1], f))), f);
  const tuned = ['gemm_nvfp4_bf16_64x64x256_c1_s4_row_k1x1.cu', 'gemm_nvfp4_bf16_128x128x128_c2_s8_sw8_k1x1.cu'];
  for (const k of [...tuned, 'gemm_dispatch.json']) {
    assert.ok(files.includes(k), `${k} emitted`);
  }
  const d = JSON.parse(readFileSync(path.join(outs[0], 'gemm_dispatch.json'), 'utf8'));
  assert.equal(d, JSON.parse(JSON.stringify(gemmDispatch('sm_90a', tuningFile(), path.basename(file)))));
});

test('--tuning refuses a broken file or another arch: exit 2, the field named, nothing written', async () => {
  const broken = tuningFile() as any;
  broken.winners[0].tiling.ctaTile = [96, 64, 256];
  const file = path.join(TMP, 'broken.json');
  writeFileSync(file, JSON.stringify(broken));
  for (const args of [
    ['emit', '--arch', 'sm_90a', '--out', path.join(TMP, 'no1'), '--tuning', file],
    ['vendor', '--target', 'torch', '--arch', 'sm_90a', '--out', path.join(TMP, 'no2'), '--tuning', file],
  ]) {
    const r = await quiet(args);
    assert.is(r.code, 2, r.err);
    assert.match(r.err, /winners\[0\]\.tiling\.ctaTile\[0\]: must be/);
    assert.not.ok(existsSync(args[args.indexOf('--out') + 1]), 'nothing written');
  }
  const good = path.join(TMP, 'good.json');
  writeFileSync(good, JSON.stringify(tuningFile()));
  const r = await quiet(['emit', '--arch', 'sm_100a', '--out', path.join(TMP, 'no3'), '--tuning', good]);
  assert.is(r.code, 2);
  assert.match(r.err, /tuned for sm_90a/);
});

test('qgen tune: a broken workload file is refused before anything runs (exit 2, the field path named)', async () => {
  const file = path.join(TMP, 'workload.json');
  writeFileSync(file, JSON.stringify({ name: 'w', gemms: [{ label: 'x', m: 128, n: 100, k: 64 }], quantizers: [] }));
  const r = await quiet(['tune', '--arch', 'sm_90a', '--workload', file]);
  assert.is(r.code, 2, r.err);
  assert.match(r.err, /gemms\[0\]\.n: must be a multiple of 16/);
});

test('vendor --tuning: GEMM_DISPATCH is the table, and the package picks what chooseGemm picks', async () => {
  const dir = path.join(TMP, 'torch');
  const t = tuningFile();
  const r = await vendor({ target: 'torch', arch: 'sm_90a', out: dir, tuning: t, tuningName: 'tuning/x.json' });
  assert.ok(r.kernels.includes('gemm_nvfp4_bf16_128x128x128_c2_s8_sw8_k1x1'), 'the tuned tiling is vendored');
  const d = gemmDispatch('sm_90a', t, 'tuning/x.json');
  const queries: [number, number, number][] = [];
  for (const m of [1, 64, 65, 300, 512, 513, 4096, 4097, 16384, 32768]) {
    for (const [n, k] of [
      [8192, 8192],
      [4096, 4096],
      [4096, 11008],
      [1024, 2048],
    ])
      queries.push([m, n, k]);
  }
  const script =
    'import json, sys\nsys.path.insert(0, sys.argv[1])\nimport _generated as g, dispatch\n' +
    'q = json.loads(sys.argv[2])\n' +
    'print(json.dumps({"table": g.GEMM_DISPATCH, "with": [dispatch.choose(g.GEMM_DISPATCH, *x) for x in q], ' +
    '"without": [dispatch.choose(g.GEMM_DISPATCH, *x, use_table=False) for x in q]}))';
  const run = await execa('python3', ['-c', script, path.join(dir, 'qgen_torch'), JSON.stringify(queries)], {
    reject: false,
  });
  assert.is(run.exitCode, 0, run.stderr);
  const got = JSON.parse(run.stdout) as { table: unknown; with: unknown[][]; without: unknown[][] };
  assert.equal(got.table, JSON.parse(JSON.stringify(d)));
  const fb = gemmDispatch('sm_90a');
  queries.forEach(([m, n, k], i) => {
    const c = chooseGemm(d, m, n, k);
    assert.equal(got.with[i], [c.strategy, c.kernel, c.from], `${m}x${n}x${k}`);
    const f = chooseGemm(fb, m, n, k);
    assert.equal(got.without[i], [f.strategy, f.kernel, f.from], `${m}x${n}x${k} without the table`);
  });
  assert.ok(
    got.with.some((x) => x[2] === 'shape') &&
      got.with.some((x) => x[2] === 'bucket') &&
      got.with.some((x) => x[2] === 'fallback'),
    'the queries reach every level',
  );
});

test.run();
