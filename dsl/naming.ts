// The naming grammar of catalog kernels (docs/naming.md shows it with every token): a name is derived from the spec's
// fields in a fixed order, lowercase snake_case, one token per field, a token left out where the field has its
// default. Only a quantizer's first two tokens are not spec fields: the recipe it belongs to and the GEMM operand it
// produces (a kernel shared by several roles is named after its first role in dsl/recipes.ts).
//   quantizer:  <recipe>_<operand>[_rq]_<rounding>[_<block>][_<group>][_<rotation>][_<tensor scale>][_c<ceiling>]
//               [_<correction>][_<layout>][_plane|_dqplane]
//   GEMM:       gemm_<operands>_<output>[_<epilogue>][_<M>x<N>x<K>][_swapab[_c<consumers>][_f<sets>]]
//               [_pd|_pdp|_pdc|_pdr|_pdr2|_pdr3] (the tile only where not the arch's default; swapab:
//               tiling.registerOperand 'b', the operands exchanged in the sm_90a wgmma; c<consumers>: a swapped GEMM
//               splitting K over more than one consumer, NUMERICS §6.2; f<sets>: tiling.fragmentSets where a spec
//               names it; pd: tiling.decode 'producer', pdp: 'producer-pipelined', pdc: 'producer-cluster', pdr:
//               'producer-b-register-a', pdr2: 'producer2-b-register-a', pdr3:
//               'producer2-b-register-a-consumer-copies')
//   dequantize: dequantize_<format>_<output>[_<layout>]
//   hadamard:   hadamard_rht<size>[_<input>_<output>]
//   amax:       amax_<input>
// The tiling of memory-bound kernels is a tunable, not part of the name; a quantizer's target follows its rounding
// (validation), so it has no token either.
import type { Arch, GemmSpec, KernelSpec, QuantizeSpec, Rounding, ScaleGroup, TensorScaleMode } from './types.ts';
import { CEILING_EDEN, E4M3_MAX } from './constants.ts';

/** A recipe token: the linear-layer recipe (dsl/recipes.ts) and the format defaults its names leave out. */
export interface RecipeToken {
  /** The LinearRecipe name, or null for a format that is only compared against (MXFP4). */
  recipe: string | null;
  doc: string;
  tensorScale: TensorScaleMode;
  ceiling: number;
  group: 'nvfp4' | 'mx32';
}

export const RECIPE_TOKENS = {
  quartet2: { recipe: 'quartet2', doc: 'Quartet II', tensorScale: 'one-pass', ceiling: E4M3_MAX, group: 'nvfp4' },
  nvidia: { recipe: 'nvidia', doc: 'NVIDIA recipe', tensorScale: 'computed', ceiling: E4M3_MAX, group: 'nvfp4' },
  nvidia46: {
    recipe: 'nvidia+4/6',
    doc: 'NVIDIA recipe with 4/6 in the forward',
    tensorScale: 'computed',
    ceiling: CEILING_EDEN,
    group: 'nvfp4',
  },
  tetrajet2: {
    recipe: 'tetrajet-v2',
    doc: 'TetraJet-v2 (GPU-feasible form)',
    tensorScale: 'computed',
    ceiling: E4M3_MAX,
    group: 'nvfp4',
  },
  mxfp4: { recipe: null, doc: 'MXFP4, for comparison', tensorScale: 'none', ceiling: E4M3_MAX, group: 'mx32' },
} as const satisfies Record<string, RecipeToken>;
export type RecipeTokenName = keyof typeof RECIPE_TOKENS;

/** The GEMM operand a quantizer produces; the transposed ones read a transposed input. */
export const OPERAND_TOKENS = {
  x: { transposed: false, doc: 'X, forward GEMM (also any row-major activation-like operand)' },
  w: { transposed: false, doc: 'W, forward GEMM' },
  e: { transposed: false, doc: 'E = dL/dY, dX GEMM' },
  et: { transposed: true, doc: 'E^T, dW GEMM' },
  wt: { transposed: true, doc: 'W^T, dX GEMM' },
  xt: { transposed: true, doc: 'X^T, dW GEMM' },
} as const;
export type OperandToken = keyof typeof OPERAND_TOKENS;

