// Spec validation: field paths and messages of many bad specs, a mutation property over the catalog, and an
// exhaustive comparison of the quantizer rules with an independently written list of the legal combinations.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { catalogFor } from '../dsl/catalog.ts';
import { ARCHS, type Arch, type GemmSpec, type KernelSpec, type QuantizeSpec } from '../dsl/types.ts';
import { assertValid, SpecError, validate, validateFile } from '../validate/validate.ts';

const clone = <T>(x: T): T => structuredClone(x);

function catalogSpec(name: string, arch: Arch = 'sm_90a'): KernelSpec {
  const s = catalogFor(arch).find((k) => k.name === name);
  if (!s) throw new Error(`test setup: no catalog spec ${name}`);
  return clone(s);
}

/** A catalog spec with `edit` applied (on an untyped copy, so that illegal values can be written). */
function edited(name: string, edit: (s: any) => void, arch: Arch = 'sm_90a'): unknown {
  const s = catalogSpec(name, arch) as any;
  edit(s);
  return s;
}

const paths = (spec: unknown, arch: Arch = 'sm_90a') =>
  validate(spec, arch, 'k')
    .map((p) => p.path)
    .sort();

function expectProblem(spec: unknown, arch: Arch, path: string, messagePart: string) {
  const problems = validate(spec, arch, 'k');
  assert.equal(
    problems.map((p) => p.path),
    [path],
    JSON.stringify(problems),
  );
  assert.ok(problems[0].message.includes(messagePart), `"${problems[0].message}" should contain "${messagePart}"`);
}

// ---------------------------------------------------------------------------------------------------------------
// One illegal change -> exactly one problem, at the changed field, saying what is allowed.

