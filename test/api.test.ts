// qgen used from a user's own folder outside the repository: spec files as .ts (no package.json, so not an ES module
// folder), .mts and .json; a spec and a sweep script that import the catalog and builders by value from 'qgen'
// (package.json "exports", index.ts), the package linked as node_modules/qgen as `npm install <path>` would.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { catalogFor } from '../dsl/catalog.ts';
import { loadSpecFile, SpecLoadError } from '../dsl/load.ts';
import { validateFile } from '../validate/validate.ts';

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const USER = mkdtempSync(path.join(os.tmpdir(), 'qgen-user-'));
mkdirSync(path.join(USER, 'node_modules'));
symlinkSync(ROOT, path.join(USER, 'node_modules', 'qgen'), 'dir');

const AMAX =
  "{ kind: 'amax', name: 'my_amax', input: 'bf16', " +
  'tiling: { threadsPerBlock: 256, rowsPerBlock: 1, groupsPerThread: 1 } }';

function write(name: string, text: string): string {
  const file = path.join(USER, name);
  writeFileSync(file, text);
  return file;
}

async function loadError(file: string): Promise<string> {
  try {
    await loadSpecFile(file);
  } catch (e) {
    assert.instance(e, SpecLoadError);
    return (e as Error).message;
  }
  throw new Error(`${file} loaded`);
}

test('api: a .ts spec loads from a folder outside the repo, like .mts and .json', async () => {
  const body =
    `import type { SpecFile } from 'qgen/dsl/types.ts';\nconst spec: SpecFile = { kernels: [${AMAX}] };\n` +
    'export default spec;\n';
  for (const name of ['plain.ts', 'module.mts']) {
    const file = write(name, body);
    const loaded = await loadSpecFile(file);
    assert.equal(
      loaded.kernels.map((k) => k.name),
      ['my_amax'],
      name,
    );
    assert.equal(validateFile(loaded, 'sm_90a'), [], name);
    // As a user runs it: bin/qgen.mjs (tsx's ESM loader only) in the user's folder.
    const r = await execa(
      process.execPath,
      [path.join(ROOT, 'bin/qgen.mjs'), 'explain', 'my_amax', '--arch', 'sm_90a', '--spec', name],
      { cwd: USER, reject: false },
    );
    assert.is(r.exitCode, 0, `${name}: ${r.stderr}`);
    assert.ok(r.stdout.startsWith('my_amax — amax on sm_90a'), r.stdout.slice(0, 40));
  }
  const json = write('plain.json', JSON.stringify({ kernels: [catalogFor('sm_90a')[0]] }));
  assert.is((await loadSpecFile(json)).kernels.length, 1);
});

test('api: a throwing or empty .ts spec is one clear error, not a module-cycle message', async () => {
  const throwingFile = write('throws.ts', "throw new Error('spec author broke it');\nexport default [];\n");
  const throwing = await loadError(throwingFile);
  assert.match(throwing, /throws\.ts: failed to load: spec author broke it$/);
  const empty = await loadError(write('empty.ts', ''));
  assert.match(empty, /empty\.ts: exports no spec/);
  for (const message of [throwing, empty]) assert.not.match(message, /cycle|require\(\)/);
});

test("api: a spec imports the catalog and builders by value from 'qgen' and emits through the CLI", async () => {
  const file = write(
    'from-catalog.ts',
    [
      "import { catalogFor, quantize, type SpecFile } from 'qgen';",
      "const base = catalogFor('sm_90a').find((s) => s.name === 'quartet2_x_46')!;",
      "const spec: SpecFile = { kernels: [{ ...base, name: 'my_fwd' }, quantize('my_sr', { rounding: 'sr' })] };",
      'export default spec;',
      '',
    ].join('\n'),
  );
  const out = path.join(USER, 'kernels');
  const r = await execa(
    process.execPath,
    [path.join(ROOT, 'bin/qgen.mjs'), 'emit', '--arch', 'sm_90a', '--spec', file, '--out', out],
    { cwd: USER, reject: false },
  );
  assert.is(r.exitCode, 0, r.stderr);
  const manifest = JSON.parse(readFileSync(path.join(out, 'manifest.json'), 'utf8'));
  assert.equal(
    manifest.kernels.map((k: { name: string }) => k.name),
    ['my_fwd', 'my_sr'],
  );
  const base = catalogFor('sm_90a').find((s) => s.name === 'quartet2_x_46')!;
  assert.equal({ ...manifest.kernels[0].spec, name: base.name }, base);
});

test('api: a spec may use structuredClone and console (globals of Node) and still type-checks', async () => {
  const file = write(
    'globals.ts',
    [
      "import { catalogFor, type SpecFile } from 'qgen';",
      "const base = structuredClone(catalogFor('sm_90a')[0]);",
      "console.warn('cloning', base.name);",
      "const spec: SpecFile = { kernels: [{ ...base, name: 'cloned' }] };",
      'export default spec;',
      '',
    ].join('\n'),
  );
  const saved = console.warn;
  console.warn = () => {};
  try {
    assert.equal(
      (await loadSpecFile(file)).kernels.map((k) => k.name),
      ['cloned'],
    );
  } finally {
    console.warn = saved;
  }
});

test('api: a sweep script outside the repo imports qgen through its package exports', async () => {
  const script = write(
    'sweep.ts',
    [
      "import { catalogFor, quantize, validateFile, ARCHS } from 'qgen';",
      "import type { KernelSpec } from 'qgen/dsl/types.ts';",
      'const rows = ARCHS.map((arch) => {',
      '  const specs: KernelSpec[] = catalogFor(arch).map((s) => ({ ...s, name: `sweep_${s.name}` }));',
      "  specs.push(quantize('sweep_sr', { rounding: 'sr' }));",
      '  return { arch, kernels: specs.length, problems: validateFile({ kernels: specs }, arch).length };',
      '});',
      'console.log(JSON.stringify(rows));',
      '',
    ].join('\n'),
  );
  const tsx = import.meta.resolve('tsx');
  const r = await execa(process.execPath, ['--import', tsx, script], { cwd: USER, reject: false });
  assert.is(r.exitCode, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as { arch: string; kernels: number; problems: number }[];
  for (const row of rows) {
    assert.is(row.kernels, catalogFor(row.arch as 'sm_90a').length + 1, row.arch);
    assert.is(row.problems, 0, row.arch);
  }
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  assert.is(pkg.exports['.'], './index.ts');
});

test.run();
