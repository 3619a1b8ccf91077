#!/usr/bin/env node
// Loss curves, throughput and all-gather bytes of the data-parallel runs (bench/train/dist.sh) as one SVG:
//   node bench/train/plot_dist.mjs DIR > bench/results/train-dist.svg
// DIR holds one folder per mode (single, ddp-xN, fsdp2-xN, fsdp2+nvfp4-xN), each with train.py's <recipe>.json.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2];
if (!dir || !statSync(dir, { throwIfNoEntry: false })?.isDirectory()) {
  process.stderr.write('plot_dist.mjs: DIR = a folder of run folders (bench/train/dist.sh output); got ' + dir + '\n');
  process.exit(2);
}
const runs = [];
for (const mode of readdirSync(dir).sort()) {
  const sub = join(dir, mode);
  if (!statSync(sub).isDirectory()) continue;
  for (const f of readdirSync(sub)
    .filter((n) => n.endsWith('.json'))
    .sort()) {
    const r = JSON.parse(readFileSync(join(sub, f), 'utf8'));
    if (!Array.isArray(r.eval)) continue;
    runs.push({
      label: `${mode} ${r.recipe}`,
      eval: r.eval,
      tps: r.tokens_per_s_steady ?? r.tokens_per_s,
      gather: r.distributed?.all_gather_bytes_per_step ?? null,
    });
  }
}
if (!runs.length) {
  process.stderr.write(`plot_dist.mjs: no train.py result JSON under ${dir}/*/\n`);
  process.exit(2);
}
const W = 900,
  H = 330,
  P = 50;
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#7f7f7f'];
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;');
const out = [
  `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${2 * H}" font-family="sans-serif"` +
    ' font-size="11">',
];
// Panel 1: validation loss against step.
const pts = runs.flatMap((r) => r.eval.filter((e) => Number.isFinite(e[1])));
const maxStep = Math.max(...pts.map((e) => e[0]), 1);
const lo = Math.min(...pts.map((e) => e[1])),
  hi = Math.max(...pts.filter((e) => e[0] > 0).map((e) => e[1]), lo + 1e-3);
const x = (s) => P + (s / maxStep) * (W - 2 * P - 160);
const y = (v) => P + (1 - (Math.min(v, hi) - lo) / (hi - lo)) * (H - 2 * P);
out.push(`<text x="${P}" y="20" font-size="13">validation loss vs step (same global batch)</text>`);
out.push(`<line x1="${P}" y1="${H - P}" x2="${W - P - 160}" y2="${H - P}" stroke="#000"/>`);
out.push(`<line x1="${P}" y1="${P}" x2="${P}" y2="${H - P}" stroke="#000"/>`);
for (const v of [lo, (lo + hi) / 2, hi]) out.push(`<text x="4" y="${y(v) + 4}">${v.toFixed(3)}</text>`);
out.push(`<text x="${W - P - 170}" y="${H - P + 16}">${maxStep}</text>`);
runs.forEach((r, i) => {
  const c = COLORS[i % COLORS.length],
    e = r.eval.filter((p) => p[0] > 0 && Number.isFinite(p[1]));
  const line = e.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' ');
  out.push(`<polyline fill="none" stroke="${c}" stroke-width="1.5" points="${line}"/>`);
  out.push(`<text x="${W - P - 150}" y="${P + 14 * i}" fill="${c}">${esc(r.label)}</text>`);
});
// Panel 2: steady tokens/s and all-gather MB per step, one row per run.
out.push(`<text x="${P}" y="${H + 20}" font-size="13">throughput (tokens/s, steady) and all-gather MB per step</text>`);
const maxT = Math.max(...runs.map((r) => r.tps || 0), 1),
  maxG = Math.max(...runs.map((r) => r.gather || 0), 1);
runs.forEach((r, i) => {
  const yy = H + P + i * 22,
    c = COLORS[i % COLORS.length];
  out.push(`<text x="4" y="${yy + 12}" fill="${c}">${esc(r.label)}</text>`);
  const tw = ((r.tps || 0) / maxT) * 250;
  out.push(`<rect x="200" y="${yy}" width="${tw.toFixed(1)}" height="14" fill="${c}"/>`);
  out.push(`<text x="${205 + tw}" y="${yy + 12}">${Math.round(r.tps || 0)}</text>`);
  if (r.gather !== null) {
    const gw = (r.gather / maxG) * 250;
    out.push(`<rect x="560" y="${yy}" width="${gw.toFixed(1)}" height="14" fill="${c}" opacity="0.5"/>`);
    out.push(`<text x="${565 + gw}" y="${yy + 12}">${(r.gather / 1e6).toFixed(1)} MB</text>`);
  }
});
out.push('</svg>');
process.stdout.write(out.join('\n') + '\n');