const SINGLE_PROBLEM_CASES: [string, string, (s: any) => void, string, string][] = [
  // [catalog spec, description, edit, expected path (under 'k'), message part]
  [
    'nvidia_x_rtn',
    'unknown rounding',
    (s) => {
      s.rounding = 'rtz';
    },
    'k.rounding',
    "must be one of 'rtn' | 'sr' | 'four-six' | 'ms-eden' (got \"rtz\")",
  ],
  [
    'nvidia_x_rtn',
    'unknown field',
    (s) => {
      s.foo = 1;
    },
    'k.foo',
    'unknown field "foo"',
  ],
  [
    'nvidia_x_rtn',
    'missing field',
    (s) => {
      delete s.scaleLayout;
    },
    'k.scaleLayout',
    'missing required field "scaleLayout"',
  ],
  [
    'nvidia_x_rtn',
    'hadamard 48',
    (s) => {
      s.hadamard = 48;
    },
    'k.hadamard',
    'one of 16 | 32 | 64 | 128',
  ],
  [
    'nvidia_x_rtn',
    'threads 100',
    (s) => {
      s.tiling.threadsPerBlock = 100;
    },
    'k.tiling.threadsPerBlock',
    'must be a multiple of 32 in 32..1024 (got 100)',
  ],
  [
    'nvidia_x_rtn',
    'threads 2048',
    (s) => {
      s.tiling.threadsPerBlock = 2048;
    },
    'k.tiling.threadsPerBlock',
    'must be a multiple of 32 in 32..1024',
  ],
  [
    'nvidia_x_rtn',
    'min blocks 0',
    (s) => {
      s.tiling.minBlocksPerSm = 0;
    },
    'k.tiling.minBlocksPerSm',
    'an integer in 1..32',
  ],
  [
    'quartet2_et_mseden_rht128',
    'min blocks past the threads of an SM',
    (s) => {
      s.tiling.minBlocksPerSm = 17;
    },
    'k.tiling.minBlocksPerSm',
    'threadsPerBlock x minBlocksPerSm <= 2048 (the threads one SM holds); got 128 x 17',
  ],
  [
    'dequantize_nvfp4_bf16',
    'min blocks on a dequantizer',
    (s) => {
      s.tiling.minBlocksPerSm = 2;
    },
    'k.tiling.minBlocksPerSm',
    'unknown field "minBlocksPerSm"',
  ],
  [
    'nvidia_x_rtn',
    'rows 0',
    (s) => {
      s.tiling.rowsPerBlock = 0;
    },
    'k.tiling.rowsPerBlock',
    'an integer in 1..256',
  ],
  [
    'nvidia_x_rtn',
    'groups 3',
    (s) => {
      s.tiling.groupsPerThread = 3;
    },
    'k.tiling.groupsPerThread',
    'one of 1 | 2 | 4 | 8',
  ],
  [
    'nvidia_x_rtn',
    'unknown tiling field',
    (s) => {
      s.tiling.warps = 4;
    },
    'k.tiling.warps',
    'unknown field "warps"',
  ],
  [
    'nvidia_x_rtn',
    'name with a dash',
    (s) => {
      s.name = 'my-kernel';
    },
    'k.name',
    'must be a C identifier',
  ],
  [
    'nvidia_x_rtn',
    'name with a leading digit',
    (s) => {
      s.name = '4six';
    },
    'k.name',
    'must be a C identifier',
  ],
  [
    'nvidia_x_rtn',
    'doc not a string',
    (s) => {
      s.doc = 3;
    },
    'k.doc',
    'must be a string',
  ],
  [
    'nvidia_x_rtn',
    'transposedInput as a string',
    (s) => {
      s.transposedInput = 'yes';
    },
    'k.transposedInput',
    'must be true or false',
  ],
  [
    'nvidia_x_rtn',
    'ceiling 0',
    (s) => {
      s.ceiling = 0;
    },
    'k.ceiling',
    'must be a number in (0, 448]',
  ],
  [
    'nvidia_x_rtn',
    'ceiling 449',
    (s) => {
      s.ceiling = 449;
    },
    'k.ceiling',
    'must be a number in (0, 448]',
  ],
  [
    'nvidia_x_rtn',
    'ceiling NaN',
    (s) => {
      s.ceiling = NaN;
    },
    'k.ceiling',
    'must be a number in (0, 448]',
  ],
  [
    'nvidia_x_rtn',
    'scaleGroup 16 with ue8m0',
    (s) => {
      s.scaleGroup.format = 'ue8m0';
    },
    'k.scaleGroup.format',
    "must be 'e4m3' for a 16-element group",
  ],
  [
    'nvidia_x_rtn',
    'scaleGroup size 8',
    (s) => {
      s.scaleGroup.size = 8;
    },
    'k.scaleGroup.size',
    'one of 16 | 32',
  ],
  [
    'nvidia_x_rtn',
    'NVFP4 without tensor scale',
    (s) => {
      s.tensorScale = 'none';
    },
    'k.tensorScale',
    "'none' is only for MXFP4",
  ],
  [
    'nvidia_x_rtn',
    'rtn with target sr-v',
    (s) => {
      s.target = 'sr-v';
    },
    'k.target',
    "must be 'six' for rounding 'rtn'",
  ],
  [
    'nvidia_e_sr',
    'sr with target six',
    (s) => {
      s.target = 'six';
    },
    'k.target',
    "must be 'sr-v' for rounding 'sr'",
  ],
  [
    'quartet2_x_46',
    'four-six with target eden-s',
    (s) => {
      s.target = 'eden-s';
    },
    'k.target',
    "must be 'six' for rounding 'four-six'",
  ],
  [
    'quartet2_e_mseden_rht128',
    'ms-eden with target six',
    (s) => {
      s.target = 'six';
    },
    'k.target',
    "must be 'eden-s'",
  ],
  [
    'quartet2_e_mseden_rht128',
    'ms-eden without rotation',
    (s) => {
      s.hadamard = null;
    },
    'k.hadamard',
    "for rounding 'ms-eden'",
  ],
  [
    'quartet2_e_mseden_rht128',
    'per-128 with hadamard 64',
    (s) => {
      s.hadamard = 64;
      s.correction = 'per-128';
    },
    'k.correction',
    "'per-128' requires hadamard 128",
  ],
  [
    'nvidia_x_rtn',
    'per-128 on rtn',
    (s) => {
      s.correction = 'per-128';
    },
    'k.correction',
    "must be 'per-16' unless rounding is 'ms-eden'",
  ],
  [
    'quartet2_wt_rq_mseden_rht128',
    'requant with rtn',
    (s) => {
      s.rounding = 'rtn';
      s.target = 'six';
      s.hadamard = null;
    },
    'k.input',
    "requires rounding 'ms-eden' or 'sr'",
  ],
  [
    'quartet2_wt_rq_mseden_rht128',
    'requant not transposed',
    (s) => {
      s.transposedInput = false;
    },
    'k.transposedInput',
    "must be true when input is 'nvfp4'",
  ],
  [
    'nvidia_w_rtn_16x16',
    '16x16 with sr',
    (s) => {
      s.rounding = 'sr';
      s.target = 'sr-v';
    },
    'k.block',
    "'16x16' requires rounding 'rtn'",
  ],
  [
    'nvidia_w_rtn_16x16',
    '16x16 with a rotation',
    (s) => {
      s.hadamard = 16;
    },
    'k.block',
    "'16x16' requires hadamard null",
  ],
  [
    'nvidia_w_rtn_16x16',
    '16x16 with 8 rows per block',
    (s) => {
      s.tiling.rowsPerBlock = 8;
    },
    'k.tiling.rowsPerBlock',
    "must be a multiple of 16 for block '16x16'",
  ],
  [
    'mxfp4_x_rtn',
    'MXFP4 with a tensor scale',
    (s) => {
      s.tensorScale = 'computed';
    },
    'k.tensorScale',
    "must be 'none' for MXFP4",
  ],
  [
    'mxfp4_x_rtn',
    'MXFP4 with ms-eden',
    (s) => {
      s.rounding = 'ms-eden';
      s.hadamard = 128;
    },
    'k.rounding',
    "must be 'rtn' | 'sr' for MXFP4",
  ],
  [
    'mxfp4_x_rtn',
    'MXFP4 with one 16-group per thread',
    (s) => {
      s.tiling.groupsPerThread = 1;
    },
    'k.tiling.groupsPerThread',
    'must be 2 | 4 | 8 for MXFP4',
  ],
  [
    'mxfp4_x_rtn',
    'group 32 with e4m3',
    (s) => {
      s.scaleGroup.format = 'e4m3';
    },
    'k.scaleGroup.format',
    "must be 'ue8m0' for a 32-element group",
  ],
  [
    'nvidia46_x_46',
    'four-six computed with ceiling 448',
    (s) => {
      s.ceiling = 448;
    },
    'k.ceiling',
    'must be at most 256',
  ],
  [
    'hadamard_rht128',
    'hadamard size 256',
    (s) => {
      s.size = 256;
    },
    'k.size',
    'one of 16 | 32 | 64 | 128',
  ],
  [
    'dequantize_nvfp4_bf16',
    'dequantize to fp16',
    (s) => {
      s.output = 'f16';
    },
    'k.output',
    "one of 'bf16' | 'f32'",
  ],
  [
    'amax_bf16',
    'amax of fp8',
    (s) => {
      s.input = 'e4m3';
    },
    'k.input',
    "one of 'bf16' | 'f32'",
  ],
  [
    'gemm_nvfp4_bf16',
    'gemm operand bf16',
    (s) => {
      s.a = 'bf16';
    },
    'k.a',
    "one of 'nvfp4'",
  ],
  [
    'gemm_nvfp4_bf16',
    'gemm layout NN',
    (s) => {
      s.layout = 'NN';
    },
    'k.layout',
    "one of 'TN'",
  ],
  [
    'gemm_nvfp4_bf16',
    'gemm tile order',
    (s) => {
      s.tiling.tileOrder = 'hilbert';
    },
    'k.tiling.tileOrder',
    "one of 'row-major' | 'column-major' | 'swizzle-8'",
  ],
];

