// Versions written into generated sources and manifests: qgen's (package.json) and the numerics contract's
// (the "(vN)" in runtime/NUMERICS.md's title).
import { readFileSync } from 'node:fs';

const root = new URL('../', import.meta.url);

export function qgenVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { version: string };
  return pkg.version;
}

export function numericsVersion(): string {
  const title = readFileSync(new URL('runtime/NUMERICS.md', root), 'utf8').split('\n', 1)[0];
  const m = /\(v(\d+)\)/.exec(title);
  if (!m) throw new Error(`runtime/NUMERICS.md: no "(vN)" version in its title line: ${title}`);
  return m[1];
}
