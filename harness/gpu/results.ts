// Where GPU results go: every run of a GPU command writes a NEW folder bench/results/<command>-<date>-<HHMM>-<commit7>/
// (and the same folder under $OUT on the lent GPU machine), each file carrying its provenance (harness/provenance.ts):
// the host facts from .device/provenance.json (written by `npm run gpu:bundle`), the GPU facts asked here.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { execa } from 'execa';
import {
  PROVENANCE_FORMAT,
  provenanceProblems,
  runFolderName,
  withProvenance,
  type HostProvenance,
  type Provenance,
} from '../provenance.ts';

/** The repo root: the GPU harness is always started from it (harness/gpu/on-device.sh cds there). */
export const repoRoot = path.resolve(process.cwd());

/** The host's provenance of the bundle; a one-line error when the bundle was built without it. */
export function bundledHostProvenance(root = repoRoot): HostProvenance {
  const file = path.join(root, '.device/provenance.json');
  if (!existsSync(file)) throw new Error(`${file} missing: run npm run gpu:bundle on the host and carry .device`);
  return JSON.parse(readFileSync(file, 'utf8')) as HostProvenance;
}

// CUDA facts the driver and runtime report; compiled with nvcc on first use (a few seconds).
const DEVICE_QUERY = `#include <cstdio>
#include <cuda_runtime.h>
int main() {
  cudaDeviceProp p{}; int drv = 0, rt = 0;
  if (cudaGetDeviceProperties(&p, 0) != cudaSuccess) return 1;
  cudaDriverGetVersion(&drv); cudaRuntimeGetVersion(&rt);
  printf("%s\\n%d\\n%d.%d\\n%d.%d\\n", p.name, p.multiProcessorCount, p.major, p.minor, rt / 1000, (rt % 1000) / 10);
  return 0;
}
`;

async function deviceFacts(): Promise<
  Pick<Provenance, 'gpu' | 'sm_count' | 'compute_capability' | 'driver' | 'cuda' | 'nvcc'>
> {
  const facts = { gpu: null, sm_count: null, compute_capability: null, driver: null, cuda: null, nvcc: null } as Pick<
    Provenance,
    'gpu' | 'sm_count' | 'compute_capability' | 'driver' | 'cuda' | 'nvcc'
  >;
  const nvcc = await execa('nvcc', ['--version'], { reject: false });
  facts.nvcc = /release ([\d.]+), V([\d.]+)/.exec(nvcc.stdout ?? '')?.[2] ?? null;
  const smi = await execa('nvidia-smi', ['--query-gpu=driver_version', '--format=csv,noheader'], { reject: false });
  if (smi.exitCode === 0 && smi.stdout.trim()) facts.driver = smi.stdout.trim().split('\n')[0].trim();
  const dir = path.join(os.tmpdir(), 'qgen-device-query');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'query.cu'), DEVICE_QUERY);
  const built = await execa('nvcc', [path.join(dir, 'query.cu'), '-o', path.join(dir, 'query')], { reject: false });
  const run = built.exitCode === 0 ? await execa(path.join(dir, 'query'), [], { reject: false }) : null;
  if (run?.exitCode === 0) {
    const [name, sms, cc, rt] = run.stdout.trim().split('\n');
    Object.assign(facts, { gpu: name, sm_count: Number(sms), compute_capability: cc, cuda: rt });
  }
  return facts;
}

/** One run of a GPU command: its folder, its provenance, and how its files are written. */
export class RunResults {
  readonly folder: string;
  private constructor(
    readonly provenance: Provenance,
    readonly dirs: string[],
  ) {
    this.folder = path.basename(dirs[0]);
  }

  /** Starts a run of `command` (its folder is created on the first save). */
  static async start(
    command: string,
    argv: string[],
    opts: { host?: HostProvenance; note?: string } = {},
  ): Promise<RunResults> {
    const host = opts.host ?? bundledHostProvenance();
    const note = opts.note;
    const now = new Date();
    const provenance: Provenance = {
      ...host,
      format: PROVENANCE_FORMAT,
      ...(await deviceFacts()),
      torch: null,
      date: now.toISOString(),
      command: argv,
      recorded_at_run_time: true,
      ...(note ? { note } : {}),
    };
    const problems = provenanceProblems(provenance);
    if (problems.length) throw new Error(`provenance: ${problems.join('; ')}`);
    const name = runFolderName(command, now, host.commit);
    const dirs = [path.join(repoRoot, 'bench/results', name)];
    if (process.env.OUT) dirs.push(path.join(process.env.OUT, name));
    return new RunResults(provenance, dirs);
  }

  /** Writes one results file (rows for .json, text otherwise) with its provenance; returns its repo path. */
  save(fileName: string, body: string | unknown[]): string {
    const contents = withProvenance(fileName, this.provenance, body);
    for (const dir of this.dirs) {
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, fileName), contents);
    }
    return path.relative(repoRoot, path.join(this.dirs[0], fileName));
  }

  /** Where a command writes files that are not results (ncu reports): inside the run folder. */
  subfolder(name: string): string {
    const dir = path.join(this.dirs[this.dirs.length - 1], name);
    mkdirSync(dir, { recursive: true });
    return dir;
  }
}