for (const [name, what, edit, path, part] of SINGLE_PROBLEM_CASES) {
  test(`validate: ${what} -> ${path}`, () => expectProblem(edited(name, edit), 'sm_90a', path, part));
}

test('validate: a wrong kind stops there; a non-object spec is one problem', () => {
  expectProblem(
    edited('nvidia_x_rtn', (s) => {
      s.kind = 'gemv';
    }),
    'sm_90a',
    'k.kind',
    "must be one of 'quantize' | 'hadamard' | 'dequantize' | 'amax' | 'gemm'",
  );
  expectProblem(
    edited('nvidia_x_rtn', (s) => {
      delete s.kind;
    }),
    'sm_90a',
    'k.kind',
    'missing required field "kind"',
  );
  expectProblem(42, 'sm_90a', 'k', 'must be a kernel spec object');
  expectProblem(null, 'sm_90a', 'k', 'must be a kernel spec object');
});

test('validate: every problem is returned, not just the first', () => {
  const spec = edited('quartet2_e_mseden_rht128', (s) => {
    s.rounding = 'rtz';
    s.tiling.threadsPerBlock = 7;
    s.scaleGroup.size = 24;
    s.extra = true;
    delete s.block;
  });
  assert.equal(paths(spec), ['k.block', 'k.extra', 'k.rounding', 'k.scaleGroup.size', 'k.tiling.threadsPerBlock']);
});

test('validate: the default path prefix is kernels[i]', () => {
  const problems = validate(
    edited('nvidia_x_rtn', (s) => {
      s.rounding = 'x';
    }),
    'sm_90a',
  );
  assert.equal(
    problems.map((p) => p.path),
    ['kernels[i].rounding'],
  );
});

// ---------------------------------------------------------------------------------------------------------------
// GEMM tiling, per arch (PTX-FACTS §4-6).

const gemmWith = (arch: Arch, tiling: Partial<GemmSpec['tiling']>) =>
  edited(
    'gemm_nvfp4_bf16',
    (s) => {
      Object.assign(s.tiling, tiling);
    },
    arch,
  );

