// harness/gpu/stalls.ts: the summary of an ncu source page (per-SASS-line stall samples) adds up per function, orders
// the instructions by samples, and reads quoted CSV fields with commas inside (SASS operands).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { summarizeSourcePage } from '../harness/gpu/stalls.ts';

const HEADER =
  '"Address","Source","Warp Stall Sampling (All Samples)","Instructions Executed",' +
  '"L2 Theoretical Sectors Global Excessive","stall_long_sb","stall_wait","stall_long_sb (Not Issued)"';
const page = [
  '# qgen-provenance/1 {}',
  '"Kernel Name","k::pass_a(args)",',
  HEADER,
  '"0x10","LDG.E.128 R4, [R2.64]","10","100","0","2","8","2"',
  '"0x20","@P0 LOP3.LUT R1, R4, R5, RZ, 0x3c, !PT","30","100","7","27","3","27"',
  '"Kernel Name","k::pass_b(args)",',
  HEADER,
  '"0x30","BSYNC B1","5","50","0","0","5","0"',
].join('\n');

test('totals, shares and order per captured function', () => {
  const md = summarizeSourcePage(page);
  const [a, b] = md.split('## k::pass_b(args)');
  assert.ok(a.includes('## k::pass_a(args)'));
  assert.ok(a.includes('40 stall samples, 200 warp instructions executed, 7 excessive L2 sectors'));
  assert.ok(a.includes('| long_sb | 72.5% |'), a); // (2 + 27) / 40; the "(Not Issued)" column is not counted
  assert.ok(a.includes('| LOP3 | 75.0% | 50.0% |'), a); // predicate stripped, modifiers dropped
  const lop = a.indexOf('`@P0 LOP3.LUT R1, R4, R5, RZ, 0x3c, !PT`'),
    ldg = a.indexOf('`LDG.E.128 R4, [R2.64]`');
  assert.ok(lop > 0 && ldg > lop, 'instructions ordered by samples, commas inside a field kept');
  assert.ok(b.includes('5 stall samples, 50 warp instructions executed'));
  assert.ok(b.includes('| wait | 100.0% |'));
});

test.run();
