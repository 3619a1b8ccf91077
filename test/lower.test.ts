// lower/lower.ts: plan facts per arch and per mode (hardware vs software E2M1, passes, mappings, constants, errors).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { lower, type GemmPlan, type GemmTiling, type KernelPlan, type QuantizePlan } from '../lower/lower.ts';
import { launchDescriptions, launchSummary, loweringSteps } from '../render/explain.ts';
import { quantizeFacts } from '../render/facts.ts';
import { hostSignatures } from '../render/render.ts';
import { gemmFacts } from '../render/facts.ts';
import { cudaF32 } from '../dsl/constants.ts';
import { ARCHS, type Arch, type GemmSpec, type QuantizeSpec } from '../dsl/types.ts';
import { coverageSpecs } from '../harness/coverage.ts';
import { catalogSpec } from '../dsl/catalog.ts';

/** A catalog-like NVFP4 quantizer with overrides (built here, independent of the catalog module). */
function quantize(fields: Partial<QuantizeSpec> = {}): QuantizeSpec {
  return {
    kind: 'quantize',
    name: 'q',
    rounding: 'rtn',
    scaleGroup: { size: 16, format: 'e4m3' },
    block: '1x16',
    target: 'six',
    ceiling: 448,
    tensorScale: 'computed',
    hadamard: null,
    correction: 'per-16',
    input: 'bf16',
    transposedInput: false,
    scaleLayout: '128x4',
    tiling: { threadsPerBlock: 256, rowsPerBlock: 16, groupsPerThread: 1 },
    ...fields,
  };
}

/** binary32 bit pattern, computed here with a typed array (not with dsl/constants.ts). */
function bits(x: number): string {
  const f = new Float32Array([x]);
  return `0x${new Uint32Array(f.buffer)[0].toString(16).padStart(8, '0')}`;
}

const roles = (p: KernelPlan) => p.launches.map((l) => l.role);
/** A quantizer's plan, and a GEMM's (lower returns the union of every kind's plan). */
const lowerQ = (spec: QuantizeSpec, arch: Arch) => lower(spec, arch) as QuantizePlan;
const lowerG = (spec: GemmSpec, arch: Arch) => lower(spec, arch) as GemmPlan;
/** The template facts of a quantizer (render/facts.ts) and its lowering in words (render/explain.ts). */
const facts = (spec: QuantizeSpec, arch: Arch = 'sm_90a') => quantizeFacts(lowerQ(spec, arch));
const steps = (p: KernelPlan) => loweringSteps(p);

test('E2M1 round-to-nearest: software threshold rule on sm_90a, hardware cvt on sm_100a and sm_120a', () => {
  assert.is(lower(quantize(), 'sm_90a').choices.e2m1Rn, 'software');
  assert.is(lower(quantize(), 'sm_100a').choices.e2m1Rn, 'hardware');
  assert.is(lower(quantize(), 'sm_120a').choices.e2m1Rn, 'hardware');
  assert.is(facts(quantize(), 'sm_90a').e2m1Policy, 'qgen_e2m1_software');
  assert.is(facts(quantize(), 'sm_100a').e2m1Policy, 'qgen_e2m1_hardware');
  // E4M3 RN is the hardware cvt everywhere; SR is software everywhere.
  for (const arch of ARCHS) {
    assert.is(lower(quantize(), arch).choices.e4m3Rn, 'hardware');
    assert.is(lower(quantize({ rounding: 'sr', target: 'sr-v' }), arch).choices.e2m1Sr, 'software');
  }
});

