// Provenance of every results file (format `qgen-provenance/1`, the one definition; bench/provenance.py writes the
// same object for the Python benches). The HOST records what ran (commit, dirty, qgen version, a hash of the source
// tree) when it bundles the GPU harness (`npm run gpu:bundle` -> .device/provenance.json) or vendors a package
// (`qgen vendor` -> PROVENANCE.json); the GPU side adds the machine facts, the date and the exact command. Git is
// never asked on the GPU machine: its copy of the tree is not a checkout of the commit that ran.
//
// How a results file carries it:
//   JSON      {"provenance": {...}, "rows": [...]}
//   Markdown  first line `<!-- qgen-provenance/1 {json} -->`
//   text      first line `# qgen-provenance/1 {json}`
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

export const PROVENANCE_FORMAT = 'qgen-provenance/1';

/** What the host knows about the tree it bundled or vendored. */
export interface HostProvenance {
  format: typeof PROVENANCE_FORMAT;
  /** 40-hex commit of HEAD when bundled/vendored; null when the tree is not a git checkout. */
  commit: string | null;
  /** Whether tracked or untracked (not ignored) files differed from that commit. */
  dirty: boolean | null;
  qgen_version: string;
  /** sha256 over the paths and contents of every tracked and untracked, not ignored, file. */
  source_hash: string | null;
}

export interface Provenance extends HostProvenance {
  gpu: string | null;
  sm_count: number | null;
  compute_capability: string | null;
  driver: string | null;
  cuda: string | null;
  nvcc: string | null;
  torch: string | null;
  /** ISO-8601 UTC time of the run (null only for a reconstructed provenance whose date is unknown). */
  date: string | null;
  /** The exact argv of the run. */
  command: string[] | string | null;
  /** false for provenance reconstructed after the fact (old results in bench/results/archive/); absent = true. */
  recorded_at_run_time?: boolean;
  note?: string;
}

function git(root: string, args: string[]): string | null {
  try {
    return execFileSync('git', args, {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      maxBuffer: 1 << 28,
    });
  } catch {
    return null;
  }
}

/** The host side of the provenance for the tree at `root` (asks git; call it on the host only). */
export function hostProvenance(root: string, opts: { sourceHash?: boolean } = {}): HostProvenance {
  const version = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version;
  const head = git(root, ['rev-parse', 'HEAD'])?.trim() ?? null;
  const status = git(root, ['status', '--porcelain']);
  const files =
    opts.sourceHash === false ? null : git(root, ['ls-files', '-z', '--cached', '--others', '--exclude-standard']);
  let sourceHash: string | null = null;
  if (files !== null) {
    const hash = createHash('sha256');
    for (const file of [...new Set(files.split('\0').filter(Boolean))].sort()) {
      let bytes: Buffer;
      try {
        bytes = readFileSync(path.join(root, file));
      } catch {
        continue;
      } // deleted but still in the index
      hash.update(`${file}\0${bytes.length}\0`).update(bytes);
    }
    sourceHash = hash.digest('hex');
  }
  return {
    format: PROVENANCE_FORMAT,
    commit: head && /^[0-9a-f]{40}$/.test(head) ? head : null,
    dirty: status === null ? null : status.trim() !== '',
    qgen_version: version,
    source_hash: sourceHash,
  };
}

