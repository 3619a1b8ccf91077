// The PyTorch steps of `qgen check` (check.ts): the torch package for the arch built with pip and its tests run,
// then Quartet2Linear forward + backward against bf16 nn.Linear (bench/linear/bench_linear.py). The package is the
// folder passed as --package (made by `qgen vendor --target torch --arch A`), or vendored by this command into a
// temporary folder (the bundle carries the generator) when none is passed.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import type { Arch } from '../../dsl/types.ts';
import { vendor } from '../../emit/vendor.ts';
import { repoRoot } from './results.ts';

export interface StepResult {
  ok: boolean | null;
  summary: string;
  lines: string[];
}

/** The paper's headline speed-ups of Quartet II's linear layer over bf16 (forward + backward). */
export const PAPER_LINEAR_SPEEDUP: Partial<Record<Arch, string>> = {
  sm_100a: 'up to 2.5x bf16 on a B200 (22B-model shapes)',
  sm_120a: 'up to 4.2x bf16 on an RTX 5090',
};

async function python(args: string[], cwd = repoRoot) {
  return execa('python3', args, { cwd, reject: false, all: true, env: { ...process.env, PYTHONUNBUFFERED: '1' } });
}

/** Builds the package with pip (from `dir`, or vendored here) and runs its tests: "N passed, M failed". */
export async function buildAndTestPackage(
  arch: Arch,
  dir: string | null,
): Promise<StepResult & { dir: string | null }> {
  const pip = await python(['-m', 'pip', '--version']);
  if (pip.exitCode !== 0) {
    return { ok: null, summary: 'skipped: python3 -m pip is not available', lines: [], dir: null };
  }
  let pkg = dir;
  if (!pkg) {
    pkg = path.join(mkdtempSync(path.join(os.tmpdir(), 'qgen-check-pkg-')), 'qgen_torch_pkg');
    await vendor({ target: 'torch', arch, out: pkg });
  }
  if (!existsSync(path.join(pkg, 'tests/run.py'))) {
    const summary = `${pkg} is not a torch package from qgen vendor (no tests/run.py)`;
    return { ok: false, summary, lines: [], dir: null };
  }
  const t0 = Date.now();
  const install = await python(['-m', 'pip', 'install', '--no-build-isolation', '--no-deps', '--force-reinstall', pkg]);
  const built = ((Date.now() - t0) / 1000).toFixed(0);
  if (install.exitCode !== 0) {
    const lines = install.all.split('\n').slice(-25);
    return { ok: false, summary: `pip install failed after ${built} s`, lines, dir: null };
  }
  // Run from outside the package folder so that the installed, compiled package is the one imported.
  const tests = await python([path.join(pkg, 'tests/run.py')], os.tmpdir());
  const last = /(\d+) passed, (\d+) failed/.exec(tests.all);
  const ok = tests.exitCode === 0 && last !== null && last[2] === '0';
  return {
    ok,
    dir: pkg,
    summary:
      `built with pip in ${built} s${dir ? '' : ' (vendored by this command)'}; tests: ` +
      (last ? `${last[1]} passed, ${last[2]} failed` : `no summary (exit ${tests.exitCode})`),
    lines: tests.all.split('\n').filter((l) => /^(PASS|FAIL|qgen_torch)/.test(l) || !ok),
  };
}

/** Quartet2Linear (recipe quartet2) forward + backward vs bf16 at bench_linear.py's shapes: speed-ups over bf16. */
export async function linearSpeed(arch: Arch, reps: number): Promise<StepResult> {
  const out = mkdtempSync(path.join(os.tmpdir(), 'qgen-check-linear-'));
  const r = await python([
    'bench/linear/bench_linear.py',
    '--out',
    out,
    '--recipes',
    'quartet2',
    '--reps',
    String(reps),
  ]);
  const file = path.join(out, 'linear.json');
  if (r.exitCode !== 0 || !existsSync(file)) {
    return { ok: false, summary: `bench_linear.py failed (exit ${r.exitCode})`, lines: r.all.split('\n').slice(-20) };
  }
  type Row = { shape: string; tokens: number; time_ms: number; bf16_time_ms: number };
  const rows = JSON.parse(readFileSync(file, 'utf8')) as Row[];
  const lines = rows.map(
    (x) =>
      `| ${x.shape} (${x.tokens} tokens) | ${x.time_ms.toFixed(2)} | ` +
      `${x.bf16_time_ms.toFixed(2)} | ${(x.bf16_time_ms / x.time_ms).toFixed(2)}x |`,
  );
  const best = Math.max(...rows.map((x) => x.bf16_time_ms / x.time_ms));
  return {
    ok: null,
    summary: `best ${best.toFixed(2)}x bf16 (paper: ${PAPER_LINEAR_SPEEDUP[arch] ?? 'no headline for this GPU'})`,
    lines: [
      '| shape | Quartet2Linear fwd+bwd (ms) | bf16 nn.Linear (ms) | speed-up over bf16 |',
      '|---|---:|---:|---:|',
      ...lines,
    ],
  };
}
