// The qgen CLI and spec loading: a few end-to-end runs of bin/qgen.mjs (each costs a process start), the rest in
// process (help texts, usage errors, spec files, the quality table).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../cli/main.ts';
import { computeQuality, formatQualityTable } from '../cli/quality.ts';
import { formatTable } from '../cli/table.ts';
import { ARCH_EXTRAS, CATALOG, catalogFor } from '../dsl/catalog.ts';
import { loadSpecFile, parseJsonSpec, SpecLoadError } from '../dsl/load.ts';
import { ARCHS } from '../dsl/types.ts';
import { validateFile } from '../validate/validate.ts';

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const BIN = path.join(ROOT, 'bin/qgen.mjs');
const TMP = mkdtempSync(path.join(os.tmpdir(), 'qgen-cli-test-'));

function qgen(...args: string[]) {
  return execa(process.execPath, [BIN, ...args], { cwd: ROOT, reject: false, env: { NO_COLOR: '1' } });
}

/** Runs main() in this process, capturing what it prints; restores the exit code afterwards. */
async function inProcess(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const saved = { log: console.log, error: console.error, write: process.stderr.write };
  console.log = (...a: unknown[]) => {
    out.push(a.join(' '));
  };
  console.error = (...a: unknown[]) => {
    err.push(`${a.join(' ')}\n`);
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
    console.error = saved.error;
    process.stderr.write = saved.write;
    process.exitCode = undefined;
  }
}

/** A valid quantizer spec as JSON-ready data (every field spelled out, as a JSON spec file must). */
function jsonQuantizer(name: string): Record<string, unknown> {
  return {
    kind: 'quantize',
    name,
    rounding: 'rtn',
    scaleGroup: { size: 16, format: 'e4m3' },
    block: '1x16',
    target: 'six',
    ceiling: 448,
    tensorScale: 'computed',
    hadamard: null,
    correction: 'per-16',
    input: 'bf16',
    transposedInput: false,
    scaleLayout: '128x4',
    tiling: { threadsPerBlock: 256, rowsPerBlock: 16, groupsPerThread: 2 },
  };
}

/** 1-based line and column of the first occurrence of `needle` in `text` (the test's own oracle). */
function locate(text: string, needle: string): string {
  const lines = text.split('\n');
  const line = lines.findIndex((l) => l.includes(needle));
  return `${line + 1}:${lines[line].indexOf(needle) + 1}`;
}

// ---------------------------------------------------------------------------------------------------------------
// End to end (spawned).

test('cli: qgen emit --help prints the options and exits 0', async () => {
  const r = await qgen('emit', '--help');
  assert.is(r.exitCode, 0, r.stderr);
  for (const o of ['--arch', '--out', '--spec', '--only', 'sm_90a, sm_100a, sm_120a'])
    assert.ok(r.stdout.includes(o), o);
});

test('cli: qgen check without a GPU exits 2 with a message (nothing built); --arch is required and checked', async () => {
  const r = await qgen('check', '--arch', 'sm_100a', '--no-speed');
  assert.is(r.exitCode, 2);
  assert.match(r.stderr, /qgen check: no NVIDIA GPU found/);
  assert.match(r.stderr, /qgen: check could not run on this machine/);
  const bad = await qgen('check', '--arch', 'sm_89');
  assert.is(bad.exitCode, 2);
  assert.match(bad.stderr, /--arch: unknown architecture "sm_89"/);
});

test('cli: qgen list --arch sm_100a prints every catalog kernel with the arch variant', async () => {
  const r = await qgen('list', '--arch', 'sm_100a');
  assert.is(r.exitCode, 0, r.stderr);
  for (const s of CATALOG) assert.ok(r.stdout.includes(s.name), s.name);
  const gemmLine = r.stdout.split('\n').find((l) => l.startsWith('gemm_nvfp4_bf16'));
  assert.ok(gemmLine?.includes('128x256x256'), gemmLine);
  assert.is(r.stdout.split('\n')[0], 'The qgen catalog on sm_100a; other archs: --arch sm_90a, --arch sm_120a');
  const header = r.stdout.split('\n')[1];
  for (const col of ['name', 'kind', 'rounding', 'group', 'hadamard', 'tensor scale', 'doc'])
    assert.ok(header.includes(col), col);
});

