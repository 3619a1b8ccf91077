// Regenerates generated/<arch>/ — the emitted catalog for each arch, committed so that users can read and vendor
// the kernels without running qgen. test/generated.test.ts fails when these files are stale.
// Usage: npm run generate
import { rmSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ARCHS } from '../dsl/types.ts';
import { catalogFor } from '../dsl/catalog.ts';
import { emitKernels } from '../emit/emit.ts';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
for (const arch of ARCHS) {
  const dir = path.join(root, 'generated', arch);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const { files } = await emitKernels(catalogFor(arch), arch, dir);
  console.log(`generated/${arch}: ${files.length} files`);
}