/** Problems with a provenance object (empty when it is valid). */
export function provenanceProblems(p: unknown): string[] {
  if (typeof p !== 'object' || p === null || Array.isArray(p)) return ['provenance is not an object'];
  const o = p as Record<string, unknown>;
  const problems: string[] = [];
  const nullable = (key: string, type: 'string' | 'number' | 'boolean') => {
    if (!(key in o)) problems.push(`${key} missing`);
    else if (o[key] !== null && typeof o[key] !== type) problems.push(`${key} must be a ${type} or null`);
  };
  if (o.format !== PROVENANCE_FORMAT) problems.push(`format must be "${PROVENANCE_FORMAT}"`);
  if (!('commit' in o)) problems.push('commit missing');
  else if (o.commit !== null && !(typeof o.commit === 'string' && /^[0-9a-f]{40}$/.test(o.commit))) {
    problems.push('commit must be 40 lowercase hex digits or null');
  }
  nullable('dirty', 'boolean');
  for (const key of ['gpu', 'compute_capability', 'driver', 'cuda', 'nvcc', 'torch']) nullable(key, 'string');
  nullable('sm_count', 'number');
  if (!('date' in o)) problems.push('date missing');
  else if (o.date !== null && !(typeof o.date === 'string' && !Number.isNaN(Date.parse(o.date))))
    problems.push('date must be ISO-8601');
  if (!('command' in o)) problems.push('command missing');
  else if (
    o.command !== null &&
    typeof o.command !== 'string' &&
    !(Array.isArray(o.command) && o.command.every((a) => typeof a === 'string'))
  ) {
    problems.push('command must be an argv array, a string or null');
  }
  if ('recorded_at_run_time' in o && typeof o.recorded_at_run_time !== 'boolean') {
    problems.push('recorded_at_run_time must be a boolean');
  } else if (o.recorded_at_run_time !== false && (o.date === null || o.command === null)) {
    problems.push('a provenance recorded at run time has a date and a command');
  }
  return problems;
}

const MARKDOWN = /^<!-- qgen-provenance\/1 (\{.*\}) -->$/;
const TEXT = /^# qgen-provenance\/1 (\{.*\})$/;

/** Files whose provenance line is a comment of their own syntax (Markdown, SVG). */
const commentFormed = (fileName: string) => fileName.endsWith('.md') || fileName.endsWith('.svg');

/**
 * The provenance as an HTML/XML comment line. "--" may not appear inside an XML comment (an SVG with it does not
 * parse), and argv holds options like --arch: a dash followed by another is written as the JSON escape \u002d,
 * which reads back as the same string.
 */
export function markdownProvenanceLine(p: Provenance | Record<string, unknown>): string {
  return `<!-- ${PROVENANCE_FORMAT} ${JSON.stringify(p).replace(/-(?=-)/g, '\\u002d')} -->`;
}
export function textProvenanceLine(p: Provenance): string {
  return `# ${PROVENANCE_FORMAT} ${JSON.stringify(p)}`;
}

/**
 * A results file's contents with its provenance, by extension: .json wraps rows; .md and .svg get an HTML/XML comment
 * as their first line, others a `#` line.
 */
export function withProvenance(fileName: string, p: Provenance, body: string | unknown[]): string {
  if (fileName.endsWith('.json')) return JSON.stringify({ provenance: p, rows: body }, null, 1) + '\n';
  if (typeof body !== 'string') throw new Error(`${fileName}: only .json results take rows`);
  return `${commentFormed(fileName) ? markdownProvenanceLine(p) : textProvenanceLine(p)}\n${body}`;
}

/** Reads the provenance a results file carries; `error` says why there is none. */
export function readProvenance(fileName: string, text: string): { provenance?: Provenance; error?: string } {
  let raw: unknown;
  try {
    if (fileName.endsWith('.json')) {
      const doc = JSON.parse(text) as unknown;
      if (typeof doc !== 'object' || doc === null || !('provenance' in doc))
        return { error: 'JSON without a "provenance" key' };
      raw = (doc as { provenance: unknown }).provenance;
    } else {
      const first = text.split('\n', 1)[0];
      const m = (commentFormed(fileName) ? MARKDOWN : TEXT).exec(first);
      if (!m)
        return {
          error: `first line is not the ${commentFormed(fileName) ? '<!-- qgen-provenance/1 {...} -->' : '# qgen-provenance/1 {...}'} line`,
        };
      raw = JSON.parse(m[1]) as unknown;
    }
  } catch (e) {
    return { error: `unparsable: ${e instanceof Error ? e.message : String(e)}` };
  }
  const problems = provenanceProblems(raw);
  return problems.length ? { error: problems.join('; ') } : { provenance: raw as Provenance };
}

/** The folder of one run: <command>-<YYYY-MM-DD>-<HHMM>-<commit7> (UTC), `nocommit` when the commit is unknown. */
export function runFolderName(command: string, date: Date, commit: string | null): string {
  const iso = date.toISOString();
  return `${command}-${iso.slice(0, 10)}-${iso.slice(11, 13)}${iso.slice(14, 16)}-${commit ? commit.slice(0, 7) : 'nocommit'}`;
}
