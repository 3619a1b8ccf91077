// Static SASS counts of the committed generated kernels (dev tool; `node scripts/sass-count.mjs --help`).
// Each generated/<arch>/*.cu is compiled to a cubin with qgen's nvcc flags (harness/nvcc.ts) and disassembled with
// `cuobjdump -sass` (and `-res-usage` for registers and local memory). Per __global__ function: all instructions, the
// loops (a backward branch closes one; its body is the instructions from the branch target to the branch) and, for
// the quantizer launches, the main loop's instructions per element. Elements per iteration of the main loop (the
// outermost loop, i.e. the grid-stride loop): Config::kElems of the generated source for pass A / quantize / amax
// passes (one work item per thread per iteration), QGEN_FINALIZE_GROUPS x 16 of the runtime header for pass B, the
// namespace-level kElems for the dequantize kernel.
// Static counts include every path of the loop body (cold branches, both input paths of staged kernels); callees
// (CALL.REL) are not in the body. cuobjdump is not in every toolkit install (and 12.4 does not disassemble sm_100a /
// sm_120a): without it the tool says so in one line and exits 2.
import { execa } from 'execa';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ARCHS, type Arch } from '../dsl/types.ts';
import { compileCuda } from './nvcc.ts';

const repoRoot = fileURLToPath(new URL('../', import.meta.url));

export interface SassInstruction {
  address: number;
  /** Opcode with modifiers, predicate removed (e.g. `BRA`, `LDG.E.128`). */
  opcode: string;
  /** Branch target for BRA, else null. */
  target: number | null;
  /** Predicated (may not be taken). */
  conditional: boolean;
}

export interface SassFunction {
  name: string;
  instructions: SassInstruction[];
}

export interface SassLoop {
  /** Address of the loop header (the target of its back edges). */
  start: number;
  /** Address of the last back-edge branch. */
  end: number;
  /** Instructions of the natural loop's blocks (wherever the compiler placed them), NOPs excluded. */
  body: number;
  /** Fewest and most instructions on one pass from the header to a back edge (inner loops counted once). */
  minPath: number;
  maxPath: number;
  /** 0 for an outermost loop, 1 for a loop inside one, ... */
  depth: number;
}

const FUNCTION_LINE = /^\s*Function\s*:\s*(\S+)/;
const INSTRUCTION_LINE = /^\s*\/\*([0-9a-f]{4,})\*\/\s+(.*?)\s*;/;

/** Splits `cuobjdump -sass` output into functions and their instructions. */
export function parseSass(text: string): SassFunction[] {
  const functions: SassFunction[] = [];
  let current: SassFunction | null = null;
  for (const line of text.split('\n')) {
    const f = FUNCTION_LINE.exec(line);
    if (f) {
      current = { name: f[1], instructions: [] };
      functions.push(current);
      continue;
    }
    const m = INSTRUCTION_LINE.exec(line);
    if (!m || !current) continue;
    const predicated = /^@!?U?P[T0-9]+\s+/.exec(m[2]);
    const body = predicated ? m[2].slice(predicated[0].length) : m[2];
    const opcode = body.split(/\s+/)[0];
    // BRA.DIV jumps to the divergent-warp fallback of warp-synchronous code: treated as not taken (cold)
    const branch = /^BRA(\.(?!DIV)\S+)?$/.test(opcode) ? /\b0x([0-9a-f]+)\s*$/.exec(body) : null;
    current.instructions.push({
      address: parseInt(m[1], 16),
      opcode,
      target: branch ? parseInt(branch[1], 16) : null,
      // `@P0 BRA`, and `BRA P0, target` (branch on a second predicate), may fall through
      conditional: predicated !== null || (branch !== null && /^BRA(\.\S+)?\s+!?U?P[T0-9]+\s*,/.test(body)),
    });
  }
  return functions;
}

interface Block {
  first: number;
  size: number;
  successors: number[];
}

