// `qgen explain`: a kernel spec as a readable plan — its numerics in words, citing runtime/NUMERICS.md, then the
// lowering that lower/lower.ts produces for the arch.
import type { Arch, DequantizeSpec, GemmSpec, KernelSpec, QuantizeSpec } from '../dsl/types.ts';
import {
  CEILING_EDEN,
  E2M1_MAX,
  S_EDEN,
  STREAM_ELEMENT_SR,
  STREAM_SCALE_SR,
  STREAM_SIGNS,
  V_SR,
} from '../dsl/constants.ts';
import { gemmSmemBytes } from '../validate/validate.ts';
import { lower, type KernelPlan } from '../lower/lower.ts';
import { launchSummary, loweringSteps } from '../render/explain.ts';

type Line = [label: string, text: string];

function targetWords(spec: QuantizeSpec): string {
  if (spec.scaleGroup.size === 32) return `6 (MXFP4 scales are powers of two >= amax/6; §5.8)`;
  switch (spec.rounding) {
    case 'rtn':
      return `T = ${E2M1_MAX} (the largest E2M1 magnitude; §5.3)`;
    case 'sr':
      return `T = V_sr = 6*16/17 = ${V_SR} (so SR never clips after the E4M3 scale rounding; §5.4)`;
    case 'four-six':
      return `two candidates, T = 6 and T = 4 (§5.5)`;
    case 'ms-eden':
      return `T = s_eden = 6/0.988125 = ${S_EDEN} (RTN clips slightly; §5.6)`;
  }
}

function inputWords(spec: QuantizeSpec): string {
  if (spec.input === 'nvfp4') {
    return (
      'an NVFP4 tensor A [R, C] (codes, scales, t_in) quantized along C; requant: x = f32(f32(e2m1*e4m3)*t_in) ' +
      '(exact), transposed to [C, R] and quantized along R as if x^T were the input (§5.9)'
    );
  }
  return spec.transposedInput
    ? 'bf16, stored transposed ([K, rows] row-major); the output is [rows, K], quantized along K (§1.2)'
    : 'bf16 [rows, K] row-major, quantized along K (§1.2)';
}

function tensorScaleWords(spec: QuantizeSpec): string {
  const C = spec.ceiling;
  const tRef =
    spec.rounding === 'four-six' ? 6 : spec.rounding === 'sr' ? 'V_sr' : spec.rounding === 'ms-eden' ? 's_eden' : 6;
  switch (spec.tensorScale) {
    case 'computed':
      return (
        `computed: t = f32(amax(x) / f32(${tRef}*${C})), 1 when amax is 0; two reads of the input (an amax pass, ` +
        'then quantize) (§5.1)'
      );
    case 'caller':
      return 'given by the caller (binary32 > 0, finite); group scales saturate at 448 (§5.1)';
    case 'one-pass':
      return (
        `one-pass (post hoc range alignment): pass A quantizes each group against its P4 proxy scale ` +
        `p_g = RN_P4(f32(amax_g/T)) and reduces m = max c_g; pass B sets t = 2^k, the smallest with m/2^k <= ${C}, and ` +
        'writes s_g = RN_E4M3(f32(c_g/t)) (§5.1, §2.5)'
      );
    case 'none':
      return 'none (MXFP4: t = 1; §5.8)';
  }
}