test('cli: qgen explain shows the numerics with NUMERICS sections', async () => {
  const r = await qgen('explain', 'quartet2_e_mseden_rht128', '--arch', 'sm_120a');
  assert.is(r.exitCode, 0, r.stderr);
  assert.ok(r.stdout.startsWith('quartet2_e_mseden_rht128 — quantize on sm_120a'), r.stdout.slice(0, 80));
  for (const part of ['§4', '§5.1', '§5.6', 's_eden', 'one-pass', '128-chunk', 'Lowering']) {
    assert.ok(r.stdout.includes(part), `explain mentions ${part}`);
  }
});

test('cli: an unknown arch is a one-line usage error', async () => {
  const r = await qgen('list', '--arch', 'sm_80');
  assert.is(r.exitCode, 2);
  assert.is(
    r.stderr.trim(),
    'qgen: --arch: unknown architecture "sm_80"; allowed: sm_90a, sm_100a, sm_120a (or sm_90, sm_100, sm_120)',
  );
  assert.is(r.stdout, '');
});

test('cli: plain sm_90 / sm_100 / sm_120 mean the a-targets (said in one line); typos: "did you mean"', async () => {
  for (const [plain, target] of [
    ['sm_90', 'sm_90a'],
    ['sm_100', 'sm_100a'],
    ['sm_120', 'sm_120a'],
  ]) {
    const r = await inProcess('list', '--arch', plain);
    assert.is(r.code, 0, r.stderr);
    const said = `qgen: --arch ${plain} means ${target} (the kernels use ${target}-specific instructions)`;
    assert.is(r.stderr.trim(), said);
    assert.ok(r.stdout.split('\n')[0].includes(`on ${target}`), r.stdout.split('\n')[0]);
  }
  const typos = [
    ['sm100a', 'sm_100a'],
    ['SM_120A', 'sm_120a'],
    ['sm_9a', 'sm_90a'],
    ['sm_12a', 'sm_120a'],
    ['compute_90a', 'sm_90a'],
  ];
  for (const [typo, meant] of typos) {
    const r = await inProcess('emit', '--arch', typo, '--out', path.join(TMP, 'never'));
    assert.is(r.code, 2, typo);
    assert.match(r.stderr, new RegExp(`unknown architecture "${typo}"; did you mean ${meant}\\?`), r.stderr);
  }
  for (const far of ['ampere', 'sm_80', 'sm_1200a']) {
    const r = await inProcess('list', '--arch', far);
    assert.is(r.code, 2, far);
    assert.not.match(r.stderr, /did you mean/, far);
  }
  assert.not.ok(existsSync(path.join(TMP, 'never')));
});

test('cli: family targets sm_100f / sm_120f: emit and vendor build the a-arch kernels for the family', async () => {
  for (const [family, arch] of [
    ['sm_100f', 'sm_100a'],
    ['sm_120f', 'sm_120a'],
  ]) {
    const out = path.join(TMP, `family-${family}`);
    const r = await inProcess('vendor', '--target', 'c', '--arch', family, '--out', out);
    assert.is(r.code, 0, r.stderr);
    const said = `the ${arch} kernels, built for the family target ${family} .*compile-verified only`;
    assert.match(r.stderr, new RegExp(said));
    const cmake = readFileSync(path.join(out, 'CMakeLists.txt'), 'utf8');
    assert.match(cmake, new RegExp(`CUDA_ARCHITECTURES ${family.slice(3)}\\b`));
    const emitted = await inProcess(
      'emit',
      '--arch',
      family,
      '--out',
      path.join(TMP, `family-emit-${family}`),
      '--only',
      'amax_bf16',
    );
    assert.is(emitted.code, 0, emitted.stderr);
    assert.match(emitted.stdout, new RegExp(`nvcc -gencode arch=compute_${family.slice(3)},code=${family}`));
  }
  const torch = path.join(TMP, 'family-torch');
  assert.is((await inProcess('vendor', '--target', 'torch', '--arch', 'sm_100f', '--out', torch)).code, 0);
  const generated = readFileSync(path.join(torch, 'qgen_torch/_generated.py'), 'utf8');
  assert.match(generated, /GENCODE = 'arch=compute_100f,code=sm_100f'/);
  const list = await inProcess('list', '--arch', 'sm_100f');
  assert.is(list.code, 2);
  assert.match(list.stderr, /sm_100f is a family target, which only emit and vendor take; here use sm_100a/);
});