test('only the E2M1 choice and the arch differ between the plans of one spec on two archs', () => {
  const spec = quantize({ rounding: 'ms-eden', target: 'eden-s', hadamard: 128, tensorScale: 'one-pass' });
  const a = lowerQ(spec, 'sm_90a');
  const b = lowerQ(spec, 'sm_100a');
  const field = (o: object, k: string) => JSON.stringify((o as Record<string, unknown>)[k]);
  const differing = (x: object, y: object) => Object.keys(x).filter((k) => field(x, k) !== field(y, k));
  assert.equal(differing(a, b), ['arch', 'choices']);
  assert.equal([a.choices.e2m1Rn, b.choices.e2m1Rn], ['software', 'hardware']);
  assert.equal(differing(quantizeFacts(a), quantizeFacts(b)), ['e2m1Policy']);
  assert.equal(a.constants, b.constants);
});

test('plans are data: no C++, PTX or prose in any plan of the coverage specs (GEMM aside)', () => {
  for (const arch of ARCHS) {
    for (const spec of coverageSpecs()) {
      const p = lower(spec, arch);
      if (p.kind === 'gemm') continue;
      const strings: string[] = [];
      const walk = (v: unknown, key: string) => {
        if (key === 'spec') return;
        if (typeof v === 'string') strings.push(v);
        else if (Array.isArray(v)) v.forEach((x) => walk(x, ''));
        else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, k);
      };
      walk(p, '');
      // Names (identifiers, header files, scoped kernel names) and enums ('max-word+proxies', '128x4') only.
      for (const s of strings) assert.match(s, /^[A-Za-z0-9_.:+-]+$/, `${spec.name}: plan string '${s}'`);
    }
  }
});

test('passes per tensor-scale mode', () => {
  for (const arch of ARCHS) {
    assert.equal(roles(lower(quantize({ tensorScale: 'computed' }), arch)), ['amax-pass', 'quantize']);
    assert.equal(roles(lower(quantize({ tensorScale: 'caller' }), arch)), ['quantize']);
    assert.equal(roles(lower(quantize({ tensorScale: 'one-pass' }), arch)), ['pass-a', 'pass-b']);
    assert.equal(
      roles(
        lower(
          quantize({
            scaleGroup: { size: 32, format: 'ue8m0' },
            tensorScale: 'none',
            tiling: { threadsPerBlock: 256, rowsPerBlock: 16, groupsPerThread: 2 },
          }),
          arch,
        ),
      ),
      ['quantize'],
    );
  }
  // The one-pass pass B touches only proxies and scales, never the input.
  const passB = launchDescriptions(lower(quantize({ tensorScale: 'one-pass' }), 'sm_90a'))[1];
  assert.not.match(passB.reads, /\bx\b/);
  assert.match(passB.writes, /scales/);
});

test('workspace: none for caller, a max word for computed, max word + proxies for one-pass', () => {
  const ws = (spec: QuantizeSpec) => lowerQ(spec, 'sm_90a').quantize.workspace;
  assert.is(ws(quantize({ tensorScale: 'caller' })), 'none');
  assert.is(ws(quantize({ tensorScale: 'computed' })), 'max-word');
  assert.is(ws(quantize({ tensorScale: 'one-pass' })), 'max-word+proxies');
});

test('thread mapping: a chunk larger than a thread spreads over adjacent lanes', () => {
  const map = (f: Partial<QuantizeSpec>, gpt: number) =>
    lower(quantize({ ...f, tiling: { threadsPerBlock: 256, rowsPerBlock: 16, groupsPerThread: gpt } }), 'sm_90a')
      .mapping;
  const eden = { rounding: 'ms-eden', target: 'eden-s', hadamard: 128 } as const;
  assert.equal([map(eden, 1).elemsPerThread, map(eden, 1).lanesPerUnit], [16, 8]);
  assert.equal([map(eden, 2).elemsPerThread, map(eden, 2).lanesPerUnit], [32, 4]);
  assert.equal(
    [map({ rounding: 'four-six' }, 8).elemsPerThread, map({ rounding: 'four-six' }, 8).lanesPerUnit],
    [128, 1],
  );
  assert.equal([map({ hadamard: 16 }, 4).elemsPerThread, map({ hadamard: 16 }, 4).lanesPerUnit], [64, 1]);
  assert.equal(map({ transposedInput: true }, 1).order, 'column-major');
  assert.equal(map({ block: '16x16' }, 1).order, 'block16');
  // MXFP4: a thread owns whole 32-groups; groupsPerThread counts 16-element groups.
  const mx = lowerQ(
    quantize({
      scaleGroup: { size: 32, format: 'ue8m0' },
      tensorScale: 'none',
      tiling: { threadsPerBlock: 256, rowsPerBlock: 16, groupsPerThread: 2 },
    }),
    'sm_90a',
  );
  assert.is(mx.mapping.elemsPerThread, 32);
  assert.is(mx.quantize.groupsPerThread, 1);
});

