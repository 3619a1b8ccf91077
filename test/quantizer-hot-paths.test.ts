// Host builds of the MS-EDEN / requant hot-path primitives (runtime/qgen_load_nvfp4.cuh and friends) checked
// bit for bit against oracles written here from NUMERICS: the faster spellings must give exactly the contract's
// values on every input they can see.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { compileCuda } from '../harness/nvcc.ts';

const root = fileURLToPath(new URL('../', import.meta.url));
const runtimeDir = path.join(root, 'runtime');

const PROGRAM = `#include <cstdio>
#include <cstdint>
#include "qgen_load_nvfp4.cuh"
int main() {

  // NUMERICS §5.9 pair decode: every code (two words cover 0..15) x every scale byte x each t on stdin.
  unsigned t_bits;
  const uint32_t words[2] = {0x76543210u, 0xFEDCBA98u};
  while (scanf("%x", &t_bits) == 1) {
    const float t = qgen_f32_from_bits(t_bits);
    const float t_mul = qgen_mul(t, 256.0f);
    for (uint32_t s = 0; s < 256; ++s) {
      const float s_mul = qgen_nvfp4_scale_multiplier(s);
      // The staged rotation's sign flip negates the multiplier: it must give exactly the negated values.
      const float s_neg = qgen_f32_from_bits(qgen_f32_bits(s_mul) ^ 0x80000000u);
      for (int w = 0; w < 2; ++w) {
        float v[8], n[8];
        for (int j = 0; j < 4; ++j) {
          qgen_nvfp4_pair_values(words[w], j, s_mul, t_mul, v[j], v[j + 4]);
          qgen_nvfp4_pair_values(words[w], j, s_neg, t_mul, n[j], n[j + 4]);
        }
        for (int i = 0; i < 8; ++i) {
          const bool negated = v[i] != v[i] ? n[i] != n[i] : qgen_f32_bits(n[i]) == (qgen_f32_bits(v[i]) ^ 0x80000000u);
          printf("%08x%s%c", qgen_f32_bits(v[i]), negated ? "" : "!", i == 7 ? '\\n' : ' ');
        }
      }
    }
  }
  return 0;
}
`;

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const bitsOf = (x: number) => ((f32[0] = x), u32[0]);
const fromBits = (b: number) => ((u32[0] = b >>> 0), f32[0]);

const E2M1 = [0, 0.5, 1, 1.5, 2, 3, 4, 6];
/** NUMERICS §2.1 value of a code: -0 for code 8. */
const e2m1 = (c: number) => (c & 8 ? -E2M1[c & 7] : E2M1[c & 7]);
/** NUMERICS §2.3 value of an E4M3 byte (bias 7, subnormals m 2^-9, 0x7F / 0xFF NaN). */
function e4m3(b: number): number {
  if ((b & 0x7f) === 0x7f) return NaN;
  const e = (b >> 3) & 15,
    m = b & 7;
  const v = e === 0 ? m * 2 ** -9 : (1 + m / 8) * 2 ** (e - 7);
  return b & 0x80 ? -v : v;
}

test('NVFP4 pair decode (requant tile) is f32(f32(e2m1 * s) * t) for every code and scale; -s negates it', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qgen-hot-'));
  const src = path.join(dir, 'hot.cu');
  writeFileSync(src, PROGRAM);
  const exe = path.join(dir, 'hot');
  await compileCuda({ sources: [src], arch: 'sm_90a', out: exe, output: 'executable', includeDirs: [runtimeDir] });
  // t: ordinary, negative, a power of two, subnormal, tiny enough to flush some products to subnormals / zero, large
  // enough to overflow some products, the tile's bound 2^119 and its negative, zero and -0.
  const ts = [1, -1, 0.75, 2 ** -20, 1.234567e-3, 2 ** -140, 1e-40, 3.1e-42, 2 ** 110, 1.7e35, 2 ** 119, -(2 ** 119)];
  ts.push(0, -0, fromBits(0x3f9d70a4), fromBits(0x7e7fffff) / 2 ** 8);
  const input = ts.map((t) => bitsOf(t).toString(16)).join('\n') + '\n';
  const { stdout } = await execa(exe, [], { input });
  const lines = stdout.trim().split('\n');
  assert.is(lines.length, ts.length * 256 * 2);
  let bad = 0,
    checked = 0,
    negationsBroken = 0;
  const first: string[] = [];
  ts.forEach((t, ti) => {
    const tf = Math.fround(t);
    for (let s = 0; s < 256; ++s)
      for (let w = 0; w < 2; ++w) {
        const fields = lines[(ti * 256 + s) * 2 + w].split(' ');
        negationsBroken += fields.filter((f) => f.endsWith('!')).length;
        const got = fields.map((h) => parseInt(h, 16));
        for (let i = 0; i < 8; ++i) {
          // q s is exact in binary32 and q s t exact in binary64 (6 + 24 significant bits): one rounding by fround.
          const want = Math.fround(Math.fround(e2m1(8 * w + i) * e4m3(s)) * tf);
          const ok = Number.isNaN(want) ? Number.isNaN(fromBits(got[i])) : got[i] === bitsOf(want);
          checked++;
          if (!ok) {
            bad++;
            if (first.length < 5) first.push(`t=${tf} s=0x${s.toString(16)} code=${8 * w + i}: ${got[i].toString(16)}`);
          }
        }
      }
  });
  assert.is(checked, ts.length * 256 * 16);
  assert.is(bad, 0, first.join('; '));
  assert.is(negationsBroken, 0, 'a negated multiplier must give exactly the negated value');
});

test.run();
