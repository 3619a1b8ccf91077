// Kernel names that would clash with qgen's own C symbols. A kernel named N defines qgen_N, qgen_N_workspace_bytes
// and the namespace qgen_N_impl (templates/*.cu.hbs), so N is reserved when any of those is already a symbol of the
// runtime (runtime/qgen.h, runtime/*.cuh) or of the fixed text of the templates (e.g. qgen_status, qgen_amax_args).
// The symbols are read from those files (every `qgen_...` identifier), so the list cannot drift from the headers.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoDir = fileURLToPath(new URL('../', import.meta.url));
/** Where qgen's fixed C symbols are written. */
const SYMBOL_SOURCES = ['runtime', 'templates', 'templates/vendor'];

/** The suffixes a kernel's generated symbols add to qgen_<name>. */
export const GENERATED_SYMBOL_SUFFIXES = ['', '_workspace_bytes', '_impl'] as const;

let symbols: Map<string, string> | undefined;

/** Every `qgen_...` identifier in the runtime headers and the templates' fixed text, with the file it is in. */
export function runtimeSymbols(): ReadonlyMap<string, string> {
  if (symbols) return symbols;
  symbols = new Map();
  for (const folder of SYMBOL_SOURCES) {
    const dir = path.join(repoDir, folder);
    const files = readdirSync(dir)
      .filter((f) => /\.(h|cuh|hbs)$/.test(f))
      .sort();
    for (const f of files) {
      // Not symbols: an identifier that continues into a template expression (qgen_{{name}}), a file name.
      const text = readFileSync(path.join(dir, f), 'utf8');
      for (const m of text.matchAll(/\bqgen_[A-Za-z0-9_]+\b(?!\{|\.(?:cuh|h|cu)\b)/g)) {
        if (!symbols.has(m[0])) symbols.set(m[0], `${folder}/${f}`);
      }
    }
  }
  return symbols;
}

/** Why `name` cannot be a kernel name (a clash with a runtime symbol), or undefined when it can. */
export function reservedNameReason(name: string): string | undefined {
  const known = runtimeSymbols();
  for (const suffix of GENERATED_SYMBOL_SUFFIXES) {
    const symbol = `qgen_${name}${suffix}`;
    const where = known.get(symbol);
    if (where) return `is reserved: the kernel's symbol ${symbol} would clash with ${symbol} of ${where}`;
  }
  return undefined;
}