test('shape rule: cols a multiple of the group, the rotation and the 128-chunk of a per-128 correction', () => {
  assert.is(lower(quantize(), 'sm_90a').colsMultiple, 16);
  assert.is(lower(quantize({ hadamard: 32 }), 'sm_90a').colsMultiple, 32);
  assert.is(
    lower(quantize({ rounding: 'ms-eden', target: 'eden-s', hadamard: 128, correction: 'per-128' }), 'sm_90a')
      .colsMultiple,
    128,
  );
  assert.is(
    lower(
      quantize({
        scaleGroup: { size: 32, format: 'ue8m0' },
        tensorScale: 'none',
        tiling: { threadsPerBlock: 256, rowsPerBlock: 16, groupsPerThread: 2 },
      }),
      'sm_90a',
    ).colsMultiple,
    32,
  );
});

test('constants carry the exact binary32 bit patterns of the targets', () => {
  const c = (p: KernelPlan, name: string) => p.constants.find((k) => k.name === name)?.bits;
  assert.is(
    c(lower(quantize({ rounding: 'ms-eden', target: 'eden-s', hadamard: 128 }), 'sm_90a'), 'target'),
    bits(6 / 0.988125),
  );
  assert.is(
    c(lower(quantize({ rounding: 'ms-eden', target: 'eden-s', hadamard: 128 }), 'sm_90a'), 'inv_sqrt_n'),
    bits(1 / Math.sqrt(128)),
  );
  assert.is(c(lower(quantize({ rounding: 'sr', target: 'sr-v' }), 'sm_90a'), 'target'), bits(96 / 17));
  const fourSix = lower(quantize({ rounding: 'four-six', ceiling: 256 }), 'sm_90a');
  assert.is(c(fourSix, 'target6'), '0x40c00000');
  assert.is(c(fourSix, 'target4'), '0x40800000');
  assert.is(c(fourSix, 'ceiling'), '0x43800000');
  // A caller-scaled kernel has no ceiling constant (it never forms t).
  assert.is(c(lower(quantize({ tensorScale: 'caller' }), 'sm_90a'), 'ceiling'), undefined);
  for (const k of fourSix.constants)
    assert.ok(cudaF32(k.value).includes(`${k.bits.slice(2)}u`), `${k.name}: ${k.bits}`);
});

test('steps describe the lowering for qgen explain', () => {
  const p = lower(
    quantize({ rounding: 'ms-eden', target: 'eden-s', hadamard: 128, tensorScale: 'one-pass' }),
    'sm_100a',
  );
  const text = steps(p).join('\n');
  assert.ok(steps(p).length >= 8);
  assert.match(text, /sm_100a/);
  assert.match(text, /cvt\.rn\.satfinite\.e2m1x2\.f32/);
  assert.match(text, /Pass A/);
  assert.match(text, /Pass B/);
  assert.match(text, /SR_P4/);
  assert.match(steps(lower(quantize(), 'sm_90a')).join('\n'), /equal to the threshold rule/);
  assert.ok(launchSummary(p).kernels.length === 2);
});

