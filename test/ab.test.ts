// bench/ab.sh: prototype trees packed on the host for an A/B in one GPU call. A clone of this repository (the working
// tree's ab.sh committed in it) packs a patch of its own; the packed tree carries the patch, regenerated sources and
// a clean provenance naming the commit its branch keeps; bad patches write nothing; `run` dispatches to the packed
// tree's reproduce.sh (which refuses an unknown stage here, where no GPU is).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

const root = fileURLToPath(new URL('../', import.meta.url));

test('pack: the patched tree regenerated, on ab/NAME, with bundle and provenance; run dispatches', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qgen-ab-'));
  const clone = path.join(dir, 'repo');
  const out = path.join(dir, 'packed');
  try {
    await execa('git', ['clone', '-q', '--local', '--no-hardlinks', root, clone]);
    copyFileSync(path.join(root, 'bench/ab.sh'), path.join(clone, 'bench/ab.sh'));
    const git = (...args: string[]) => execa('git', ['-C', clone, ...args]);
    await git('-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qam', 'ab.sh under test', '--allow-empty');
    symlinkSync(path.join(root, 'node_modules'), path.join(clone, 'node_modules'));
    // a patch of the runtime: generate copies the header into generated/ (the packed tree must carry both)
    const header = path.join(clone, 'runtime/qgen_philox.cuh');
    const original = readFileSync(header, 'utf8');
    writeFileSync(header, original + '// ab test marker\n');
    const patch = (await git('diff')).stdout + '\n';
    await git('checkout', '--', 'runtime/qgen_philox.cuh');
    writeFileSync(path.join(clone, 'marker.patch'), patch);
    writeFileSync(path.join(clone, 'broken.patch'), patch.replaceAll('qgen_philox.cuh', 'no_such_file.cuh'));
    const env = { ...process.env, AB_DIR: out };
    const ab = (...args: string[]) => execa('bash', ['bench/ab.sh', ...args], { cwd: clone, env, reject: false });

    // bad input: one line naming the patch, nothing written (untracked patch files do not make the tree dirty)
    const missing = await ab('pack', 'nope.patch');
    assert.is(missing.exitCode, 2);
    assert.match(missing.stderr, /^ab: patch 'nope\.patch' does not exist; allowed: /);
    const broken = await ab('pack', 'broken.patch');
    assert.is(broken.exitCode, 2);
    assert.match(broken.stderr, /'broken\.patch' does not apply to HEAD/);
    assert.is(broken.stderr.trim().split('\n').length, 1);
    assert.not.ok(existsSync(path.join(out, 'broken.tgz')));
    assert.is((await git('branch', '--list', 'ab/*')).stdout.trim(), '');
    assert.is((await git('worktree', 'list')).stdout.trim().split('\n').length, 1, 'scratch worktree removed');

    const packed = await ab('pack', 'marker.patch');
    assert.is(packed.exitCode, 0, packed.stderr);
    const tgz = path.join(out, 'marker.tgz');
    assert.ok(existsSync(tgz));
    const branch = (await git('rev-parse', 'ab/marker')).stdout.trim();
    const show = (file: string) => execa('tar', ['xzf', tgz, '-O', file]).then((r) => r.stdout);
    const provenance = JSON.parse(await show('.device/provenance.json')) as { commit: string; dirty: boolean };
    assert.is(provenance.commit, branch);
    assert.is(provenance.dirty, false);
    assert.ok((await show('runtime/qgen_philox.cuh')).endsWith('// ab test marker'));
    assert.ok((await show('generated/sm_90a/qgen_philox.cuh')).endsWith('// ab test marker'), 'generate ran');
    assert.ok((await show('.device/qgen-gpu.mjs')).length > 100_000, 'the GPU bundle');
    assert.not.ok(readFileSync(header, 'utf8').includes('ab test marker'), 'the clone itself is untouched');

    const listed = await ab('list');
    assert.match(listed.stdout, new RegExp(`marker: "commit":"${branch}"`));
    const run = await ab('run', 'nosuch');
    assert.match(run.stdout, /=== ab: marker \([0-9a-f]{7}\)/);
    assert.match(run.stdout, /reproduce: stage 'nosuch'; allowed: /);
    assert.is(run.exitCode, 2);
  } finally {
    await execa('git', ['-C', clone, 'worktree', 'prune'], { reject: false });
    rmSync(dir, { recursive: true, force: true });
  }
});

test('usage errors name what is allowed', async () => {
  const r = await execa('bash', ['bench/ab.sh', 'frobnicate'], { cwd: root, reject: false });
  assert.is(r.exitCode, 2);
  assert.match(r.stderr, /^ab: usage: bash bench\/ab\.sh pack PATCH\.\.\. \| run STAGE\.\.\. \| list/);
});

test.run();