test('validate: sm_90a GEMM tiling limits', () => {
  expectProblem(
    gemmWith('sm_90a', { ctaTile: [96, 128, 64] }),
    'sm_90a',
    'k.tiling.ctaTile[0]',
    'must be a multiple of 64 in 64..128 (got 96) on sm_90a',
  );
  expectProblem(
    gemmWith('sm_90a', { ctaTile: [128, 120, 64] }),
    'sm_90a',
    'k.tiling.ctaTile[1]',
    'must be a multiple of 16 in 16..256',
  );
  expectProblem(gemmWith('sm_90a', { ctaTile: [128, 272, 64] }), 'sm_90a', 'k.tiling.ctaTile[1]', '16..256');
  // A B tile must cover whole 128-row scale blocks or lie inside one.
  expectProblem(
    gemmWith('sm_90a', { ctaTile: [128, 96, 64] }),
    'sm_90a',
    'k.tiling.ctaTile[1]',
    'must divide 128 or be a multiple of 128',
  );
  expectProblem(
    gemmWith('sm_90a', { ctaTile: [128, 128, 96] }),
    'sm_90a',
    'k.tiling.ctaTile[2]',
    'multiple of 64 in 64..256',
  );
  expectProblem(gemmWith('sm_90a', { consumers: 3 }), 'sm_90a', 'k.tiling.consumers', 'an integer in 1..2');
  expectProblem(gemmWith('sm_90a', { stages: 1 }), 'sm_90a', 'k.tiling.stages', 'an integer in 2..16');
  expectProblem(
    gemmWith('sm_90a', { cluster: [2, 1] }),
    'sm_90a',
    'k.tiling.cluster[0]',
    'an integer in 1..1 (got 2) on sm_90a',
  );
  // Shared memory: 16 stages of 128x128x256 = 16*(256*128 + 512*4*2) + 2*128*128*4 + 256 + 1024 = 722176 B.
  expectProblem(
    gemmWith('sm_90a', { ctaTile: [128, 128, 256], stages: 16 }),
    'sm_90a',
    'k.tiling.stages',
    '16 stages need 722176 B of shared memory, more than the 232448 B',
  );
  // Registers: one warpgroup holding a 128x256 accumulator (256 fp32 per thread).
  expectProblem(
    gemmWith('sm_90a', { ctaTile: [128, 256, 64], consumers: 1 }),
    'sm_90a',
    'k.tiling.consumers',
    'would hold 256 fp32 accumulators',
  );
  // Two warpgroups of 128x256: 128 accumulators + 16 fragment registers + 64 > the 168 of 384 threads.
  expectProblem(
    gemmWith('sm_90a', { ctaTile: [128, 256, 64], consumers: 2 }),
    'sm_90a',
    'k.tiling.consumers',
    'needs about 208 registers',
  );
  assert.equal(paths(gemmWith('sm_90a', { ctaTile: [64, 32, 256], consumers: 1, stages: 4 })), []);
});

test('validate: sm_100a GEMM tiling limits', () => {
  expectProblem(
    gemmWith('sm_100a', { ctaTile: [64, 256, 256] }),
    'sm_100a',
    'k.tiling.ctaTile[0]',
    'must be an integer in 128..128 (got 64) on sm_100a',
  );
  expectProblem(
    gemmWith('sm_100a', { ctaTile: [128, 64, 256] }),
    'sm_100a',
    'k.tiling.ctaTile[1]',
    'must be a multiple of 128 in 128..256',
  );
  expectProblem(
    gemmWith('sm_100a', { ctaTile: [128, 256, 128] }),
    'sm_100a',
    'k.tiling.ctaTile[2]',
    'must be a multiple of 256',
  );
  expectProblem(
    gemmWith('sm_100a', { cluster: [2, 1] }),
    'sm_100a',
    'k.tiling.cluster[0]',
    'must be an integer in 1..1',
  );
  // 4 stages of 128x256x512: 4 * (384*256 + 512*8*3) + 8 * 14 + 16 + 1024 = 443520 B > 232448 B.
  expectProblem(
    gemmWith('sm_100a', { ctaTile: [128, 256, 512] }),
    'sm_100a',
    'k.tiling.stages',
    '4 stages need 443520 B',
  );
  // Two epilogue warpgroups of a 128-column tile: 64 columns each, whole x32 loads.
  assert.equal(paths(gemmWith('sm_100a', { ctaTile: [128, 128, 256], consumers: 2, stages: 6 }), 'sm_100a'), []);
  assert.equal(paths(gemmWith('sm_100a', { ctaTile: [128, 256, 512], stages: 2 }), 'sm_100a'), []);
});

test('validate: sm_120a GEMM tiling limits', () => {
  expectProblem(
    gemmWith('sm_120a', { cluster: [2, 1] }),
    'sm_120a',
    'k.tiling.cluster[0]',
    'must be an integer in 1..1 (got 2) on sm_120a',
  );
  // 4 stages of 128x256x128: 4 * (384*64 + 512*2*3) = 110592 B + barriers > 101376 B (8 warps: 128 accumulators each).
  expectProblem(
    gemmWith('sm_120a', { ctaTile: [128, 256, 128], consumers: 8 }),
    'sm_120a',
    'k.tiling.stages',
    '4 stages need 111680 B of shared memory, more than the 101376 B',
  );
  assert.equal(paths(gemmWith('sm_120a', { ctaTile: [128, 256, 128], consumers: 8, stages: 3 }), 'sm_120a'), []);
  expectProblem(gemmWith('sm_120a', { ctaTile: [128, 128, 96] }), 'sm_120a', 'k.tiling.ctaTile[2]', 'multiple of 64');
  expectProblem(
    gemmWith('sm_120a', { ctaTile: [96, 128, 128] }),
    'sm_120a',
    'k.tiling.ctaTile[0]',
    'must divide 128 or be a multiple of 128',
  );
  expectProblem(
    gemmWith('sm_120a', { consumers: 2 }),
    'sm_120a',
    'k.tiling.consumers',
    'would hold 256 fp32 accumulators',
  );
  // 3 warps cannot split 8x8 16x16 pieces evenly.
  expectProblem(
    gemmWith('sm_120a', { ctaTile: [128, 128, 128], consumers: 12 }),
    'sm_120a',
    'k.tiling.consumers',
    'cannot tile a 128x128 block',
  );
});

