// Every results file under bench/results/ carries a valid qgen-provenance/1 object (harness/provenance.ts), and
// the format's writer and reader agree.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  PROVENANCE_FORMAT,
  provenanceProblems,
  readProvenance,
  runFolderName,
  withProvenance,
  type Provenance,
} from '../harness/provenance.ts';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const results = path.join(root, 'bench/results');

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    return statSync(full).isDirectory() ? filesUnder(full) : [full];
  });
}

const sample: Provenance = {
  format: PROVENANCE_FORMAT,
  commit: 'a'.repeat(40),
  dirty: false,
  qgen_version: '0.1.0',
  source_hash: null,
  gpu: 'NVIDIA H100 80GB HBM3',
  sm_count: 132,
  compute_capability: '9.0',
  driver: '580.1',
  cuda: '13.0',
  nvcc: '13.0.88',
  torch: null,
  date: '2026-12-06T18:00:00.000Z',
  command: ['node', '.device/qgen-gpu.mjs', 'test'],
  recorded_at_run_time: true,
};

test('every results file under bench/results/ carries a valid provenance (README files excepted)', () => {
  const files = filesUnder(results).filter((f) => path.basename(f) !== 'README.md');
  assert.ok(files.length > 20, `expected the committed results, found ${files.length} files`);
  const bad = files
    .map((f) => ({ f, r: readProvenance(f, readFileSync(f, 'utf8')) }))
    .filter((x) => x.r.error)
    .map((x) => `${path.relative(root, x.f)}: ${x.r.error}`);
  assert.equal(bad, []);
});

test('files outside archive/ were recorded at run time, with a commit; archived ones say they were not', () => {
  for (const f of filesUnder(results).filter((x) => path.basename(x) !== 'README.md')) {
    const p = readProvenance(f, readFileSync(f, 'utf8')).provenance!;
    const archived = path.relative(results, f).startsWith('archive/');
    assert.is(p.recorded_at_run_time === false, archived, path.relative(root, f));
    if (!archived) assert.ok(p.commit !== null, `${path.relative(root, f)}: no commit`);
  }
});

test('json, markdown and text results round-trip their provenance', () => {
  for (const name of ['x.json', 'x.md', 'x.svg', 'x.txt']) {
    const text = withProvenance(name, sample, name.endsWith('.json') ? [{ a: 1 }] : 'body\n');
    assert.equal(readProvenance(name, text).provenance, sample, name);
  }
  assert.equal(JSON.parse(withProvenance('x.json', sample, [{ a: 1 }])).rows, [{ a: 1 }]);
});

test('a file without provenance, or with a broken one, is rejected with the reason', () => {
  assert.match(readProvenance('x.md', '# Title\n').error ?? '', /first line/);
  assert.match(readProvenance('x.json', '[1, 2]').error ?? '', /provenance/);
  const short = withProvenance('x.txt', { ...sample, commit: 'abc1234' }, 'body\n');
  assert.match(readProvenance('x.txt', short).error ?? '', /commit must be 40/);
  assert.match(provenanceProblems({ ...sample, date: null }).join(), /date and a command/);
  assert.equal(provenanceProblems({ ...sample, date: null, recorded_at_run_time: false }), []);
  assert.match(provenanceProblems({ ...sample, sm_count: '132' }).join(), /sm_count must be a number/);
});

test('run folders are <command>-<date>-<HHMM>-<commit7>', () => {
  assert.is(runFolderName('test', new Date('2026-12-06T07:05:00Z'), 'b'.repeat(40)), 'test-2026-12-06-0705-bbbbbbb');
  assert.is(runFolderName('bench', new Date('2026-12-06T23:59:00Z'), null), 'bench-2026-12-06-2359-nocommit');
});

test.run();
