// Device-code fingerprint of every kernel qgen emits (catalog + coverage specs, every arch), to show that a refactor
// of lower/, render/, templates/ or runtime/ left the device code as it was (or to measure how it changed).
// Per arch: one translation unit of all kernels -> PTX (nvcc -ptx, qgen's flags); per `.entry`: the sha256 of its
// body and its instruction count. Identical PTX per entry means identical SASS (ptxas is deterministic). Where
// cuobjdump is on PATH (the GPU machine), the unit is also built as a cubin and the SASS instructions are counted
// per function.
// Usage: npx tsx scripts/device-diff.ts snapshot OUT.json     (record)
//        npx tsx scripts/device-diff.ts compare BEFORE.json AFTER.json   (exit 1 when any entry differs)
import { execa } from 'execa';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { ARCHS, type Arch, type KernelSpec } from '../dsl/types.ts';
import { catalogFor } from '../dsl/catalog.ts';
import { coverageSpecs } from '../harness/coverage.ts';
import { emitKernels, unitySource } from '../emit/emit.ts';
import { compileCuda } from '../harness/nvcc.ts';

interface EntryPrint { sha256: string; ptxInstructions: number; sassInstructions?: number }
type Snapshot = Record<string, Record<string, EntryPrint>>;

function specsFor(arch: Arch): KernelSpec[] {
  const catalog = catalogFor(arch);
  const names = new Set(catalog.map((s) => s.name));
  return [...catalog, ...coverageSpecs().filter((s) => !names.has(s.name))];
}

/** `.entry` name -> body text of a PTX module. */
export function ptxEntries(ptx: string): Map<string, string> {
  const entries = new Map<string, string>();
  const re = /\.entry\s+([A-Za-z0-9_$]+)\s*\(/g;
  const starts = [...ptx.matchAll(re)];
  starts.forEach((m, i) => {
    const end = i + 1 < starts.length ? starts[i + 1].index! : ptx.length;
    entries.set(m[1], ptx.slice(m.index!, end));
  });
  return entries;
}

/** PTX instruction lines of an entry (not labels, directives, braces or comments). */
function ptxInstructionCount(body: string): number {
  return body.split('\n').map((l) => l.trim())
    .filter((l) => l && !l.startsWith('.') && !l.startsWith('//') && !l.startsWith('$') && l !== '{' && l !== '}'
      && !l.startsWith(')') && !l.startsWith('(') && l.endsWith(';')).length;
}

async function sassCounts(cubin: string): Promise<Map<string, number> | null> {
  const r = await execa('cuobjdump', ['-sass', cubin], { reject: false });
  if (r.exitCode !== 0) return null;
  const counts = new Map<string, number>();
  let current: string | null = null;
  for (const line of r.stdout.split('\n')) {
    const f = /Function : (\S+)/.exec(line);
    if (f) { current = f[1]; counts.set(current, 0); continue; }
    if (current && /^\s+\/\*[0-9a-f]{4,}\*\/\s+\S/.test(line)) counts.set(current, counts.get(current)! + 1);
  }
  return counts;
}

async function snapshotArch(arch: Arch): Promise<Record<string, EntryPrint>> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `qgen-device-diff-${arch}-`));
  const specs = specsFor(arch);
  await emitKernels(specs, arch, dir);
  const unity = path.join(dir, 'all_kernels.cu');
  writeFileSync(unity, unitySource(specs.map((s) => `${s.name}.cu`), arch));
  const ptxFile = path.join(dir, `all_kernels.${arch}.ptx`);
  await compileCuda({ sources: [unity], arch, out: ptxFile, output: 'ptx' });
  const prints: Record<string, EntryPrint> = {};
  for (const [name, body] of ptxEntries(readFileSync(ptxFile, 'utf8'))) {
    prints[name] = { sha256: createHash('sha256').update(body).digest('hex'), ptxInstructions: ptxInstructionCount(body) };
  }
  const hasCuobjdump = (await execa('cuobjdump', ['--version'], { reject: false }).catch(() => null))?.exitCode === 0;
  if (hasCuobjdump) {
    const cubin = path.join(dir, `all_kernels.${arch}.cubin`);
    await compileCuda({ sources: [unity], arch, out: cubin, output: 'cubin' });
    for (const [name, n] of (await sassCounts(cubin)) ?? []) if (prints[name]) prints[name].sassInstructions = n;
  }
  return prints;
}

async function main(): Promise<void> {
  const [command, a, b] = process.argv.slice(2);
  if (command === 'snapshot' && a) {
    const snap: Snapshot = {};
    for (const arch of ARCHS) snap[arch] = await snapshotArch(arch);
    writeFileSync(a, `${JSON.stringify(snap, null, 1)}\n`);
    const n = Object.values(snap).reduce((s, e) => s + Object.keys(e).length, 0);
    console.log(`${n} kernel entries over ${ARCHS.length} archs -> ${a}`);
    return;
  }
  if (command === 'compare' && a && b) {
    const before = JSON.parse(readFileSync(a, 'utf8')) as Snapshot;
    const after = JSON.parse(readFileSync(b, 'utf8')) as Snapshot;
    let differing = 0, same = 0;
    for (const arch of new Set([...Object.keys(before), ...Object.keys(after)])) {
      const x = before[arch] ?? {}, y = after[arch] ?? {};
      for (const name of [...new Set([...Object.keys(x), ...Object.keys(y)])].sort()) {
        const p = x[name], q = y[name];
        if (p && q && p.sha256 === q.sha256) { same++; continue; }
        differing++;
        const count = (e?: EntryPrint) => (e ? `${e.ptxInstructions} PTX${e.sassInstructions ? ` / ${e.sassInstructions} SASS` : ''}`
          : 'absent');
        console.log(`${arch} ${name}: ${count(p)} -> ${count(q)}`);
      }
    }
    console.log(`${same} entries identical, ${differing} differ`);
    process.exitCode = differing ? 1 : 0;
    return;
  }
  console.error('usage: device-diff.ts snapshot OUT.json | compare BEFORE.json AFTER.json');
  process.exitCode = 2;
}

await main();
