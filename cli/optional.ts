// Dynamic imports of modules that other parts of qgen provide (codegen/emit.ts, dsl/lower.ts, reference/quality.ts):
// a module that does not exist yet is reported clearly instead of as a loader stack trace.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const REPO_ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

/** Imports `relPath` (relative to the repository root); undefined when that file does not exist. */
export async function importIfPresent<T>(relPath: string): Promise<T | undefined> {
  const abs = path.join(REPO_ROOT, relPath);
  if (!existsSync(abs)) return undefined;
  return (await import(pathToFileURL(abs).href)) as T;
}
