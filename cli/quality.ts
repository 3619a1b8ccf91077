// `qgen quality`: relative MSE and effective bits of every quantizer on Gaussian data, from the TypeScript reference
// (reference/quality.ts). The computation runs in a worker thread so that progress can be shown meanwhile.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { UsageError, UserError } from './errors.ts';
import { BIAS_BYTES_PER_ELEMENT, biasTable, dxBiasTable, type BiasRow } from '../reference/bias.ts';
import { REPO_ROOT } from './paths.ts';
import { formatTable } from './table.ts';

export interface QualityRow {
  name: string;
  relMse: number;
  bits: number;
  paper?: number | string;
}

const QUALITY_MODULE = 'reference/quality.ts';

// The worker registers tsx itself (loader hooks are per thread), then calls qualityTable.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
(async () => {
  (await import(workerData.tsxApi)).register();
  const mod = await import(workerData.moduleUrl);
  if (typeof mod.qualityTable !== 'function') throw new Error(workerData.module + ' exports no qualityTable');
  const rows = await mod.qualityTable(workerData.rows, workerData.cols, workerData.seed, workerData.signSeed);
  parentPort.postMessage({ ok: true, rows });
})().catch((e) => parentPort.postMessage({ ok: false, message: String((e && e.message) || e), stack: e && e.stack }));
`;

/** Runs qualityTable(rows, cols, seed, signSeed) in a worker; after a second, reports elapsed time on stderr. */
export async function computeQuality(
  rows: number,
  cols: number,
  seed: number,
  signSeed: number,
  modulePath = path.join(REPO_ROOT, QUALITY_MODULE),
): Promise<QualityRow[]> {
  const abs = path.resolve(modulePath);
  const moduleName = abs.startsWith(REPO_ROOT + path.sep) ? path.relative(REPO_ROOT, abs) : abs;
  if (!existsSync(abs)) throw new UserError(`${moduleName} is not available in this checkout`);
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: {
      tsxApi: import.meta.resolve('tsx/esm/api'),
      moduleUrl: pathToFileURL(abs).href,
      module: moduleName,
      rows,
      cols,
      seed,
      signSeed,
    },
  });
  const started = Date.now();
  const tty = process.stderr.isTTY === true;
  let shown = false;
  const timer = setInterval(() => {
    const seconds = Math.round((Date.now() - started) / 1000);
    const text = `qgen quality: quantizing ${rows} x ${cols} Gaussian values with every quantizer... ${seconds} s`;
    if (tty) process.stderr.write(`\r${text}`);
    else if (!shown) process.stderr.write(`${text}\n`);
    shown = true;
  }, 1000);
  try {
    const reply = await new Promise<{ ok: boolean; rows?: QualityRow[]; message?: string; stack?: string }>(
      (resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
        worker.once('exit', (code) => reject(new Error(`quality worker exited with code ${code}`)));
      },
    );
    if (!reply.ok) {
      const e = new Error(`${moduleName}: ${reply.message}`);
      e.stack = reply.stack;
      throw e;
    }
    return reply.rows!;
  } finally {
    clearInterval(timer);
    if (tty && shown) process.stderr.write('\r\x1b[K');
    await worker.terminate();
  }
}

/** Effective bits of a relative MSE: -log2(relMSE)/2. */
export function effectiveBits(relMse: number): number {
  return -Math.log2(relMse) / 2;
}

/** The paper's figure in units of 1e-3 (a figure below 0.5 is taken as a plain relative MSE). */
function paperCell(paper: QualityRow['paper']): string {
  if (paper === undefined || paper === null) return '-';
  if (typeof paper === 'string') return paper;
  return (paper < 0.5 ? paper * 1e3 : paper).toFixed(1);
}

export function formatQualityTable(rows: QualityRow[]): string {
  return formatTable(
    ['quantizer', 'rel. MSE (x1e-3)', 'eff. bits', 'paper (x1e-3)'],
    rows.map((r) => [
      r.name,
      (r.relMse * 1e3).toFixed(2),
      (Number.isFinite(r.bits) ? r.bits : effectiveBits(r.relMse)).toFixed(3),
      paperCell(r.paper),
    ]),
    ['left', 'right', 'right', 'right'],
  );
}

// ---------------------------------------------------------------------------------------------------------------
// `qgen quality --bias` (reference/bias.ts): the error of the mean of B draws and its floor.

/** Largest matrix and draw count `--bias` accepts (about 320 MiB of memory and minutes per quantizer). */
export const BIAS_MAX_ELEMENTS = 2 ** 20;
export const BIAS_MAX_DRAWS = 4096;
/** Largest dX GEMM (tokens x out x in multiply-adds per draw) of `--bias --gemm`. */
export const BIAS_MAX_GEMM_MACS = 2 ** 23;
/** The B columns of the table (the fit uses every power of two up to --draws). */
const BIAS_COLUMNS = [1, 16, 256];
/** A floor whose direct estimate is below this many standard deviations is "not resolved". */
export const BIAS_Z_RESOLVED = 5;

/** Refuses sizes past the limits with the memory they would need (UsageError, exit 2). */
export function checkBiasSize(rows: number, cols: number, draws: number): void {
  if (rows * cols > BIAS_MAX_ELEMENTS) {
    const mb = ((rows * cols * BIAS_BYTES_PER_ELEMENT) / 2 ** 20).toFixed(0);
    throw new UsageError(
      `--rows x --cols: ${rows} x ${cols} = ${rows * cols} elements would need about ${mb} MiB; ` +
        `--bias allows at most ${BIAS_MAX_ELEMENTS} elements (${(BIAS_MAX_ELEMENTS * BIAS_BYTES_PER_ELEMENT) / 2 ** 20} ` +
        'MiB)',
    );
  }
  if (draws > BIAS_MAX_DRAWS || !Number.isInteger(Math.log2(draws)) || draws < 32) {
    throw new UsageError(`--draws: must be a power of two from 32 to ${BIAS_MAX_DRAWS} (got ${draws})`);
  }
}

/** Runs the bias measurement with progress on stderr (a line per regime and quantizer, or a TTY counter). */
export function computeBias(rows: number, cols: number, draws: number, seed: number, gemm = false): BiasRow[] {
  checkBiasSize(rows, cols, draws);
  if (gemm && rows * cols * cols > BIAS_MAX_GEMM_MACS) {
    throw new UsageError(
      `--gemm: ${rows} x ${cols} x ${cols} = ${rows * cols * cols} multiply-adds per draw; at most ` +
        `${BIAS_MAX_GEMM_MACS} (about a minute per recipe and regime at 256 draws)`,
    );
  }
  const tty = process.stderr.isTTY === true;
  let last = '';
  const started = Date.now();
  const out = (gemm ? (o: Parameters<typeof biasTable>[0]) => dxBiasTable({ ...o, inFeatures: cols }) : biasTable)({
    rows,
    cols,
    draws,
    seed,
    progress: (done, total, what) => {
      if (tty) {
        process.stderr.write(
          `\rqgen quality --bias: ${what}: draw ${done} of ${total} ` +
            `(${Math.round((Date.now() - started) / 1000)} s)\x1b[K`,
        );
      } else if (what !== last) {
        process.stderr.write(`qgen quality --bias: ${what} (${done} of ${total} draws done)\n`);
      }
      last = what;
    },
  });
  if (tty) process.stderr.write('\r\x1b[K');
  return out;
}

function sci(v: number): string {
  return v === 0 ? '0' : v.toExponential(2);
}

/** The table: relative error of the mean at B = 1, 16, 256 (those <= draws), the fitted floor, its direct z-score. */
export function formatBiasTable(rows: BiasRow[]): string {
  const cols = BIAS_COLUMNS.filter((b) => rows[0]?.B.includes(b));
  return formatTable(
    ['regime', 'quantizer', ...cols.map((b) => `err B=${b}`), 'sigma', 'floor b (fit)', 'direct b', 'z(b)', 'floor'],
    rows.map((r) => {
      const deterministic = r.fit.sigma === 0 && r.fit.b2Se === 0;
      const direct = Math.sqrt(Math.max(0, r.b2Direct));
      return [
        r.regime,
        r.quantizer,
        ...cols.map((b) => sci(r.relErr[r.B.indexOf(b)])),
        sci(r.fit.sigma),
        sci(r.fit.b),
        sci(direct),
        deterministic ? '-' : r.zFloor.toFixed(1),
        deterministic ? 'biased (deterministic)' : r.zFloor >= BIAS_Z_RESOLVED ? 'PRESENT' : 'not resolved',
      ];
    }),
    ['left', 'left', ...cols.map((): 'right' => 'right'), 'right', 'right', 'right', 'right', 'left'],
  );
}

export const BIAS_EXPLANATION = [
  'err B = |mean of B draws - x| / |x|, each draw with fresh Philox seeds (and fresh Hadamard signs / rotation).',
  'Fit (weighted least squares over B = 1, 2, 4, ...): err^2 = b^2 + sigma^2 / B. sigma is the error of one draw;',
  'the floor b is |E[xhat] - x| / |x|, the part of the error that averaging over steps never removes. An unbiased',
  'quantizer has b = 0. direct b: the unbiased estimate of b^2 from 32 independent batches of the draws (sum of',
  '<mean_k - x, mean_l - x> over pairs of batches); z(b): that estimate over its jackknife standard error',
  `(floor PRESENT when z >= ${BIAS_Z_RESOLVED}; "not resolved" means b is`,
  'below what this many draws can see: re-run with more --draws or a larger matrix to resolve smaller floors).',
  "With --gemm, each row is a recipe's dX = E . Wq (E of the regime [rows, cols], W Gaussian/16 [cols, cols]),",
  "both operands quantized per draw as the recipe does, against the exact product with the forward's Wq.",
  'Controls: rtn and 4/6 are deterministic (b = their error); ms-eden-haar is ms-eden with a uniformly random',
  'rotation instead of the random-sign Hadamard, exactly unbiased by symmetry (runtime/NUMERICS.md §5.10).',
].join('\n');
