// scripts/apply-kernel-names.mjs and its table scripts/kernel-renames.json: the table maps onto exactly the catalog's
// names, and the script renames whole words only, leaves bench/results, generated/ and node_modules alone, reports
// what is left, and changes nothing when run again. The fixture is built from the table (this file names no old
// name literally, so the script leaves it alone too).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { catalogFor } from '../dsl/catalog.ts';
import { ARCHS } from '../dsl/types.ts';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const script = path.join(root, 'scripts/apply-kernel-names.mjs');
const renames: Record<string, string> = JSON.parse(
  readFileSync(path.join(root, 'scripts/kernel-renames.json'), 'utf8'),
).renames;

test('kernel-names: the table maps onto exactly the catalog names of every arch, one old name per new name', () => {
  const catalog = new Set(ARCHS.flatMap((a) => catalogFor(a).map((s) => s.name)));
  assert.equal([...new Set(Object.values(renames))].sort(), [...catalog].sort());
  assert.is(new Set(Object.values(renames)).size, Object.keys(renames).length, 'one old name per new name');
  // Idempotence needs that no new name is itself renamed.
  for (const to of Object.values(renames)) assert.ok(renames[to] === undefined || renames[to] === to, to);
});

function run(dir: string, ...args: string[]) {
  const r = spawnSync(process.execPath, [script, '--root', dir, ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout + r.stderr };
}

test('kernel-names: whole-word renaming, skipped folders, leftovers, idempotent', () => {
  // An old name that is a whole-word prefix of another old name, both renamed.
  const olds = Object.keys(renames);
  const [short, long] = olds
    .flatMap((a) => olds.filter((b) => b.startsWith(`${a}_`)).map((b) => [a, b]))
    .find(([a, b]) => renames[a] !== a && renames[b] !== b)!;
  assert.ok(short && long, 'the table has a renamed name that prefixes another renamed one');
  const n = (s: string) => renames[s];
  const source =
    [
      `const k = '${short}'; const l = "${long}";`,
      `qgen_${short}(); qgen_${short}_impl<<<1, 1>>>(); qgen_${short}_workspace_bytes(0); ${short}_workspace_bytes`,
      `my_${short} ${short}2 ${short}_extra qgen_${short}_8 x${long}`,
      `generated/sm_90a/${short}.cu ${short.toUpperCase()}`,
    ].join('\n') + '\n';
  const want =
    [
      `const k = '${n(short)}'; const l = "${n(long)}";`,
      `qgen_${n(short)}(); qgen_${n(short)}_impl<<<1, 1>>>(); qgen_${n(short)}_workspace_bytes(0); ` +
        `${n(short)}_workspace_bytes`,
      `my_${short} ${short}2 ${short}_extra qgen_${short}_8 x${long}`,
      `generated/sm_90a/${n(short)}.cu ${short.toUpperCase()}`,
    ].join('\n') + '\n';
  const dir = mkdtempSync(path.join(tmpdir(), 'qgen-names-'));
  try {
    const kept = [
      'bench/results/run-1/rows.json',
      'generated/sm_90a/manifest.json',
      'node_modules/x/index.js',
      'tools/node_modules/y.js',
    ];
    for (const f of ['src/a.ts', 'docs/b.md', ...kept]) {
      mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
      writeFileSync(path.join(dir, f), source);
    }
    writeFileSync(path.join(dir, 'blob.bin'), Buffer.concat([Buffer.from(short), Buffer.from([0, 1, 2])]));

    const check = run(dir, '--check');
    assert.is(check.code, 1, check.out);
    assert.is(readFileSync(path.join(dir, 'src/a.ts'), 'utf8'), source, '--check writes nothing');

    const first = run(dir);
    assert.is(first.code, 0, first.out);
    assert.match(first.out, /2 file\(s\) changed, 14 replacement\(s\)/);
    assert.is(readFileSync(path.join(dir, 'src/a.ts'), 'utf8'), want);
    assert.is(readFileSync(path.join(dir, 'docs/b.md'), 'utf8'), want);
    for (const f of kept) assert.is(readFileSync(path.join(dir, f), 'utf8'), source, `${f} untouched`);
    // Left over: the upper-case spelling (src, docs) and generated/ (until npm run generate); not bench/results.
    assert.match(first.out, /old names still found in 3 file\(s\)/);
    assert.match(first.out, new RegExp(`src/a\\.ts: 4: ${short.toUpperCase()}`));
    assert.not.match(first.out, /bench\/results/);

    const second = run(dir);
    assert.is(second.code, 0, second.out);
    assert.match(second.out, /0 file\(s\) changed, 0 replacement\(s\)/);
    assert.is(readFileSync(path.join(dir, 'src/a.ts'), 'utf8'), want, 'a second run changes nothing');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('kernel-names: the repository has no old name left outside bench/results', () => {
  const r = run(root, '--check');
  assert.is(r.code, 0, r.out);
});

test.run();
