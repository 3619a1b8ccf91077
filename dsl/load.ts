// Spec-file loading: a JSON file, or a TypeScript module (.ts or .mts, in any folder) typed against dsl/types.ts.
// A TypeScript file is first type-checked (strict) in an in-memory ts-morph project, and every type error is reported
// as `file:line:col: message` before the module runs. It is then bundled by esbuild into one ES module (so a .ts
// file in a folder without "type": "module" loads the same as a .mts file), with its imports of qgen ('qgen',
// 'qgen/dsl/...', or a path into this repository) left as imports of this repository's own modules, which the
// process's TypeScript loader runs (bin/qgen.mjs registers tsx). The shape of what is loaded is not checked here:
// validateFile (validate/validate.ts) does that.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { SpecFile } from './types.ts';

/** The repository root: spec files may import 'qgen' (its index.ts), `qgen/dsl/types.ts` or a path into it. */
const REPO_ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const PACKAGE_NAME = 'qgen';
const PACKAGE_PREFIX = 'qgen/';
/** The module a bare `import ... from 'qgen'` means (package.json "exports" ".": the public API). */
const PACKAGE_INDEX = path.join(REPO_ROOT, 'index.ts');

/** Whether a file is part of qgen itself (its diagnostics are not the user's; it is imported, never bundled). */
function inRepository(file: string): boolean {
  const inside = file.startsWith(REPO_ROOT + path.sep);
  return inside && !file.slice(REPO_ROOT.length).includes(`${path.sep}node_modules${path.sep}`);
}

/** Declarations of the runtime globals a spec module may use (it runs in Node; its types are not loaded). */
const SPEC_GLOBALS = [
  'declare function structuredClone<T>(value: T): T;',
  'declare const console: {',
  '  log(...data: unknown[]): void; warn(...data: unknown[]): void; error(...data: unknown[]): void;',
  '};',
  'declare const process: { env: Record<string, string | undefined>; argv: string[] };',
  '',
].join('\n');

/** A user error while loading a spec file; the message is complete (one problem per line). */
export class SpecLoadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SpecLoadError';
  }
}

/** A path as shown to the user: relative to the working directory when that is shorter. */
function displayPath(file: string): string {
  const rel = path.relative(process.cwd(), file);
  return rel && !rel.startsWith('..') && rel.length < file.length ? rel : file;
}

/** 1-based line and column of a character offset. */
export function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, Math.max(0, Math.min(offset, text.length)));
  const lines = before.split('\n');
  return { line: lines.length, column: lines[lines.length - 1].length + 1 };
}

/** Parses JSON; a syntax error becomes `file:line:col: message`. */
export function parseJsonSpec(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    const message = (e as Error).message;
    const at = /at position (\d+)/.exec(message);
    const { line, column } = at ? lineAndColumn(text, Number(at[1])) : lineAndColumn(text, text.length);
    const what = message.replace(/\s*in JSON at position \d+.*$/, '').replace(/^JSON\.parse: /, '');
    throw new SpecLoadError(`${displayPath(file)}:${line}:${column}: invalid JSON: ${what}`);
  }
}

/** Where a module specifier of a spec file (or of a file it imports) points on disk, for the type check. */
function resolveLocal(fromFile: string, specifier: string): string | undefined {
  let base: string;
  if (specifier.startsWith('./') || specifier.startsWith('../')) base = path.resolve(path.dirname(fromFile), specifier);
  else if (specifier === PACKAGE_NAME) base = PACKAGE_INDEX;
  else if (specifier.startsWith(PACKAGE_PREFIX)) base = path.join(REPO_ROOT, specifier.slice(PACKAGE_PREFIX.length));
  else return undefined;
  const candidates = [base, `${base}.ts`, base.replace(/\.js$/, '.ts'), path.join(base, 'index.ts')];
  return candidates.find((c) => /\.(ts|mts|json)$/.test(c) && existsSync(c));
}

/**
 * Type-checks a TypeScript spec module with strict options. Returns every error as `file:line:col: message`
 * (empty: no errors). The project lives in memory: the spec file and the local files it imports (transitively)
 * are added from disk; `qgen/...` imports map to this repository.
 */