test('cli: list, explain and emit default to the same arch and say so; an unknown kernel names its archs', async () => {
  const list = await inProcess('list');
  assert.match(list.stdout.split('\n')[0], /^The qgen catalog on sm_100a \(the default arch\)/);
  const explained = await inProcess('explain', 'quartet2_x_46');
  assert.is(explained.code, 0, explained.stderr);
  assert.ok(explained.stdout.startsWith('quartet2_x_46 — quantize on sm_100a'), explained.stdout.slice(0, 60));
  assert.match(explained.stderr, /no --arch given: using sm_100a/);
  const out = path.join(TMP, 'default-arch');
  const emitted = await inProcess('emit', '--out', out, '--only', 'amax_bf16');
  assert.is(emitted.code, 0, emitted.stderr);
  assert.match(emitted.stderr, /no --arch given: using sm_100a/);
  assert.is(JSON.parse(readFileSync(path.join(out, 'manifest.json'), 'utf8')).arch, 'sm_100a');
  // A kernel of one arch's extras, asked for on another arch.
  const extra = Object.entries(ARCH_EXTRAS).find(([, specs]) => specs.length > 0)!;
  const [extraArch, [extraSpec]] = extra;
  const otherArch = ARCHS.find((a) => !catalogFor(a).some((s) => s.name === extraSpec.name))!;
  const missing = await inProcess('explain', extraSpec.name, '--arch', otherArch);
  assert.is(missing.code, 1);
  assert.ok(missing.stderr.includes(`it exists on ${extraArch}`), missing.stderr);
});

test('cli: --only naming nothing (",") is a usage error, not "everything"', async () => {
  const r = await inProcess('emit', '--arch', 'sm_90a', '--out', path.join(TMP, 'never'), '--only', ',');
  assert.is(r.code, 2);
  assert.match(r.stderr, /^qgen: --only: names no kernel/);
  assert.not.ok(existsSync(path.join(TMP, 'never')));
});

test('cli: emit with an invalid JSON spec lists every problem and writes nothing', async () => {
  const spec = { kernels: [jsonQuantizer('ok_one'), { ...jsonQuantizer('bad_one'), rounding: 'rtz', colour: 'red' }] };
  const file = path.join(TMP, 'bad.json');
  writeFileSync(file, JSON.stringify(spec, null, 2));
  const out = path.join(TMP, 'out-json');
  const r = await qgen('emit', '--arch', 'sm_90a', '--spec', file, '--out', out);
  assert.is(r.exitCode, 1);
  const lines = r.stderr.trim().split('\n');
  assert.match(lines[0], /^qgen: .*bad\.json \(sm_90a\) has 2 problems:$/);
  assert.ok(
    lines.some((l) => l.includes('kernels[1].rounding: must be one of')),
    r.stderr,
  );
  assert.ok(
    lines.some((l) => l.includes('kernels[1].colour: unknown field "colour"')),
    r.stderr,
  );
  assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
  assert.not.ok(existsSync(out), 'nothing written');
});