/** Independent formulation of the GEMM rules, for random tilings. */
function gemmLegal(
  arch: Arch,
  [m, n, k]: readonly number[],
  consumers: number,
  stages: number,
  cluster: readonly number[],
): boolean {
  const mult = (v: number, q: number, lo: number, hi: number) => v % q === 0 && v >= lo && v <= hi;
  const clusterSize = cluster[0] * cluster[1];
  if (arch === 'sm_90a') {
    // arch/gemm_sm90.ts, restated: shape rules, then some CTAs-per-SM count (2 or 1) where both shared memory
    // and registers (accumulators + one set of A fragments + 64 per consumer thread) fit.
    const shapeOk =
      (m === 64 || m === 128) &&
      mult(n, 16, 16, 256) &&
      (128 % n === 0 || n % 128 === 0) &&
      mult(k, 64, 64, 256) &&
      consumers >= 1 &&
      consumers <= 2 &&
      (m / 64) % consumers === 0 &&
      ((m / consumers) * n) / 128 <= 128 &&
      clusterSize === 1 &&
      stages >= 2 &&
      stages <= 16;
    if (!shapeOk) return false;
    const smem =
      2 * n * k * 2 + stages * (((m + n) * k) / 2 + 512 * (k / 64) * (1 + Math.ceil(n / 128))) + 16 * stages + 1024;
    const threads = 128 * (consumers + 1);
    const need = Math.ceil((((m / 64 / consumers) * n) / 2 + 16 * (k / 64) * (m / 64 / consumers) + 64) / 8) * 8;
    return [2, 1].some(
      (ctas) =>
        smem <= Math.min(232448, Math.floor(233472 / ctas) - 1024) &&
        need <= Math.min(255, Math.floor(65536 / (threads * ctas) / 8) * 8),
    );
  }
  if (stages < 2 || stages > 8) return false;
  if (arch === 'sm_100a') {
    // Restating arch/gemm_sm100.ts: tensor memory holds the accumulator (twice when it fits) and two scale sets of
    // 4 columns per K atom for A and per K atom and 128 B rows; shared memory holds the stages.
    if (!(
      m === 128 &&
      (n === 128 || n === 256) &&
      (k === 256 || k === 512) &&
      consumers >= 1 &&
      consumers <= 2 &&
      clusterSize === 1
    ))
      return false;
    const sfSets = 2 * 4 * (k / 64) * (1 + n / 128);
    if (n + sfSets > 512 || (n / consumers) % 32 !== 0) return false;
    const smem = stages * (((m + n) * k) / 2 + (512 * (k / 64) * (m + n)) / 128) + 8 * (2 * stages + 6) + 16 + 1024;
    // Tensor memory allocated (a power of two >= the columns used) by every CTA that shared memory lets share an SM
    // (228 KB per SM, 1 KB reserved per block) must fit the SM's 512 columns.
    const used = (2 * n + sfSets <= 512 ? 2 * n : n) + sfSets;
    const allocated = 2 ** Math.ceil(Math.log2(Math.max(32, used)));
    return smem <= 232448 && Math.floor(233472 / (smem + 1024)) * allocated <= 512;
  }
  // Restating arch/gemm_sm120.ts: 16x16-granular warp tiles, whole or nested 128-row scale blocks, <= 128 accumulators,
  // stages rounded to 1024 B in 101376 B.
  const fits128 = (v: number) => 128 % v === 0 || v % 128 === 0;
  if (!(
    mult(m, 16, 16, 256) &&
    mult(n, 16, 16, 256) &&
    fits128(m) &&
    fits128(n) &&
    mult(k, 64, 64, 512) &&
    consumers >= 1 &&
    consumers <= 16 &&
    (m * n) / (32 * consumers) <= 128 &&
    clusterSize === 1
  ))
    return false;
  let grid = false;
  for (let wm = 1; wm <= consumers; wm++)
    if (consumers % wm === 0 && (m / 16) % wm === 0 && (n / 16) % (consumers / wm) === 0) grid = true;
  const stage =
    Math.ceil((((m + n) * k) / 2 + 512 * (k / 64) * (Math.ceil(m / 128) + Math.ceil(n / 128))) / 1024) * 1024;
  return grid && stages * stage + 16 * stages + 1024 <= 101376;
}

