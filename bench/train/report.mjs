#!/usr/bin/env node
// Turns the JSONs of bench/train/train.py into the training-evidence report (Node only, no dependencies):
//
//   node bench/train/report.mjs [--in DIR of run JSONs] [--md DIR/train.md] [--svg bench/train_curves.svg]
//
// Table: recipe, seeds, final validation loss, gap to bf16 (absolute and %; paired by seed: every recipe starts
// from the same weights and sees the same batches as bf16 of its seed), best validation loss, tokens/s, steps.
// Then whether the paper's ordering holds (quartet2's gap smaller than nvidia's and than tetrajet-v2's), per seed
// and on the mean, against the noise the seeds show. The SVG has four panels: validation loss, the same zoomed on
// the second half, the gap to bf16 over steps, and the smoothed training loss.
import { readFileSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..');

const ORDER = ['bf16', 'quartet2', 'nvidia', 'nvidia+4/6', 'tetrajet-v2'];
const COLORS = {
  bf16: '#111111',
  quartet2: '#d62728',
  nvidia: '#2ca02c',
  'nvidia+4/6': '#17becf',
  'tetrajet-v2': '#1f77b4',
};
const EXTRA_COLORS = ['#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22'];
const PAPER =
  "Quartet II (arXiv 2601.22813), C4, Llama-like 30M-200M: the gap to bf16 is 21-32% smaller than the NVIDIA recipe's and 13-25% smaller than TetraJet-v2's";

// ------------------------------------------------------------------------------------------------- statistics
export const mean = (xs) => xs.reduce((s, x) => s + x, 0) / xs.length;
export const std = (xs) =>
  xs.length < 2 ? null : Math.sqrt(xs.reduce((s, x) => s + (x - mean(xs)) ** 2, 0) / (xs.length - 1));
const fmt = (x, d = 4) => (x === null || x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(d));
const sfmt = (x, d = 4) =>
  x === null || x === undefined || !Number.isFinite(x) ? '-' : (x >= 0 ? '+' : '') + x.toFixed(d);
const pm = (xs, d = 4, signed = false) => {
  if (!xs.length) return '-';
  const m = signed ? sfmt(mean(xs), d) : fmt(mean(xs), d);
  const s = std(xs);
  return s === null ? m : `${m} ± ${s.toFixed(d)}`;
};

/** Two-sided 95% Student-t quantile t_{0.975, df}: exact table for df <= 30, then a Cornish-Fisher expansion. */
const T975 = [
  NaN,
  12.7062,
  4.3027,
  3.1824,
  2.7764,
  2.5706,
  2.4469,
  2.3646,
  2.306,
  2.2622,
  2.2281,
  2.201,
  2.1788,
  2.1604,
  2.1448,
  2.1314,
  2.1199,
  2.1098,
  2.1009,
  2.093,
  2.086,
  2.0796,
  2.0739,
  2.0687,
  2.0639,
  2.0595,
  2.0555,
  2.0518,
  2.0484,
  2.0452,
  2.0423,
];
export function t975(df) {
  if (!(df >= 1)) return NaN;
  if (df <= 30) return T975[Math.floor(df)];
  const z = 1.959964,
    z3 = z ** 3,
    z5 = z ** 5;
  return z + (z3 + z) / (4 * df) + (5 * z5 + 16 * z3 + 3 * z) / (96 * df * df);
}

/** Mean and 95% confidence interval (t-distribution, n - 1 degrees of freedom) of a sample; null bounds when n < 2. */
export function meanCI(xs) {
  const n = xs.length;
  if (!n) return { n, mean: NaN, lo: null, hi: null, half: null };
  const m = mean(xs);
  if (n < 2) return { n, mean: m, lo: null, hi: null, half: null };
  const half = (t975(n - 1) * std(xs)) / Math.sqrt(n);
  return { n, mean: m, lo: m - half, hi: m + half, half };
}

/**
 * Paired gaps to bf16: EVERY completed run of a recipe is a sample (a repeated seed adds a sample, never replaces
 * one), its gap = its final loss minus the mean final loss of the bf16 runs of the same seed and length. Returns
 * recipe -> [{ seed, gap, file }].
 */
export function pairedGaps(runs) {
  const ok = runs.filter((r) => r.status === 'ok' && r.complete && Number.isFinite(r.final_val_loss));
  const key = (r) => `${r.seed}/${r.steps_done}/${r.config?.steps}`;
  const base = new Map();
  for (const r of ok.filter((q) => q.recipe === 'bf16'))
    base.set(key(r), [...(base.get(key(r)) ?? []), r.final_val_loss]);
  const out = new Map();
  for (const r of ok.filter((q) => q.recipe !== 'bf16' && base.has(key(q)))) {
    out.set(r.recipe, [
      ...(out.get(r.recipe) ?? []),
      { seed: r.seed, gap: r.final_val_loss - mean(base.get(key(r))), file: r.file },
    ]);
  }
  return out;
}

/**
 * Ordering a vs b (a's gap smaller than b's): per seed both ran, the mean gap of a's runs minus the mean gap of
 * b's runs; its mean and 95% CI over seeds. Resolved when the CI excludes 0.
 */
export function ordering(gaps, a, b) {
  const perSeed = (recipe) => {
    const m = new Map();
    for (const g of gaps.get(recipe) ?? []) m.set(g.seed, [...(m.get(g.seed) ?? []), g.gap]);
    return m;
  };
  const ga = perSeed(a),
    gb = perSeed(b);
  const seeds = [...ga.keys()].filter((s) => gb.has(s)).sort((x, y) => x - y);
  const d = seeds.map((s) => mean(ga.get(s)) - mean(gb.get(s)));
  const ci = meanCI(d);
  const resolved = ci.lo !== null && (ci.hi < 0 || ci.lo > 0);
  return {
    a,
    b,
    seeds,
    d,
    ...ci,
    resolved,
    verdict: !resolved ? 'not resolved' : ci.hi < 0 ? `${a} < ${b}` : `${a} > ${b}`,
  };
}

/** The report section with the per-run commits, the gaps with 95% CIs and which orderings are resolved. */
export function evidenceSection(runs) {
  const L = ['## Every run, gaps with 95% confidence intervals', ''];
  const done = runs
    .filter((r) => r.status === 'ok' && r.complete)
    .sort((x, y) => byRecipe(x.recipe, y.recipe) || x.seed - y.seed);
  L.push('| recipe | seed | final val loss | commit | dirty | date | file |', '|---|---:|---:|---|---|---|---|');
  for (const r of done) {
    const p = r.provenance;
    L.push(
      `| ${r.recipe} | ${r.seed} | ${fmt(r.final_val_loss)} | ${p?.commit ? p.commit.slice(0, 10) : 'unknown'} | ` +
        `${p ? String(p.dirty) : '-'} | ${p?.date ?? r.started_at ?? '-'} | ${r.file} |`,
    );
  }
  const gaps = pairedGaps(runs);
  L.push(
    '',
    'Gap to bf16 (nats/token): one sample per run (repeated seeds are extra samples), each against the mean ' +
      'of the bf16 runs of its seed and length; 95% CI from the t-distribution with n - 1 degrees of freedom.',
    '',
    '| recipe | runs | seeds | mean gap | 95% CI |',
    '|---|---:|---|---:|---|',
  );
  for (const [recipe, g] of [...gaps].sort((x, y) => byRecipe(x[0], y[0]))) {
    const ci = meanCI(g.map((x) => x.gap));
    L.push(
      `| ${recipe} | ${ci.n} | ${[...new Set(g.map((x) => x.seed))].join(', ')} | ${sfmt(ci.mean)} | ` +
        `${ci.lo === null ? 'n < 2' : `[${sfmt(ci.lo)}, ${sfmt(ci.hi)}]`} |`,
    );
  }
  const recipes = [...gaps.keys()].sort(byRecipe);
  const pairs = recipes.flatMap((a, i) => recipes.slice(i + 1).map((b) => ordering(gaps, a, b))).filter((o) => o.n > 0);
  if (pairs.length) {
    L.push('', 'Orderings (difference of gaps, per seed, then mean and 95% CI over seeds):', '');
    for (const o of pairs) {
      L.push(
        `- ${o.a} vs ${o.b}: ${sfmt(o.mean)} over ${o.n} seed${o.n > 1 ? 's' : ''}` +
          `${o.lo === null ? '' : `, CI [${sfmt(o.lo)}, ${sfmt(o.hi)}]`}: **${o.resolved ? `resolved, ${o.verdict}` : 'not resolved'}**.`,
      );
    }
    const resolved = pairs.filter((o) => o.resolved).map((o) => o.verdict);
    L.push(
      '',
      resolved.length
        ? `Resolved (CI excludes 0): ${resolved.join('; ')}. Every other ordering is not resolved by these runs.`
        : 'No ordering is resolved by these runs (every CI contains 0).',
    );
  }
  if (runs.some((r) => Number(r.env?.concurrent_runs) > 1)) {
    L.push(
      '',
      'Throughput: these runs shared one GPU (bench/train/run_all.sh runs several at once), so their tokens/s ' +
        'are not comparable to single-run throughput or to each other.',
    );
  }
  return L.join('\n') + '\n';
}

export function loadRuns(dir) {
  const runs = [];
  for (const name of readdirSync(dir).sort()) {
    if (!name.endsWith('.json')) continue;
    let r;
    try {
      r = JSON.parse(readFileSync(join(dir, name), 'utf8'));
    } catch (e) {
      console.warn(`skip ${name}: ${e.message}`);
      continue;
    }
    // qgen-provenance/1 files: {"provenance", "rows": [run]}; older files are the bare run.
    if (r && Array.isArray(r.rows) && r.provenance) r = { ...r.rows[0], provenance: r.provenance };
    if (typeof r?.recipe !== 'string') continue;
    r.file = name;
    runs.push(r);
  }
  return runs;
}

const byRecipe = (a, b) => {
  const ia = ORDER.indexOf(a),
    ib = ORDER.indexOf(b);
  return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.localeCompare(b);
};

export function analyse(runs) {
  const ok = runs.filter((r) => r.status === 'ok' && Number.isFinite(r.final_val_loss));
  const recipes = [...new Set(ok.map((r) => r.recipe))].sort(byRecipe);
  const bf = new Map(ok.filter((r) => r.recipe === 'bf16').map((r) => [r.seed, r]));
  const rows = recipes.map((recipe) => {
    const rs = ok.filter((r) => r.recipe === recipe).sort((a, b) => a.seed - b.seed);
    // a gap needs bf16 of the same seed trained for the same number of steps
    const paired = rs.filter(
      (r) =>
        bf.has(r.seed) &&
        bf.get(r.seed).steps_done === r.steps_done &&
        bf.get(r.seed).config?.steps === r.config?.steps,
    );
    const gaps = paired.map((r) => r.final_val_loss - bf.get(r.seed).final_val_loss);
    const gapsPct = paired.map(
      (r) => (100 * (r.final_val_loss - bf.get(r.seed).final_val_loss)) / bf.get(r.seed).final_val_loss,
    );
    return {
      recipe,
      runs: rs,
      seeds: rs.map((r) => r.seed),
      finals: rs.map((r) => r.final_val_loss),
      bests: rs.map((r) => r.best_val_loss),
      gaps,
      gapsPct,
      gapSeeds: paired.map((r) => r.seed),
      tps: rs.map((r) => r.tokens_per_s_steady ?? r.tokens_per_s).filter(Number.isFinite),
      steps: [...new Set(rs.map((r) => r.steps_done))],
      wall: rs.map((r) => r.wall_s).filter(Number.isFinite),
    };
  });
  const unpaired = ok.filter(
    (r) =>
      r.recipe !== 'bf16' &&
      !(
        bf.has(r.seed) &&
        bf.get(r.seed).steps_done === r.steps_done &&
        bf.get(r.seed).config?.steps === r.config?.steps
      ),
  );
  return {
    ok,
    rows,
    bf,
    unpaired,
    failed: runs.filter((r) => !(r.status === 'ok' && Number.isFinite(r.final_val_loss))),
  };
}

// per-seed comparison of quartet2 against another recipe: differences of final loss (bf16 cancels)
export function compare(rows, a, b) {
  const ra = rows.find((r) => r.recipe === a),
    rb = rows.find((r) => r.recipe === b);
  if (!ra || !rb) return null;
  const seeds = ra.gapSeeds.filter((s) => rb.gapSeeds.includes(s));
  if (!seeds.length) return null;
  const ga = seeds.map((s) => ra.gaps[ra.gapSeeds.indexOf(s)]);
  const gb = seeds.map((s) => rb.gaps[rb.gapSeeds.indexOf(s)]);
  const d = seeds.map((_, i) => ga[i] - gb[i]);
  const sd = std(d);
  return {
    a,
    b,
    seeds,
    ga,
    gb,
    d,
    meanA: mean(ga),
    meanB: mean(gb),
    meanD: mean(d),
    se: sd === null ? null : sd / Math.sqrt(d.length),
    wins: d.filter((x) => x < 0).length,
    reduction: mean(gb) > 0 ? 1 - mean(ga) / mean(gb) : null,
    runsA: ra.runs,
    runsB: rb.runs,
  };
}

// the same comparison at every evaluation of the second half of training: is the ordering stable over time?
function trend(k) {
  const ra = k.runsA,
    rb = k.runsB;
  if (!ra || !rb) return null;
  const maxStep = Math.max(...ra.map((r) => r.steps_done ?? 0));
  const from = Math.floor(maxStep * 0.5);
  const diffs = new Map();
  for (const s of k.seeds) {
    const ea = new Map((ra.find((r) => r.seed === s)?.eval ?? []).filter((e) => Number.isFinite(e[1])));
    const eb = new Map((rb.find((r) => r.seed === s)?.eval ?? []).filter((e) => Number.isFinite(e[1])));
    for (const [step, v] of ea)
      if (step >= from && eb.has(step)) {
        if (!diffs.has(step)) diffs.set(step, []);
        diffs.get(step).push(v - eb.get(step));
      }
  }
  const pts = [...diffs.entries()].filter(([, d]) => d.length === k.seeds.length).map(([, d]) => mean(d));
  return pts.length ? { from, n: pts.length, below: pts.filter((x) => x < 0).length } : null;
}

// ------------------------------------------------------------------------------------------------- markdown
function markdown(runs, an, svgPath, mdPath) {
  const { rows, bf, failed } = an;
  const L = [];
  const any = an.ok[0] ?? runs[0] ?? {};
  const c = any.config ?? {};
  const p = any.params ?? {};
  const d = any.data ?? {};
  const env = any.env ?? {};
  L.push('# Training evidence: bf16 vs the NVFP4 recipes on the Brown corpus', '');
  L.push(
    'Generated by `node bench/train/report.mjs` from the JSONs of `bench/train/train.py` (see bench/train/README.md).',
    '',
  );
  if (!an.ok.length) {
    L.push('**No completed run found.**', '');
  } else {
    L.push(
      `- Model: Llama-style decoder, d_model ${c.d_model}, ${c.layers} layers, ${c.heads} heads, SwiGLU ${c.ffn}, RoPE, RMSNorm; ` +
        `${fmt(p.non_embedding / 1e6, 2)}M non-embedding parameters (+${fmt(p.embedding_and_head / 1e6, 2)}M embedding and untied LM head, both kept in bf16 autocast).`,
    );
    L.push(
      `- Data: ${d.source ?? '?'} (Brown corpus), ${d.vocab ?? '?'}-token byte-level BPE; ${d.train_tokens ?? '?'} training tokens, ` +
        `${d.val_tokens_evaluated ?? '?'} validation tokens evaluated (25 held-out documents, every genre).`,
    );
    L.push(
      `- Training: ${c.steps} steps x ${c.batch} x ${c.seq} tokens = ${fmt((c.steps * c.batch * c.seq) / 1e6, 2)}M tokens ` +
        `(${fmt(any.epochs, 2)} epochs), AdamW (β ${c.beta1}/${c.beta2}, weight decay ${c.weight_decay}), peak LR ${c.lr}, ${c.warmup} warmup steps, ` +
        `cosine to ${c.min_lr_ratio}x, clip ${c.clip}. Same initial weights and batch order for every recipe of a seed.`,
    );
    L.push(
      `- Device: ${env.device ?? '?'}, torch ${env.torch ?? '?'}, CUDA ${env.cuda ?? '?'}; commits per run below.`,
    );
    L.push('');
    L.push('| recipe | seeds | final val loss | gap to bf16 | gap % | best val loss (step) | tokens/s | steps |');
    L.push('| --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const r of rows) {
      const bestSteps = r.runs.map((x) => x.best_val_step).join('/');
      L.push(
        `| ${r.recipe} | ${r.seeds.join(', ')} | ${pm(r.finals)} | ${r.recipe === 'bf16' ? '0' : pm(r.gaps, 4, true)} | ` +
          `${r.recipe === 'bf16' ? '0' : r.gapsPct.length ? sfmt(mean(r.gapsPct), 2) + '%' : '-'} | ${pm(r.bests)} (${bestSteps}) | ` +
          `${r.tps.length ? Math.round(mean(r.tps)).toLocaleString('en-US') : '-'} | ${r.steps.join('/')} |`,
      );
    }
    L.push('');
    L.push(
      'Loss in nats per token. "±" is the sample standard deviation over seeds; gaps are paired by seed (recipe minus bf16 of the same seed). ' +
        'tokens/s: steady-state training throughput (after 10 steps, evaluation excluded).',
      '',
    );

    const seeds = [...new Set(an.ok.map((r) => r.seed))].sort((x, y) => x - y);
    if (seeds.length > 1 || rows.length > 1) {
      L.push('Per seed (final validation loss; gap to bf16 in brackets):', '');
      L.push(`| recipe | ${seeds.map((s) => `seed ${s}`).join(' | ')} |`);
      L.push(`| --- | ${seeds.map(() => '---').join(' | ')} |`);
      for (const r of rows) {
        L.push(
          `| ${r.recipe} | ${seeds
            .map((s) => {
              const x = r.runs.find((q) => q.seed === s);
              if (!x) return '-';
              const b = bf.get(s);
              const same = b && b.steps_done === x.steps_done;
              return (
                fmt(x.final_val_loss) +
                (r.recipe === 'bf16'
                  ? ''
                  : same
                    ? ` (${sfmt(x.final_val_loss - b.final_val_loss)})`
                    : ` (${x.steps_done} steps)`)
              );
            })
            .join(' | ')} |`,
        );
      }
      L.push('');
    }

    // ---- verdict
    L.push("## The paper's ordering", '');
    L.push(`Paper: ${PAPER}. Tested here: gap(quartet2) < gap(nvidia) and gap(quartet2) < gap(tetrajet-v2).`, '');
    const cmps = ['nvidia', 'tetrajet-v2', 'nvidia+4/6'].map((b) => compare(rows, 'quartet2', b)).filter(Boolean);
    const bfRow = rows.find((r) => r.recipe === 'bf16');
    const noise = bfRow && bfRow.finals.length > 1 ? std(bfRow.finals) : null;
    const verdicts = [],
      resolved = [];
    for (const k of cmps) {
      const holds = k.meanA < k.meanB;
      const n = k.seeds.length;
      let sig;
      if (n < 2) sig = 'one seed only, so its noise is not measured';
      else {
        const t = k.se > 0 ? Math.abs(k.meanD / k.se) : k.meanD === 0 ? 0 : Infinity;
        sig =
          `difference ${sfmt(k.meanD)} ± ${fmt(k.se)} (standard error over ${n} seeds, |t| = ${fmt(t, 1)}): ` +
          (t >= 2 ? 'larger than its seed-to-seed noise' : 'within the seed-to-seed noise');
      }
      const red =
        k.reduction !== null
          ? `; quartet2's gap is ${fmt(100 * k.reduction, 0)}% ${k.reduction >= 0 ? 'smaller' : 'larger'}`
          : '';
      const tr = trend(k);
      if (tr)
        sig += `; over the second half of training (steps ≥ ${tr.from}) quartet2's val loss is below ${k.b}'s at ${tr.below} of ${tr.n} evaluations (mean over the seeds)`;
      if (k.b !== 'nvidia+4/6') {
        verdicts.push(holds);
        resolved.push(n >= 2 && (k.se > 0 ? Math.abs(k.meanD / k.se) : k.meanD === 0 ? 0 : Infinity) >= 2);
      }
      L.push(
        `- quartet2 vs ${k.b}: gap ${sfmt(k.meanA)} vs ${sfmt(k.meanB)} → ${holds ? '**holds**' : '**does not hold**'} on the mean, ` +
          `in ${k.wins} of ${n} seed${n > 1 ? 's' : ''}${red}; ${sig}.`,
      );
    }
    const need = ['nvidia', 'tetrajet-v2'].filter((b) => !cmps.some((k) => k.b === b));
    for (const b of need)
      L.push(
        `- quartet2 vs ${b}: not testable (no seed with completed quartet2, ${b} and bf16 runs of the same length).`,
      );
    L.push('');
    let summary;
    if (need.length) summary = 'The ordering could not be fully tested (runs missing).';
    else if (verdicts.every(Boolean))
      summary = "The paper's ordering **holds** on the mean over seeds: quartet2 has the smallest gap to bf16.";
    else summary = "The paper's ordering **does not hold** here on the mean over seeds.";
    if (!need.length) {
      summary += resolved.every(Boolean)
        ? ' Both differences are at least twice their standard error over seeds.'
        : ' Not every difference is resolved: one seed only, or a difference smaller than twice its standard error over seeds, so this run cannot confirm or refute the ordering (see the notes: seeds, noise, length).';
    }
    L.push(summary, '');

    // ---- caveats measured from the data
    const notes = [];
    if (noise !== null) {
      notes.push(
        `bf16 run-to-run noise (other init and batch order, ${bfRow.finals.length} seeds): standard deviation ${fmt(noise)} of the final validation loss; ` +
          `the gaps compare recipes at the same seed, which removes most of it, but the NVFP4 recipes' own random draws (stochastic rounding, Hadamard signs) remain.`,
      );
    } else {
      notes.push('A single seed: run-to-run noise is not measured (run `--seeds 0,1,2` to measure it).');
    }
    for (const r of rows) {
      if (r.recipe !== 'bf16' && r.gaps.some((g) => g < 0))
        notes.push(
          `${r.recipe} ends below bf16 in ${r.gaps.filter((g) => g < 0).length} of ${r.gaps.length} seeds: at this size the gap is at the noise level (or quantization noise acts as a regularizer; see the overfitting note).`,
        );
    }
    const over = an.ok
      .filter((r) => r.final_val_loss - r.best_val_loss > 0.01)
      .sort((x, y) => byRecipe(x.recipe, y.recipe) || x.seed - y.seed);
    if (over.length) {
      notes.push(
        `Overfitting: ${over.length} of ${an.ok.length} runs end more than 0.01 above their best validation loss ` +
          `(${over.map((r) => `${r.recipe} s${r.seed}: best ${fmt(r.best_val_loss)} at step ${r.best_val_step}, final ${fmt(r.final_val_loss)}`).join('; ')}). ` +
          'With ~1.4M training tokens the data is repeated; fewer steps (--steps) or a smaller model keep the comparison in the under-fitted regime the paper works in.',
      );
    } else {
      notes.push('No run ends more than 0.01 above its best validation loss (no overfitting visible at this length).');
    }
    const gapTrend = rows.filter((r) => r.recipe !== 'bf16').map((r) => r.recipe);
    if (gapTrend.length)
      notes.push(
        'How the gaps develop over training is in panel (c) of the figure; a gap still changing at the end means a longer run could reorder the recipes.',
      );
    for (const seed of [...new Set(an.ok.map((r) => r.seed))].sort((x, y) => x - y)) {
      const base = [
        ...new Set(
          an.ok
            .filter((r) => r.seed === seed)
            .map((r) => r.quantization?.probe_loss_bf16)
            .filter(Number.isFinite),
        ),
      ];
      if (base.length > 1)
        notes.push(
          `seed ${seed}: the bf16 probe loss before quantize_model differs between recipes (${base.map((x) => fmt(x, 6)).join(', ')}): not the same initial weights.`,
        );
      else if (base.length === 1)
        notes.push(
          `seed ${seed}: same initial weights for every quantized recipe (bf16 probe loss ${fmt(base[0], 6)} before quantize_model).`,
        );
    }
    for (const r of an.ok) {
      const q = r.quantization ?? {};
      if (q.init_preserved === false)
        notes.push(`${r.recipe} seed ${r.seed}: quantize_model changed the parameters (not the same init as bf16).`);
      if (q.probe_loss_quantized_eval_mode !== undefined && q.probe_loss_quantized_eval_mode === q.probe_loss_bf16)
        notes.push(`${r.recipe} seed ${r.seed}: validation ran an unquantized forward (eval mode).`);
    }
    L.push('Notes:', '', ...notes.map((n) => `- ${n}`), '');
  }
  if (an.unpaired.length) {
    L.push(
      'Runs without a bf16 run of the same seed and length (no gap computed): ' +
        an.unpaired.map((r) => `${r.recipe} seed ${r.seed} (${r.steps_done} steps)`).join(', ') +
        '.',
      '',
    );
  }
  if (failed.length) {
    L.push('Runs not counted:', '');
    for (const r of failed)
      L.push(
        `- ${r.file}: ${r.recipe} seed ${r.seed}: status ${r.status ?? '?'}${r.error ? ` (${r.error})` : ''}${r.steps_done ? `, ${r.steps_done} steps` : ''}`,
      );
    L.push('');
  }
  L.push(evidenceSection(runs));
  L.push(`![validation curves](${relative(dirname(mdPath), svgPath)})`, '');
  return L.join('\n');
}

// ------------------------------------------------------------------------------------------------- SVG
function niceTicks(lo, hi, n = 5) {
  if (!(hi > lo)) {
    hi = lo + 1;
  }
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks = [];
  for (let t = Math.ceil(lo / step - 1e-9) * step; t <= hi + 1e-9 * step; t += step) ticks.push(+t.toFixed(10));
  return { ticks, step };
}
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const tickLabel = (t, step) => {
  const d = Math.max(
    0,
    -Math.floor(Math.log10(step) + 1e-9) + (step / 10 ** Math.floor(Math.log10(step)) === 2.5 ? 1 : 0),
  );
  return t.toFixed(Math.min(d, 6));
};

function panel({ x, y, w, h, title, xlabel, ylabel, series, bands = [], xr, yr, zero = false }) {
  const out = [];
  const [x0, x1] = xr,
    [y0, y1] = yr;
  const X = (v) => x + ((v - x0) / (x1 - x0)) * w;
  const Y = (v) => y + h - ((v - y0) / (y1 - y0)) * h;
  const clipId = `c${Math.round(x)}_${Math.round(y)}`;
  out.push(`<clipPath id="${clipId}"><rect x="${x}" y="${y}" width="${w}" height="${h}"/></clipPath>`);
  out.push(`<rect x="${x}" y="${y}" width="${w}" height="${h}" fill="#fff" stroke="#888"/>`);
  const xt = niceTicks(x0, x1, 6),
    yt = niceTicks(y0, y1, 5);
  for (const t of xt.ticks) {
    if (t < x0 || t > x1) continue;
    out.push(`<line x1="${X(t).toFixed(1)}" y1="${y}" x2="${X(t).toFixed(1)}" y2="${y + h}" stroke="#eee"/>`);
    out.push(`<line x1="${X(t).toFixed(1)}" y1="${y + h}" x2="${X(t).toFixed(1)}" y2="${y + h + 4}" stroke="#444"/>`);
    out.push(`<text x="${X(t).toFixed(1)}" y="${y + h + 16}" text-anchor="middle">${tickLabel(t, xt.step)}</text>`);
  }
  for (const t of yt.ticks) {
    if (t < y0 || t > y1) continue;
    out.push(`<line x1="${x}" y1="${Y(t).toFixed(1)}" x2="${x + w}" y2="${Y(t).toFixed(1)}" stroke="#eee"/>`);
    out.push(`<line x1="${x - 4}" y1="${Y(t).toFixed(1)}" x2="${x}" y2="${Y(t).toFixed(1)}" stroke="#444"/>`);
    out.push(`<text x="${x - 7}" y="${(Y(t) + 4).toFixed(1)}" text-anchor="end">${tickLabel(t, yt.step)}</text>`);
  }
  if (zero && y0 < 0 && y1 > 0)
    out.push(
      `<line x1="${x}" y1="${Y(0).toFixed(1)}" x2="${x + w}" y2="${Y(0).toFixed(1)}" stroke="#111" stroke-dasharray="4 3"/>`,
    );
  out.push(`<g clip-path="url(#${clipId})">`);
  for (const b of bands) {
    if (b.lo.length < 2) continue;
    const pts = [
      ...b.lo.map(([sx, sy]) => `${X(sx).toFixed(1)},${Y(sy).toFixed(1)}`),
      ...b.hi
        .slice()
        .reverse()
        .map(([sx, sy]) => `${X(sx).toFixed(1)},${Y(sy).toFixed(1)}`),
    ];
    out.push(`<polygon points="${pts.join(' ')}" fill="${b.color}" fill-opacity="0.15" stroke="none"/>`);
  }
  for (const s of series) {
    const pts = s.points.filter(([a, b]) => Number.isFinite(a) && Number.isFinite(b));
    if (!pts.length) continue;
    const d = pts.map(([a, b], i) => `${i ? 'L' : 'M'}${X(a).toFixed(1)},${Y(b).toFixed(1)}`).join('');
    out.push(
      `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="${s.width ?? 2}" stroke-opacity="${s.opacity ?? 1}"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`,
    );
    if (s.markers)
      for (const [a, b] of pts)
        out.push(`<circle cx="${X(a).toFixed(1)}" cy="${Y(b).toFixed(1)}" r="2.2" fill="${s.color}"/>`);
  }
  out.push('</g>');
  out.push(`<text x="${x + w / 2}" y="${y - 8}" text-anchor="middle" font-weight="bold">${esc(title)}</text>`);
  out.push(`<text x="${x + w / 2}" y="${y + h + 32}" text-anchor="middle">${esc(xlabel)}</text>`);
  out.push(
    `<text transform="translate(${x - 48},${y + h / 2}) rotate(-90)" text-anchor="middle">${esc(ylabel)}</text>`,
  );
  return out.join('\n');
}

function range(vals, pad = 0.05) {
  const v = vals.filter(Number.isFinite);
  if (!v.length) return [0, 1];
  let lo = Math.min(...v),
    hi = Math.max(...v);
  if (hi - lo < 1e-6) {
    lo -= 0.5;
    hi += 0.5;
  }
  const p = (hi - lo) * pad;
  return [lo - p, hi + p];
}

// mean over seeds at the steps every seed has
function meanCurve(curves) {
  if (!curves.length) return [];
  const maps = curves.map((c) => new Map(c));
  return curves[0]
    .map(([s]) => s)
    .filter((s) => maps.every((m) => m.has(s)))
    .map((s) => [s, mean(maps.map((m) => m.get(s)))]);
}

function smooth(xs, k) {
  const out = [];
  let acc = 0;
  const q = [];
  for (let i = 0; i < xs.length; i++) {
    const v = Number.isFinite(xs[i]) ? xs[i] : NaN;
    q.push(v);
    acc += v;
    if (q.length > k) acc -= q.shift();
    out.push([i + 1, acc / q.length]);
  }
  return out;
}

export function svg(an) {
  const { rows, bf } = an;
  const W = 1100,
    H = 820;
  const color = (r, i) => COLORS[r] ?? EXTRA_COLORS[i % EXTRA_COLORS.length];
  const maxStep = Math.max(1, ...an.ok.map((r) => r.steps_done ?? 0));
  const P = { w: 430, h: 270 };
  const pos = [
    [90, 110],
    [620, 110],
    [90, 480],
    [620, 480],
  ];

  // (a) full validation curves, (b) zoom on the second half
  const valSeries = [],
    valAll = [];
  rows.forEach((r, i) => {
    const curves = r.runs.map((x) => x.eval.filter((e) => Number.isFinite(e[1])));
    for (const c of curves) {
      valAll.push(...c.map((e) => e[1]));
      if (curves.length > 1) valSeries.push({ points: c, color: color(r.recipe, i), width: 1, opacity: 0.35 });
    }
    valSeries.push({ points: meanCurve(curves), color: color(r.recipe, i), width: 2.2, markers: true });
  });
  const zoomFrom = Math.floor(maxStep * 0.4);
  const zoomVals = [];
  for (const s of valSeries) for (const [a, b] of s.points) if (a >= zoomFrom) zoomVals.push(b);

  // (c) gap to bf16 over steps, per seed and mean; band = min..max over seeds
  const gapSeries = [],
    gapBands = [],
    gapVals = [];
  rows.forEach((r, i) => {
    if (r.recipe === 'bf16') return;
    const curves = [];
    for (const x of r.runs) {
      const b = bf.get(x.seed);
      if (!b || b.steps_done !== x.steps_done) continue;
      const bm = new Map(b.eval);
      curves.push(
        x.eval
          .filter((e) => bm.has(e[0]) && Number.isFinite(e[1]) && Number.isFinite(bm.get(e[0])))
          .map((e) => [e[0], e[1] - bm.get(e[0])]),
      );
    }
    if (!curves.length) return;
    const m = meanCurve(curves).filter(([s]) => s >= Math.max(1, maxStep * 0.1));
    gapSeries.push({ points: m, color: color(r.recipe, i), width: 2.2, markers: true });
    gapVals.push(...m.map((p) => p[1]));
    if (curves.length > 1) {
      const maps = curves.map((c) => new Map(c));
      const steps = m.map(([s]) => s);
      const lo = steps.map((s) => [s, Math.min(...maps.map((mm) => mm.get(s)))]);
      const hi = steps.map((s) => [s, Math.max(...maps.map((mm) => mm.get(s)))]);
      gapBands.push({ lo, hi, color: color(r.recipe, i) });
      gapVals.push(...lo.map((p) => p[1]), ...hi.map((p) => p[1]));
    }
  });
  gapVals.push(0);

  // (d) training loss, moving average over 25 steps, mean over seeds
  const trSeries = [],
    trVals = [];
  rows.forEach((r, i) => {
    const curves = r.runs
      .filter((x) => Array.isArray(x.train_loss) && x.train_loss.length)
      .map((x) => smooth(x.train_loss, 25));
    if (!curves.length) return;
    const m = meanCurve(curves);
    trSeries.push({ points: m, color: color(r.recipe, i), width: 1.8 });
    trVals.push(...m.filter(([s]) => s >= zoomFrom).map((p) => p[1]));
  });

  const seeds = [...new Set(an.ok.map((r) => r.seed))];
  const parts = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
  );
  parts.push(`<rect width="${W}" height="${H}" fill="#fafafa"/>`);
  const c = an.ok[0]?.config ?? {};
  const pr = an.ok[0]?.params ?? {};
  parts.push(
    `<text x="${W / 2}" y="30" text-anchor="middle" font-size="18" font-weight="bold">NVFP4 training recipes vs bf16: Llama-style ${fmt((pr.non_embedding ?? 0) / 1e6, 1)}M on the Brown corpus</text>`,
  );
  parts.push(
    `<text x="${W / 2}" y="50" text-anchor="middle" fill="#444">${esc(`${c.steps ?? '?'} steps x ${c.batch ?? '?'} x ${c.seq ?? '?'} tokens, same init and batch order per seed; ${seeds.length} seed${seeds.length === 1 ? '' : 's'} (thick: mean over seeds, thin: each seed); ${an.ok[0]?.env?.device ?? ''}`)}</text>`,
  );
  // legend
  let lx = W / 2 - rows.length * 65;
  for (const [i, r] of rows.entries()) {
    parts.push(`<line x1="${lx}" y1="72" x2="${lx + 24}" y2="72" stroke="${color(r.recipe, i)}" stroke-width="3"/>`);
    parts.push(`<text x="${lx + 30}" y="76">${esc(r.recipe)}</text>`);
    lx += 130;
  }
  parts.push(
    panel({
      x: pos[0][0],
      y: pos[0][1],
      ...P,
      title: '(a) validation loss',
      xlabel: 'step',
      ylabel: 'loss (nats/token)',
      series: valSeries,
      xr: [0, maxStep],
      yr: range(valAll, 0.03),
    }),
  );
  parts.push(
    panel({
      x: pos[1][0],
      y: pos[1][1],
      ...P,
      title: `(b) validation loss, steps ≥ ${zoomFrom}`,
      xlabel: 'step',
      ylabel: 'loss (nats/token)',
      series: valSeries,
      xr: [zoomFrom, maxStep],
      yr: range(zoomVals, 0.08),
    }),
  );
  parts.push(
    panel({
      x: pos[2][0],
      y: pos[2][1],
      ...P,
      title: '(c) validation-loss gap to bf16 (same seed)',
      xlabel: 'step',
      ylabel: 'recipe − bf16 (nats/token)',
      series: gapSeries,
      bands: gapBands,
      xr: [0, maxStep],
      yr: range(gapVals, 0.08),
      zero: true,
    }),
  );
  parts.push(
    panel({
      x: pos[3][0],
      y: pos[3][1],
      ...P,
      title: `(d) training loss, 25-step moving average, steps ≥ ${zoomFrom}`,
      xlabel: 'step',
      ylabel: 'loss (nats/token)',
      series: trSeries,
      xr: [zoomFrom, maxStep],
      yr: range(trVals, 0.05),
    }),
  );
  parts.push(
    `<text x="${pos[2][0]}" y="${H - 12}" fill="#666" font-size="11">bands in (c): min..max over seeds. Generated by bench/train/report.mjs.</text>`,
  );
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

// ------------------------------------------------------------------------------------------------- main
/**
 * The report's qgen-provenance/1 line (harness/provenance.ts): a table derived from the run files, so the commit is
 * theirs when they all agree and null otherwise (each run's commit is in the table); GPU facts from the first run.
 */
export function reportProvenanceLine(runs, command) {
  const ps = runs.map((r) => r.provenance).filter(Boolean);
  const commits = [...new Set(runs.map((r) => r.provenance?.commit ?? null))];
  const first = ps[0] ?? {};
  const p = {
    format: 'qgen-provenance/1',
    commit: commits.length === 1 ? commits[0] : null,
    dirty: commits.length === 1 && ps.length === runs.length ? ps.some((q) => q.dirty) : null,
    gpu: first.gpu ?? null,
    sm_count: first.sm_count ?? null,
    compute_capability: first.compute_capability ?? null,
    driver: first.driver ?? null,
    cuda: first.cuda ?? null,
    nvcc: first.nvcc ?? null,
    torch: first.torch ?? null,
    date: new Date().toISOString(),
    command,
    recorded_at_run_time: true,
    note: `derived from ${runs.length} run files; ${commits.length} distinct commit(s), listed per run in the table`,
  };
  return `<!-- qgen-provenance/1 ${JSON.stringify(p)} -->`;
}

function main() {
  const args = process.argv.slice(2);
  const opt = (n, d) => {
    const i = args.indexOf(n);
    return i >= 0 && i + 1 < args.length ? args[i + 1] : d;
  };
  const inDir = resolve(opt('--in', join(root, 'bench', 'results', 'train')));
  const mdPath = resolve(opt('--md', join(inDir, 'train.md')));
  const svgPath = resolve(opt('--svg', join(root, 'bench', 'train_curves.svg')));
  const runs = loadRuns(inDir);
  if (!runs.length) {
    console.error(`no result JSON in ${inDir}`);
    process.exit(1);
  }
  const an = analyse(runs);
  mkdirSync(dirname(mdPath), { recursive: true });
  mkdirSync(dirname(svgPath), { recursive: true });
  writeFileSync(svgPath, svg(an));
  const md = `${reportProvenanceLine(runs, ['node', 'bench/train/report.mjs', ...args])}\n${markdown(runs, an, svgPath, mdPath)}`;
  writeFileSync(mdPath, md);
  console.log(md);
  console.log(`wrote ${mdPath} and ${svgPath}`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