test('host ABI names follow qgen.h', () => {
  const p = lower(quantize({ name: 'fwd_x' }), 'sm_90a');
  assert.equal(hostSignatures(p), {
    host: 'qgen_status qgen_fwd_x(const qgen_quantize_args* args, cudaStream_t stream)',
    workspace: 'size_t qgen_fwd_x_workspace_bytes(int64_t rows, int64_t cols)',
  });
  const d = lower(
    {
      kind: 'dequantize',
      name: 'dq',
      scaleGroup: { size: 16, format: 'e4m3' },
      scaleLayout: '128x4',
      output: 'bf16',
      tiling: { threadsPerBlock: 256, rowsPerBlock: 16, groupsPerThread: 2 },
    },
    'sm_90a',
  );
  assert.is(d.argsStruct, 'qgen_dequantize_args');
  assert.is(d.workspaceFunction, null);
});

/** A GEMM plan's tiling on the arch it was lowered for (fails the test on another). */
function gemmOn<A extends GemmTiling['arch']>(p: GemmPlan, arch: A): Extract<GemmTiling, { arch: A }> {
  assert.is(p.gemm.arch, arch);
  return p.gemm as GemmTiling as Extract<GemmTiling, { arch: A }>;
}

test('gemm: lowered on sm_90a (plan numbers from the tiling)', () => {
  const gemm: GemmSpec = {
    kind: 'gemm',
    name: 'g',
    a: 'nvfp4',
    b: 'nvfp4',
    layout: 'TN',
    output: 'bf16',
    epilogue: 'alpha',
    tiling: { ctaTile: [128, 128, 64], consumers: 2, stages: 8, cluster: [1, 1], tileOrder: 'swizzle-8' },
  };
  const p = lowerG(gemm, 'sm_90a');
  assert.is(p.kind, 'gemm');
  assert.is(hostSignatures(p).host, 'qgen_status qgen_g(const qgen_gemm_args* args, cudaStream_t stream)');
  const L = gemmOn(p, 'sm_90a').layout;
  // 2 bf16 tiles of 128x64 + 8 stages of (256 rows x 32 code bytes + 2 scale blocks: A's and B's) + barriers + slack.
  assert.is(L.smemBytes, 2 * 128 * 128 + 8 * (256 * 32 + 2 * 512) + 16 * 8 + 1024);
  assert.equal([L.bm, L.bn, L.bk, L.slabs, L.ctasPerSm], [128, 128, 64, 1, 1]);
  assert.is(p.threadsPerBlock, 384);
  assert.is(launchSummary(p).threadsPerBlock, 384);
  // The plan holds enums; render/facts.ts spells them (and the tile's wgmma wrapper) in C++.
  assert.equal([p.gemm.tileOrder, p.gemm.output], ['swizzle-8', 'bf16']);
  const facts = gemmFacts(p);
  assert.equal([facts.tileOrder, facts.outType], ['QGEN_TILES_SWIZZLE_8', '__nv_bfloat16']);
  assert.ok(String(facts.wgmmaFunction).includes('wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16'));
  // 64 accumulator registers: %0..%63, then 4 A registers, the descriptor and the scale-d immediate.
  assert.ok(String(facts.wgmmaFunction).includes('{%64, %65, %66, %67}, %68, accumulate'));
  // A 64-row tile with one consumer fits two CTAs per SM.
  const small = lowerG(
    { ...gemm, tiling: { ...gemm.tiling, ctaTile: [64, 64, 128], consumers: 1, stages: 6 } },
    'sm_90a',
  );
  assert.is(gemmOn(small, 'sm_90a').layout.ctasPerSm, 2);
  assert.is(launchSummary(small).grid, 'min(tiles, SMs * 2) persistent CTAs');
  assert.throws(() => lower({ ...gemm, epilogue: 'alpha-beta' }, 'sm_90a'), /epilogue 'alpha-beta' is not implemented/);
});

