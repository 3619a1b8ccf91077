// sm_100a tensor-memory residency (arch/gemm_sm100.ts): CTAs that shared memory lets share an SM, times the columns
// each allocates, must fit the SM's 512 tensor-memory columns, so no tcgen05.alloc waits on another CTA.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  sm100GemmLayout,
  SM100_SM_SMEM,
  SM100_SMEM_RESERVED_PER_BLOCK,
  SM100_TMEM_COLUMNS,
} from '../arch/gemm_sm100.ts';

test('the catalog tiling (128x256x256, 4 stages): one CTA per SM, 512 columns', () => {
  const r = sm100GemmLayout([128, 256, 256], 1, 4);
  assert.ok('layout' in r);
  if (!('layout' in r)) return;
  assert.is(r.layout.tmemColumnsAllocated, 512);
  // 2 x (222,336 + 1,024) = 446,720 > 233,472: a second CTA cannot be resident
  assert.ok(2 * (r.layout.smemBytes + SM100_SMEM_RESERVED_PER_BLOCK) > SM100_SM_SMEM);
  assert.is(r.layout.ctasPerSm, 1);
});

test('a tiling small enough for several CTAs per SM but allocating 512 columns is refused', () => {
  const r = sm100GemmLayout([128, 256, 256], 1, 1);
  assert.ok('field' in r);
  if (!('field' in r)) return;
  assert.is(r.field, 'stages');
  assert.match(r.message, /4 CTAs fit on one SM and together would allocate 4 x 512/);
});

test('every accepted tiling keeps CTAs per SM x allocated columns within 512', () => {
  for (const bn of [128, 256]) {
    for (const bk of [256, 512]) {
      for (let stages = 1; stages <= 8; stages++) {
        const r = sm100GemmLayout([128, bn, bk], 1, stages);
        if (!('layout' in r)) continue;
        assert.ok(r.layout.ctasPerSm * r.layout.tmemColumnsAllocated <= SM100_TMEM_COLUMNS, `${bn} ${bk} ${stages}`);
      }
    }
  }
});

test.run();
