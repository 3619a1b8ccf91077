// `test --sanitizers` of the GPU harness: what it accepts, what it refuses, and what the summary line says when a
// sanitizer is skipped (a quick device call must not read as a full suite run).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseSanitizers, sanitizerNote } from '../harness/gpu/suite.ts';

test('--sanitizers: none, one, both (in the order they run), spaces tolerated', () => {
  assert.equal(parseSanitizers('none'), []);
  assert.equal(parseSanitizers('racecheck'), ['racecheck']);
  assert.equal(parseSanitizers('racecheck,memcheck'), ['memcheck', 'racecheck']);
  assert.equal(parseSanitizers('memcheck, racecheck'), ['memcheck', 'racecheck']);
});

test('--sanitizers: an unknown tool or an empty list is refused with a line naming the option', () => {
  for (const bad of ['', 'initcheck', 'memcheck,', 'all'])
    assert.throws(
      () => parseSanitizers(bad),
      (e: Error) => e.message.startsWith('test: --sanitizers') && e.message.includes('allowed: none'),
    );
});

test('summary note: both runs plain; skipped tools named in capitals', () => {
  assert.is(sanitizerNote(['memcheck', 'racecheck']), '2 sanitizer runs');
  assert.is(sanitizerNote(['memcheck']), '1 sanitizer run; racecheck SKIPPED (--sanitizers)');
  assert.is(sanitizerNote([]), '0 sanitizer runs; memcheck and racecheck SKIPPED (--sanitizers)');
});

test.run();
