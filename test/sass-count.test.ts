// scripts/sass-count.mjs (harness/sass_count.ts): the SASS parser, loop finder and per-element counts on a small
// hand-written excerpt in cuobjdump's format (not produced by the tool), and its input checks.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  countRows,
  elementsPerIteration,
  findLoops,
  main,
  mainLoop,
  parseResourceUsage,
  parseSass,
  shortName,
} from '../harness/sass_count.ts';

// One kernel: setup (0x00-0x10); the outer loop 0x20-0xe0 with an if/else (0x40 taken: 0x90-0xa0, else 0x50-0x80),
// an inner loop 0xb0-0xc0 and a divergent-warp fallback (BRA.DIV to 0x130, which jumps back into the loop); EXIT,
// the trap self-branch, a NOP, the fallback and a subroutine (CALL target) with its own backward branch.
const OP = (address: number, text: string) =>
  `        /*${address.toString(16).padStart(4, '0')}*/   ${text} ;   /* 0x000000000000000000000000 */\n` +
  '                                                   /* 0x000fc80000000000 */';
const SASS = [
  '',
  '\tcode for sm_90a',
  '\t\tFunction : _ZN11qgen_k_impl6pass_aE18qgen_quantize_argsl',
  '\t.headerflags\t@"EF_CUDA_TEXMODE_INDEPENDENT"',
  OP(0x00, 'LDC R1, c[0x0][0x28]'),
  OP(0x10, 'ISETP.GE.AND P0, PT, R0, UR4, PT'),
  OP(0x20, 'LDG.E.128 R4, desc[UR6][R2.64]'),
  OP(0x30, 'BRA.DIV UR4, 0x130'),
  OP(0x40, '@P1 BRA 0x90'),
  OP(0x50, 'FMUL R5, R4, R4'),
  OP(0x60, 'CALL.REL.NOINC 0x150'),
  OP(0x70, 'FADD R5, R5, R4'),
  OP(0x80, 'BRA 0xb0'),
  OP(0x90, 'FADD R5, R4, R4'),
  OP(0xa0, 'FADD R5, R5, 1'),
  OP(0xb0, 'IADD3 R7, R7, 0x1, RZ'),
  OP(0xc0, '@!P2 BRA 0xb0'),
  OP(0xd0, 'STG.E desc[UR6][R2.64], R5'),
  OP(0xe0, '@!P0 BRA 0x20'),
  OP(0xf0, 'EXIT'),
  OP(0x100, 'BRA 0x100'),
  OP(0x110, 'NOP'),
  OP(0x120, 'NOP'),
  OP(0x130, 'WARPSYNC.ALL'),
  OP(0x140, 'BRA 0x40'),
  OP(0x150, 'IADD3 R8, R8, -0x1, RZ'),
  OP(0x160, '@P3 BRA 0x150'),
  OP(0x170, 'RET.REL.NODEC R20 0x0'),
  '\t\t..........',
  '',
  '\t\tFunction : _ZN11qgen_k_impl6pass_bE18qgen_quantize_argsl',
  OP(0x00, 'STL [R1], R2'),
  OP(0x10, 'LDL R3, [R1]'),
  OP(0x20, 'EXIT'),
].join('\n');

const USAGE = [
  'Resource usage:',
  ' Common:',
  '  GLOBAL:0',
  ' Function _ZN11qgen_k_impl6pass_aE18qgen_quantize_argsl:',
  '  REG:80 STACK:0 SHARED:0 LOCAL:0 CONSTANT[0]:648 TEXTURE:0 SURFACE:0 SAMPLER:0',
  ' Function _ZN11qgen_k_impl6pass_bE18qgen_quantize_argsl:',
  '  REG:40 STACK:8 SHARED:0 LOCAL:8 CONSTANT[0]:648 TEXTURE:0 SURFACE:0 SAMPLER:0',
].join('\n');

test('sass-count: functions, opcodes without predicates, branch targets', () => {
  const fns = parseSass(SASS);
  assert.equal(
    fns.map((f) => [shortName(f.name), f.instructions.length]),
    [
      ['qgen_k_impl::pass_a', 24],
      ['qgen_k_impl::pass_b', 3],
    ],
  );
  const a = fns[0].instructions;
  assert.equal(a[4], { address: 0x40, opcode: 'BRA', target: 0x90, conditional: true });
  assert.equal(a[8], { address: 0x80, opcode: 'BRA', target: 0xb0, conditional: false });
  assert.is(a[3].target, null, 'BRA.DIV is not followed');
  assert.is(a[2].opcode, 'LDG.E.128');
});

test('sass-count: natural loops, nesting and one-pass path lengths', () => {
  const loops = findLoops(parseSass(SASS)[0]);
  assert.equal(
    loops.map((l) => [l.start, l.end, l.body, l.minPath, l.maxPath, l.depth]),
    [
      // outer: 0x20..0xe0 = 13 instructions; paths through the else (0x50-0x80, 4) or the if (0x90-0xa0, 2)
      [0x20, 0xe0, 13, 9, 11, 0],
      [0xb0, 0xc0, 2, 2, 2, 1],
    ],
  );
  assert.is(mainLoop(loops)?.start, 0x20);
});

test('sass-count: rows with registers, local memory, spill instructions and elements per iteration', () => {
  const source = 'struct Config {\n  static constexpr int kElems = 32;   // elements\n};\n';
  const rows = countRows('k.cu', SASS, USAGE, source, 8);
  assert.equal(
    rows.map((r) => [r.kernel, r.total, r.elementsPerIteration, r.registers, r.stack, r.local, r.spillInstructions]),
    [
      ['qgen_k_impl::pass_a', 22, 32, 80, 0, 0, 0],
      ['qgen_k_impl::pass_b', 3, 128, 40, 8, 8, 2],
    ],
  );
  assert.equal(elementsPerIteration('qgen_g_impl::gemm', source, 8), { elements: null, from: '-' });
  // the dequantize kernel's kElems is a namespace constant of templates/dequantize.cu.hbs
  const dequantize = 'constexpr int kThreads = 256;\nconstexpr int kElems = 32;  // consecutive elements\n';
  assert.equal(elementsPerIteration('qgen_d_impl::dequantize', dequantize, 8), { elements: 32, from: 'kElems' });
  assert.equal(parseResourceUsage(USAGE).get('_ZN11qgen_k_impl6pass_aE18qgen_quantize_argsl')?.registers, 80);
});

test('sass-count: bad arguments are one-line errors with exit code 2', async () => {
  const errors: string[] = [];
  const original = console.error;
  console.error = (line: string) => errors.push(line);
  try {
    assert.is(await main(['--arch', 'sm_80']), 2);
    assert.is(await main(['--only', '(']), 2);
    assert.is(await main(['--out', 'table.txt']), 2);
    assert.is(await main(['--frobnicate']), 2);
  } finally {
    console.error = original;
  }
  assert.is(errors.length, 4);
  assert.match(errors[0], /^sass-count: --arch sm_80; allowed: sm_90a, sm_100a, sm_120a$/);
  assert.match(errors[1], /--only \(: not a valid regular expression/);
  assert.match(errors[2], /--out table\.txt; allowed: a path ending in \.md/);
  assert.ok(errors.every((e) => !e.includes('\n')));
});

test.run();
