// `--tuning FILE` of `qgen emit` and `qgen vendor`: reads and validates a qgen-tuning/1 file for the arch (a broken
// file, or one tuned for another arch, is refused: exit 2, nothing written) and warns on stderr when it was measured
// with other templates/runtime sources (its choices stay exact, NUMERICS §6.5; its timings may not hold).
import path from 'node:path';
import type { Arch } from '../dsl/types.ts';
import { readTuningFile, sourceHash, TuningError, tuningStaleness, type TuningFile } from '../tune/tuning.ts';
import { UsageError } from './errors.ts';
import { REPO_ROOT } from './paths.ts';

export function loadTuningOption(file: string | undefined, arch: Arch): { tuning?: TuningFile; tuningName?: string } {
  if (file === undefined) return {};
  let tuning: TuningFile;
  try {
    tuning = readTuningFile(file, arch);
  } catch (e) {
    if (e instanceof TuningError) throw new UsageError(e.message);
    throw e;
  }
  for (const w of tuningStaleness(tuning, sourceHash(REPO_ROOT)).warnings)
    process.stderr.write(`qgen: warning: ${w}\n`);
  const rel = path.relative(REPO_ROOT, path.resolve(file));
  return { tuning, tuningName: rel.startsWith('..') ? path.basename(file) : rel };
}
