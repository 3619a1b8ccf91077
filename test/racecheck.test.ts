// racecheck reports (harness/gpu/racecheck.ts): only the raw-stage hand-off analysed in bench/NOTES.md is accepted,
// anything else fails; and the sm_90a GEMMs keep the barriers that analysis relies on.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { isRawStageReuse, judgeRacecheck, parseRacecheck } from '../harness/gpu/racecheck.ts';

const FN = 'qgen_gemm_nvfp4_f32_impl::';
const READ_A =
  `${FN}load_a_fragments(const unsigned char *, const qgen_gemm_grid &, int, const qgen_step_place &, ` +
  'int, unsigned int (&)[1][16])+0x1950 in gemm_nvfp4_f32.cu:202';
const TMA =
  `${FN}qgen_tma_load_2d(void *, const CUtensorMap *, int, int, unsigned long *)+0x3f0 ` + 'in qgen_async.cuh:45';
const B_TILE_WRITE =
  `${FN}dequantize_b_row(const unsigned char *, unsigned int, unsigned char *, int, int, int)+0x800 ` +
  'in gemm_nvfp4_f32.cu:158';

/** A racecheck log in compute-sanitizer's format (the second line of a record as in the 085eb0d grid-capped run). */
function log(records: Array<[string, string, string, string, number]>, displayed = records.length): string {
  return [
    '========= COMPUTE-SANITIZER',
    ...records.flatMap(([k1, at1, k2, at2, n]) => [
      `========= Error: Race reported between ${k1} access at ${at1}`,
      `=========     and ${k2} access at ${at2} [${n} hazards]`,
      '========= ',
    ]),
    `========= RACECHECK SUMMARY: ${displayed} hazards displayed (${displayed} errors, 0 warnings)`,
    '',
  ].join('\n');
}

test('racecheck: a producer-decode decoder read of a raw stage against its refill is the analysed hand-off', () => {
  const read =
    'qgen_gemm_nvfp4_bf16_pd_impl::decode_task<128>(const unsigned char *, const unsigned char *, unsigned char *, ' +
    'int, int, int, int, const qgen_gemm_nvfp4_bf16_pd_impl::DecoderLanes &)+0x90 in gemm_nvfp4_bf16_pd.cu:150';
  assert.ok(isRawStageReuse(parseRacecheck(log([['Write', TMA, 'Read', read, 32]]))[0]));
  // its writes of the bf16 tile ring are not raw-stage reads
  const write = read.replace('decode_task<128>', 'qgen_fp4_decode_row_sw128').replace('gemm_nvfp4_bf16_pd.cu', 'x.txt');
  assert.not.ok(isRawStageReuse(parseRacecheck(log([['Write', TMA, 'Read', write, 32]]))[0]));
});

test('racecheck: a pipelined producer-decode load_task read of a raw stage against its refill is the hand-off', () => {
  const read =
    'qgen_gemm_nvfp4_bf16_128x256x64_pdp_impl::load_task(qgen_gemm_nvfp4_bf16_128x256x64_pdp_impl::Task &, ' +
    'const unsigned char *, unsigned int, int, int, const qgen_gemm_nvfp4_bf16_128x256x64_pdp_impl::DecoderLanes &)' +
    '+0x70 in gemm_nvfp4_bf16_128x256x64_pdp.cu:160';
  assert.ok(isRawStageReuse(parseRacecheck(log([['Write', TMA, 'Read', read, 32]]))[0]));
  // its decode_task writes the bf16 tile ring (registers in, stores out): a write is never a raw-stage read
  const write = read.replace('load_task', 'decode_task');
  assert.not.ok(isRawStageReuse(parseRacecheck(log([['Write', TMA, 'Write', write, 32]]))[0]));
});

test('racecheck: a register-A consumer scale read attributed to the multiplier helper is the hand-off', () => {
  // the record of the H100 run at a815b14 (gemm_nvfp4_bf16_128x256x64_pdr), verbatim
  const bulk = 'qgen_bulk_load(void *, const void *, unsigned int, unsigned long *)+0xe510 in qgen_async.cuh:57';
  const read = 'qgen_fp4_row_multipliers_x2(unsigned int, int, unsigned int (&)[4])+0x890 in qgen_fp4_bf16.cuh:115';
  assert.ok(isRawStageReuse(parseRacecheck(log([['Write', bulk, 'Read', read, 992]]))[0]));
  // the same helper named in another file, or as a writer, is not
  assert.not.ok(
    isRawStageReuse(parseRacecheck(log([['Write', bulk, 'Read', read.replace('qgen_fp4_bf16', 'x'), 1]]))[0]),
  );
  assert.not.ok(isRawStageReuse(parseRacecheck(log([['Write', bulk, 'Write', read, 1]]))[0]));
});

test('racecheck: records are parsed with both accesses and the hazard count', () => {
  const recs = parseRacecheck(log([['Write', TMA, 'Read', READ_A, 496]]));
  assert.is(recs.length, 1);
  assert.equal(recs[0].first, { kind: 'Write', at: TMA });
  assert.equal(recs[0].second, { kind: 'Read', at: READ_A });
  assert.is(recs[0].hazards, 496);
  assert.ok(isRawStageReuse(recs[0]));
});