test('cli: emit with a TypeScript spec that does not type-check reports file:line:col and writes nothing', async () => {
  const text = [
    "import type { SpecFile } from 'qgen/dsl/types.ts';",
    'const spec: SpecFile = {',
    '  kernels: [',
    "    { kind: 'amax', name: 'a', input: 'bf16', tiling: { threadsPerBlock: 256, rowsPerBlock: 1, groupsPerThread: 1 } },",
    "    { kind: 'amax', name: 'b', input: 'f16', tiling: { threadsPerBlock: 256, rowsPerBlock: 1, groupsPerThread: 1 } },",
    '  ],',
    '};',
    'export default spec;',
    '',
  ].join('\n');
  const file = path.join(TMP, 'typo.ts');
  writeFileSync(file, text);
  const out = path.join(TMP, 'out-ts');
  const r = await qgen('emit', '--arch', 'sm_90a', '--spec', file, '--out', out);
  assert.is(r.exitCode, 1);
  assert.ok(r.stderr.includes(`typo.ts:${locate(text, "input: 'f16'")}:`), r.stderr);
  assert.ok(r.stderr.includes('"f16"'), r.stderr);
  assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
  assert.not.ok(existsSync(out), 'nothing written');
});

// ---------------------------------------------------------------------------------------------------------------
// In process: help and usage errors.

test('cli: --help works on every command', async () => {
  const top = await inProcess('--help');
  assert.is(top.code, 0);
  for (const cmd of ['emit', 'list', 'explain', 'quality']) assert.ok(top.stdout.includes(`qgen ${cmd}`), cmd);
  const options: Record<string, string[]> = {
    emit: ['--arch', '--out', '--spec', '--only'],
    list: ['--arch'],
    explain: ['--arch', '<name>'],
    quality: ['--rows', '--cols', '--seed', '--sign-seed', '--bias', '--draws'],
  };
  for (const [cmd, opts] of Object.entries(options)) {
    const r = await inProcess(cmd, '--help');
    assert.is(r.code, 0, cmd);
    for (const o of opts) assert.ok(r.stdout.includes(o), `${cmd} --help mentions ${o}`);
  }
});

test('cli: usage and input errors are one line with exit codes 2 and 1', async () => {
  const cases: [string[], number, RegExp][] = [
    [[], 2, /^qgen: name a command/],
    [['frobnicate'], 2, /^qgen: Unknown argument: frobnicate/],
    [['list', '--colour'], 2, /^qgen: Unknown argument: colour/],
    [['emit', '--arch', 'sm_90a'], 2, /^qgen: Missing required argument: out/],
    [['quality', '--cols', '100'], 2, /^qgen: --cols: must be a multiple of 128 \(got 100\)/],
    [['quality', '--rows', '-3'], 2, /^qgen: --rows: must be a positive integer/],
    [
      ['quality', '--bias', '--rows', '4096', '--cols', '1024'],
      2,
      /^qgen: --rows x --cols: 4096 x 1024 = 4194304 elements would need about 1280 MiB; --bias allows at most 1048576 elements \(320 MiB\)/,
    ],
    [['quality', '--bias', '--draws', '100'], 2, /^qgen: --draws: must be a power of two from 32 to 4096 \(got 100\)/],
    [
      ['explain', 'no_such_kernel'],
      1,
      /^qgen: no kernel named "no_such_kernel" in the catalog on sm_100a; available: quartet2_x_46/,
    ],
    [['quality', '--rows', '1e12'], 2, /^qgen: --rows x --cols: 1000000000000 x 4096 = .* GiB of memory; the limit is/],
    [
      ['quality', '--rows', '262144'],
      2,
      /^qgen: --rows x --cols: 262144 x 4096 = 1\.07e\+9 values would need about 32\.0 GiB/,
    ],
    [
      ['emit', '--arch', 'sm_100a', '--out', path.join(TMP, 'never'), '--only', 'nope'],
      1,
      /^qgen: --only: no kernel named "nope"/,
    ],
    [
      ['emit', '--arch', 'sm_100a', '--out', path.join(TMP, 'never'), '--spec', path.join(TMP, 'missing.json')],
      1,
      /^qgen: .*missing\.json: no such spec file$/,
    ],
  ];
  for (const [args, code, pattern] of cases) {
    const r = await inProcess(...args);
    const stderr = r.stderr.replace(/^qgen: no --arch given.*\n/, '');
    assert.is(r.code, code, `${args.join(' ')}: ${r.stderr}`);
    assert.match(stderr.trim(), pattern, args.join(' '));
    assert.is(stderr.trim().split('\n').length, 1, `one line for ${args.join(' ')}: ${r.stderr}`);
  }
  assert.not.ok(existsSync(path.join(TMP, 'never')));
});

