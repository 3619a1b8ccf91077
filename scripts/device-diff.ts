// Device-code fingerprint of every kernel qgen emits (catalog + coverage specs, every arch), to show that a refactor
// of lower/, render/, templates/ or runtime/ left the device code as it was (or to measure how it changed).
// Per arch: one translation unit of all element-wise kernels (GEMMs with --gemm) -> PTX and a cubin (nvcc, qgen's
// flags). Per kernel: the sha256 and instruction count of its PTX `.entry`, and the sha256 and instruction count of
// its SASS, read from the cubin's `.text.<kernel>` ELF section (16 bytes per instruction; no cuobjdump needed).
// Identical SASS bytes mean the GPU runs the same instructions.
// Usage: npx tsx scripts/device-diff.ts snapshot OUT.json [--gemm]     (record)
//        npx tsx scripts/device-diff.ts compare BEFORE.json AFTER.json   (exit 1 when any entry differs)
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { ARCHS, type Arch, type KernelSpec } from '../dsl/types.ts';
import { catalogFor } from '../dsl/catalog.ts';
import { coverageSpecs } from '../harness/coverage.ts';
import { emitKernels, unitySource } from '../emit/emit.ts';
import { compileCuda } from '../harness/nvcc.ts';

interface EntryPrint {
  sha256: string;
  ptxInstructions: number;
  sassSha256?: string;
  sassInstructions?: number;
}
type Snapshot = Record<string, Record<string, EntryPrint>>;

function specsFor(arch: Arch, gemm: boolean): KernelSpec[] {
  const catalog = catalogFor(arch);
  const names = new Set(catalog.map((s) => s.name));
  return [...catalog, ...coverageSpecs().filter((s) => !names.has(s.name))].filter((s) => gemm || s.kind !== 'gemm');
}

/** `.text.<function>` section bytes of an ELF64 cubin, per function name. */
export function cubinTextSections(elf: Buffer): Map<string, Buffer> {
  const shoff = Number(elf.readBigUInt64LE(0x28));
  const shentsize = elf.readUInt16LE(0x3a),
    shnum = elf.readUInt16LE(0x3c),
    shstrndx = elf.readUInt16LE(0x3e);
  const header = (i: number) => {
    const o = shoff + i * shentsize;
    const offset = Number(elf.readBigUInt64LE(o + 24)),
      size = Number(elf.readBigUInt64LE(o + 32));
    return { name: elf.readUInt32LE(o), offset, size };
  };
  const strtab = header(shstrndx);
  const nameAt = (n: number) => {
    const start = strtab.offset + n;
    return elf.toString('latin1', start, elf.indexOf(0, start));
  };
  const sections = new Map<string, Buffer>();
  for (let i = 0; i < shnum; i++) {
    const h = header(i);
    const name = nameAt(h.name);
    if (name.startsWith('.text.')) sections.set(name.slice(6), elf.subarray(h.offset, h.offset + h.size));
  }
  return sections;
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
  return body
    .split('\n')
    .map((l) => l.trim())
    .filter(
      (l) =>
        l &&
        !l.startsWith('.') &&
        !l.startsWith('//') &&
        !l.startsWith('$') &&
        l !== '{' &&
        l !== '}' &&
        !l.startsWith(')') &&
        !l.startsWith('(') &&
        l.endsWith(';'),
    ).length;
}

async function snapshotArch(arch: Arch, gemm: boolean): Promise<Record<string, EntryPrint>> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `qgen-device-diff-${arch}-`));
  const specs = specsFor(arch, gemm);
  await emitKernels(specs, arch, dir);
  const unity = path.join(dir, 'all_kernels.cu');
  writeFileSync(
    unity,
    unitySource(
      specs.map((s) => `${s.name}.cu`),
      arch,
    ),
  );
  const ptxFile = path.join(dir, `all_kernels.${arch}.ptx`);
  const cubin = path.join(dir, `all_kernels.${arch}.cubin`);
  await Promise.all([
    compileCuda({ sources: [unity], arch, out: ptxFile, output: 'ptx' }),
    compileCuda({ sources: [unity], arch, out: cubin, output: 'cubin' }),
  ]);
  const sha = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');
  const prints: Record<string, EntryPrint> = {};
  for (const [name, body] of ptxEntries(readFileSync(ptxFile, 'utf8'))) {
    prints[name] = { sha256: sha(body), ptxInstructions: ptxInstructionCount(body) };
  }
  for (const [name, text] of cubinTextSections(readFileSync(cubin))) {
    if (prints[name]) Object.assign(prints[name], { sassSha256: sha(text), sassInstructions: text.length / 16 });
  }
  return prints;
}

async function main(): Promise<void> {
  const gemm = process.argv.includes('--gemm');
  const [command, a, b] = process.argv.slice(2).filter((x) => x !== '--gemm');
  if (command === 'snapshot' && a) {
    const snap: Snapshot = {};
    for (const arch of ARCHS) snap[arch] = await snapshotArch(arch, gemm);
    writeFileSync(a, `${JSON.stringify(snap, null, 1)}\n`);
    const n = Object.values(snap).reduce((s, e) => s + Object.keys(e).length, 0);
    console.log(`${n} kernel entries over ${ARCHS.length} archs -> ${a}`);
    return;
  }
  if (command === 'compare' && a && b) {
    const before = JSON.parse(readFileSync(a, 'utf8')) as Snapshot;
    const after = JSON.parse(readFileSync(b, 'utf8')) as Snapshot;
    let ptxSame = 0,
      sassSame = 0,
      differing = 0;
    for (const arch of new Set([...Object.keys(before), ...Object.keys(after)])) {
      const x = before[arch] ?? {},
        y = after[arch] ?? {};
      for (const name of [...new Set([...Object.keys(x), ...Object.keys(y)])].sort()) {
        const p = x[name],
          q = y[name];
        if (p && q && p.sha256 === q.sha256) {
          ptxSame++;
          continue;
        }
        if (p && q && p.sassSha256 && p.sassSha256 === q.sassSha256) {
          sassSame++;
          continue;
        }
        differing++;
        const count = (e?: EntryPrint) =>
          e ? `${e.ptxInstructions} PTX / ${e.sassInstructions ?? '?'} SASS` : 'absent';
        console.log(`${arch} ${name}: ${count(p)} -> ${count(q)}`);
      }
    }
    console.log(`${ptxSame} entries with identical PTX, ${sassSame} more with identical SASS, ${differing} differ`);
    process.exitCode = differing ? 1 : 0;
    return;
  }
  console.error('usage: device-diff.ts snapshot OUT.json | compare BEFORE.json AFTER.json');
  process.exitCode = 2;
}

await main();
