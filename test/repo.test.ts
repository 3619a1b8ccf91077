// The repository is self-contained: nothing cites files outside it, every `PTX-FACTS §N` / `METHOD §N` citation
// names a section that docs/ptx-facts.md / docs/method.md has, the helper scripts the README names are in the repo,
// and the license package.json names is there.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const read = (rel: string) => readFileSync(path.join(ROOT, rel), 'utf8');

/** Tracked and new (not ignored) text files of the checkout. */
function repoFiles(): string[] {
  const out = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  return out
    .split('\n')
    .filter(
      (f) => f && existsSync(path.join(ROOT, f)) && !/\.(png|svg|xz|lock)$/.test(f) && !f.endsWith('package-lock.json'),
    );
}

/** Section numbers (`## 4.` / `### 4.5`) of a markdown file. */
function sections(rel: string): Set<string> {
  return new Set([...read(rel).matchAll(/^#{2,3} (\d+(?:\.\d+)?)\.? /gm)].map((m) => m[1]));
}

test('repo: no file cites the material outside the repository (../shared, ptx.md, quartet2.md)', () => {
  const self = 'test/repo.test.ts';
  const offenders: string[] = [];
  for (const f of repoFiles()) {
    if (f === self) continue;
    const text = read(f);
    const outside = [
      /\.\.\/shared\b/,
      /\bshared\/(spec|reference|device)\//,
      /(?<![-\w])ptx\.md\b/,
      /\bquartet2\.md\b/,
    ];
    for (const pattern of outside) {
      if (pattern.test(text)) offenders.push(`${f}: ${pattern}`);
    }
  }
  assert.equal(offenders, []);
});

test('repo: every PTX-FACTS / METHOD citation names an existing section of docs/', () => {
  const docs: Record<string, Set<string>> = {
    'PTX-FACTS': sections('docs/ptx-facts.md'),
    METHOD: sections('docs/method.md'),
  };
  assert.ok(docs['PTX-FACTS'].has('4.5') && docs.METHOD.has('2.5'), 'the docs have numbered sections');
  const missing: string[] = [];
  let cited = 0;
  for (const f of repoFiles()) {
    for (const m of read(f).matchAll(/\b(PTX-FACTS|METHOD) ((?:§\d+(?:\.\d+)*\.?(?:,? (?:and )?)?)+)/g)) {
      for (const n of m[2].matchAll(/§(\d+(?:\.\d+)*)/g)) {
        cited++;
        const section = n[1].replace(/\.$/, '');
        if (!docs[m[1]].has(section)) missing.push(`${f}: ${m[1]} §${section}`);
      }
    }
  }
  assert.ok(cited > 40, `found ${cited} citations`);
  assert.equal(missing, []);
});

test("repo: the README's helper scripts and the declared license are in the repository", () => {
  const readme = read('README.md');
  const named = /\b(scripts\/[\w.-]+\.(?:sh|mjs|ts)|harness\/gpu\/[\w.-]+\.(?:sh|ts)|docs\/[\w.-]+\.md)\b/g;
  for (const m of readme.matchAll(named)) {
    assert.ok(existsSync(path.join(ROOT, m[1])), `README names ${m[1]}`);
  }
  assert.match(readme, /scripts\/pack-node\.sh/);
  const pkg = JSON.parse(read('package.json')) as { license: string };
  assert.is(pkg.license, 'Apache-2.0');
  const license = read('LICENSE');
  assert.match(license, /^\s*Apache License\s+Version 2\.0, January 2004/);
  assert.match(license, /END OF TERMS AND CONDITIONS/);
});

test('repo: npm test shows progress while a file runs quietly, and no colour-variable warning', async () => {
  // test/cli.test.ts (its spawned processes and worker check colour support; uvu used to set FORCE_COLOR beside the
  // runner's NO_COLOR, and Node warned "The 'NO_COLOR' env is ignored due to the 'FORCE_COLOR' env"), FORCE_COLOR
  // also set from outside as some terminals and CI systems do, and a heartbeat of 0.05 s (start-up alone is longer;
  // 0.2 s once missed under load).
  const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts/test.mjs'), '/cli'], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, FORCE_COLOR: '1', QGEN_TEST_HEARTBEAT_S: '0.05' },
  });
  assert.is(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /\.\.\. (cli\.test\.ts|tests) still running \(\d+ s since start\)/);
  assert.match(r.stdout, /\n\d+ passed, 0 failed\n/);
  assert.not.match(r.stderr, /Warning/);
  assert.not.match(r.stdout, /\x1b\[/, 'no colour codes');
});

test.run();
