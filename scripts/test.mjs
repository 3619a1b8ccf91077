#!/usr/bin/env node
// Runs the CPU test suite (uvu over test/**/*.test.ts, TypeScript through tsx) and closes with the
// plain summary line "N passed, N failed" that CI reads. Exit code: non-zero when any test failed.
// Usage: npm test [-- PATTERN]   (PATTERN: a regex over test file paths, e.g. `npm test -- philox`)
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const filter = process.argv[2] ?? '';
const pattern = filter ? `${filter}.*\\.test\\.ts$` : '\\.test\\.ts$';
const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'node_modules/uvu/bin.js'), 'test', pattern],
  { cwd: root, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, NO_COLOR: '1' } });
let out = '';
child.stdout.on('data', (d) => { out += d; process.stdout.write(d); });
child.on('close', (code) => {
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
  process.exit(code !== 0 || failed > 0 ? 1 : 0);
});
