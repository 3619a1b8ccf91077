// Reading a generated kernel for tests and tools: the body of one of its functions, whether snippets appear in
// order, and its sm_90a SASS (ptxas log, instruction lines, the decoders' setmaxnreg.dec) built through nvcc.ts.
// Shared by test/gemm-pd, gemm-pdp, gemm-pdc, gemm-pdr, gemm-pdr2, gemm-pdr3 and gemm-swap, which check hand-offs in
// the generated text and SASS.
import { execa } from 'execa';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { compileCuda } from './nvcc.ts';

/** The text of `name(...) { ... }` in `src` up to the next top-level closing brace; throws when there is none. */
export function functionBody(src: string, name: string): string {
  const start = src.search(new RegExp(`\\b${name}\\([^;]*?\\)\\s*\\{`));
  if (start < 0) throw new Error(`functionBody: ${name}(...) { not found`);
  return src.slice(start, src.indexOf('\n}\n', start));
}

/** '' when every part occurs in `body`, each after the previous one; else the parts and where they were found. */
export function outOfOrder(body: string, parts: string[]): string {
  const at = parts.map((s) => body.indexOf(s));
  return at.every((i, j) => i >= 0 && (j === 0 || i > at[j - 1])) ? '' : `${parts.join(' < ')}: ${at.join(', ')}`;
}

export interface KernelSass {
  /** Instruction lines, "<hex address> <text>", in address order. */
  lines: string[];
  /** Index of the first USETMAXREG.DEALLOC (the decoders' setmaxnreg.dec; -1 where there is none). */
  dealloc: number;
  /** Registers per thread ptxas gives the kernel (its launch allocation). */
  registers: number;
  /** ptxas's -v log. */
  log: string;
}

const INSTRUCTION = /^\s*\/\*([0-9a-f]{4,})\*\/\s+(.*?)\s*;/;

/** Whether cuobjdump is on PATH (SASS checks say they were skipped without it). */
export async function haveCuobjdump(): Promise<boolean> {
  const probe = await execa('cuobjdump', ['--version'], { reject: false }).catch(() => null);
  return probe !== null && probe.exitCode === 0;
}

/** Compiles generated/sm_90a/<name>.cu to a cubin (no cache) and reads its SASS with cuobjdump. */
export async function sm90KernelSass(name: string): Promise<KernelSass> {
  const out = path.join(mkdtempSync(path.join(os.tmpdir(), 'qgen-sass-')), `${name}.cubin`);
  const built = await compileCuda({
    sources: [path.join('generated', 'sm_90a', `${name}.cu`)],
    arch: 'sm_90a',
    out,
    output: 'cubin',
    flags: ['-Xptxas', '-v'],
    cacheDir: null,
  });
  const lines = (await execa('cuobjdump', ['-sass', out])).stdout
    .split('\n')
    .map((l) => INSTRUCTION.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => `${m[1]} ${m[2]}`);
  const dealloc = lines.findIndex((l) => l.includes('USETMAXREG.DEALLOC'));
  const registers = Number(/Used (\d+) registers/.exec(built.log)?.[1] ?? NaN);
  return { lines, dealloc, registers, log: built.log };
}

/** true (and a line saying the SASS checks were skipped) when cuobjdump is not on PATH. */
export async function skipWithoutCuobjdump(): Promise<boolean> {
  if (await haveCuobjdump()) return false;
  console.log('  (skipped: cuobjdump is not on PATH; the SASS checks need it)');
  return true;
}

/** What keeps a kernel's build from being clean, '' when nothing: a stack frame or spills, a register count other
 * than `launchRegs`, a ptxas note matching `notes` (by default every C75xx: an injected warpgroup.wait, wgmmas
 * serialised for registers or for a fragment written in flight), an instruction on local memory. */
export function buildProblems(k: KernelSass, launchRegs: number, notes: RegExp = /C75\d\d/): string {
  const problems = [
    /0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads/.test(k.log) ? '' : 'stack frame or spills',
    k.registers === launchRegs ? '' : `${k.registers} registers, not ${launchRegs}`,
    notes.test(k.log) ? `ptxas note ${notes.exec(k.log)?.[0]}` : '',
    k.lines.some((l) => /\b(LDL|STL)\b/.test(l)) ? 'local memory' : '',
  ];
  return problems.filter((x) => x !== '').join('; ');
}

/** '' when the SASS moves registers as a setmaxnreg split says: the decoders' USETMAXREG.DEALLOC to `decoderRegs`
 * (the instruction at `dealloc`) and the consumers' USETMAXREG.TRY_ALLOC to `consumerRegs`; else what differs. */
export function setmaxnregProblems(k: KernelSass, decoderRegs: number, consumerRegs: number): string {
  const hex = (n: number) => `0x${n.toString(16)}`;
  const dec = `USETMAXREG.DEALLOC.CTAPOOL ${hex(decoderRegs)}`;
  const inc = `USETMAXREG.TRY_ALLOC.CTAPOOL UP0, ${hex(consumerRegs)}`;
  return [
    k.dealloc > 0 && k.lines[k.dealloc].includes(dec) ? '' : `no ${dec} (found: ${k.lines[k.dealloc] ?? 'none'})`,
    k.lines.some((l) => l.includes(inc)) ? '' : `no ${inc}`,
  ]
    .filter((x) => x !== '')
    .join('; ');
}

/** The highest register number R<n> that `lines` name (-Infinity when none). */
export function topRegister(lines: string[]): number {
  return Math.max(...lines.flatMap((l) => [...l.matchAll(/\bR(\d+)\b/g)].map((m) => Number(m[1]))));
}
