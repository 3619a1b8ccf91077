// The GPU runner's dispatch table (harness/gpu/bind.ts through templates/runner/): it compiles with nvcc against
// runtime/qgen.h for every catalog and coverage kernel, has one adapter and one table entry per kernel, and binds
// each kind's buffers at the indices bufferNames() gives (the order the GPU suite passes them in).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { KernelSpec } from '../dsl/types.ts';
import { catalogFor } from '../dsl/catalog.ts';
import { coverageSpecs } from '../harness/coverage.ts';
import { bufferNames, renderDispatch } from '../harness/gpu/bind.ts';
import { compileCuda } from '../harness/nvcc.ts';

const root = fileURLToPath(new URL('../', import.meta.url));
const specs = (): KernelSpec[] => {
  const catalog = catalogFor('sm_90a');
  return [...catalog, ...coverageSpecs().filter((s) => !catalog.some((c) => c.name === s.name))];
};

/** The body of the adapter run_<name> in a dispatch source. */
function adapterBody(source: string, name: string): string {
  const start = source.indexOf(`static qgen_status run_${name}(`);
  assert.ok(start >= 0, `no adapter for ${name}`);
  return source.slice(start, source.indexOf('\n}\n', start));
}

test('dispatch.cu compiles with nvcc for the catalog and the coverage kernels', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qgen-dispatch-'));
  const { header, source } = renderDispatch(specs());
  writeFileSync(path.join(dir, 'dispatch.h'), header);
  writeFileSync(path.join(dir, 'dispatch.cu'), source);
  const r = await compileCuda({
    sources: [path.join(dir, 'dispatch.cu')],
    arch: 'sm_90a',
    out: path.join(dir, 'd.o'),
    includeDirs: [path.join(root, 'runtime')],
    cacheDir: null,
  });
  assert.not.match(r.log, /warning/i, r.log);
});

test('dispatch.cu: one adapter and one table entry per kernel; workspace queries only where the ABI has one', () => {
  const all = specs();
  const { source } = renderDispatch(all);
  for (const s of all) {
    adapterBody(source, s.name);
    const ws = s.kind === 'quantize' || s.kind === 'amax' ? `qgen_${s.name}_workspace_bytes` : 'nullptr';
    assert.ok(source.includes(`  { "${s.name}", run_${s.name}, ${ws} },\n`), `${s.name}: table entry`);
  }
  assert.is(source.match(/^static qgen_status run_/gm)?.length, all.length);
});

test('dispatch.cu binds every buffer at its bufferNames() index, and checks the buffer count', () => {
  const all = specs();
  const { source } = renderDispatch(all);
  const kinds = new Set<string>();
  for (const s of all) {
    const body = adapterBody(source, s.name);
    const names = bufferNames(s);
    assert.ok(body.includes(`if (n != ${names.length}) return qgen_runner_error`), `${s.name}: count check`);
    // Every buffer of the kind is read exactly once, from its own index.
    for (const [i, n] of names.entries()) {
      const field = s.kind === 'gemm' && n === 'c' ? 'c' : n;
      assert.match(body, new RegExp(`a\\.${field} = (\\([^)]*\\))?bufs\\[${i}\\];`), `${s.name}: ${n} at ${i}`);
    }
    assert.is(body.match(/bufs\[\d+\]/g)?.length, names.length, `${s.name}: ${names.length} buffers read`);
    kinds.add(s.kind + ('input' in s ? `/${s.input}` : ''));
  }
  for (const k of ['quantize/bf16', 'quantize/nvfp4', 'dequantize', 'hadamard', 'amax', 'gemm']) {
    assert.ok(
      [...kinds].some((x) => x.startsWith(k)),
      `no ${k} kernel among the specs`,
    );
  }
});

test.run();