test('validate: random GEMM tilings agree with an independent statement of the rules', () => {
  const legal: Record<string, number> = { sm_90a: 0, sm_100a: 0, sm_120a: 0 };
  fc.assert(
    fc.property(
      fc.constantFrom(...ARCHS),
      // Biased towards legal values (each arch accepts a small part of the space: some typical tiles per arch), with the
      // whole range mixed in.
      fc.oneof(
        {
          arbitrary: fc.constantFrom(
            [128, 128, 256],
            [128, 256, 256],
            [128, 256, 512],
            [128, 128, 512],
            [64, 64, 128],
            [128, 128, 128],
            [64, 128, 256],
          ),
          weight: 2,
        },
        {
          arbitrary: fc.tuple(
            fc.oneof(
              { arbitrary: fc.constantFrom(64, 128), weight: 3 },
              { arbitrary: fc.integer({ min: 1, max: 20 }).map((x) => x * 16), weight: 2 },
            ),
            fc.oneof(
              { arbitrary: fc.constantFrom(32, 64, 128, 256), weight: 2 },
              { arbitrary: fc.integer({ min: 1, max: 34 }).map((x) => x * 8), weight: 2 },
            ),
            fc.oneof(
              { arbitrary: fc.constantFrom(64, 128, 256, 512), weight: 3 },
              { arbitrary: fc.integer({ min: 1, max: 9 }).map((x) => x * 64), weight: 1 },
            ),
          ),
          weight: 3,
        },
      ),
      fc.oneof(
        { arbitrary: fc.constantFrom(1, 2, 4, 8), weight: 3 },
        { arbitrary: fc.integer({ min: 1, max: 17 }), weight: 1 },
      ),
      fc.oneof(
        { arbitrary: fc.integer({ min: 2, max: 4 }), weight: 3 },
        { arbitrary: fc.integer({ min: 1, max: 17 }), weight: 1 },
      ),
      fc.oneof(
        { arbitrary: fc.constant([1, 1] as [number, number]), weight: 3 },
        { arbitrary: fc.tuple(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 2 })), weight: 1 },
      ),
      (arch, tile, consumers, stages, cluster) => {
        const spec = gemmWith(arch, {
          ctaTile: tile as [number, number, number],
          consumers,
          stages,
          cluster: cluster as [number, number],
        });
        const ok = gemmLegal(arch, tile, consumers, stages, cluster);
        if (ok) legal[arch]++;
        const problems = validate(spec, arch, 'k');
        assert.is(
          problems.length === 0,
          ok,
          `${arch} ${JSON.stringify({ tile, consumers, stages, cluster })}: ` + JSON.stringify(problems),
        );
        for (const p of problems) assert.ok(p.path.startsWith('k.tiling.'), p.path);
      },
    ),
    { numRuns: 3000, seed: 7 },
  );
  for (const arch of ARCHS)
    assert.ok(
      legal[arch] > 30,
      `only ${legal[arch]} legal ${arch} tilings drawn: the generator is too narrow to test anything`,
    );
});

// ---------------------------------------------------------------------------------------------------------------
// Exhaustive quantizer combinations against an independent list of the rules.

interface Combo {
  rounding: QuantizeSpec['rounding'];
  group: 16 | 32;
  target: QuantizeSpec['target'];
  tensorScale: QuantizeSpec['tensorScale'];
  hadamard: QuantizeSpec['hadamard'];
  correction: QuantizeSpec['correction'];
  input: QuantizeSpec['input'];
  transposed: boolean;
  block: QuantizeSpec['block'];
  ceiling: number;
}

/** The legal combinations, stated rule by rule (NUMERICS §5). */
function comboLegal(c: Combo): boolean {
  const mx = c.group === 32;
  const target = mx ? 'six' : ({ rtn: 'six', 'four-six': 'six', sr: 'sr-v', 'ms-eden': 'eden-s' } as const)[c.rounding];
  const rules = [
    c.target === target,
    mx === (c.tensorScale === 'none'),
    !mx || c.rounding === 'rtn' || c.rounding === 'sr',
    c.rounding !== 'ms-eden' || c.hadamard !== null,
    c.correction === 'per-16' || (c.rounding === 'ms-eden' && c.hadamard === 128),
    c.input === 'bf16' || ((c.rounding === 'ms-eden' || c.rounding === 'sr') && !mx && c.transposed),
    c.block === '1x16' || (c.rounding === 'rtn' && !mx && c.hadamard === null),
    !(c.tensorScale === 'computed' && (c.rounding === 'four-six' || c.rounding === 'ms-eden') && c.ceiling > 256),
  ];
  return rules.every(Boolean);
}

test('validate: all quantizer field combinations agree with an independent list of the rules', () => {
  const base = catalogSpec('nvidia_x_rtn') as QuantizeSpec;
  let total = 0;
  let legal = 0;
  for (const rounding of ['rtn', 'sr', 'four-six', 'ms-eden'] as const)
    for (const group of [16, 32] as const)
      for (const target of ['six', 'sr-v', 'eden-s'] as const)
        for (const tensorScale of ['computed', 'caller', 'one-pass', 'none'] as const)
          for (const hadamard of [null, 16, 32, 64, 128] as const)
            for (const correction of ['per-16', 'per-128'] as const)
              for (const input of ['bf16', 'nvfp4'] as const)
                for (const transposed of [false, true])
                  for (const block of ['1x16', '16x16'] as const)
                    for (const ceiling of [256, 448]) {
                      const c: Combo = {
                        rounding,
                        group,
                        target,
                        tensorScale,
                        hadamard,
                        correction,
                        input,
                        transposed,
                        block,
                        ceiling,
                      };
                      const spec: QuantizeSpec = {
                        ...clone(base),
                        rounding,
                        target,
                        tensorScale,
                        hadamard,
                        correction,
                        input,
                        transposedInput: transposed,
                        block,
                        ceiling,
                        scaleGroup: group === 16 ? { size: 16, format: 'e4m3' } : { size: 32, format: 'ue8m0' },
                      };
                      const problems = validate(spec, 'sm_100a', 'k');
                      const ok = comboLegal(c);
                      total++;
                      if (ok) legal++;
                      if ((problems.length === 0) !== ok) {
                        assert.unreachable(
                          `${JSON.stringify(c)}: oracle says ${ok ? 'legal' : 'illegal'}, validate says ` +
                            JSON.stringify(problems),
                        );
                      }
                    }
  assert.is(total, 4 * 2 * 3 * 4 * 5 * 2 * 2 * 2 * 2 * 2);
  assert.ok(legal >= 100, `${legal} legal combinations`);
});