/** Basic blocks keyed by their first instruction's index; successors are block keys. */
function basicBlocks(ins: SassInstruction[]): Map<number, Block> {
  const index = new Map(ins.map((i, k) => [i.address, k]));
  const ends = (i: SassInstruction) => i.target !== null || i.opcode === 'EXIT' || i.opcode === 'RET';
  const leaders = new Set([0]);
  ins.forEach((i, k) => {
    if (i.target !== null && index.has(i.target)) leaders.add(index.get(i.target) as number);
    if (ends(i) && k + 1 < ins.length) leaders.add(k + 1);
  });
  const sorted = [...leaders].sort((a, b) => a - b);
  const blocks = new Map<number, Block>();
  sorted.forEach((first, n) => {
    const next = n + 1 < sorted.length ? sorted[n + 1] : ins.length;
    const last = ins[next - 1];
    const successors: number[] = [];
    if (last.target !== null && index.has(last.target)) successors.push(index.get(last.target) as number);
    const fallsThrough = last.target === null ? last.opcode !== 'EXIT' && last.opcode !== 'RET' : last.conditional;
    if ((fallsThrough || (last.opcode === 'EXIT' && last.conditional)) && next < ins.length) successors.push(next);
    const size = ins.slice(first, next).filter((i) => i.opcode !== 'NOP').length;
    blocks.set(first, { first, size, successors });
  });
  return blocks;
}

/**
 * Natural loops of a function: a branch to an earlier address is a back edge (a branch to itself, the trap after
 * EXIT, is not); the loop is its header plus every block that reaches a back edge without passing the header.
 */
export function findLoops(fn: SassFunction): SassLoop[] {
  const ins = fn.instructions;
  const blocks = basicBlocks(ins);
  // Only blocks reachable from the entry: subroutines (CALL targets) and BRA.DIV fallbacks are left out.
  const reachable = new Set<number>();
  for (const stack = [0]; stack.length;) {
    const b = stack.pop() as number;
    if (reachable.has(b)) continue;
    reachable.add(b);
    stack.push(...(blocks.get(b) as Block).successors);
  }
  for (const b of [...blocks.keys()]) if (!reachable.has(b)) blocks.delete(b);
  const predecessors = new Map<number, number[]>();
  for (const b of blocks.values())
    for (const s of b.successors) predecessors.set(s, [...(predecessors.get(s) ?? []), b.first]);
  const lastAddress = (b: number) => ins[b + (blocks.get(b) as Block).size - 1].address;
  const isBackEdge = (from: number, to: number) => ins[to].address < lastAddress(from);
  const latches = new Map<number, number[]>(); // header -> blocks whose branch goes back to it
  for (const b of blocks.values())
    for (const s of b.successors) if (isBackEdge(b.first, s)) latches.set(s, [...(latches.get(s) ?? []), b.first]);
  const loops = [...latches].map(([header, tails]) => {
    const members = new Set([header]);
    const stack = [...tails];
    while (stack.length) {
      const b = stack.pop() as number;
      if (members.has(b)) continue;
      members.add(b);
      stack.push(...(predecessors.get(b) ?? []));
    }
    return { header, tails, members };
  });
  return loops
    .map(({ header, tails, members }) => {
      // Paths from the header to a latch over the loop's blocks along forward edges (an inner loop counts once).
      const memo = new Map<number, [number, number]>();
      const paths = (b: number): [number, number] => {
        const known = memo.get(b);
        if (known) return known;
        const size = (blocks.get(b) as Block).size;
        let best: [number, number] = tails.includes(b) ? [size, size] : [Infinity, -Infinity];
        for (const s of (blocks.get(b) as Block).successors) {
          if (!members.has(s) || isBackEdge(b, s)) continue;
          const [lo, hi] = paths(s);
          best = [Math.min(best[0], size + lo), Math.max(best[1], size + hi)];
        }
        memo.set(b, best);
        return best;
      };
      const [minPath, maxPath] = paths(header);
      return {
        start: ins[header].address,
        end: Math.max(...tails.map(lastAddress)),
        body: [...members].reduce((n, b) => n + (blocks.get(b) as Block).size, 0),
        minPath,
        maxPath,
        depth: loops.filter((o) => o.header !== header && o.members.has(header) && o.members.size > members.size)
          .length,
      };
    })
    .sort((a, b) => a.start - b.start);
}

/** The main loop: the outermost loop with the most instructions (the grid-stride loop of a quantizer pass). */
export function mainLoop(loops: SassLoop[]): SassLoop | null {
  const outer = loops.filter((l) => l.depth === 0);
  return outer.reduce<SassLoop | null>((best, l) => (best && best.body >= l.body ? best : l), null);
}

