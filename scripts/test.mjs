#!/usr/bin/env node
// Runs the CPU test suite: first the GATES (npm scripts: `typecheck` = tsc), then uvu over test/**/*.test.ts
// (TypeScript through tsx), and closes with the plain summary line "N passed, N failed" that CI reads. Exit code
// non-zero when a gate fails, any test failed, a `.only(` is left in a test file (it would silently skip the rest),
// or - on a full run - fewer than MIN_TESTS tests ran (a file that stopped registering its tests).
// Usage: npm test [-- PATTERN]   (PATTERN: a regex over test file paths, e.g. `npm test -- philox`; no floor then)
// Colour is off (NO_COLOR; FORCE_COLOR removed, since Node warns when both are set). While a test file runs long
// without printing (compiling kernels), a line every QGEN_TEST_HEARTBEAT_S seconds (default 15) says which.
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const filter = process.argv[2] ?? '';
/** The fewest tests a full run may report; raise it when tests are added. */
const MIN_TESTS = 180;

const onlies = readdirSync(path.join(root, 'test'))
  .filter((f) => f.endsWith('.test.ts'))
  .filter((f) => /(^|[^\w])(test|suite|it|describe)\.only\(/m.test(readFileSync(path.join(root, 'test', f), 'utf8')));
if (onlies.length) {
  console.log('0 passed, 1 failed');
  console.error(`test runner: .only( in ${onlies.join(', ')}: remove it (it skips every other test)`);
  process.exit(1);
}
/** npm scripts that must pass before the tests run. scripts/format-once.sh adds 'format:check' and 'lint' once
 * the tree is formatted. */
const GATES = ['typecheck', 'format:check', 'lint'];
// No colour anywhere: NO_COLOR, and FORCE_COLOR removed (Node warns when both are set).
const env = { ...process.env, NO_COLOR: '1' };
delete env.FORCE_COLOR;
for (const gate of GATES) {
  const r = spawnSync('npm', ['run', '--silent', gate], { cwd: root, stdio: 'inherit', env });
  if (r.status !== 0) {
    console.log('0 passed, 1 failed');
    console.error(`test runner: npm run ${gate} failed`);
    process.exit(1);
  }
}
const pattern = filter ? `${filter}.*\\.test\\.ts$` : '\\.test\\.ts$';
// --no-color: uvu would otherwise set FORCE_COLOR itself.
const uvuArgs = [path.join(root, 'node_modules/uvu/bin.js'), 'test', pattern, '--no-color'];
const child = spawn(process.execPath, ['--import', 'tsx', ...uvuArgs], {
  cwd: root,
  stdio: ['ignore', 'pipe', 'inherit'],
  env,
});
let out = '';
let current = '';
let quietSince = Date.now();
const started = Date.now();
const heartbeatMs = 1000 * Number(process.env.QGEN_TEST_HEARTBEAT_S ?? 15);
const heartbeat = setInterval(
  () => {
    if (Date.now() - quietSince < heartbeatMs) return;
    const seconds = Math.round((Date.now() - started) / 1000);
    process.stdout.write(`\n  ... ${current || 'tests'} still running (${seconds} s since start)\n`);
    quietSince = Date.now();
  },
  Math.min(heartbeatMs, 1000),
);
child.stdout.on('data', (d) => {
  out += d;
  quietSince = Date.now();
  const files = [...String(d).matchAll(/^(\S+\.test\.ts)$/gm)];
  if (files.length > 0) current = files[files.length - 1][1];
  process.stdout.write(d);
});
child.on('close', (code) => {
  clearInterval(heartbeat);
  const plain = out.replace(/\x1b\[[0-9;]*m/g, '');
  const total = Number(/Total:\s+(\d+)/.exec(plain)?.[1] ?? NaN);
  const passed = Number(/Passed:\s+(\d+)/.exec(plain)?.[1] ?? NaN);
  const skipped = Number(/Skipped:\s+(\d+)/.exec(plain)?.[1] ?? 0);
  if (!Number.isFinite(total) || !Number.isFinite(passed)) {
    console.log(`0 passed, 1 failed`);
    console.error('test runner: uvu printed no summary (a test file crashed before reporting?)');
    process.exit(1);
  }
  const failed = total - passed - skipped;
  console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
  if (!filter && total < MIN_TESTS) {
    console.error(`test runner: only ${total} tests ran, fewer than the floor of ${MIN_TESTS} (scripts/test.mjs)`);
    process.exit(1);
  }
  process.exit(code !== 0 || failed > 0 ? 1 : 0);
});