// ---------------------------------------------------------------------------------------------------------------
// Mutation property: an illegal value anywhere in a valid catalog spec is reported at that field.

/** Values that are illegal for the named leaf field whatever the other fields hold. */
const ILLEGAL_BY_FIELD: Record<string, unknown[]> = {
  kind: ['gemv', 'Quantize'],
  name: ['', '1x', 'a-b', 'a b', 'x'.repeat(65)],
  doc: [42, false],
  rounding: ['rtz', 'RTN'],
  size: [8, 256, 0, '16'], // `size` of a scale group and of a Hadamard spec format: ['e5m2', 'e4m3fn'], block: ['32x32', '1x32'],
  target: ['four', 6],
  ceiling: [0, -1, 449, Infinity, NaN, '448'],
  tensorScale: ['auto', 'global'],
  hadamard: [8, 256, 0, 'none'],
  correction: ['per-32', 'none'],
  input: ['fp8', 'f16'],
  transposedInput: [0, 'true'],
  scaleLayout: ['col-major', '32x4'],
  threadsPerBlock: [0, 33, 2048, 96.5],
  rowsPerBlock: [0, 1.5, 1000],
  groupsPerThread: [0, 3, 16],
  minBlocksPerSm: [0, 33, 2.5],
  output: ['fp16', 'e2m1'],
  a: ['bf16'],
  b: ['mxfp4'],
  outputs: ['bf16', 'nvfp4+f32-plane', true],
  layout: ['NN', 'NT'],
  epilogue: ['beta', 'relu'],
  consumers: [0, 99, 1.5],
  stages: [0, 1, 99],
  tileOrder: ['hilbert'],
  registerOperand: ['c', 1, true],
  fragmentSets: [0, 3, 1.5, '2'],
  ctaTile: [[128, 128], 'big'],
  cluster: [[1], [1, 1, 1]],
};
/** Illegal for array elements of ctaTile / cluster (by array name). */
const ILLEGAL_ELEMENT: Record<string, unknown[]> = { ctaTile: [0, 7, 1000, -64, 'x'], cluster: [0, 3, -1, 1.5] };
/** Illegal for any field: no field takes an object with an unknown key, a negative fraction, or an array of text. */
const ILLEGAL_ANYWHERE: unknown[] = [{ bogus: 1 }, -7.5, ['x']];

interface Site {
  path: string[];
  field: string;
  element?: string;
}

/** Every field path of a spec (objects, arrays and leaves). */
function sites(value: unknown, prefix: string[] = []): Site[] {
  const out: Site[] = [];
  if (Array.isArray(value)) {
    value.forEach((_, i) =>
      out.push({ path: [...prefix, String(i)], field: `${i}`, element: prefix[prefix.length - 1] }),
    );
  } else if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) {
      out.push({ path: [...prefix, k], field: k }, ...sites(v, [...prefix, k]));
    }
  }
  return out;
}

function setAt(obj: any, path: string[], value: unknown): void {
  let o = obj;
  for (const key of path.slice(0, -1)) o = o[key];
  const last = path[path.length - 1];
  if (value === undefined && !Array.isArray(o)) delete o[last];
  else o[last] = value;
}

function fieldPath(prefix: string, path: string[]): string {
  return path.reduce((acc, key) => (/^\d+$/.test(key) ? `${acc}[${key}]` : `${acc}.${key}`), prefix);
}

test('validate: an illegal value anywhere in a catalog spec is reported at that field', () => {
  const cases = ARCHS.flatMap((arch) =>
    catalogFor(arch).flatMap((spec) => sites(spec).map((site) => ({ arch, spec, site }))),
  );
  fc.assert(
    fc.property(fc.constantFrom(...cases), fc.nat(), ({ arch, spec, site }, pick) => {
      const candidates = [
        ...ILLEGAL_ANYWHERE,
        ...(site.element ? (ILLEGAL_ELEMENT[site.element] ?? []) : (ILLEGAL_BY_FIELD[site.field] ?? [])),
        // a removed field (optional ones not: removing one of them leaves a valid spec, or, for decode, a spec whose
        // problem lies in the fields the decode allowed: the producer tilings' registers, the cluster of _pdc)
        ...(['doc', 'outputs', 'registerOperand', 'fragmentSets', 'minBlocksPerSm', 'decode'].includes(site.field)
          ? []
          : [undefined]),
      ];
      const value = candidates[pick % candidates.length];
      const mutated = clone(spec) as any;
      setAt(mutated, site.path, value);
      const target = fieldPath('kernels[3]', site.path);
      const problems = validate(mutated, arch, 'kernels[3]');
      const named = problems.some(
        (p) => p.path === target || p.path.startsWith(`${target}.`) || p.path.startsWith(`${target}[`),
      );
      assert.ok(named, `${arch} ${spec.name}: ${target} = ${JSON.stringify(value)} gave ${JSON.stringify(problems)}`);
    }),
    { numRuns: 1500, seed: 42 },
  );
});

