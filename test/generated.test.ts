// generated/ must be exactly what the emitter produces today (run `npm run generate` after changing the DSL,
// the catalog, the templates or the runtime headers).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ARCHS } from '../dsl/types.ts';
import { catalogFor } from '../dsl/catalog.ts';
import { emitKernels } from '../emit/emit.ts';

function listFiles(dir: string, prefix = ''): string[] {
  return readdirSync(dir)
    .flatMap((name) => {
      const full = path.join(dir, name);
      return statSync(full).isDirectory() ? listFiles(full, `${prefix}${name}/`) : [`${prefix}${name}`];
    })
    .sort();
}

for (const arch of ARCHS) {
  test(`generated/${arch} is what qgen emits today`, async () => {
    const fresh = mkdtempSync(path.join(os.tmpdir(), `qgen-gen-${arch}-`));
    await emitKernels(catalogFor(arch), arch, fresh);
    const committed = path.join('generated', arch);
    const want = listFiles(fresh);
    assert.ok(want.length > 0, 'the emitter wrote no files');
    assert.equal(listFiles(committed), want, `file list of ${committed} differs: run npm run generate`);
    for (const f of want) {
      const same = readFileSync(path.join(fresh, f)).equals(readFileSync(path.join(committed, f)));
      assert.ok(same, `${committed}/${f} is stale: run npm run generate`);
    }
  });
}

test.run();
