// SASS evidence for the archs that cannot run here (sm_100a, sm_120a) and for sm_90a: every emitted kernel is
// compiled to a cubin, ptxas reports registers and spills, and cuobjdump shows which conversion instructions the
// kernels use. Writes sass.md into the run's results folder.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { execa } from 'execa';
import type { Arch } from '../../dsl/types.ts';
import { catalogFor } from '../../dsl/catalog.ts';
import { emitKernels } from '../../emit/emit.ts';
import type { RunResults } from './results.ts';

const ARCHS: Arch[] = ['sm_90a', 'sm_100a', 'sm_120a'];
/** Instruction families worth counting in a quantizer's SASS. */
const PATTERNS: [string, RegExp][] = [
  ['F2FP e2m1 (hw FP4 cvt)', /F2FP[.\w]*E2M1/],
  ['F2FP e4m3 (hw FP8 cvt)', /F2FP[.\w]*E4M3/],
  ['SHFL', /\bSHFL\b/],
  ['LDG.128', /LDG\.E\.128/],
  ['STG', /\bSTG\b/],
  ['LDL/STL (local memory)', /\b(LDL|STL)\b/],
  ['RED/ATOM', /\b(RED|ATOM|ATOMG)\b/],
  ['TMA / bulk copy', /\b(UTMALDG|UBLKCP)\b/],
  ['tcgen05 scale copy (UTCCP)', /\bUTCCP\b/],
  ['tcgen05.ld (LDTM)', /\bLDTM\b/],
  ['mbarrier waits (SYNCS.PHASECHK)', /\bSYNCS\.PHASECHK/],
];
/** Distinct spellings of matrix-multiply instructions (HGMMA, UTCOMMA, OMMA/QMMA/HMMA ...) in a cubin. */
const MMA_OPCODE = /\b[A-Z]*MMA(\.[A-Za-z0-9_]+)*/g;

/** `select` picks catalog kernels by name; each arch compiles its own catalog variant of them. */
export async function runSass(select: (name: string) => boolean, workDir: string, results: RunResults): Promise<void> {
  const out: string[] = [
    '# SASS evidence',
    '',
    'Each kernel of the catalog compiled with nvcc `-gencode arch=compute_XXa,code=sm_XXa -O3 -Xptxas -v`; instruction counts from `cuobjdump -sass`.',
    'sm_100a and sm_120a are compiled and inspected only: no Blackwell GPU was available to run them.',
    '',
  ];
  for (const arch of ARCHS) {
    const dir = path.join(workDir, `sass-${arch}`);
    mkdirSync(dir, { recursive: true });
    const { files } = await emitKernels(
      catalogFor(arch).filter((s) => select(s.name)),
      arch,
      dir,
    );
    const cc = arch.replace('sm_', '').replace('a', '');
    out.push(
      `## ${arch}`,
      '',
      `| file | registers / spills (ptxas) | ${PATTERNS.map((p) => p[0]).join(' | ')} | MMA instructions |`,
      `|---|---|${PATTERNS.map(() => '---:').join('|')}|---|`,
    );
    const cus = files.filter((f) => f.endsWith('.cu'));
    const rows = new Array<string>(cus.length);
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < cus.length; i = next++) rows[i] = await sassRow(cus[i], arch, cc, dir);
    };
    await Promise.all(Array.from({ length: Math.min(16, os.cpus().length) }, worker));
    out.push(...rows);
    out.push('');
  }
  results.save('sass.md', out.join('\n') + '\n');
  console.log(out.join('\n'));
}

async function sassRow(cu: string, arch: Arch, cc: string, dir: string): Promise<string> {
  const cubin = cu.replace(/\.cu$/, `.${arch}.cubin`);
  const c = await execa(
    'nvcc',
    [
      '-cubin',
      '-gencode',
      `arch=compute_${cc}a,code=sm_${cc}a`,
      '-O3',
      '-std=c++17',
      '-Xptxas',
      '-v',
      `-I${dir}`,
      cu,
      '-o',
      cubin,
    ],
    { reject: false, all: true },
  );
  if (c.exitCode !== 0) return `| ${path.basename(cu)} | compile failed | ${PATTERNS.map(() => '').join(' | ')} | |`;
  const usage = [...c.all.matchAll(/Used (\d+) registers/g)].map((m) => m[1]);
  const spills = [...c.all.matchAll(/(\d+) bytes spill stores, (\d+) bytes spill loads/g)].map(
    (m) => `${m[1]}/${m[2]}`,
  );
  const sass = await execa('cuobjdump', ['-sass', cubin], { reject: false, all: true });
  const text = sass.stdout ?? '';
  const counts = PATTERNS.map(([, re]) => text.split('\n').filter((l) => re.test(l)).length);
  const mma = new Map<string, number>();
  for (const m of text.matchAll(MMA_OPCODE)) mma.set(m[0], (mma.get(m[0]) ?? 0) + 1);
  const mmaText = [...mma].map(([op, n]) => `${op} x${n}`).join(', ') || '-';
  return `| ${path.basename(cu)} | ${usage.join(',')} regs; spills ${[...new Set(spills)].join(',') || 'n/a'} | ${counts.join(' | ')} | ${mmaText} |`;
}