test('gemm: sm_100a plan — tensor-memory columns, instruction descriptor, warp roles (PTX-FACTS §4)', () => {
  const gemm: GemmSpec = {
    kind: 'gemm',
    name: 'g',
    a: 'nvfp4',
    b: 'nvfp4',
    layout: 'TN',
    output: 'bf16',
    epilogue: 'alpha',
    tiling: { ctaTile: [128, 256, 256], consumers: 1, stages: 4, cluster: [1, 1], tileOrder: 'swizzle-8' },
  };
  const p = lowerG(gemm, 'sm_100a');
  const g = gemmOn(p, 'sm_100a');
  // N = 256 leaves no room for a second accumulator next to two scale sets of 4 atoms x (4 SFA + 8 SFB) columns.
  assert.equal(
    [g.layout.accBuffers, g.layout.sfColumnsPerSet, g.layout.tmemColumnsUsed, g.layout.tmemColumnsAllocated],
    [1, 48, 352, 512],
  );
  // PTX-FACTS §4.3 worked example: N = 256 -> 0x08400480.
  assert.is(g.idesc, 0x08400480);
  assert.is(gemmFacts(p).idesc, '0x08400480u');
  assert.ok(loweringSteps(p).some((l) => l.includes('idesc 0x08400480)')));
  assert.is(p.threadsPerBlock, 64 + 128);
  assert.is(g.layout.smemBytes, 4 * (384 * 128 + 512 * 4 * 3) + 8 * (2 * 4 + 6) + 16 + 1024);
  assert.ok(p.headers.includes('qgen_sm100_tcgen05.cuh') && p.headers.includes('qgen_gemm_tiles.cuh'));
  const narrow = lowerG({ ...gemm, tiling: { ...gemm.tiling, ctaTile: [128, 128, 256], consumers: 2 } }, 'sm_100a');
  const n = gemmOn(narrow, 'sm_100a');
  assert.equal([n.layout.accBuffers, n.idesc, narrow.threadsPerBlock], [2, 0x08200480, 64 + 256]);
});

test('gemm: sm_120a plan — warp grid, swizzle span, accumulators (PTX-FACTS §5)', () => {
  const gemm: GemmSpec = {
    kind: 'gemm',
    name: 'g',
    a: 'nvfp4',
    b: 'nvfp4',
    layout: 'TN',
    output: 'bf16',
    epilogue: 'alpha',
    tiling: { ctaTile: [128, 128, 128], consumers: 4, stages: 4, cluster: [1, 1], tileOrder: 'swizzle-8' },
  };
  const p = lowerG(gemm, 'sm_120a');
  const L = gemmOn(p, 'sm_120a').layout;
  assert.equal([L.warpsM, L.warpsN, L.warpM, L.warpN], [2, 2, 64, 64]);
  assert.equal([L.chunkBytes, L.chunks, L.atoms], [64, 1, 2]);
  assert.is(p.mapping.elemsPerThread, 128);
  assert.is(p.threadsPerBlock, 5 * 32);
  assert.match(launchDescriptions(p)[0].reads, /TMA, 64-byte swizzle/);
  const deep = lowerG(
    { ...gemm, tiling: { ...gemm.tiling, ctaTile: [64, 64, 512], consumers: 4, stages: 2 } },
    'sm_120a',
  );
  const D = gemmOn(deep, 'sm_120a').layout;
  assert.equal([D.chunkBytes, D.chunks, D.warpsM, D.warpsN], [128, 2, 2, 2]);
});