test("cli: list without --arch shows the default arch's catalog", async () => {
  const r = await inProcess('list');
  assert.is(r.code, 0, r.stderr);
  const expected = catalogFor('sm_100a').find((s) => s.name === 'gemm_nvfp4_bf16')!;
  assert.ok(expected.kind === 'gemm');
  const line = r.stdout.split('\n').find((l) => l.startsWith('gemm_nvfp4_bf16'));
  assert.ok(line?.includes(expected.kind === 'gemm' ? expected.tiling.ctaTile.join('x') : '?'), line);
  assert.is(r.stdout.split('\n').length, catalogFor('sm_100a').length + 3);
});

// ---------------------------------------------------------------------------------------------------------------
// Spec loading.

test('load: the example spec files load and validate', async () => {
  const ts = await loadSpecFile(path.join(ROOT, 'examples/quartet2.spec.ts'));
  assert.equal(
    ts.kernels.map((k) => k.name),
    ['my_fwd_fourSix', 'my_bwd_msEden', 'my_bwd_et_msEden', 'my_requant_msEden', 'my_gemm'],
  );
  assert.equal(validateFile(ts, 'sm_90a'), []);
  const json = await loadSpecFile(path.join(ROOT, 'examples/nvidia-baseline.spec.json'));
  assert.is(json.kernels.length, 4);
  for (const arch of ARCHS) assert.equal(validateFile(json, arch), [], arch);
});

test('load: a module exporting `kernels` (no default) is accepted; one exporting nothing useful is refused', async () => {
  const named = path.join(TMP, 'named.mts');
  writeFileSync(
    named,
    "import type { KernelSpec } from 'qgen/dsl/types.ts';\n" +
      `export const kernels: KernelSpec[] = [${JSON.stringify(jsonQuantizer('from_named_export'))}];\n`,
  );
  const f = await loadSpecFile(named);
  assert.equal(
    f.kernels.map((k) => k.name),
    ['from_named_export'],
  );
  assert.equal(validateFile(f, 'sm_100a'), []);

  const empty = path.join(TMP, 'empty.mts');
  writeFileSync(empty, 'export const answer = 42;\n');
  try {
    await loadSpecFile(empty);
    assert.unreachable('should have thrown');
  } catch (e) {
    assert.instance(e, SpecLoadError);
    assert.match((e as Error).message, /exports no spec/);
  }
});

test('load: every type error is reported, each with file:line:col, and the module is not run', async () => {
  const marker = path.join(TMP, 'was-run');
  const text = [
    "import type { QuantizeSpec } from 'qgen/dsl/types.ts';",
    `const a: QuantizeSpec = { ...(${JSON.stringify(jsonQuantizer('a'))} as QuantizeSpec), rounding: 'rtz' };`,
    'const b: number = "six";',
    `globalThis.process?.getBuiltinModule?.('fs')?.writeFileSync(${JSON.stringify(marker)}, 'x');`,
    'export default { kernels: [a, b] };',
    '',
  ].join('\n');
  const file = path.join(TMP, 'two-errors.ts');
  writeFileSync(file, text);
  try {
    await loadSpecFile(file);
    assert.unreachable('should have thrown');
  } catch (e) {
    assert.instance(e, SpecLoadError);
    const msg = (e as Error).message;
    assert.ok(msg.includes(`two-errors.ts:${locate(text, "rounding: 'rtz'")}: `), msg);
    assert.ok(msg.includes(`two-errors.ts:${locate(text, 'b: number')}: `), msg);
  }
  assert.not.ok(existsSync(marker), 'the module must not run');
});