test('racecheck: the raw-stage hand-off is listed as analysed, anything else fails', () => {
  const analysed = judgeRacecheck(
    log([
      ['Write', TMA, 'Read', READ_A, 496],
      ['Read', READ_A, 'Write', TMA, 3],
    ]),
  );
  assert.ok(analysed.ok, analysed.summary);
  assert.match(analysed.summary, /2 reports, 2 analysed as raw-stage reuse/);
  // a consumer read against another consumer's generic store into shared memory is not the hand-off
  const other = judgeRacecheck(
    log([
      ['Write', TMA, 'Read', READ_A, 496],
      ['Write', B_TILE_WRITE, 'Read', READ_A, 8],
    ]),
  );
  assert.not.ok(other.ok);
  assert.match(other.summary, /1 NOT analysed/);
  assert.match(other.lines.join('\n'), /NOT analysed: Error, Write at .*dequantize_b_row/);
  // two reads, or a write by the copy against a read outside the GEMM's raw-stage readers, are not it either
  assert.not.ok(judgeRacecheck(log([['Read', TMA, 'Read', READ_A, 1]])).ok);
  assert.not.ok(judgeRacecheck(log([['Write', TMA, 'Read', READ_A.replace('load_a_fragments', 'store_tile'), 1]])).ok);
  // records the parser missed (summary says more) or no summary at all: failure
  assert.not.ok(judgeRacecheck(log([['Write', TMA, 'Read', READ_A, 496]], 2)).ok);
  assert.not.ok(judgeRacecheck('========= COMPUTE-SANITIZER\n').ok);
  const clean = judgeRacecheck(log([]));
  assert.ok(clean.ok);
  assert.is(clean.summary, 'clean (0 hazards)');
});

/** The body of `__device__ ... name(...) { ... }` up to the next top-level closing brace. */
function functionBody(src: string, name: string): string {
  const start = src.search(new RegExp(`\\b${name}\\([^;]*?\\)\\s*\\{`));
  assert.ok(start >= 0, `${name} not found`);
  const end = src.indexOf('\n}\n', start);
  return src.slice(start, end);
}

const dir = path.join('generated', 'sm_90a');
// The operand-swapped GEMMs (_swapab) and the producer-decode ones (_pd, _pdp, _pdc, _pdr, _pdr2, _pdr3) have their
// own hand-offs, checked in test/gemm-swap.test.ts and test/gemm-pd.test.ts, -pdp, -pdc, -pdr, -pdr2, -pdr3.test.ts.
const gemms = readdirSync(dir).filter(
  (f) => /^gemm_\w+\.cu$/.test(f) && !/_swapab(_c\d+)?(_f\d)?\.cu$/.test(f) && !/_pd([pc]|r[23]?)?\.cu$/.test(f),
);

test('sm_90a GEMMs keep the raw-stage hand-off that bench/NOTES.md analyses for racecheck', () => {
  assert.ok(gemms.length >= 2);
  for (const f of gemms) {
    const src = readFileSync(path.join(dir, f), 'utf8');
    // one raw_empty arrival per consumer warp
    assert.match(src, /constexpr int kConsumerThreads = 128 \* kConsumers;/, f);
    assert.match(src, /qgen_mbar_init\(&bar\.raw_empty\[i\], 4 \* kConsumers\);/, f);
    // the producer waits for the stage's release before any copy into it
    const loads = functionBody(src, 'issue_loads');
    const wait = loads.indexOf('qgen_mbar_wait(&bar.raw_empty[slot]');
    assert.ok(wait >= 0 && wait < loads.indexOf('qgen_tma_load_2d(') && wait < loads.indexOf('qgen_bulk_load('), f);
    // every lane's reads of the stage, then __syncwarp, then lane 0's arrival
    const prepA = functionBody(src, 'prepare_a');
    const order = [
      'load_a_fragments(',
      '__syncwarp();',
      'if ((threadIdx.x & 31) == 0) qgen_mbar_arrive(&bar.raw_empty[',
    ].map((s) => prepA.indexOf(s));
    assert.ok(
      order.every((i, j) => i >= 0 && (j === 0 || i > order[j - 1])),
      `${f}: ${order}`,
    );
    // the B reads of a step (prepare_b) come before that step's arrival (prepare_a) in every consumer thread
    const kernel = functionBody(src, 'gemm');
    for (const step of ['0', 'step + 1']) {
      const b = kernel.indexOf(`prepare_b(smem, bar, g, ${step},`);
      const a = kernel.indexOf(`prepare_a(smem, bar, g, ${step},`);
      assert.ok(b >= 0 && a > b, `${f}: prepare_b(${step}) before prepare_a(${step})`);
    }
    // the raw-stage readers run only inside prepare_b / prepare_a
    assert.is(src.split('dequantize_b(smem').length - 1, 1, f);
    assert.is(src.split('load_a_fragments(smem').length - 1, 1, f);
  }
});

test.run();
