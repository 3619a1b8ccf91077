// The GEMM bench on a shape list where some shapes have no selected tiling (e.g. `--only` picking producer-decode
// tilings, whose 128-row tiles are timed at m > 64 only, with the skinny shapes in the list): those shapes are skipped
// (no baselines timed, no row), the others measured. On the H100 at 7877d85 such a run died with "Reduce of empty
// array" after timing every large shape, and wrote nothing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { catalogFor } from '../dsl/catalog.ts';
import type { GemmSpec } from '../dsl/types.ts';
import { benchFits, runGemmBench } from '../harness/gpu/gemm_bench.ts';
import type { GpuRunner } from '../harness/gpu/client.ts';
import type { RunResults } from '../harness/gpu/results.ts';

const gemms = catalogFor('sm_90a').filter((s): s is GemmSpec => s.kind === 'gemm');
const named = (suffix: RegExp) => gemms.filter((g) => suffix.test(g.name));

test('benchFits: swapped tilings at m <= 64 only, producer-decode at m > 64 only, the rest everywhere', () => {
  const swapped = named(/_swapab$/)[0];
  const pd = named(/_pd$/)[0];
  const plain = gemms.find((g) => g.tiling.registerOperand !== 'b' && !g.tiling.decode);
  assert.ok(swapped && pd && plain, 'the catalog has a swapped, a producer-decode and a plain tiling');
  assert.equal(
    [1, 64, 65].map((m) => benchFits(swapped, m)),
    [true, true, false],
  );
  assert.equal(
    [1, 64, 65].map((m) => benchFits(pd, m)),
    [false, false, true],
  );
  assert.equal(
    [1, 64, 65].map((m) => benchFits(plain!, m)),
    [true, true, true],
  );
});

test('runGemmBench: shapes that no selected tiling runs are skipped before any baseline, the rest timed', async () => {
  const launched: string[] = [];
  const runner = {
    bench: async (req: { kernel: string; rows: number }) => {
      launched.push(`${req.kernel}@${req.rows}`);
      return { status: 0, message: '', kernelMs: [1, 1, 1] };
    },
  } as unknown as GpuRunner;
  const saved: string[] = [];
  const results = { save: (name: string) => (saved.push(name), name) } as unknown as RunResults;
  const pd = named(/_pd$/);
  const shapes = [
    { label: 'skinny', m: 16, n: 256, k: 256 },
    { label: 'square', m: 256, n: 256, k: 256 },
  ];
  const rows = await runGemmBench(runner, pd, { device: 'fake', arch: 'sm_90a', reps: 3, shapes, results });
  assert.ok(rows.length === pd.length && rows.every((r) => r.m === 256), 'one row per tiling, the large shape only');
  assert.ok(
    launched.every((l) => l.endsWith('@256')),
    `nothing launched at m = 16: ${launched.join(', ')}`,
  );
  assert.equal(saved, ['gemm.json', 'gemm.md']);
});

test.run();