function roundingWords(spec: QuantizeSpec): string[] {
  const mx = spec.scaleGroup.size === 32;
  const scale = mx
    ? 's_g = RP_UE8M0(f32(amax_g/6)) (1.0 for zero groups; §5.8, §2.6)'
    : spec.tensorScale === 'one-pass'
      ? 'the proxy p_g stands for s_g*t in pass A (§5.1)'
      : 's_g = RN_E4M3(f32(amax_g / f32(T*t))) (§5.1, §2.3)';
  const inv = mx
    ? 'v_i = f32(x_i * (1/s_g)) (exact)'
    : spec.tensorScale === 'one-pass'
      ? 'v_i = f32(x_i * f32(1/p_g))'
      : 'v_i = f32(x_i * f32(1/f32(s_g*t)))';
  switch (spec.rounding) {
    case 'rtn':
      return [`group scale: ${scale}`, `codes: ${inv}; q_i = RN_E2M1(v_i), ties to even, saturating at 6 (§5.3, §2.1)`];
    case 'sr':
      return [
        `group scale: ${scale}`,
        `codes: ${inv}; q_i = SR_E2M1(v_i, r16): up with probability (v-lo)/(hi-lo), ` +
          `r16 from Philox stream ${STREAM_ELEMENT_SR} keyed by seed and the output 16-group index (§5.4, §2.2, §3.2)`,
      ];
    case 'four-six':
      return [
        `group scale: per candidate c in {6, 4}: ${
          spec.tensorScale === 'one-pass'
            ? 'proxy p_c = RN_P4(f32(amax_g/c)) (§5.1)'
            : 's_c = RN_E4M3(f32(amax_g / f32(c*t))) (§5.1)'
        }`,
        `codes: RTN against each candidate's scale; errors e_c = tree16((x_i - q_ci*D_c)^2); candidate 6 is kept iff ` +
          'e_6 <= e_4 (ties and NaN keep 6) (§5.5, §1.3)',
      ];
    case 'ms-eden': {
      const per =
        spec.correction === 'per-128'
          ? 'one S per 128-chunk from tree128 of the same products, shared by its 8 groups'
          : 'one S per 16-group';
      const sr =
        spec.tensorScale === 'one-pass'
          ? `c_g = SR_P4(f32(S_g*p_g)) in pass A; in pass B w = f32(c_g/t), s'_g = w when w >= 2^-6, else SR_E4M3(w) ` +
            '(a second unbiased rounding into the subnormal range)'
          : `s'_g = SR_E4M3(f32(S_g*s_g))`;
      return [
        `group scale: ${scale}`,
        `codes: ${inv}; q_i = RN_E2M1(v_i) — never changed afterwards (§5.3)`,
        `EDEN correction: S_g = f32(tree16(v_i*v_i) / tree16(v_i*q_i)), 1 when the denominator is 0 or S_g is not ` +
          `finite; ${per} (§5.6)`,
        `corrected scale: ${sr}; random bits from Philox stream ${STREAM_SCALE_SR} keyed by seed and the group index (§5.6, §2.4, §3.2)`,
      ];
    }
  }
}

function quantizeLines(spec: QuantizeSpec): Line[] {
  const mx = spec.scaleGroup.size === 32;
  const lines: Line[] = [
    [
      'format',
      mx
        ? 'MXFP4: E2M1 codes, one UE8M0 (power-of-two) scale per 32 elements along K, no tensor scale (§2.1, §2.6)'
        : 'NVFP4: E2M1 codes, one E4M3 scale per 16 elements along K, one fp32 tensor scale t (§2.1, §2.3)',
    ],
    ['input', inputWords(spec)],
    [
      'rotation',
      spec.hadamard === null
        ? 'none'
        : `randomized Hadamard transform on every ${spec.hadamard}-chunk along K: signs eps_j from Philox stream ` +
          `${STREAM_SIGNS} keyed by sign_seed (one vector per sign_seed, shared by both operands of a GEMM; their ` +
          `stochastic draws use their own seeds), fast Walsh-Hadamard in binary32, then * f32(1/sqrt(${spec.hadamard})); ` +
          `natural output order (§4, §3.2)`,
    ],
    [
      'group amax',
      spec.block === '16x16'
        ? 'over a 16x16 block (16 rows x one 16-group); each row stores the block scale in its own slot, so the tensor ' +
          'and its transpose share scales (§5.7, §1.4)'
        : `over ${spec.scaleGroup.size} consecutive elements along K, finite elements only (§1.4)`,
    ],
    ['target', targetWords(spec)],
    ['tensor scale', tensorScaleWords(spec)],
  ];
  if (!mx && spec.tensorScale !== 'caller')
    lines.push([
      'ceiling',
      `C = ${spec.ceiling} (largest group scale; the paper ` +
        `uses 448 for RTN/SR and ${CEILING_EDEN} for 4/6 and MS-EDEN with a computed scale; §5.1)`,
    ]);
  for (const w of roundingWords(spec)) {
    const i = w.indexOf(': ');
    lines.push([w.slice(0, i), w.slice(i + 2)]);
  }
  lines.push(
    [
      'zero groups',
      `amax 0 -> scale 1.0 (${mx ? 'UE8M0 0x7F; §5.8' : 'E4M3 0x38; §5.2'}), codes RN_E2M1(x_i); ` +
        'NaN -> 0x7, ±Inf -> ±6 (§5.2, §2.1)',
    ],
    [
      'output',
      `packed codes [rows, K/2] bytes, low index in bits 3:0 (§2.7); scales in the ${spec.scaleLayout} layout ` +
        `(§7)${mx ? '' : '; the fp32 tensor scale'}${
          spec.outputs === 'nvfp4+bf16-plane'
            ? '; the bf16 plane [rows, K] = e2m1 * scale, no tensor scale (§6.6)'
            : spec.outputs === 'nvfp4+dequantized-plane'
              ? '; the bf16 plane [rows, K] of the dequantized tensor, tensor scale included, from pass A (§6.7)'
              : ''
        }`,
    ],
    [
      'shapes',
      `rows >= 1; K a multiple of ${spec.scaleGroup.size}${spec.hadamard ? ` and of ${spec.hadamard}` : ''} (§8)`,
    ],
  );
  return lines;
}