test('load: JSON syntax errors give line and column', () => {
  const text = '{\n  "kernels": [\n    { "kind": "amax", }\n  ]\n}\n';
  try {
    parseJsonSpec(text, path.join(TMP, 'x.json'));
    assert.unreachable('should have thrown');
  } catch (e) {
    assert.instance(e, SpecLoadError);
    // The parser stops at the "}" after the trailing comma: line 3, column 23.
    assert.match((e as Error).message, /x\.json:3:23: invalid JSON/);
  }
});

// ---------------------------------------------------------------------------------------------------------------
// Quality table (with a stand-in for reference/quality.ts).

test('quality: runs qualityTable in a worker and prints relMSE x1e-3, -log2(relMSE)/2 and the paper figure', async () => {
  const fake = path.join(TMP, 'fake-quality.mts');
  writeFileSync(
    fake,
    'export function qualityTable(rows: number, cols: number, seed: number, signSeed: number) {\n' +
      '  return [{ name: `rtn ${rows}x${cols} seed ${seed}/${signSeed}`, relMse: 0.009, bits: NaN, paper: 9.0 },\n' +
      "    { name: 'sr', relMse: 0.0235, bits: 2.7, paper: 0.0235 }, { name: 'mine', relMse: 0.25, bits: 1 }];\n}\n",
  );
  const rows = await computeQuality(32, 256, 5, 6, fake);
  assert.is(rows[0].name, 'rtn 32x256 seed 5/6');
  const table = formatQualityTable(rows).split('\n');
  assert.is(table.length, 5);
  assert.match(table[2], /^rtn 32x256 seed 5\/6\s+9\.00\s+3\.398\s+9\.0$/); // -log2(0.009)/2 = 3.39794
  assert.match(table[3], /^sr\s+23\.50\s+2\.700\s+23\.5$/);
  assert.match(table[4], /^mine\s+250\.00\s+1\.000\s+-$/);
  try {
    await computeQuality(32, 256, 5, 6, path.join(TMP, 'absent.mts'));
    assert.unreachable('should have thrown');
  } catch (e) {
    assert.match((e as Error).message, /absent\.mts is not available/);
  }
});

test('quality --bias: a row per regime and quantizer, B columns up to --draws, deterministic controls marked', async () => {
  const r = await inProcess('quality', '--bias', '--rows', '8', '--cols', '256', '--draws', '32');
  assert.is(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n');
  assert.match(lines[0], /^Bias on 8 x 256 values per regime, data seed 0, 32 draws per quantizer/);
  assert.match(
    lines[1],
    /^regime\s+quantizer\s+err B=1\s+err B=16\s+sigma\s+floor b \(fit\)\s+direct b\s+z\(b\)\s+floor$/,
  );
  const rows = lines
    .slice(3)
    .filter((l) => /^(gaussian|student-t3|outliers) /.test(l))
    .map((l) => l.split(/\s+/));
  assert.is(rows.length, 15);
  for (const cells of rows) {
    if (cells[1] === 'rtn' || cells[1] === '4/6') {
      assert.is(cells[2], cells[3], `${cells[0]} ${cells[1]}: a deterministic quantizer's mean does not move`);
      assert.is(cells.slice(-2).join(' '), 'biased (deterministic)');
    } else {
      assert.ok(Number(cells[3]) < Number(cells[2]) / 2, `${cells[0]} ${cells[1]}: 16 draws average noise out`);
    }
  }
  assert.match(r.stdout, /the floor b is \|E\[xhat\] - x\| \/ \|x\|/);
});

test('table: columns are padded to the widest cell; right alignment on request', () => {
  assert.is(
    formatTable(
      ['a', 'bb'],
      [
        ['xyz', '1'],
        ['q', '22'],
      ],
      ['left', 'right'],
    ),
    'a    bb\n---  --\nxyz   1\nq    22',
  );
});

test.after(() => rmSync(TMP, { recursive: true, force: true }));

test.run();
