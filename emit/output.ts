// The output folder of `qgen emit` and `qgen vendor`: checked before anything is written, owned through a list of
// the files qgen wrote there (OWNED_FILES_NAME), replaced cleanly on the next run.
//
// Rules: a missing folder is created (with its missing parents); an empty folder, or one whose OWNED_FILES_NAME
// lists what an earlier qgen run wrote, is used (the files that list names are removed first, so no stale kernel of
// another arch stays behind); any other non-empty folder is refused unless `force`, and even then a file qgen did not
// write is never removed or overwritten. Every refusal is an OutputError with one line that
// names the path and what is wrong, raised before anything is written.
import { accessSync, constants, existsSync, lstatSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, rm, rmdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** The list of files qgen wrote into an output folder (paths relative to it, sorted). */
export const OWNED_FILES_NAME = '.qgen-files.json';
const OWNED_FORMAT = 'qgen-output/1';

interface OwnedFiles {
  format: typeof OWNED_FORMAT;
  command: string;
  files: string[];
}

/** A problem with an output folder; the message is one line naming the path. */
export class OutputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OutputError';
  }
}

/** Node's one-word error codes as the words users read. */
function reason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException)?.code;
  const words: Record<string, string> = {
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    EROFS: 'read-only file system',
    ENOSPC: 'no space left on the device',
    ENOTDIR: 'a part of the path is a file',
    EEXIST: 'already exists',
    ENOENT: 'cannot be created there',
    EISDIR: 'is a folder',
    ENAMETOOLONG: 'name too long',
    EINVAL: 'invalid path',
  };
  return (code && words[code]) ?? (e as Error)?.message ?? String(e);
}

/** The files an earlier qgen run listed in `dir`, or undefined when `dir` holds no (readable) list. */
function previousOwnedFiles(dir: string): string[] | undefined {
  const listFile = path.join(dir, OWNED_FILES_NAME);
  if (!existsSync(listFile)) return undefined;
  try {
    const owned = JSON.parse(readFileSync(listFile, 'utf8')) as OwnedFiles;
    if (owned.format !== OWNED_FORMAT || !Array.isArray(owned.files)) return undefined;
    // Only plain relative paths inside the folder count: a hand-edited list cannot make qgen delete elsewhere.
    return owned.files.filter(
      (f) => typeof f === 'string' && !path.isAbsolute(f) && !path.normalize(f).startsWith('..'),
    );
  } catch {
    return undefined;
  }
}

/** What an output folder holds before a run: the files an earlier qgen run listed (undefined: none). */
interface FolderState {
  dir: string;
  exists: boolean;
  previous: string[] | undefined;
}