export async function typeCheckSpecModule(file: string): Promise<string[]> {
  const { Project, ts } = await import('ts-morph');
  const project = new Project({
    useInMemoryFileSystem: true,
    compilerOptions: {
      strict: true,
      noEmit: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ESNext,
      moduleResolution: ts.ModuleResolutionKind.Bundler,
      allowImportingTsExtensions: true,
      resolveJsonModule: true,
      noUncheckedIndexedAccess: false,
      skipLibCheck: true,
      lib: ['lib.es2022.d.ts'],
      paths: { [PACKAGE_NAME]: [PACKAGE_INDEX], [`${PACKAGE_PREFIX}*`]: [`${REPO_ROOT}/*`] },
    },
  });
  // The globals a spec script may use that lib.es2022 lacks (node's types are not in this in-memory project).
  project.createSourceFile(path.join(os.tmpdir(), 'qgen-spec-globals.d.ts'), SPEC_GLOBALS, { overwrite: true });
  const pending = [path.resolve(file)];
  const added = new Set<string>();
  while (pending.length > 0) {
    const f = pending.pop()!;
    if (added.has(f)) continue;
    added.add(f);
    const source = project.createSourceFile(f, readFileSync(f, 'utf8'), { overwrite: true });
    if (f.endsWith('.json')) continue;
    const specifiers = [
      ...source.getImportDeclarations().map((d) => d.getModuleSpecifierValue()),
      ...source.getExportDeclarations().map((d) => d.getModuleSpecifierValue()),
    ];
    for (const s of specifiers) {
      const resolved = s === undefined ? undefined : resolveLocal(f, s);
      if (resolved) pending.push(resolved);
    }
  }
  const errors: string[] = [];
  for (const d of project.getPreEmitDiagnostics()) {
    if (d.getCategory() !== ts.DiagnosticCategory.Error) continue;
    const message = ts.flattenDiagnosticMessageText(d.compilerObject.messageText, '\n    ');
    const sf = d.getSourceFile();
    // qgen's own modules are type-checked with the repository's settings (npm run typecheck); here only the
    // user's files count (node's types, which qgen's modules use, are not in this in-memory project).
    if (sf && sf.getFilePath() !== path.resolve(file) && inRepository(sf.getFilePath())) continue;
    const start = d.getStart();
    if (sf && start !== undefined) {
      const { line, column } = sf.getLineAndColumnAtPos(start);
      errors.push(`${displayPath(sf.getFilePath())}:${line}:${column}: ${message}`);
    } else {
      errors.push(message);
    }
  }
  return errors;
}

/** The spec list of an imported module: its default export ({ kernels } or an array), or its `kernels` export. */
function specFileOf(mod: Record<string, unknown>, file: string): SpecFile {
  const d = mod.default;
  if (Array.isArray(d)) return { kernels: d };
  if (d !== undefined && d !== null && typeof d === 'object') return d as SpecFile;
  if (mod.kernels !== undefined) return { kernels: mod.kernels } as SpecFile;
  throw new SpecLoadError(
    `${displayPath(file)}: exports no spec: export default { kernels: [...] } ` +
      '(a SpecFile), export default [...] or export const kernels = [...]',
  );
}

/**
 * Loads a spec file: `.json`, or `.ts` / `.mts` (type-checked first; throws SpecLoadError listing every type error
 * without running the module). The result is unvalidated: pass it to validateFile.
 */
export async function loadSpecFile(file: string): Promise<SpecFile> {
  const abs = path.resolve(file);
  if (!existsSync(abs)) throw new SpecLoadError(`${displayPath(abs)}: no such spec file`);
  if (abs.endsWith('.json')) {
    const value = parseJsonSpec(readFileSync(abs, 'utf8'), abs);
    return (Array.isArray(value) ? { kernels: value } : value) as SpecFile;
  }
  if (!/\.m?ts$/.test(abs)) {
    throw new SpecLoadError(
      `${displayPath(abs)}: unsupported spec file type; use .json, .ts or .mts ` + '(typed against dsl/types.ts)',
    );
  }
  const errors = await typeCheckSpecModule(abs);
  if (errors.length > 0) {
    throw new SpecLoadError(
      `${displayPath(abs)}: ${errors.length} type error${errors.length === 1 ? '' : 's'}:\n` + errors.join('\n'),
    );
  }
  let mod: Record<string, unknown>;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qgen-spec-'));
  try {
    const bundled = path.join(dir, 'spec.mjs');
    writeFileSync(bundled, await bundleSpecModule(abs));
    mod = await import(pathToFileURL(bundled).href);
  } catch (e) {
    throw new SpecLoadError(`${displayPath(abs)}: failed to load: ${(e as Error).message.split('\n')[0]}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return specFileOf(mod, abs);
}

/**
 * The spec module and the user's files it imports as one ES module (esbuild); imports of qgen itself stay imports,
 * of this repository's files by absolute URL, so that the spec shares qgen's modules instead of copies.
 */
async function bundleSpecModule(entry: string): Promise<string> {
  const esbuild = await import('esbuild');
  const result = await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    write: false,
    logLevel: 'silent',
    plugins: [
      {
        name: 'qgen-modules',
        setup(build) {
          build.onResolve({ filter: /.*/ }, (args) => {
            if (args.kind === 'entry-point') return undefined;
            const local = resolveLocal(args.importer, args.path);
            if (local && inRepository(local)) return { path: pathToFileURL(local).href, external: true };
            if (args.path === PACKAGE_NAME || args.path.startsWith(PACKAGE_PREFIX)) {
              return { errors: [{ text: `cannot resolve "${args.path}" in qgen (${REPO_ROOT})` }] };
            }
            return undefined;
          });
        },
      },
    ],
  });
  return result.outputFiles[0].text;
}