export const ROUNDING_TOKENS: Readonly<Record<Rounding, string>> = {
  rtn: 'rtn',
  sr: 'sr',
  'four-six': '46',
  'ms-eden': 'mseden',
};

export const TENSOR_SCALE_TOKENS: Readonly<Record<TensorScaleMode, string>> = {
  computed: 'computed',
  'one-pass': 'onepass',
  caller: 'caller',
  none: 'nots',
};

/** Tokens for fields whose default is left out of the name: `token` is written when the field has `value`. */
export const FIELD_TOKENS = {
  source: { field: 'input', value: 'nvfp4', token: 'rq', doc: 'requantized from an NVFP4 tensor (default bf16)' },
  block: { field: 'block', value: '16x16', token: '16x16', doc: '16x16 square scale blocks (default 1x16)' },
  correction: { field: 'correction', value: 'per-128', token: 'per128', doc: 'MS-EDEN per-128 (default per-16)' },
  layout: { field: 'scaleLayout', value: 'row-major', token: 'rowmajor', doc: 'row-major scales (default 128x4)' },
  plane: {
    field: 'outputs',
    value: 'nvfp4+bf16-plane',
    token: 'plane',
    doc: 'also writes the bf16 plane, NUMERICS §6.6 (default: NVFP4 only)',
  },
  dqplane: {
    field: 'outputs',
    value: 'nvfp4+dequantized-plane',
    token: 'dqplane',
    doc: 'also writes the dequantized bf16 plane from pass A, NUMERICS §6.7 (default: NVFP4 only)',
  },
} as const;

/** Scale-group tokens (a quantizer writes one only where it differs from its recipe's). */
export const GROUP_TOKENS = {
  nvfp4: { size: 16, format: 'e4m3', doc: 'NVFP4: 16-element groups, E4M3 scales' },
  mx32: { size: 32, format: 'ue8m0', doc: 'MXFP4: 32-element groups, UE8M0 scales' },
} as const;

function groupToken(g: ScaleGroup): keyof typeof GROUP_TOKENS {
  return g.size === 32 ? 'mx32' : 'nvfp4';
}

/** The recipe and operand tokens at the start of a quantizer name, or null where they are not in the vocabulary. */
export function quantizerRole(name: string): { recipe: RecipeTokenName; operand: OperandToken } | null {
  const [recipe, operand] = name.split('_');
  if (!(recipe in RECIPE_TOKENS) || !(operand in OPERAND_TOKENS)) return null;
  return { recipe: recipe as RecipeTokenName, operand: operand as OperandToken };
}

/** A quantizer's name for the role (recipe, operand); throws where the spec does not fit the role. */
export function quantizerName(recipe: RecipeTokenName, operand: OperandToken, s: QuantizeSpec): string {
  if (OPERAND_TOKENS[operand].transposed !== s.transposedInput) {
    throw new Error(
      `operand '${operand}' needs transposedInput ${OPERAND_TOKENS[operand].transposed}; ` +
        `'${s.name}' has ${s.transposedInput}`,
    );
  }
  const r: RecipeToken = RECIPE_TOKENS[recipe];
  const t: string[] = [recipe, operand];
  const optional = (key: keyof typeof FIELD_TOKENS) => {
    const f = FIELD_TOKENS[key];
    if ((s as unknown as Record<string, unknown>)[f.field] === f.value) t.push(f.token);
  };
  optional('source');
  t.push(ROUNDING_TOKENS[s.rounding]);
  optional('block');
  if (groupToken(s.scaleGroup) !== r.group) t.push(groupToken(s.scaleGroup));
  if (s.hadamard !== null) t.push(`rht${s.hadamard}`);
  if (s.tensorScale !== r.tensorScale) t.push(TENSOR_SCALE_TOKENS[s.tensorScale]);
  if (s.ceiling !== r.ceiling) t.push(`c${s.ceiling}`);
  optional('correction');
  optional('layout');
  optional('plane');
  optional('dqplane');
  return t.join('_');
}

function tileToken(tile: readonly number[]): string {
  return tile.join('x');
}

