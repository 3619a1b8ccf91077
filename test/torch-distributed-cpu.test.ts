// The torch package's FSDP2 NVFP4 all-gather on the CPU (runtime/torch/tests/distributed_cpu.py: gloo, the plain-torch
// reference quantizer, 1 and 2 ranks, two layers that free their weights after the forward and gather them again for
// the backward). It caught the saved-tensor version error the H100 package test hit at 5fdbc6c. Needs python3 with
// torch (CPU is enough); without torch it says so and checks nothing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { vendor } from '../emit/vendor.ts';

test('FSDP2 NVFP4 all-gather: 1 and 2 gloo ranks match an unsharded twin through two training steps', async () => {
  const probe = await execa('python3', ['-c', 'import torch'], { reject: false });
  if (probe.exitCode !== 0) {
    console.log('  torch-distributed-cpu: python3 has no torch; the FSDP2 CPU check did not run');
    return;
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qgen-torch-dist-'));
  await vendor({ target: 'torch', arch: 'sm_90a', out: dir });
  const run = await execa('python3', [path.join(dir, 'tests/distributed_cpu.py')], { reject: false, timeout: 300_000 });
  assert.is(run.exitCode, 0, run.stdout + run.stderr);
  assert.match(run.stdout, /^3 passed, 0 failed$/m);
});

test.run();
