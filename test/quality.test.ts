// Quantization quality: relMse / effectiveBits by hand, and the paper's Gaussian relative MSE (METHOD §2.5,
// Table 1) reproduced within 5% on a 1024x4096 N(0,1) bf16 matrix.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { effectiveBits, qualityTable, relMse } from '../reference/quality.ts';

test('relMse and effectiveBits by hand', () => {
  // errors (0, 1) over |x|^2 = 1 + 4
  assert.is(relMse(Float32Array.of(1, 2), Float32Array.of(1, 1)), 1 / 5);
  assert.is(relMse(Float64Array.of(3, -4), Float32Array.of(3, -4)), 0);
  assert.is(effectiveBits(2 ** -8), 4);
  assert.is(effectiveBits(1), -0);
  assert.throws(() => relMse(Float32Array.of(1), Float32Array.of(1, 2)));
});

test('Gaussian relative MSE (1024x4096): the paper figures within 5%, MS-EDEN below half of SR', () => {
  const table = qualityTable(1024, 4096, 1);
  const byName = new Map(table.map((r) => [r.name, r]));
  const lines = table.map(
    (r) =>
      `  ${r.name.padEnd(18)} relMSE ${(r.relMse * 1e3).toFixed(3)}e-3  bits ${r.bits.toFixed(3)}` +
      (r.paper === undefined
        ? ''
        : `  paper ${(r.paper * 1e3).toFixed(1)}e-3 (${(100 * (r.relMse / r.paper - 1)).toFixed(1)}%)`),
  );
  console.log(lines.join('\n'));
  for (const r of table) {
    assert.ok(r.bits === effectiveBits(r.relMse));
    if (r.paper !== undefined) {
      assert.ok(Math.abs(r.relMse / r.paper - 1) <= 0.05, `${r.name}: ${r.relMse} vs paper ${r.paper}`);
    }
  }
  const sr = byName.get('sr')!.relMse;
  for (const name of ['ms-eden', 'ms-eden-one-pass', 'ms-eden-per-128']) {
    assert.ok(byName.get(name)!.relMse < 0.5 * sr, `${name} below 0.5x SR`);
  }
  // the paper's kernel acceptance thresholds (METHOD §5): effective bits RTN > 3.38, 4/6 > 3.52, EDEN > 3.32
  assert.ok(byName.get('rtn-1x16')!.bits > 3.38);
  assert.ok(byName.get('rtn-4/6')!.bits > 3.52);
  assert.ok(byName.get('ms-eden')!.bits > 3.32);
  assert.ok(byName.get('ms-eden-one-pass')!.bits > 3.32);
});

test.run();