function dequantizeLines(spec: DequantizeSpec): Line[] {
  const mx = spec.scaleGroup.size === 32;
  return [
    [
      'input',
      `${mx ? 'MXFP4' : 'NVFP4'} codes, scales in the ${spec.scaleLayout} layout (§7)${mx ? '' : ', tensor scale t'}`,
    ],
    ['value', mx ? 'f32(e2m1 * 2^(e-127)) (§6)' : 'f32(f32(e2m1 * scale) * t) (§6)'],
    ['output', spec.output === 'bf16' ? 'bf16, round to nearest even (§2.8)' : 'binary32'],
  ];
}

function gemmLines(spec: GemmSpec, arch: Arch): Line[] {
  const [m, n, k] = spec.tiling.ctaTile;
  return [
    [
      'operands',
      'A [M, K] and B [N, K], both NVFP4 and K-major (layout TN), 16-group E4M3 scales in the 128x4 layout (§7)',
    ],
    [
      'result',
      `C[m, n] = alpha * sum_k A[m,k]*B[n,k], alpha = tA*tB${spec.epilogue === 'alpha-beta' ? ' (+ beta*C)' : ''}; ` +
        `fp32 accumulation, ${spec.output} output (§6: error bound alpha*gamma_K*sum|a*b| + |ref|*u_out)`,
    ],
    [
      'tiling',
      `CTA tile ${m}x${n}x${k}, ${spec.tiling.consumers} consumer(s), ${spec.tiling.stages} stages, cluster ` +
        `[${spec.tiling.cluster.join(', ')}], ${spec.tiling.tileOrder} tile order; shared memory about ` +
        `${gemmSmemBytes(arch, m, n, k, spec.tiling.stages, spec.tiling.decode)} B on ${arch}`,
    ],
  ];
}

/** The numerics of a spec in words, as label/text lines. */
export function numericsLines(spec: KernelSpec, arch: Arch): Line[] {
  switch (spec.kind) {
    case 'quantize':
      return quantizeLines(spec);
    case 'dequantize':
      return dequantizeLines(spec);
    case 'hadamard':
      return [
        [
          'transform',
          `randomized Hadamard transform on every ${spec.size}-chunk along K: signs from Philox stream ` +
            `${STREAM_SIGNS} keyed by args.seed (the sign seed: a quantizer's sign_seed), binary32 butterflies h = 1..${spec.size / 2}, then * f32(1/sqrt(${spec.size})) (§4)`,
        ],
        ['types', `${spec.input} in, ${spec.output} out${spec.output === 'bf16' ? ' (RNE, §2.8)' : ''}`],
        ['shapes', `K a multiple of ${spec.size}`],
      ];
    case 'amax':
      return [['result', `max |x| over the finite elements of a ${spec.input} tensor, binary32; 0 when none (§1.4)`]];
    case 'gemm':
      return gemmLines(spec, arch);
  }
}

function formatLaunch(launch: unknown): string[] {
  if (launch === null || typeof launch !== 'object') return [`  ${String(launch)}`];
  return Object.entries(launch as Record<string, unknown>).map(
    ([k, v]) => `  ${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`,
  );
}

/** Words of `text` in lines of at most `width` characters (a longer word stands alone). */
export function wrapWords(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) lines.push(line);
  return lines;
}

const TEXT_WIDTH = 110;

function indentLines(lines: Line[]): string[] {
  const width = Math.max(...lines.map(([l]) => l.length));
  const pad = ' '.repeat(width + 4);
  return lines.flatMap(([label, text]) =>
    wrapWords(text, Math.max(40, TEXT_WIDTH - pad.length)).map((part, i) =>
      i === 0 ? `  ${label.padEnd(width)}  ${part}` : `${pad}${part}`,
    ),
  );
}

/** The whole `qgen explain` text for one spec. */
export async function explain(spec: KernelSpec, arch: Arch): Promise<string> {
  const out = [`${spec.name} — ${spec.kind} on ${arch}`];
  if (spec.doc) out.push(`  ${spec.doc}`);
  out.push('', 'Numerics (section numbers refer to runtime/NUMERICS.md):', ...indentLines(numericsLines(spec, arch)));
  let plan: KernelPlan;
  try {
    plan = lower(spec, arch);
  } catch (e) {
    out.push('', `Lowering on ${arch} failed: ${(e as Error).message}`);
    return out.join('\n');
  }
  out.push('', `Lowering on ${arch}:`, ...loweringSteps(plan).map((s, i) => `  ${i + 1}. ${s}`));
  out.push('', 'Launch:', ...formatLaunch(launchSummary(plan)));
  return out.join('\n');
}