/**
 * The name the grammar gives `spec`. A quantizer's role is read from its current name's first two tokens; a GEMM
 * names its tile only where it differs from `defaultGemmTile` (the tile of the arch's catalog GEMM).
 */
export function derivedName(spec: KernelSpec, defaultGemmTile?: readonly number[]): string {
  switch (spec.kind) {
    case 'quantize': {
      const role = quantizerRole(spec.name);
      if (!role) {
        throw new Error(
          `'${spec.name}': a quantizer name starts with <recipe>_<operand> (recipe: ` +
            `${Object.keys(RECIPE_TOKENS).join(' | ')}; operand: ${Object.keys(OPERAND_TOKENS).join(' | ')})`,
        );
      }
      return quantizerName(role.recipe, role.operand, spec);
    }
    case 'gemm':
      return gemmName(spec, defaultGemmTile);
    case 'dequantize': {
      const t = ['dequantize', groupToken(spec.scaleGroup) === 'mx32' ? 'mxfp4' : 'nvfp4', spec.output];
      if (spec.scaleLayout === 'row-major') t.push(FIELD_TOKENS.layout.token);
      return t.join('_');
    }
    case 'hadamard': {
      const t = ['hadamard', `rht${spec.size}`];
      if (spec.input !== 'bf16' || spec.output !== 'bf16') t.push(spec.input, spec.output);
      return t.join('_');
    }
    case 'amax':
      return `amax_${spec.input}`;
  }
}

/** gemm_<operands>_<output>[_<epilogue>]: a GEMM's name without its tiling. */
function gemmStem(g: GemmSpec): string {
  const t = ['gemm', g.a === g.b ? g.a : `${g.a}${g.b}`, g.output];
  if (g.epilogue !== 'alpha') t.push(g.epilogue.replace('-', ''));
  return t.join('_');
}

function gemmName(g: GemmSpec, defaultGemmTile?: readonly number[]): string {
  const tile = tileToken(g.tiling.ctaTile);
  const base = !defaultGemmTile || tile !== tileToken(defaultGemmTile) ? `${gemmStem(g)}_${tile}` : gemmStem(g);
  return base + swapToken(g) + splitToken(g) + setsToken(g) + decodeToken(g);
}

/** `_f<sets>` where a spec names tiling.fragmentSets (the operand-swapped kernel's W fragment sets). */
function setsToken(g: GemmSpec): string {
  return g.tiling.fragmentSets === undefined ? '' : `_f${g.tiling.fragmentSets}`;
}

/** `_c<consumers>` for a swapped GEMM that splits K over consumers > 1 (NUMERICS §6.2: it sums in another order). */
function splitToken(g: GemmSpec): string {
  return g.tiling.registerOperand === 'b' && g.tiling.consumers > 1 ? `_c${g.tiling.consumers}` : '';
}

/** `_pd` for tiling.decode 'producer' (a decoder warpgroup dequantizes both operands), `_pdp` for
 * 'producer-pipelined' (the same, codes and scales loaded into registers a K block ahead), `_pdc` for
 * 'producer-cluster' (the pipelined decoder in 2-CTA clusters sharing the B slab), `_pdr` for 'producer-b-register-a'
 * (the pipelined decoder for B only, A decoded into the consumers' wgmma registers), `_pdr2` for
 * 'producer2-b-register-a' (the same with two decoder warpgroups), `_pdr3` for
 * 'producer2-b-register-a-consumer-copies' (the same with the copies issued by consumer lanes), nothing otherwise. */
function decodeToken(g: GemmSpec): string {
  const d = g.tiling.decode;
  const tokens: Partial<Record<NonNullable<typeof d>, string>> = {
    producer: '_pd',
    'producer-pipelined': '_pdp',
    'producer-cluster': '_pdc',
    'producer-b-register-a': '_pdr',
    'producer2-b-register-a': '_pdr2',
    'producer2-b-register-a-consumer-copies': '_pdr3',
  };
  return (d && tokens[d]) ?? '';
}

/** `_swapab` for tiling.registerOperand 'b' (operands exchanged in the wgmma), nothing otherwise. */
function swapToken(g: GemmSpec): string {
  return g.tiling.registerOperand === 'b' ? '_swapab' : '';
}

