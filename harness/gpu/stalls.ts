// Where a kernel waits, per SASS instruction: a short markdown summary of Nsight Compute's source page (SourceCounters
// section, `ncu -i REPORT --page source --print-source sass --csv`). The full page is several MB per kernel; the
// summary keeps, per captured function, the totals by stall reason and by opcode and the instructions that hold the
// most stall samples, which is what bench/NOTES.md reads.

/** One CSV record per line: ncu quotes every field and writes no newlines inside fields. */
function parseCsvLine(line: string): string[] {
  const out: string[] = [];
  let field = '',
    quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      out.push(field);
      field = '';
    } else field += ch;
  }
  out.push(field);
  return out;
}

const pct = (part: number, whole: number) => (whole > 0 ? `${((100 * part) / whole).toFixed(1)}%` : '-');

/** The opcode of a SASS line without predicate and modifiers (`@P0 LDG.E.128 R4, [R2]` -> `LDG`). */
function opcode(source: string): string {
  const words = source.trim().split(/\s+/);
  const op = words[0]?.startsWith('@') ? words[1] : words[0];
  return (op ?? '').split('.')[0];
}

/** Markdown summary of an ncu source page (CSV text, any lines before the first "Kernel Name" record ignored). */
export function summarizeSourcePage(csv: string, top = 30): string {
  const lines = csv.split('\n');
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i].startsWith('"Kernel Name"')) continue;
    const kernel = parseCsvLine(lines[i])[1] ?? '?';
    const header = parseCsvLine(lines[i + 1] ?? '');
    const col = (name: string) => header.indexOf(name);
    const [cAddr, cSrc, cSamples, cInst, cExcess] = [
      col('Address'),
      col('Source'),
      col('Warp Stall Sampling (All Samples)'),
      col('Instructions Executed'),
      col('L2 Theoretical Sectors Global Excessive'),
    ];
    const stallCols = header.map((h, k) => [h, k] as const).filter(([h]) => h.startsWith('stall_') && !h.includes('('));
    if (cSrc < 0 || cSamples < 0 || cInst < 0) continue;
    const rows: string[][] = [];
    for (let k = i + 2; k < lines.length && !lines[k].startsWith('"Kernel Name"'); k++)
      if (lines[k].trim()) rows.push(parseCsvLine(lines[k]));
    const num = (r: string[], c: number) => (c >= 0 ? Number(r[c] || 0) : 0);
    let samples = 0,
      inst = 0,
      excess = 0;
    const byStall = new Map<string, number>(),
      byOpSamples = new Map<string, number>(),
      byOpInst = new Map<string, number>();
    for (const r of rows) {
      const s = num(r, cSamples),
        n = num(r, cInst),
        op = opcode(r[cSrc] ?? '');
      samples += s;
      inst += n;
      excess += num(r, cExcess);
      byOpSamples.set(op, (byOpSamples.get(op) ?? 0) + s);
      byOpInst.set(op, (byOpInst.get(op) ?? 0) + n);
      for (const [h, k] of stallCols) byStall.set(h.slice(6), (byStall.get(h.slice(6)) ?? 0) + num(r, k));
    }
    const sorted = <K>(m: Map<K, number>) => [...m.entries()].sort((a, b) => b[1] - a[1]);
    out.push(`## ${kernel}`, '');
    out.push(`${samples} stall samples, ${inst} warp instructions executed, ${excess} excessive L2 sectors (global).`);
    out.push('', '| stall reason | share of samples |', '|---|---:|');
    for (const [k, v] of sorted(byStall).slice(0, 10)) out.push(`| ${k} | ${pct(v, samples)} |`);
    out.push('', '| opcode | share of samples | share of instructions |', '|---|---:|---:|');
    for (const [k, v] of sorted(byOpSamples).slice(0, 15))
      out.push(`| ${k} | ${pct(v, samples)} | ${pct(byOpInst.get(k) ?? 0, inst)} |`);
    out.push('', `Top ${top} instructions by stall samples:`, '');
    out.push('| address | instruction | share of samples | top stall reasons | excessive sectors |');
    out.push('|---|---|---:|---|---:|');
    const topRows = [...rows].sort((a, b) => num(b, cSamples) - num(a, cSamples)).slice(0, top);
    for (const r of topRows) {
      const reasons = stallCols
        .map(([h, k]) => [h.slice(6), num(r, k)] as const)
        .filter(([, v]) => v > 0)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 3)
        .map(([h, v]) => `${h} ${pct(v, num(r, cSamples))}`)
        .join(', ');
      const src = (r[cSrc] ?? '').trim().replace(/\|/g, '\\|');
      out.push(
        `| ${r[cAddr] ?? ''} | \`${src}\` | ${pct(num(r, cSamples), samples)} | ${reasons} | ${num(r, cExcess)} |`,
      );
    }
    out.push('');
  }
  return out.join('\n');
}