/** Checks `out` without writing anything; throws OutputError when it cannot be used. */
function inspectFolder(out: string, force: boolean): FolderState {
  if (out.trim() === '') throw new OutputError('--out: empty path; name the output folder');
  const dir = path.resolve(out);
  try {
    lstatSync(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR') throw new OutputError(`${out}: cannot create: a part of the path is a file`);
    if (code !== 'ENOENT') throw new OutputError(`${out}: ${reason(e)}`);
    checkCreatable(dir, out);
    return { dir, exists: false, previous: undefined };
  }
  if (!statSync(dir).isDirectory()) throw new OutputError(`${out}: exists and is not a folder`);
  if (!isWritable(dir)) throw new OutputError(`${out}: folder is not writable`);
  const previous = previousOwnedFiles(dir);
  if (readdirSync(dir).length > 0 && previous === undefined && !force) {
    throw new OutputError(
      `${out}: folder is not empty and holds no earlier qgen output (no ${OWNED_FILES_NAME}); ` +
        'choose an empty or new folder, or pass --force to write beside its files (never over them)',
    );
  }
  return { dir, exists: true, previous };
}

function isWritable(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** Every file under `dir`, relative with `/`, sorted. */
function listFiles(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) =>
      e.isDirectory() ? listFiles(path.join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`],
    )
    .sort();
}

/**
 * Writes an output folder for `command` (e.g. "qgen emit --arch sm_90a"): `produce` writes everything into a
 * staging folder; only when that succeeded and no file would overwrite one qgen did not write does the output folder
 * change (created, or its earlier qgen files removed) and receive the files plus OWNED_FILES_NAME. Returns what
 * `produce` returned and the written files (paths under `out`).
 */
export async function writeOutputFolder<R>(
  out: string,
  command: string,
  opts: { force?: boolean },
  produce: (stagingDir: string) => Promise<R>,
): Promise<{ result: R; files: string[] }> {
  const state = inspectFolder(out, opts.force === true);
  const staging = await mkdtemp(path.join(os.tmpdir(), 'qgen-out-'));
  try {
    const result = await produce(staging);
    const files = listFiles(staging);
    if (state.exists) {
      const previous = new Set(state.previous ?? []);
      const foreign = files.filter((f) => !previous.has(f) && existsSync(path.join(state.dir, f)));
      if (foreign.length > 0) {
        throw new OutputError(
          `${out}: would overwrite ${foreign.length} file(s) qgen did not write ` +
            `(${foreign.slice(0, 3).join(', ')}${foreign.length > 3 ? ', ...' : ''}); nothing written`,
        );
      }
      if (state.previous) await removeOwned(state.dir, state.previous);
    } else {
      await createFolder(state.dir, out);
    }
    for (const f of files) {
      const target = path.join(state.dir, f);
      await mkdir(path.dirname(target), { recursive: true });
      await copyFile(path.join(staging, f), target);
    }
    const owned: OwnedFiles = { format: OWNED_FORMAT, command, files };
    await writeFile(path.join(state.dir, OWNED_FILES_NAME), `${JSON.stringify(owned, null, 2)}\n`);
    return { result, files: files.map((f) => path.join(out, f)) };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** Checks that the missing folder `dir` can be created: its nearest existing ancestor is a writable folder. */
function checkCreatable(dir: string, shown: string): void {
  let existing = path.dirname(dir);
  while (!existsSync(existing) && path.dirname(existing) !== existing) existing = path.dirname(existing);
  if (!statSync(existing).isDirectory()) throw new OutputError(`${shown}: cannot create: ${existing} is a file`);
  if (!isWritable(existing)) throw new OutputError(`${shown}: cannot create: ${existing} is not writable`);
}

/** Creates `dir` one level at a time (mkdir -p of Node loops forever on some paths, e.g. under /proc). */
async function createFolder(dir: string, shown: string): Promise<void> {
  const missing: string[] = [];
  let existing = dir;
  while (!existsSync(existing)) {
    missing.unshift(existing);
    const parent = path.dirname(existing);
    if (parent === existing) break;
    existing = parent;
  }
  for (const d of missing) {
    try {
      await mkdir(d);
    } catch (e) {
      // Undo what this call created, so that a refusal leaves nothing behind.
      for (const created of missing.slice(0, missing.indexOf(d)).reverse()) await rmdir(created).catch(() => {});
      throw new OutputError(`${shown}: cannot create ${d}: ${reason(e)}`);
    }
  }
}

/** Removes the files of an earlier run (and folders they leave empty); files qgen did not list stay. */
async function removeOwned(dir: string, files: string[]): Promise<void> {
  const folders = new Set<string>();
  for (const f of files) {
    const file = path.join(dir, f);
    await rm(file, { force: true });
    for (let d = path.dirname(file); d.startsWith(dir + path.sep); d = path.dirname(d)) folders.add(d);
  }
  await rm(path.join(dir, OWNED_FILES_NAME), { force: true });
  for (const d of [...folders].sort((a, b) => b.length - a.length)) {
    if (existsSync(d) && (await readdir(d)).length === 0) await rmdir(d);
  }
}
