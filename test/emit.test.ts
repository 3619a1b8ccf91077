// emit/emit.ts: deterministic output, manifest content, templates that only lay out plan data, and generated
// sources that name only primitives the runtime headers define.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { emitKernels, readManifest } from '../emit/emit.ts';
import { coverageSpecs } from '../harness/coverage.ts';
import type { KernelSpec } from '../dsl/types.ts';

const root = fileURLToPath(new URL('../', import.meta.url));
const tmp = (tag: string) => mkdtempSync(path.join(os.tmpdir(), `qgen-emit-${tag}-`));
const specs = coverageSpecs();

test('emitting the same specs twice gives identical bytes', async () => {
  const a = tmp('a'),
    b = tmp('b');
  const ra = await emitKernels(specs, 'sm_100a', a);
  const rb = await emitKernels(structuredClone(specs), 'sm_100a', b);
  const names = (files: string[]) => files.map((f) => path.basename(f)).sort();
  assert.equal(names(ra.files), names(rb.files));
  assert.equal(readdirSync(a).sort(), names(ra.files), 'files lists every file written');
  for (const f of names(ra.files)) {
    assert.ok(readFileSync(path.join(a, f)).equals(readFileSync(path.join(b, f))), `${f} differs between two emits`);
  }
});

test('manifest: arch, versions, kernels with specs and host signatures', async () => {
  const dir = tmp('m');
  const { manifestPath, files } = await emitKernels(specs, 'sm_90a', dir);
  const m = await readManifest(manifestPath);
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
  assert.is(m.arch, 'sm_90a');
  assert.is(m.qgenVersion, pkg.version);
  assert.match(readFileSync(path.join(root, 'runtime/NUMERICS.md'), 'utf8').split('\n')[0], `(v${m.numericsVersion})`);
  assert.equal(
    m.kernels.map((k) => k.name),
    specs.map((s) => s.name),
  );
  for (const [i, k] of m.kernels.entries()) {
    assert.equal(k.spec, specs[i], `${k.name}: the manifest keeps the spec`);
    assert.is(k.source, `${k.name}.cu`);
    assert.ok(files.includes(path.join(dir, k.source)));
    const text = readFileSync(path.join(dir, k.source), 'utf8');
    assert.ok(
      text.includes(`extern "C" ${k.host.signature.replace(/^qgen_status /, 'qgen_status ')} {`),
      `${k.name}: host entry`,
    );
    if (k.host.workspaceSignature)
      assert.ok(text.includes(`extern "C" ${k.host.workspaceSignature} {`), `${k.name}: workspace entry`);
    for (const launch of k.launches) {
      const fn = launch.kernel.split('::')[1];
      assert.match(
        text,
        new RegExp(`__global__ void __launch_bounds__\\([^)]*\\) ${fn}\\(`),
        `${k.name}: kernel ${fn}`,
      );
    }
  }
  // The sm_90a manifest never claims hardware E2M1.
  assert.ok(m.kernels.every((k) => k.choices.e2m1Rn !== 'hardware'));
  // Every header a kernel includes is copied next to it.
  for (const h of m.headers) assert.ok(files.includes(path.join(dir, h)), h);
  assert.ok(m.headers.includes('qgen.h'));
});

test('a gemm spec that cannot be lowered (alpha-beta epilogue) makes emit fail, writing nothing', async () => {
  const gemm: KernelSpec = {
    kind: 'gemm',
    name: 'g',
    a: 'nvfp4',
    b: 'nvfp4',
    layout: 'TN',
    output: 'bf16',
    epilogue: 'alpha-beta',
    tiling: { ctaTile: [128, 256, 128], consumers: 8, stages: 3, cluster: [1, 1], tileOrder: 'swizzle-8' },
  };
  const dir = path.join(tmp('g'), 'out');
  try {
    await emitKernels([specs[0], gemm], 'sm_120a', dir);
    assert.unreachable('emit accepted a gemm spec it cannot lower');
  } catch (e) {
    assert.match((e as Error).message, /epilogue 'alpha-beta' is not implemented on sm_120a/);
  }
  let written: string[] = [];
  try {
    written = readdirSync(dir);
  } catch {
    /* not created: fine */
  }
  assert.equal(written, []);
});

test('duplicate kernel names are refused', async () => {
  let failed = false;
  try {
    await emitKernels([specs[0], specs[0]], 'sm_90a', tmp('d2'));
  } catch (e) {
    failed = /duplicate/.test((e as Error).message);
  }
  assert.ok(failed);
});

test('emission validates its input: an invalid spec is refused with every field path, nothing written', async () => {
  const dir = path.join(tmp('v'), 'out');
  const bad = structuredClone(specs.slice(0, 2)) as KernelSpec[];
  (bad[1] as { tiling: { threadsPerBlock: number } }).tiling.threadsPerBlock = 100;
  (bad[1] as { rounding: string }).rounding = 'nearest';
  let message = '';
  try {
    await emitKernels(bad, 'sm_90a', dir);
  } catch (e) {
    message = (e as Error).message;
  }
  assert.match(message, /kernels\[1\]\.tiling\.threadsPerBlock: /);
  assert.match(message, /kernels\[1\]\.rounding: /);
  assert.not.ok(existsSync(dir), 'nothing written');
});