// ---------------------------------------------------------------------------------------------------------------
// Files and assertValid.

test('validateFile: shape, unknown fields, paths per kernel, duplicate names', () => {
  const a = catalogSpec('nvidia_x_rtn');
  const b = catalogSpec('nvidia_e_sr');
  assert.equal(validateFile({ kernels: [a, b] }, 'sm_90a'), []);
  assert.equal(
    validateFile([a], 'sm_90a').map((p) => p.path),
    ['(file)'],
  );
  assert.equal(
    validateFile({}, 'sm_90a').map((p) => p.path),
    ['kernels'],
  );
  assert.equal(
    validateFile({ kernels: [] }, 'sm_90a').map((p) => p.message),
    ['must contain at least one kernel spec'],
  );
  assert.equal(
    validateFile({ kernels: [a], version: 2 }, 'sm_90a').map((p) => p.path),
    ['version'],
  );
  const dup = validateFile({ kernels: [a, b, { ...clone(b), name: a.name }] }, 'sm_90a');
  assert.equal(
    dup.map((p) => p.path),
    ['kernels[2].name'],
  );
  assert.ok(dup[0].message.includes('duplicate name "nvidia_x_rtn" (also kernels[0].name)'), dup[0].message);
  const bad = validateFile({ kernels: [a, { ...clone(b), rounding: 'x' }] }, 'sm_90a');
  assert.equal(
    bad.map((p) => p.path),
    ['kernels[1].rounding'],
  );
});

test('assertValid: throws a SpecError listing every problem, one per line', () => {
  const a = edited('nvidia_x_rtn', (s) => {
    s.rounding = 'x';
    s.ceiling = 1000;
  });
  try {
    assertValid({ kernels: [a] }, 'sm_90a');
    assert.unreachable('should have thrown');
  } catch (e) {
    assert.instance(e, SpecError);
    const err = e as SpecError;
    assert.equal(
      err.problems.map((p) => p.path),
      ['kernels[0].rounding', 'kernels[0].ceiling'],
    );
    const lines = err.message.split('\n');
    assert.is(lines.length, 3);
    assert.match(lines[0], /2 problems/);
    assert.ok(lines[1].includes('kernels[0].rounding: must be one of'), lines[1]);
    assert.ok(lines[2].includes('kernels[0].ceiling: must be a number in (0, 448]'), lines[2]);
  }
  assert.not.throws(() => assertValid(catalogFor('sm_120a'), 'sm_120a'));
  assert.throws(
    () => assertValid(a, 'sm_90a'),
    (e: unknown) => e instanceof SpecError && e.problems[0].path === 'spec.rounding',
  );
});

test('names: a kernel name whose C symbol is a runtime symbol is refused, with the symbol and its header', () => {
  const header = readFileSync(new URL('../runtime/qgen.h', import.meta.url), 'utf8');
  // Independent of validate/reserved.ts: names taken straight from the text of qgen.h.
  const fromHeader = [...header.matchAll(/\bqgen_(scale_bytes_128x4|status|amax_args)\b/g)].map((m) => m[1]);
  assert.equal([...new Set(fromHeader)].sort(), ['amax_args', 'scale_bytes_128x4', 'status']);
  for (const name of fromHeader) {
    const problems = validate(
      edited('quartet2_x_46', (s) => {
        s.name = name;
      }),
      'sm_90a',
      'k',
    );
    assert.equal(
      problems.map((q) => q.path),
      ['k.name'],
      name,
    );
    assert.ok(problems[0].message.includes(`qgen_${name} of runtime/qgen.h`), problems[0].message);
  }
  // An ordinary name stays valid.
  assert.equal(
    validate(
      edited('quartet2_x_46', (s) => {
        s.name = 'my_quantizer';
      }),
      'sm_90a',
      'k',
    ),
    [],
  );
});

test("names: names differing only in case, or defining one another's symbols, are refused in a file", () => {
  const a = catalogSpec('quartet2_x_46');
  const upper = { ...clone(a), name: 'QUARTET2_X_46' };
  const problems = validateFile({ kernels: [a, upper] }, 'sm_90a');
  assert.equal(
    problems.map((q) => q.path),
    ['kernels[1].name'],
  );
  assert.match(problems[0].message, /only in case; .*case-insensitive filesystems/);
  const ws = { ...clone(a), name: 'quartet2_x_46_workspace_bytes' };
  const both = validateFile({ kernels: [ws, a] }, 'sm_90a');
  assert.equal(
    both.map((q) => q.path),
    ['kernels[1].name'],
  );
  assert.match(both[0].message, /would define a C symbol that kernels\[0\] defines already/);
});

test.run();
