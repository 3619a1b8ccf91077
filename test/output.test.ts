// Output folders of `qgen emit` and `qgen vendor` (emit/output.ts): filesystem mistakes are one-line errors with exit
// code 2 and nothing written; an earlier qgen output is replaced cleanly; a foreign folder is refused unless --force,
// and files qgen did not write are never touched. Also: `qgen emit | head` ends quietly (EPIPE).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../cli/main.ts';
import { OWNED_FILES_NAME } from '../emit/output.ts';
import { vendor } from '../emit/vendor.ts';

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const TMP = mkdtempSync(path.join(os.tmpdir(), 'qgen-output-test-'));
const tmp = (name: string) => path.join(TMP, name);

async function inProcess(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const saved = { log: console.log, write: process.stderr.write };
  console.log = (...a: unknown[]) => {
    out.push(a.join(' '));
  };
  process.stderr.write = ((chunk: unknown) => {
    err.push(String(chunk));
    return true;
  }) as typeof process.stderr.write;
  try {
    const code = await main(args);
    return { code, stdout: out.join('\n'), stderr: err.join('') };
  } finally {
    console.log = saved.log;
    process.stderr.write = saved.write;
    process.exitCode = undefined;
  }
}

/** Every file under dir (relative, sorted). */
function filesUnder(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) =>
      e.isDirectory() ? filesUnder(path.join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`],
    )
    .sort();
}

test('output: filesystem mistakes are one line naming the path, exit 2, nothing written, no stack', async () => {
  const file = tmp('a-file');
  writeFileSync(file, 'mine\n');
  const cases: [string[], RegExp][] = [
    [['--out', file], /a-file: exists and is not a folder$/],
    [['--out', path.join(file, 'below')], /below: cannot create: .*a part of the path is a file$/],
    [['--out', ''], /--out: empty path/],
    [['--out', tmp('one'), '--out', tmp('two')], /--out: given 2 times/],
    [['--out', '/proc/qgen-test/x'], /\/proc\/qgen-test\/x: cannot create/],
  ];
  for (const [args, pattern] of cases) {
    const r = await inProcess('emit', '--arch', 'sm_90a', '--only', 'amax_bf16', ...args);
    assert.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    const lines = r.stderr.trim().split('\n');
    assert.is(lines.length, 1, r.stderr);
    assert.match(lines[0], pattern);
    assert.not.match(r.stderr, /internal error|\n\s+at /);
  }
  assert.is(readFileSync(file, 'utf8'), 'mine\n');
  assert.not.ok(existsSync(tmp('one')) || existsSync(tmp('two')));
  const v = await inProcess('vendor', '--target', 'c', '--arch', 'sm_90a', '--out', file);
  assert.is(v.code, 2);
  assert.match(v.stderr.trim(), /^qgen: .*a-file: exists and is not a folder$/);
});

test('output: emitting over an earlier emit of another arch leaves none of its files behind', async () => {
  const dir = tmp('re-emit');
  assert.is((await inProcess('emit', '--arch', 'sm_100a', '--out', dir)).code, 0);
  assert.ok(readdirSync(dir).includes('qgen_sm100_tcgen05.cuh'));
  const r = await inProcess('emit', '--arch', 'sm_90a', '--out', dir, '--only', 'amax_bf16');
  assert.is(r.code, 0, r.stderr);
  const manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  const expected = ['amax_bf16.cu', ...manifest.headers, 'manifest.json', OWNED_FILES_NAME].sort();
  assert.equal(filesUnder(dir), expected);
  const owned = JSON.parse(readFileSync(path.join(dir, OWNED_FILES_NAME), 'utf8'));
  assert.equal(
    owned.files,
    expected.filter((f) => f !== OWNED_FILES_NAME),
  );
});

test('output: a non-empty folder qgen did not write is refused; --force writes beside its files, never over them', async () => {
  const project = tmp('user-project');
  mkdirSync(project);
  writeFileSync(path.join(project, 'README.md'), 'my project\n');
  writeFileSync(path.join(project, 'train.py'), 'print(1)\n');
  const refused = await inProcess('vendor', '--target', 'c', '--arch', 'sm_90a', '--out', project);
  assert.is(refused.code, 2);
  assert.match(refused.stderr, /user-project: folder is not empty and holds no earlier qgen output/);
  assert.equal(filesUnder(project), ['README.md', 'train.py']);
  // --force: the package has its own README.md, which would overwrite the user's: still refused, nothing written.
  const clash = await inProcess('vendor', '--target', 'c', '--arch', 'sm_90a', '--out', project, '--force');
  assert.is(clash.code, 2);
  assert.match(clash.stderr, /would overwrite 1 file\(s\) qgen did not write \(README\.md\)/);
  assert.equal(filesUnder(project), ['README.md', 'train.py']);
  // Emitting beside foreign files with --force works, and a later run replaces only qgen's files.
  const forced = await inProcess('emit', '--arch', 'sm_90a', '--out', project, '--force', '--only', 'amax_bf16');
  assert.is(forced.code, 0, forced.stderr);
  assert.ok(filesUnder(project).includes('amax_bf16.cu'));
  const again = await inProcess('emit', '--arch', 'sm_90a', '--out', project, '--only', 'hadamard_rht128');
  assert.is(again.code, 0, again.stderr);
  const after = filesUnder(project);
  assert.ok(after.includes('hadamard_rht128.cu') && !after.includes('amax_bf16.cu'), after.join(' '));
  assert.is(readFileSync(path.join(project, 'README.md'), 'utf8'), 'my project\n');
  assert.is(readFileSync(path.join(project, 'train.py'), 'utf8'), 'print(1)\n');
});

test('output: vendoring twice replaces the package; a file the user added inside it stays', async () => {
  const dir = tmp('vendored');
  const first = await vendor({ target: 'torch', arch: 'sm_90a', out: dir });
  writeFileSync(path.join(dir, 'NOTES.txt'), 'mine\n');
  const second = await vendor({ target: 'torch', arch: 'sm_90a', out: dir });
  assert.equal(second.files, first.files);
  const expected = [...first.files.map((f) => path.relative(dir, f)), 'NOTES.txt', OWNED_FILES_NAME];
  assert.equal(filesUnder(dir), expected.sort());
});

test('output: `qgen emit | head -1` ends without an error (EPIPE)', async () => {
  const out = tmp('piped');
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/qgen.mjs'), 'emit', '--arch', 'sm_90a', '--out', out], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  child.stdout.once('data', () => child.stdout.destroy()); // the reader goes away after the first chunk
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.is(code, 0, stderr);
  assert.not.match(stderr, /EPIPE|internal error/);
});

test.run();
