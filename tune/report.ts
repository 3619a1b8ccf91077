// The report of a tuning run: bench/results/tune-<arch>-<date>-<commit7>/tune.md (first line: provenance) and one
// SVG bar chart per workload (TFLOP/s per shape: the winner, the best fused tiling, two-pass, cuBLAS bf16); tune.md
// also has a table of the quantizers' winning launch shapes against their catalog ones.
import type { CandidateResult, TuningFile } from './tuning.ts';
import { resultUs } from './sweep.ts';
import { markdownProvenanceLine } from '../harness/provenance.ts';
import { tilingLabel } from '../dsl/tunables.ts';

interface ShapeRow {
  shape: string;
  label: string;
  flop: number;
  winner: CandidateResult | null;
  bestFused: CandidateResult | null;
  twoPass: CandidateResult | null;
  cublasUs: number | null;
}

type Baselines = { baselines?: Record<string, number>; interleavedBaselines?: Record<string, number> };

function shapeRows(t: TuningFile & Baselines): ShapeRow[] {
  const shapes = [...new Map(t.candidates.map((r) => [r.shape, r])).values()];
  return shapes.map((s) => {
    const ok = t.candidates.filter((r) => r.shape === s.shape && r.status === 'ok');
    const min = (rs: CandidateResult[]) =>
      rs.length ? rs.reduce((a, b) => (resultUs(b) < resultUs(a) ? b : a)) : null;
    return {
      shape: s.shape,
      label: s.label,
      flop: 2 * s.m * s.n * s.k,
      winner: min(ok),
      bestFused: min(ok.filter((r) => r.strategy === 'fused')),
      twoPass: ok.find((r) => r.strategy === 'two-pass') ?? null,
      cublasUs: t.interleavedBaselines?.[s.shape] ?? t.baselines?.[s.shape] ?? null,
    };
  });
}

const us = (x: number | null | undefined) => (x === null || x === undefined ? '-' : x.toFixed(1));
const ratio = (a: number | null, b: number | null | undefined) => (a && b ? (a / b).toFixed(2) : '-');

export function tuneMarkdown(t: TuningFile & Baselines): string {
  const counts: Record<string, number> = {};
  for (const r of t.candidates) counts[r.status] = (counts[r.status] ?? 0) + 1;
  const lines = [
    markdownProvenanceLine(t.provenance as unknown as Record<string, unknown>),
    `# qgen tune: ${t.arch}, workload ${t.workload}`,
    '',
    `GPU ${t.cacheKey.gpu} (${t.cacheKey.smCount} SMs), driver ${t.cacheKey.driver}, CUDA ${t.cacheKey.cuda}, qgen ` +
      `${t.cacheKey.qgenVersion}, sources ${t.cacheKey.sourceHash}, space ${t.cacheKey.configSpaceHash}.`,
    `Results per (shape, candidate): ${Object.entries(counts)
      .map(([k, v]) => `${v} ${k}`)
      .join(', ')}. Times: median of N ` +
      'launches, buffers rotated past the L2; the finalists within 10% of the best and cuBLAS bf16 re-timed ' +
      'interleaved (median of the rounds), which the cuBLAS columns and ratios use.',
    '',
    '| shape (m x n x k) | label | winner | us | TFLOP/s | best fused | us | two-pass us | cuBLAS bf16 us | winner x cuBLAS |',
    '|---|---|---|---:|---:|---|---:|---:|---:|---:|',
  ];
  for (const r of shapeRows(t)) {
    const w = r.winner ? resultUs(r.winner) : null;
    lines.push(
      `| ${r.shape} | ${r.label} | ${r.winner?.candidate ?? '(none)'} | ${us(w)} | ${w ? (r.flop / w / 1e6).toFixed(0) : '-'} | ` +
        `${r.bestFused?.candidate ?? '-'} | ${us(r.bestFused ? resultUs(r.bestFused) : null)} | ${us(r.twoPass ? resultUs(r.twoPass) : null)} | ` +
        `${us(r.cublasUs)} | ${ratio(r.cublasUs, w)} |`,
    );
  }
  lines.push(
    '',
    '## Winners per shape class (what `qgen vendor --tuning` dispatches)',
    '',
    '| class | strategy | candidate | us (sum over the class) | two-pass us | cuBLAS bf16 us |',
    '|---|---|---|---:|---:|---:|',
  );
  for (const w of t.winners) {
    lines.push(
      `| ${w.shape} | ${w.strategy} | ${w.candidate} | ${us(w.us)} | ${us(w.twoPassUs)} | ${us(w.cublasBf16Us)} |`,
    );
  }
  if (t.quantizerWinners?.length) {
    lines.push(
      '',
      '## Quantizer launch shapes (emitted under the catalog name: same results, NUMERICS §6.5)',
      '',
      '| kernel | shape (rows x cols) | winner | us | catalog us | speedup |',
      '|---|---|---|---:|---:|---:|',
    );
    for (const w of t.quantizerWinners) {
      const tl = w.tiling;
      lines.push(
        `| ${w.kernel} | ${w.rows}x${w.cols} | ${w.candidate} (${tilingLabel(tl)}) | ${us(w.us)} | ` +
          `${us(w.catalogUs)} | ${ratio(w.catalogUs, w.us)} |`,
      );
    }
  }
  const bad = [...t.candidates, ...(t.quantizerCandidates ?? [])].filter(
    (r) => r.status !== 'ok' && r.status !== 'skipped',
  );
  const reasons = [...new Map(bad.map((r) => [r.candidate, r])).values()];
  if (reasons.length) {
    lines.push('', '## Candidates that cannot win', '', '| candidate | status | reason |', '|---|---|---|');
    for (const r of reasons)
      lines.push(`| ${r.candidate} | ${r.status} | ${(r.reason ?? '').replace(/\|/g, '/').slice(0, 200)} |`);
  }
  return `${lines.join('\n')}\n`;
}