/** Readable name of a mangled nested name `_ZN<len><id>...E<args>` (`ns::fn`); other names unchanged. */
export function shortName(mangled: string): string {
  if (!mangled.startsWith('_ZN')) return mangled;
  const parts: string[] = [];
  let i = 3;
  while (i < mangled.length && mangled[i] !== 'E') {
    const len = /^\d+/.exec(mangled.slice(i));
    if (!len) return mangled;
    i += len[0].length;
    parts.push(mangled.slice(i, i + Number(len[0])));
    i += Number(len[0]);
  }
  return parts.join('::');
}

/** `cuobjdump -res-usage`: registers and local-memory bytes per function. */
export function parseResourceUsage(text: string): Map<string, { registers: number; stack: number; local: number }> {
  const usage = new Map<string, { registers: number; stack: number; local: number }>();
  const re = /Function\s+(\S+?):\s*\n\s*REG:(\d+)\s+STACK:(\d+)\s+SHARED:\d+\s+LOCAL:(\d+)/g;
  for (const m of text.matchAll(re)) usage.set(m[1], { registers: +m[2], stack: +m[3], local: +m[4] });
  return usage;
}

export interface SassCountRow {
  file: string;
  kernel: string;
  total: number;
  loops: SassLoop[];
  main: SassLoop | null;
  elementsPerIteration: number | null;
  /** Where elementsPerIteration comes from. */
  elementsSource: string;
  registers: number | null;
  stack: number | null;
  local: number | null;
  spillInstructions: number;
}

/** Elements one thread handles per main-loop iteration, from the generated source and the runtime header. */
export function elementsPerIteration(
  kernel: string,
  source: string,
  finalizeGroups: number | null,
): { elements: number | null; from: string } {
  const fn = kernel.split('::').pop() ?? kernel;
  if (fn === 'pass_b' && finalizeGroups !== null)
    return { elements: finalizeGroups * 16, from: `QGEN_FINALIZE_GROUPS ${finalizeGroups} x 16` };
  const elems = /static constexpr int kElems = (\d+);/.exec(source);
  if (elems && ['pass_a', 'quantize', 'amax_pass'].includes(fn)) return { elements: +elems[1], from: 'kElems' };
  const dequantizeElems = /^constexpr int kElems = (\d+);/m.exec(source); // templates/dequantize.cu.hbs
  if (dequantizeElems && fn === 'dequantize') return { elements: +dequantizeElems[1], from: 'kElems' };
  return { elements: null, from: '-' };
}

export function countRows(
  file: string,
  sass: string,
  usageText: string,
  source: string,
  finalizeGroups: number | null,
) {
  const usage = parseResourceUsage(usageText);
  return parseSass(sass).map((fn): SassCountRow => {
    const loops = findLoops(fn);
    const kernel = shortName(fn.name);
    const { elements, from } = elementsPerIteration(kernel, source, finalizeGroups);
    const u = usage.get(fn.name);
    return {
      file,
      kernel,
      total: fn.instructions.filter((i) => i.opcode !== 'NOP').length,
      loops,
      main: mainLoop(loops),
      elementsPerIteration: elements,
      elementsSource: from,
      registers: u?.registers ?? null,
      stack: u?.stack ?? null,
      local: u?.local ?? null,
      spillInstructions: fn.instructions.filter((i) => /^(LDL|STL)(\.|$)/.test(i.opcode)).length,
    };
  });
}

/** Table name of a kernel: `qgen_<name>_impl::<fn>` as `<name>::<fn>`. */
export function tableName(kernel: string): string {
  return kernel.replace(/^qgen_(\w+)_impl::/, '$1::');
}

