// Static SASS of the producer-decode GEMMs' decoder loop (templates/gemm_sm90_pd.cu.hbs, gemm_sm90_pdp.cu.hbs; bench/
// NOTES.md "Issue 16: latency-tolerant decoder (h-pd3)"): the instructions one decoder thread issues per K block on
// its decode path, by kind, and how far (in instructions of that path) each shared-memory load is from the first
// instruction that reads its result. Input: `cuobjdump -sass` instruction lines as "<hex address> <text>" from the
// decoders' setmaxnreg.dec on (test/gemm-pd.test.ts, test/gemm-pdp.test.ts build them).

export interface DecoderPath {
  /** The path's instructions (NOPs left out), in address order: the loop head (the back edge's target) up to the
   * first forward conditional branch after the proxy fence, then from that branch's target to the back edge (the
   * path of decoder threads 1-127: thread 0's refill, which the branch skips, is not on it). */
  lines: string[];
  /** Instructions per kind: LDS (any width), LDS.128, STS.128, PRMT, HMUL2, LOP3, IMAD, SHF, SYNCS, BAR, MEMBAR. */
  counts: Record<string, number>;
  /** Each shared-memory load of the path: its line and the instructions from it to the first reader of its result,
   * going around the loop (a load whose result is read in the next K block counts the rest of this pass and the
   * head of the next). */
  loads: { line: string; distance: number }[];
}

const address = (l: string) => parseInt(l.slice(0, l.indexOf(' ')), 16);
const text = (l: string) => l.slice(l.indexOf(' ') + 1);
const KINDS: [string, RegExp][] = [
  ['LDS', /\bLDS(\.|\s)/],
  ['LDS.128', /\bLDS\.128\b/],
  ['STS.128', /\bSTS\.128\b/],
  ['PRMT', /\bPRMT\b/],
  ['HMUL2', /\bHMUL2\b/],
  ['LOP3', /\bLOP3\b/],
  ['IMAD', /\bIMAD\b/],
  ['SHF', /\bSHF\b/],
  ['SYNCS', /\bSYNCS\./],
  ['BAR', /\bBAR\.SYNC\b/],
  ['MEMBAR', /\bMEMBAR\b/],
];

/** The registers an instruction writes (its first operand) and reads (the others; a store's value and address). */
function registers(l: string): { writes: number[]; reads: number[] } {
  const t = text(l).replace(/^@!?U?P\w+\s+/, '');
  const opcode = t.split(/\s+/)[0];
  const operands = t.slice(opcode.length).split(',');
  const wide = (op: string, r: number) => {
    const n = /\.128\b/.test(op) ? 4 : /\.64\b/.test(op) ? 2 : 1;
    return Array.from({ length: n }, (_, i) => r + i);
  };
  const regsOf = (s: string) => [...s.matchAll(/\bR(\d+)\b/g)].map((m) => Number(m[1]));
  const stores = /^(STS|ST|STG|STL|SYNCS|BAR|BRA|MEMBAR|FENCE)/.test(opcode);
  if (stores) {
    const reads = operands.flatMap((o, i) =>
      regsOf(o).flatMap((r) => (i > 0 && opcode.startsWith('ST') ? wide(opcode, r) : [r])),
    );
    return { writes: [], reads };
  }
  const dest = regsOf(operands[0] ?? '');
  return {
    writes: dest.length > 0 ? wide(opcode, dest[0]) : [],
    reads: operands.slice(1).flatMap(regsOf),
  };
}

/** The decode path of the decoders' K-block loop (the loop whose body holds the proxy fence), or null. */
export function decoderPath(decoder: string[]): DecoderPath | null {
  const fence = decoder.findIndex((l) => text(l).includes('FENCE.VIEW.ASYNC.S'));
  if (fence < 0) return null;
  const target = (l: string) => {
    const m = /^(?:@!?P\d\s+)?BRA(?:\s+!?P\d,)?\s+0x([0-9a-f]+)$/.exec(text(l));
    return m ? parseInt(m[1], 16) : null;
  };
  // the back edge: the conditional backward branch from past the fence to the earliest target before it (the
  // out-of-line retry paths of mbarrier waits jump back unconditionally, into the middle of the loop)
  let head = -1;
  let back = -1;
  decoder.forEach((l, i) => {
    const t = target(l);
    if (i <= fence || t === null || !/^@/.test(text(l)) || t >= address(decoder[fence])) return;
    const at = decoder.findIndex((x) => address(x) === t);
    if (at >= 0 && (head < 0 || at <= head)) [head, back] = [at, i];
  });
  if (head < 0) return null;
  // thread 0's refill: the first forward conditional branch after the fence skips it; the path goes on at its target
  const skip = decoder.findIndex((l, i) => i > fence && i < back && /^@/.test(text(l)) && target(l)! > address(l));
  if (skip < 0) return null;
  const resume = decoder.findIndex((l) => address(l) === target(decoder[skip]));
  const lines = [
    ...decoder.slice(head, skip + 1),
    ...(resume > skip && resume <= back ? decoder.slice(resume, back + 1) : []),
  ].filter((l) => !/\bNOP$/.test(text(l)));
  const counts: Record<string, number> = {};
  for (const [kind, re] of KINDS) counts[kind] = lines.filter((l) => re.test(text(l))).length;
  const loads: DecoderPath['loads'] = [];
  lines.forEach((l, i) => {
    if (!/\bLDS\b|\bLDS\./.test(text(l))) return;
    const dest = new Set(registers(l).writes);
    for (let d = 1; d <= lines.length; d++) {
      const r = registers(lines[(i + d) % lines.length]);
      if (r.reads.some((x) => dest.has(x))) {
        loads.push({ line: l, distance: d });
        return;
      }
    }
    loads.push({ line: l, distance: Infinity });
  });
  return { lines, counts, loads };
}