test('unsupported mappings are refused with a message naming the field', () => {
  // A 16x16 block needs its rotation chunk inside one thread.
  assert.throws(() => lower(quantize({ block: '16x16', hadamard: 128 }), 'sm_90a'), /groupsPerThread/);
  assert.throws(
    () => lower(quantize({ tiling: { threadsPerBlock: 100, rowsPerBlock: 16, groupsPerThread: 1 } }), 'sm_90a'),
    /threadsPerBlock/,
  );
  assert.throws(() => lower(quantize({ name: 'not an identifier' }), 'sm_90a'), /C identifier/);
  // Register admission: 128 elements per thread with a 128-point rotation and MS-EDEN products cannot fit in 255
  // registers; the same thread shape without them can; more threads per block leave fewer registers.
  const eden = { rounding: 'ms-eden', target: 'eden-s', hadamard: 128 } as const;
  const tiling = (groupsPerThread: number, threadsPerBlock: number) => ({
    tiling: { threadsPerBlock, rowsPerBlock: 16, groupsPerThread },
  });
  assert.throws(
    () => lower(quantize({ ...eden, ...tiling(8, 256) }), 'sm_90a'),
    /registers per thread.*groupsPerThread/,
  );
  assert.ok(lower(quantize({ ...tiling(8, 256) }), 'sm_90a'));
  assert.ok(lower(quantize({ ...eden, ...tiling(1, 512) }), 'sm_90a'));
  assert.throws(() => lower(quantize({ ...eden, ...tiling(2, 512) }), 'sm_90a'), /512 threads per block leave 128/);
});

test('every coverage spec lowers on every arch, with launch kernels in its own namespace', () => {
  for (const arch of ARCHS as readonly Arch[]) {
    for (const spec of coverageSpecs()) {
      const p = lower(spec, arch);
      assert.ok(p.launches.length >= 1);
      for (const l of p.launches) assert.ok(l.kernel.startsWith(`qgen_${spec.name}_impl::`), l.kernel);
    }
  }
});

test('MS-EDEN correction sums: per-128 in the input domain, per-16 in scaled units (NUMERICS §5.6)', () => {
  const eden = { rounding: 'ms-eden', target: 'eden-s', hadamard: 128, tensorScale: 'one-pass' } as const;
  const per16 = lowerQ(quantize({ ...eden }), 'sm_90a');
  const per128 = lowerQ(
    quantize({
      ...eden,
      correction: 'per-128',
      tiling: { threadsPerBlock: 256, rowsPerBlock: 16, groupsPerThread: 2 },
    }),
    'sm_90a',
  );
  assert.equal(
    [per16.quantize.correction, quantizeFacts(per16).roundingPolicy],
    ['per-16', 'qgen_rounding_ms_eden<false>'],
  );
  assert.equal(
    [per128.quantize.correction, quantizeFacts(per128).roundingPolicy],
    ['per-128', 'qgen_rounding_ms_eden<true>'],
  );
  assert.is(quantizeFacts(per128).modePolicy, 'qgen_mode_one_pass');
  const caller = lowerQ(
    quantize({
      ...eden,
      tensorScale: 'caller',
      ceiling: 256,
      correction: 'per-128',
      tiling: { threadsPerBlock: 256, rowsPerBlock: 16, groupsPerThread: 2 },
    }),
    'sm_90a',
  );
  assert.equal(
    [quantizeFacts(caller).modePolicy, quantizeFacts(caller).roundingPolicy],
    ['qgen_mode_caller', 'qgen_rounding_ms_eden<true>'],
  );
  assert.match(steps(per128).join('\n'), /input domain/);
});

