// A kernel's #include list names every runtime header it needs, including those that other headers include: the
// GPU harness copies a kernel's listed headers next to it and compiles it alone, so a header missing from the list
// (qgen_async.cuh was, 2026-12-07) builds on the host (-I runtime) and fails on the device.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { ARCHS } from '../dsl/types.ts';

const includes = (file: string): string[] =>
  [...readFileSync(file, 'utf8').matchAll(/^#include "([^"]+)"/gm)].map((m) => m[1]);

function closure(direct: string[]): Set<string> {
  const seen = new Set<string>();
  const todo = [...direct];
  while (todo.length > 0) {
    const h = todo.pop()!;
    if (seen.has(h)) continue;
    seen.add(h);
    const file = path.join('runtime', h);
    if (existsSync(file)) todo.push(...includes(file));
  }
  return seen;
}

for (const arch of ARCHS) {
  test(`generated/${arch}: every kernel lists the runtime headers its headers include`, () => {
    const dir = path.join('generated', arch);
    const kernels = readdirSync(dir).filter((f) => f.endsWith('.cu'));
    assert.ok(kernels.length > 10, `${dir} holds only ${kernels.length} kernels`);
    for (const k of kernels) {
      const direct = includes(path.join(dir, k));
      const missing = [...closure(direct)].filter((h) => !direct.includes(h) && existsSync(path.join('runtime', h)));
      assert.equal(missing, [], `${arch}/${k} includes these only through other headers`);
    }
  });
}

test('the check sees an indirect include (runtime/qgen_quantize_kernel.cuh includes qgen_async.cuh)', () => {
  assert.ok(closure(['qgen_quantize_kernel.cuh']).has('qgen_async.cuh'));
});

test.run();
