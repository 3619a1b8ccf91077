#!/usr/bin/env node
// Renames catalog kernels across the repository by scripts/kernel-renames.json (old -> new, the naming grammar of
// dsl/naming.ts). Whole words only: a name is replaced where no letter, digit or underscore touches it, so a name
// that is a prefix of another (dequantize_nvfp4 / dequantize_nvfp4_f32) is never mangled. The C symbols the
// generated code defines for a kernel (qgen_<name>, qgen_<name>_impl, qgen_<name>_workspace_bytes) are renamed
// with it. Idempotent: no new name is an old one, so a second run changes nothing.
// Skipped: bench/results/** (result files keep the names they ran with), generated/ (rewritten by
// `npm run generate`), node_modules, .git, .device, and the rename table and this script themselves.
// Afterwards it lists every old name still found (case-insensitive, whole word) outside bench/results.
// Usage: node scripts/apply-kernel-names.mjs [--root DIR] [--check]   (--check: change nothing, exit 1 if a file
// would change or an old name is left)
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const rootAt = args.indexOf('--root');
const root = path.resolve(rootAt >= 0 ? args[rootAt + 1] : path.dirname(here));
const check = args.includes('--check');

const TABLE = 'scripts/kernel-renames.json';
const renames = Object.entries(JSON.parse(readFileSync(path.join(here, 'kernel-renames.json'), 'utf8')).renames).filter(
  ([from, to]) => from !== to,
);
const olds = new Set(renames.map(([from]) => from));
const clash = renames.find(([, to]) => olds.has(to));
if (clash) {
  console.error(`apply-kernel-names: new name '${clash[1]}' is also an old name; the rename would not be idempotent`);
  process.exit(2);
}

/** Every spelling of a kernel name in the repository: the name and the C symbols generated for it. */
const forms = (name) => [
  name,
  `qgen_${name}`,
  `qgen_${name}_impl`,
  `qgen_${name}_workspace_bytes`,
  `${name}_workspace_bytes`,
];
const replacement = new Map(renames.flatMap(([from, to]) => forms(from).map((f, i) => [f, forms(to)[i]])));
const alternatives = [...replacement.keys()].sort((a, b) => b.length - a.length).join('|');
const wholeWord = (flags) => new RegExp(`(?<![A-Za-z0-9_])(?:${alternatives})(?![A-Za-z0-9_])`, flags);

const SKIP_DIRS = new Set(['.git', 'node_modules', '.device', 'bench/results', 'generated']);
const SKIP_FILES = new Set([TABLE, 'scripts/apply-kernel-names.mjs']);

function* files(dir, skipDirs) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    const rel = path.relative(root, full).split(path.sep).join('/');
    if (entry.isDirectory()) {
      if (!skipDirs.has(rel) && entry.name !== 'node_modules') yield* files(full, skipDirs);
    } else if (entry.isFile() && !SKIP_FILES.has(rel)) {
      yield [full, rel];
    }
  }
}

function text(full) {
  if (statSync(full).size > 8 << 20) return null;
  const buf = readFileSync(full);
  return buf.includes(0) ? null : buf.toString('utf8');
}

const changed = [];
let total = 0;
for (const [full, rel] of files(root, SKIP_DIRS)) {
  const before = text(full);
  if (before === null) continue;
  let count = 0;
  const after = before.replace(wholeWord('g'), (m) => {
    count += 1;
    return replacement.get(m);
  });
  if (after === before) continue;
  changed.push(`${rel} (${count})`);
  total += count;
  if (!check) writeFileSync(full, after);
}

// Leftovers: old names in any case, everywhere but bench/results (generated/ included: regenerate if listed).
const leftovers = [];
const anyCase = wholeWord('gi');
for (const [full, rel] of files(root, new Set(['.git', 'node_modules', '.device', 'bench/results']))) {
  const body = text(full);
  if (body === null) continue;
  const lines = body.split('\n').flatMap((line, i) => (line.match(anyCase) ?? []).map((m) => `${i + 1}: ${m}`));
  if (lines.length) leftovers.push(`${rel}: ${lines.slice(0, 3).join(', ')}${lines.length > 3 ? ', ...' : ''}`);
}

const verb = check ? 'would change' : 'changed';
console.log(`apply-kernel-names: ${changed.length} file(s) ${verb}, ${total} replacement(s)`);
for (const c of changed) console.log(`  ${c}`);
if (leftovers.length) {
  console.log(`old names still found in ${leftovers.length} file(s) (in generated/: run npm run generate):`);
  for (const l of leftovers) console.log(`  ${l}`);
} else {
  console.log('no old name left outside bench/results');
}
if (!check && changed.some((c) => !c.startsWith('generated/'))) console.log('next: npm run generate && npm test');
process.exit(check && (changed.length || leftovers.length) ? 1 : 0);
