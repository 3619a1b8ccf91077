// Where GPU results go: bench/results/ in the repo and, on the lent GPU machine, $OUT as well.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** The repo root: the GPU harness is always started from it (harness/gpu/on-device.sh cds there). */
export const repoRoot = path.resolve(process.cwd());

export function saveResult(name: string, contents: string): void {
  const dir = path.join(repoRoot, 'bench/results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, name), contents);
  if (process.env.OUT) writeFileSync(path.join(process.env.OUT, name), contents);
}