/** A grouped bar chart, TFLOP/s per shape: winner, best fused, two-pass, cuBLAS bf16. */
export function tuneSvg(t: TuningFile & Baselines): string {
  const rows = shapeRows(t);
  const series = [
    { name: 'winner', color: '#2b6cb0', us: (r: ShapeRow) => (r.winner ? resultUs(r.winner) : null) },
    { name: 'best fused', color: '#dd6b20', us: (r: ShapeRow) => (r.bestFused ? resultUs(r.bestFused) : null) },
    { name: 'two-pass', color: '#38a169', us: (r: ShapeRow) => (r.twoPass ? resultUs(r.twoPass) : null) },
    { name: 'cuBLAS bf16', color: '#718096', us: (r: ShapeRow) => r.cublasUs },
  ];
  const tf = (r: ShapeRow, x: number | null) => (x ? r.flop / x / 1e6 : 0);
  const max = Math.max(1, ...rows.flatMap((r) => series.map((s) => tf(r, s.us(r)))));
  const bar = 12,
    group = bar * series.length + 16,
    left = 60,
    top = 40,
    h = 260;
  const width = left + rows.length * group + 20;
  const out = [
    markdownProvenanceLine(t.provenance as unknown as Record<string, unknown>),
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${top + h + 120}" font-family="sans-serif" font-size="10">`,
    `<text x="${left}" y="16" font-size="13">qgen tune ${t.arch} ${t.workload} on ${t.cacheKey.gpu}: TFLOP/s per shape</text>`,
    `<line x1="${left}" y1="${top + h}" x2="${width - 10}" y2="${top + h}" stroke="#000"/>`,
  ];
  for (let g = 0; g <= 4; g++) {
    const v = (max * g) / 4,
      y = top + h - (h * g) / 4;
    out.push(
      `<text x="${left - 6}" y="${y + 3}" text-anchor="end">${v.toFixed(0)}</text>`,
      `<line x1="${left}" y1="${y}" x2="${width - 10}" y2="${y}" stroke="#ddd"/>`,
    );
  }
  rows.forEach((r, i) => {
    const x0 = left + 8 + i * group;
    series.forEach((s, j) => {
      const v = tf(r, s.us(r));
      const bh = (h * v) / max;
      out.push(
        `<rect x="${x0 + j * bar}" y="${(top + h - bh).toFixed(1)}" width="${bar - 2}" height="${bh.toFixed(1)}" fill="${s.color}"/>`,
      );
    });
    out.push(`<text transform="translate(${x0 + 4},${top + h + 10}) rotate(40)">${r.shape}</text>`);
  });
  series.forEach((s, j) =>
    out.push(
      `<rect x="${left + j * 90}" y="24" width="10" height="10" fill="${s.color}"/>`,
      `<text x="${left + 14 + j * 90}" y="33">${s.name}</text>`,
    ),
  );
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