test('memory paths: transposed bf16 staged through shared memory, row-major bf16 prefetched only where it is free', () => {
  const g2 = { threadsPerBlock: 256, rowsPerBlock: 16, groupsPerThread: 2 };
  const t = lowerQ(
    quantize({ rounding: 'sr', target: 'sr-v', hadamard: 16, transposedInput: true, tiling: g2 }),
    'sm_90a',
  );
  assert.is(t.quantize.load, 'bf16-transposed-tile');
  assert.match(steps(t).join('\n'), /256-row x 32-column tile through shared memory/);
  // Requant (NVFP4 input) stages dequantized f32 values when E is whole 32-code pieces; 16x16 blocks read directly.
  const rq = lowerQ(quantize({ input: 'nvfp4', transposedInput: true, hadamard: 16, tiling: g2 }), 'sm_90a');
  assert.is(rq.quantize.load, 'nvfp4-transposed-tile');
  assert.is(quantizeFacts(rq).inputPolicy, 'qgen_input_nvfp4_transposed_tile');
  assert.match(steps(rq).join('\n'), /256-row x 32-column tile through shared memory \(16-byte code loads/);
  assert.is(
    lowerQ(
      quantize({ input: 'nvfp4', transposedInput: true, hadamard: 16, tiling: { ...g2, groupsPerThread: 1 } }),
      'sm_90a',
    ).quantize.load.endsWith('-tile'),
    false,
  );
  assert.is(
    lowerQ(quantize({ block: '16x16', transposedInput: true }), 'sm_90a').quantize.load.endsWith('-tile'),
    false,
  );
  // A tile of more than 32 KiB (E * threads * 2 bytes) is not staged.
  assert.is(
    lowerQ(
      quantize({ transposedInput: true, tiling: { threadsPerBlock: 512, rowsPerBlock: 16, groupsPerThread: 4 } }),
      'sm_90a',
    ).quantize.load.endsWith('-tile'),
    false,
  );
  assert.is(lowerQ(quantize({ tiling: g2 }), 'sm_90a').quantize.load, 'bf16-row-prefetch');
  // Four-over-six reads directly on every arch; NVFP4 SR too (94 registers with the prefetch, 62-64 without); MXFP4 SR
  // keeps the prefetch. (A cp.async row path for both ran slower on an H100 and was removed: bench/NOTES.md.)
  for (const arch of ['sm_90a', 'sm_100a', 'sm_120a'] as const)
    assert.is(lowerQ(quantize({ rounding: 'four-six', tiling: g2 }), arch).quantize.load, 'bf16-row');
  assert.is(lowerQ(catalogSpec('nvidia_e_sr', 'sm_90a') as QuantizeSpec, 'sm_90a').quantize.load, 'bf16-row');
  assert.is(
    lowerQ(
      quantize({ rounding: 'sr', scaleGroup: { size: 32, format: 'ue8m0' }, tensorScale: 'none', tiling: g2 }),
      'sm_90a',
    ).quantize.load,
    'bf16-row-prefetch',
  );
  assert.is(
    lowerQ(quantize({ rounding: 'ms-eden', target: 'eden-s', hadamard: 128, tiling: g2 }), 'sm_90a').quantize.load,
    'bf16-row',
  );
  assert.is(
    lowerQ(quantize({ tiling: { threadsPerBlock: 256, rowsPerBlock: 16, groupsPerThread: 4 } }), 'sm_90a').quantize
      .load,
    'bf16-row',
  );
});

test('loop state: re-read per iteration for MS-EDEN and SR (no prefetch), registers for the others', () => {
  const state = (name: string) => lowerQ(catalogSpec(name, 'sm_90a') as QuantizeSpec, 'sm_90a').quantize.loopState;
  assert.is(state('quartet2_et_mseden_rht128'), 'recomputed');
  assert.is(state('quartet2_wt_rq_mseden_rht128'), 'recomputed');
  assert.is(state('nvidia_et_sr_rht16'), 'recomputed');
  assert.is(state('nvidia_xt_rtn_rht16'), 'registers');
  assert.is(state('nvidia46_wt_46'), 'registers');
  assert.is(state('quartet2_e_mseden_rht128'), 'recomputed'); // row input
  assert.is(state('nvidia_x_rtn'), 'registers'); // prefetching row input
  assert.is(state('nvidia_e_sr'), 'recomputed'); // SR row input without the register prefetch: 64 registers
  assert.is(state('quartet2_x_46'), 'recomputed'); // one-pass 4/6, software E2M1: 64 registers
  assert.is(state('nvidia46_x_46'), 'registers'); // computed tensor scale: no gain
  const facts = (name: string) => quantizeFacts(lowerQ(catalogSpec(name, 'sm_90a') as QuantizeSpec, 'sm_90a'));
  assert.is(facts('quartet2_et_mseden_rht128').loopStateRecomputed, true);
  assert.is(facts('nvidia_xt_rtn_rht16').loopStateRecomputed, false);
});

test('launch bounds: several blocks per SM within the register budget, never fewer than 1', () => {
  const g2 = { threadsPerBlock: 256, rowsPerBlock: 16, groupsPerThread: 2 };
  const bounds = (p: KernelPlan) => String(quantizeFacts(p as QuantizePlan).launchBounds).replace('Config::', '');
  assert.is(bounds(lower(quantize({ rounding: 'four-six', tiling: g2 }), 'sm_90a')), 'kThreads, 3'); // <= 85 registers
  assert.is(
    bounds(lower(quantize({ rounding: 'ms-eden', target: 'eden-s', hadamard: 128, tiling: g2 }), 'sm_90a')),
    'kThreads, 2',
  ); // <= 128
  assert.is(
    bounds(
      lower(
        quantize({ rounding: 'ms-eden', target: 'eden-s', hadamard: 128, tiling: { ...g2, groupsPerThread: 4 } }),
        'sm_90a',
      ),
    ),
    'kThreads, 1',
  );
  assert.is(
    bounds(lower(quantize({ tiling: { ...g2, threadsPerBlock: 512, groupsPerThread: 1 } }), 'sm_90a')),
    'kThreads, 1',
  );
  // tiling.minBlocksPerSm sets it (the catalog's MS-EDEN kernels: 128 x 6).
  assert.is(
    bounds(
      lower(
        quantize({ rounding: 'ms-eden', target: 'eden-s', hadamard: 128, tiling: { ...g2, minBlocksPerSm: 3 } }),
        'sm_90a',
      ),
    ),
    'kThreads, 3',
  );
  assert.is(bounds(lower(catalogSpec('quartet2_wt_rq_mseden_rht128', 'sm_90a')!, 'sm_90a')), 'kThreads, 6');
  assert.is(bounds(lower(catalogSpec('quartet2_e_mseden_rht128', 'sm_90a')!, 'sm_90a')), 'kThreads, 6');
  // One-pass 4/6 from a row input fits 64 registers with the software E2M1 rounding (sm_90a) only.
  const x46 = catalogSpec('quartet2_x_46', 'sm_90a')!;
  assert.is(bounds(lower(x46, 'sm_90a')), 'kThreads, 4');
  assert.is(bounds(lower(x46, 'sm_100a')), 'kThreads, 3');
  assert.is(bounds(lower(catalogSpec('nvidia46_x_46', 'sm_90a')!, 'sm_90a')), 'kThreads, 3');
  for (const arch of ARCHS) assert.is(bounds(lower(catalogSpec('nvidia_e_sr', arch)!, arch)), 'kThreads, 4', arch);
  // The grid of a kernel whose tiling sets minBlocksPerSm is whole waves of it (no last wave of 1 block per SM).
  const grid = (name: string) => lower(catalogSpec(name, 'sm_90a')!, 'sm_90a');
  assert.is((grid('quartet2_e_mseden_rht128') as QuantizePlan).blocksPerSm, 12); // 2 waves of 6 (128 threads)
  assert.is((grid('quartet2_et_mseden_rht128') as QuantizePlan).blocksPerSm, 12); // 2 waves of 6
  assert.is((grid('nvidia_x_rtn') as QuantizePlan).blocksPerSm, 8); // estimated registers: 2048 / 256
  assert.is((grid('quartet2_e_mseden_rht128') as QuantizePlan).quantize.finalizeBlocksPerSm, 16); // pass B: 2048 / 128
  for (const spec of coverageSpecs()) {
    if (spec.kind !== 'quantize') continue;
    const [, minBlocks] = bounds(lower(spec, 'sm_90a')).split(', ').map(Number);
    assert.ok(minBlocks >= 1 && minBlocks * spec.tiling.threadsPerBlock <= 2048, spec.name);
  }
});

test.run();