test('rotating quantizers take their signs from args.sign_seed, the Hadamard kernel from args.seed (NUMERICS §3.2)', async () => {
  const dir = tmp('s');
  await emitKernels(specs, 'sm_90a', dir);
  // Quantizers rotate through the runtime's rotation policy, which keys the signs by args.sign_seed and nothing else.
  const kernelHeader = readFileSync(path.join(dir, 'qgen_quantize_kernel.cuh'), 'utf8');
  const policy = /struct qgen_rotation_hadamard \{[\s\S]*?\n\};/.exec(kernelHeader)?.[0] ?? '';
  assert.equal(
    [...policy.matchAll(/qgen_hadamard_signs\(([^)]*)\)/g)].map((m) => m[1]),
    ['args.sign_seed'],
  );
  assert.not.match(kernelHeader.replace(policy, ''), /qgen_hadamard_signs\(|sign_seed/);
  let rotating = 0;
  for (const spec of specs) {
    const text = readFileSync(path.join(dir, `${spec.name}.cu`), 'utf8');
    const calls = [...text.matchAll(/qgen_hadamard_signs\(([^)]*)\)/g)].map((m) => m[1]);
    if (spec.kind === 'quantize') {
      assert.equal(calls, [], `${spec.name}: signs come from the rotation policy`);
      const rotation = /using Rotation = (\w+);/.exec(text)?.[1];
      assert.is(rotation, spec.hadamard !== null ? 'qgen_rotation_hadamard' : 'qgen_rotation_none', spec.name);
      const code = text
        .split('\n')
        .filter((l) => !l.trimStart().startsWith('//'))
        .join('\n');
      assert.not.match(code, /sign_seed/, `${spec.name}: args.sign_seed is used for the signs only`);
      if (spec.hadamard !== null) rotating++;
    } else if (spec.kind === 'hadamard') {
      assert.equal(calls, ['args.seed'], `${spec.name}: the Hadamard kernel's seed is its sign seed`);
    } else {
      assert.equal(calls, [], spec.name);
    }
  }
  assert.ok(rotating > 0, 'the coverage specs include rotating quantizers');
});

test('templates are skeletons: at most 10 conditionals ({{#if}}, {{#unless}}, {{else}}) each', () => {
  const dir = path.join(root, 'templates');
  const files = readdirSync(dir).filter((f) => f.endsWith('.hbs'));
  assert.ok(files.includes('quantize.cu.hbs'));
  for (const file of files) {
    const text = readFileSync(path.join(dir, file), 'utf8');
    const conditionals = [...text.matchAll(/\{\{~?\s*(#if|#unless|else)\b/g)].length;
    assert.ok(conditionals <= 10, `${file}: ${conditionals} conditionals; policy types decide, not the template`);
  }
});

test('templates use no helpers beyond each / if / unless (layout only)', () => {
  const dir = path.join(root, 'templates');
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.hbs'))) {
    const text = readFileSync(path.join(dir, file), 'utf8');
    for (const m of text.matchAll(/\{\{\s*#\s*([A-Za-z]+)/g))
      assert.ok(['each', 'if', 'unless'].includes(m[1]), `${file}: {{#${m[1]}}}`);
    for (const m of text.matchAll(/\{\{\s*([A-Za-z]+)\s+[^}]/g))
      assert.ok(['else'].includes(m[1]), `${file}: helper call {{${m[1]} ...}}`);
  }
});

test('generated sources are fully rendered and name only primitives the runtime headers define', async () => {
  const dir = tmp('p');
  await emitKernels(specs, 'sm_120a', dir);
  const runtime = readdirSync(path.join(root, 'runtime'))
    .filter((f) => /\.(cuh|h)$/.test(f))
    .map((f) => readFileSync(path.join(root, 'runtime', f), 'utf8'))
    .join('\n');
  for (const spec of specs) {
    const text = readFileSync(path.join(dir, `${spec.name}.cu`), 'utf8');
    assert.not.match(text, /\{\{|\}\}/, `${spec.name}: unrendered template syntax`);
    assert.not.match(text, /\d{4}-\d{2}-\d{2}T\d{2}:/, `${spec.name}: timestamp`);
    for (const m of new Set([...text.matchAll(/\b(qgen_[a-z0-9_]+)\s*[<(]/g)].map((x) => x[1]))) {
      if (m.startsWith(`qgen_${spec.name}`)) continue; // the kernel's own entry points
      assert.ok(
        new RegExp(`\\b${m}\\b\\s*[(<]`).test(runtime) ||
          new RegExp(
            `(struct|void|float|uint32_t|uint2|uint4|int64_t|bool|qgen_status|qgen_[a-z_]+|size_t) ${m}\\b`,
          ).test(runtime),
        `${spec.name} calls ${m}, which no runtime header defines`,
      );
    }
  }
});

test.run();