export function markdownTable(rows: SassCountRow[]): string {
  const lines = [
    '| kernel | SASS | main loop: body (one pass) | per element | elements | other loops | regs | stack/local |' +
      ' LDL+STL |',
    '|---|---:|---:|---:|---:|---|---:|---:|---:|',
  ];
  for (const r of rows) {
    const m = r.main;
    const e = r.elementsPerIteration;
    const per = (n: number) => (e ? (n / e).toFixed(1) : '-');
    const others =
      r.loops
        .filter((l) => l !== m)
        .map((l) => `${l.body}${l.depth ? ` (depth ${l.depth})` : ''}`)
        .join(', ') || '-';
    const cells = [
      tableName(r.kernel),
      r.total,
      m ? `${m.body} (${m.minPath}-${m.maxPath})` : '-',
      m && e ? `${per(m.body)} (${per(m.minPath)}-${per(m.maxPath)})` : '-',
      e ?? '-',
      others,
      r.registers ?? '?',
      `${r.stack ?? '?'}/${r.local ?? '?'}`,
      r.spillInstructions,
    ];
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return lines.join('\n') + '\n';
}

class UsageError extends Error {}

const HELP = `usage: node scripts/sass-count.mjs [--arch sm_90a] [--only REGEX] [--out FILE.md]
Compiles generated/<arch>/*.cu to cubins (harness/nvcc.ts flags), disassembles them with cuobjdump and prints a
markdown table per __global__ function: SASS instructions, loops, main-loop instructions per element, registers.
--only REGEX selects generated files by name (without .cu). Needs cuobjdump on PATH (12.4 reads sm_90a only).`;

async function run(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        arch: { type: 'string', default: 'sm_90a' },
        only: { type: 'string' },
        out: { type: 'string' },
        help: { type: 'boolean' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    throw new UsageError(`${(e as Error).message}; allowed: --arch ARCH, --only REGEX, --out FILE.md, --help`);
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const arch = values.arch as string;
  if (!(ARCHS as readonly string[]).includes(arch))
    throw new UsageError(`--arch ${arch}; allowed: ${ARCHS.join(', ')}`);
  let only: RegExp | null = null;
  try {
    only = values.only === undefined ? null : new RegExp(values.only);
  } catch {
    throw new UsageError(`--only ${values.only}: not a valid regular expression`);
  }
  if (values.out !== undefined && !values.out.endsWith('.md'))
    throw new UsageError(`--out ${values.out}; allowed: a path ending in .md`);
  const version = await execa('cuobjdump', ['--version'], { reject: false });
  if (version.exitCode !== 0)
    throw new UsageError('cuobjdump not found on PATH: install the CUDA toolkit binutils to disassemble cubins');

  const dir = path.join(repoRoot, 'generated', arch);
  const files = (await readdir(dir)).filter((f) => f.endsWith('.cu') && (!only || only.test(f.slice(0, -3)))).sort();
  if (files.length === 0) throw new UsageError(`--only ${values.only}: matches no file of generated/${arch}`);
  const header = await readFile(path.join(dir, 'qgen_quantize_kernel.cuh'), 'utf8');
  const finalize = /constexpr int QGEN_FINALIZE_GROUPS = (\d+);/.exec(header);
  const work = await mkdtemp(path.join(os.tmpdir(), 'qgen-sass-count-'));
  const rows: SassCountRow[][] = new Array(files.length);
  try {
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < files.length; i = next++) {
        const cubin = path.join(work, files[i].replace(/\.cu$/, '.cubin'));
        await compileCuda({ sources: [path.join(dir, files[i])], arch: arch as Arch, out: cubin, output: 'cubin' });
        const sass = await execa('cuobjdump', ['-sass', cubin]);
        const usage = await execa('cuobjdump', ['-res-usage', cubin]);
        const source = await readFile(path.join(dir, files[i]), 'utf8');
        rows[i] = countRows(files[i], sass.stdout, usage.stdout, source, finalize ? +finalize[1] : null);
      }
    };
    await Promise.all(Array.from({ length: Math.min(8, os.cpus().length) }, worker));
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  const nvcc = (await execa('nvcc', ['--version'])).stdout.match(/release [\d.]+/)?.[0] ?? 'unknown';
  const tool = version.stdout.match(/release [\d.]+/)?.[0] ?? 'unknown';
  const text =
    `Static SASS, ${arch} (nvcc ${nvcc}, cuobjdump ${tool}; node scripts/sass-count.mjs` +
    `${values.only ? ` --only '${values.only}'` : ''}). Main loop: all its instructions, and (fewest-most) on one` +
    ' pass; per element: divided by the elements a thread handles per iteration (kElems; pass B: QGEN_FINALIZE_GROUPS' +
    ' x 16).\n\n' +
    markdownTable(rows.flat());
  if (values.out) await writeFile(values.out, text);
  else process.stdout.write(text);
  return 0;
}

/** CLI entry: exit code 0, or 2 with a one-line message for bad input or a missing cuobjdump. */
export async function main(argv: string[]): Promise<number> {
  try {
    return await run(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`sass-count: ${e.message}`);
    return 2;
  }
}
