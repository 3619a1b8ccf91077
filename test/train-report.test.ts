// bench/train/report.mjs statistics: 95% CIs from the t-distribution, every run counted (a repeated seed is another
// sample), orderings resolved only when the CI excludes 0, and the report's provenance line.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
// @ts-expect-error plain ESM without types
import { meanCI, ordering, pairedGaps, t975, reportProvenanceLine } from '../bench/train/report.mjs';
import { readProvenance } from '../harness/provenance.ts';

type Run = {
  recipe: string;
  seed: number;
  final_val_loss: number;
  status: string;
  complete: boolean;
  steps_done: number;
  config: { steps: number };
  file: string;
};
const run = (recipe: string, seed: number, loss: number, file = `${recipe}-${seed}-${loss}`): Run => ({
  recipe,
  seed,
  final_val_loss: loss,
  status: 'ok',
  complete: true,
  steps_done: 600,
  config: { steps: 600 },
  file,
});

test('95% CI of a hand-computed sample: [1, 2, 3, 4, 5] -> 3 ± 2.7764 * sqrt(2.5) / sqrt(5)', () => {
  const ci = meanCI([1, 2, 3, 4, 5]);
  const half = (2.7764 * Math.sqrt(2.5)) / Math.sqrt(5); // t_{0.975,4} = 2.7764 (table), sample sd = sqrt(2.5)
  assert.ok(Math.abs(ci.mean - 3) < 1e-12);
  assert.ok(Math.abs(ci.half - half) < 1e-9, `half ${ci.half} vs ${half}`);
  assert.is(meanCI([4]).lo, null);
  assert.ok(
    Math.abs(t975(1) - 12.7062) < 1e-4 && Math.abs(t975(60) - 2.0003) < 1e-3 && Math.abs(t975(1000) - 1.9623) < 1e-3,
  );
});

test('a repeated seed is an extra sample, paired with the mean of the bf16 runs of its seed', () => {
  const runs = [
    run('bf16', 0, 5.0),
    run('bf16', 0, 5.2),
    run('bf16', 1, 5.1),
    run('quartet2', 0, 5.15),
    run('quartet2', 0, 5.25),
    run('quartet2', 1, 5.12),
  ];
  const gaps = pairedGaps(runs).get('quartet2');
  assert.is(gaps.length, 3);
  const g = gaps.map((x: { gap: number }) => Number(x.gap.toFixed(6)));
  assert.equal(g, [0.05, 0.15, 0.02]);
  // A run of another length pairs with nothing.
  assert.is(
    pairedGaps([run('bf16', 0, 5), { ...run('quartet2', 0, 5.1), steps_done: 300 }]).get('quartet2'),
    undefined,
  );
});

test('an ordering is resolved only when its CI excludes 0', () => {
  const base = [0, 1, 2, 3, 4].map((s) => run('bf16', s, 5));
  const clear = [
    ...base,
    ...[0.01, 0.012, 0.011, 0.009, 0.01].map((g, s) => run('quartet2', s, 5 + g)),
    ...[0.03, 0.031, 0.029, 0.032, 0.03].map((g, s) => run('nvidia', s, 5 + g)),
  ];
  const o = ordering(pairedGaps(clear), 'quartet2', 'nvidia');
  assert.ok(o.resolved && o.verdict === 'quartet2 < nvidia' && o.hi < 0, JSON.stringify(o));
  const noisy = [
    ...base,
    ...[0.01, 0.05, -0.02, 0.03, 0.0].map((g, s) => run('quartet2', s, 5 + g)),
    ...[0.02, 0.0, 0.03, 0.01, 0.02].map((g, s) => run('nvidia', s, 5 + g)),
  ];
  const n = ordering(pairedGaps(noisy), 'quartet2', 'nvidia');
  assert.ok(!n.resolved && n.lo < 0 && n.hi > 0, JSON.stringify(n));
});

test('the report carries a valid provenance line; commit null when the runs disagree', () => {
  const p = (commit: string) => ({ commit, dirty: false, gpu: 'H100', date: '2026-12-06T18:00:00Z' });
  const agree = [
    { ...run('bf16', 0, 5), provenance: p('c'.repeat(40)) },
    { ...run('nvidia', 0, 5), provenance: p('c'.repeat(40)) },
  ];
  const line = reportProvenanceLine(agree, ['node', 'report.mjs']);
  assert.is(readProvenance('train.md', `${line}\n`).provenance?.commit, 'c'.repeat(40));
  const mixed = [agree[0], { ...agree[1], provenance: p('d'.repeat(40)) }];
  assert.is(readProvenance('train.md', `${reportProvenanceLine(mixed, ['x'])}\n`).provenance?.commit, null);
});

test.run();
