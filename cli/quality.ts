// `qgen quality`: relative MSE and effective bits of every quantizer on Gaussian data, from the TypeScript reference
// (reference/quality.ts). The computation runs in a worker thread so that progress can be shown meanwhile.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { UserError } from './errors.ts';
import { REPO_ROOT } from './paths.ts';
import { formatTable } from './table.ts';

export interface QualityRow { name: string; relMse: number; bits: number; paper?: number | string }

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
export async function computeQuality(rows: number, cols: number, seed: number, signSeed: number,
  modulePath = path.join(REPO_ROOT, QUALITY_MODULE)): Promise<QualityRow[]> {
  const abs = path.resolve(modulePath);
  const moduleName = abs.startsWith(REPO_ROOT + path.sep) ? path.relative(REPO_ROOT, abs) : abs;
  if (!existsSync(abs)) throw new UserError(`${moduleName} is not available in this checkout`);
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: {
      tsxApi: import.meta.resolve('tsx/esm/api'), moduleUrl: pathToFileURL(abs).href, module: moduleName,
      rows, cols, seed, signSeed,
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
    const reply = await new Promise<{ ok: boolean; rows?: QualityRow[]; message?: string; stack?: string }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`quality worker exited with code ${code}`)));
    });
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