/**
 * A tuning candidate's GEMM name: the stem and the whole tiling, <M>x<N>x<K>_c<consumers>_s<stages>_<order>_k<cluster>
 * (order sw8 | row | col), then _swapab for registerOperand 'b', e.g. gemm_nvfp4_bf16_128x128x128_c2_s8_sw8_k1x1.
 */
export function tunedGemmName(g: GemmSpec): string {
  const t = g.tiling;
  const order = t.tileOrder === 'swizzle-8' ? 'sw8' : t.tileOrder === 'row-major' ? 'row' : 'col';
  const cluster = t.cluster.join('x');
  const tiling = `${tileToken(t.ctaTile)}_c${t.consumers}_s${t.stages}_${order}_k${cluster}`;
  return `${gemmStem(g)}_${tiling}${swapToken(g)}${setsToken(g)}${decodeToken(g)}`;
}

/** Every catalog kernel whose name is not the one the grammar derives from its spec, as messages (empty when none). */
export function catalogNameProblems(specs: readonly KernelSpec[], defaultGemmName: string, arch: Arch): string[] {
  const base = specs.find((s) => s.kind === 'gemm' && s.name === defaultGemmName) as GemmSpec | undefined;
  const problems: string[] = [];
  for (const s of specs) {
    let want: string;
    try {
      want = derivedName(s, base?.tiling.ctaTile);
    } catch (e) {
      problems.push(`${arch}: ${(e as Error).message}`);
      continue;
    }
    if (want !== s.name) problems.push(`${arch}: '${s.name}' should be named '${want}' (docs/naming.md)`);
  }
  return problems;
}

/** The vocabulary as markdown tables (docs/naming.md embeds this text; a test keeps the two equal). */
export function namingTables(): string {
  const rows = (head: string, body: string[][]) =>
    [
      `| ${head.split('|').join(' | ')} |`,
      `|${head
        .split('|')
        .map(() => '---')
        .join('|')}|`,
      ...body.map((r) => `| ${r.join(' | ')} |`),
    ].join('\n');
  const recipes = Object.entries(RECIPE_TOKENS).map(([k, r]: [string, RecipeToken]) => [
    `\`${k}\``,
    r.doc,
    r.recipe === null ? '-' : `\`${r.recipe}\``,
    TENSOR_SCALE_TOKENS[r.tensorScale],
    String(r.ceiling),
    r.group,
  ]);
  const operands = Object.entries(OPERAND_TOKENS).map(([k, o]) => [`\`${k}\``, o.doc, o.transposed ? 'yes' : 'no']);
  const roundings = Object.entries(ROUNDING_TOKENS).map(([k, v]) => [`\`${v}\``, `rounding '${k}'`]);
  const scales = Object.entries(TENSOR_SCALE_TOKENS).map(([k, v]) => [`\`${v}\``, `tensorScale '${k}'`]);
  const fields = Object.values(FIELD_TOKENS).map((f) => [`\`${f.token}\``, `${f.field} '${f.value}'`, f.doc]);
  const groups = Object.entries(GROUP_TOKENS).map(([k, g]) => [`\`${k}\``, `${g.size} / ${g.format}`, g.doc]);
  return (
    [
      '**recipe** (quantizers; the defaults are left out of the name)\n',
      rows('token|recipe|dsl/recipes.ts name|default tensor scale|default ceiling|default group', recipes),
      '\n**operand**\n',
      rows('token|operand|transposed input', operands),
      '\n**rounding**\n',
      rows('token|spec field', roundings),
      '\n**scale group** (written where it differs from the recipe default)\n',
      rows('token|size / format|meaning', groups),
      '\n**rotation**: `rht16`, `rht32`, `rht64`, `rht128` (hadamard 16 | 32 | 64 | 128; none: no token)\n',
      '**tensor scale** (written where it differs from the recipe default; the ceiling C likewise as `c<C>`)\n',
      rows('token|spec field', scales),
      '\n**optional fields** (written only for the non-default value)\n',
      rows('token|spec field|meaning', fields),
    ].join('\n') + '\n'
  );
}
