// Workloads of `qgen tune`: the shapes a sweep times. A workload is plain data (a built-in by name, or a JSON file of
// the same shape) and is validated with field paths like the spec files.
//   gemms:      C [m, n] = A [m, k] . B [n, k]^T, both NVFP4 (k a multiple of 16, n a multiple of 16)
//   quantizers: a catalog quantizer over a [rows, cols] tensor (cols quantized along; a multiple of 128)
import { readFileSync } from 'node:fs';

export interface WorkloadGemm {
  label: string;
  m: number;
  n: number;
  k: number;
}
export interface WorkloadQuantizer {
  label: string;
  kernel: string;
  rows: number;
  cols: number;
}
export interface Workload {
  name: string;
  doc: string;
  gemms: WorkloadGemm[];
  quantizers: WorkloadQuantizer[];
}
export interface WorkloadProblem {
  path: string;
  message: string;
}

/** Linear layers of Llama-7B (in -> out): q/k/v/o, gate/up (fused 2 x 11008) and down. */
const LLAMA_7B_LAYERS: readonly [number, number][] = [
  [4096, 4096],
  [4096, 22016],
  [11008, 4096],
];

/** The three GEMMs of a linear layer at `tokens` (forward, dX, dW), as TN GEMMs (dsl/recipes.ts). */
function linearGemms(tokens: number, [inF, outF]: readonly [number, number]): WorkloadGemm[] {
  const at = `${inF}->${outF} @${tokens}`;
  return [
    { label: `fwd ${at}`, m: tokens, n: outF, k: inF },
    { label: `dX ${at}`, m: tokens, n: inF, k: outF },
    { label: `dW ${at}`, m: outF, n: inF, k: tokens },
  ];
}

export const WORKLOADS: readonly Workload[] = [
  {
    name: 'llama-7b',
    doc: 'the GEMMs of one Llama-7B layer at 16k and 32k tokens (forward, dX, dW) and its Quartet II quantizers',
    gemms: [16384, 32768].flatMap((t) => LLAMA_7B_LAYERS.flatMap((l) => linearGemms(t, l))),
    quantizers: [
      { label: 'X 16k x 4096', kernel: 'quartet2_x_46', rows: 16384, cols: 4096 },
      { label: 'W 11008 x 4096', kernel: 'quartet2_w_46', rows: 11008, cols: 4096 },
      { label: 'E 16k x 4096', kernel: 'quartet2_e_mseden_rht128', rows: 16384, cols: 4096 },
      { label: 'E^T 4096 x 16k', kernel: 'quartet2_et_mseden_rht128', rows: 4096, cols: 16384 },
      // the dequantized-plane twins the torch layer runs by default (NUMERICS §6.7): their pass A also stores the
      // plane, so their best launch shape may differ from the plain kernel's
      { label: 'X 16k x 4096, plane', kernel: 'quartet2_x_46_dqplane', rows: 16384, cols: 4096 },
      { label: 'W 11008 x 4096, plane', kernel: 'quartet2_w_46_dqplane', rows: 11008, cols: 4096 },
      { label: 'E 16k x 4096, plane', kernel: 'quartet2_e_mseden_rht128_dqplane', rows: 16384, cols: 4096 },
      { label: 'E^T 4096 x 16k, plane', kernel: 'quartet2_et_mseden_rht128_dqplane', rows: 4096, cols: 16384 },
      // the backward's requants (NVFP4 X and W in, MS-EDEN along the other axis): X^T's is the layer's second
      // largest quantizer (292 us of a 4096->4096 step at 32k tokens), not swept before
      {
        label: 'X^T requant 4096 x 16k, plane',
        kernel: 'quartet2_xt_rq_mseden_rht128_dqplane',
        rows: 4096,
        cols: 16384,
      },
      // W^T of an unfused 4096 -> 11008 up projection ([in, out], along out), the W entries' weight
      { label: 'W^T 4096 x 11008, plane', kernel: 'quartet2_wt_rq_mseden_rht128_dqplane', rows: 4096, cols: 11008 },
      // the four large plane kernels again at 32k tokens, the layer benchmark's size: a launch shape's gain moved
      // with the size (E^T's 128-register-budget launch: -8% in the sweep at 16k tokens, -2 to -3% in the layer at
      // 32k), and a kernel's table entry is the winner at its largest shape (tune/quantizers.ts tunedQuantizerTilings)
      ...(
        [
          ['X 32k x 4096, plane', 'quartet2_x_46_dqplane', 32768, 4096],
          ['E 32k x 4096, plane', 'quartet2_e_mseden_rht128_dqplane', 32768, 4096],
          ['E^T 4096 x 32k, plane', 'quartet2_et_mseden_rht128_dqplane', 4096, 32768],
          ['X^T requant 4096 x 32k, plane', 'quartet2_xt_rq_mseden_rht128_dqplane', 4096, 32768],
        ] as const
      ).map(([label, kernel, rows, cols]) => ({ label, kernel, rows, cols })),
    ],
  },
  {
    name: 'small',
    doc: 'a quick sweep: one large, one medium and one skinny GEMM and one quantizer',
    gemms: [
      { label: 'square 8192', m: 8192, n: 8192, k: 8192 },
      { label: 'fwd 4096->4096 @4096', m: 4096, n: 4096, k: 4096 },
      { label: 'skinny 64', m: 64, n: 8192, k: 8192 },
    ],
    quantizers: [{ label: 'X 4096 x 4096', kernel: 'quartet2_x_46', rows: 4096, cols: 4096 }],
  },
];

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const LIMIT = 1 << 20;

/** Every problem of a workload object (empty: valid); `knownKernels`: quantizer names allowed. */
export function workloadProblems(w: unknown, knownKernels: readonly string[]): WorkloadProblem[] {
  const out: WorkloadProblem[] = [];
  const add = (path: string, message: string) => out.push({ path, message });
  if (!isObj(w)) return [{ path: '(workload)', message: 'must be an object { name, doc, gemms, quantizers }' }];
  const known = ['name', 'doc', 'gemms', 'quantizers'];
  for (const key of Object.keys(w))
    if (!known.includes(key)) add(key, `unknown field "${key}"; allowed: ${known.join(', ')}`);
  if (typeof w.name !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(w.name)) {
    add('name', 'must be a name of 1-64 characters [A-Za-z0-9_.-]');
  }
  if (w.doc !== undefined && typeof w.doc !== 'string') add('doc', 'must be a string');
  const int = (path: string, v: unknown, multiple: number) => {
    if (!(typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= LIMIT && v % multiple === 0)) {
      add(
        path,
        `must be ${multiple > 1 ? `a multiple of ${multiple}` : 'an integer'} in 1..${LIMIT} (got ${JSON.stringify(v)})`,
      );
    }
  };
  const list = (
    key: 'gemms' | 'quantizers',
    fields: string[],
    check: (e: Record<string, unknown>, at: string) => void,
  ) => {
    const v = w[key];
    if (!Array.isArray(v)) {
      add(key, `must be a list (got ${JSON.stringify(v)})`);
      return;
    }
    v.forEach((e, i) => {
      const at = `${key}[${i}]`;
      if (!isObj(e)) {
        add(at, `must be an object { ${fields.join(', ')} }`);
        return;
      }
      for (const f of Object.keys(e))
        if (!fields.includes(f)) add(`${at}.${f}`, `unknown field "${f}"; allowed: ${fields.join(', ')}`);
      if (typeof e.label !== 'string') add(`${at}.label`, 'must be a string');
      check(e, at);
    });
  };
  list('gemms', ['label', 'm', 'n', 'k'], (e, at) => {
    int(`${at}.m`, e.m, 1);
    int(`${at}.n`, e.n, 16);
    int(`${at}.k`, e.k, 16);
  });
  list('quantizers', ['label', 'kernel', 'rows', 'cols'], (e, at) => {
    if (typeof e.kernel !== 'string' || !knownKernels.includes(e.kernel)) {
      add(`${at}.kernel`, `must name a catalog quantizer (got ${JSON.stringify(e.kernel)})`);
    }
    int(`${at}.rows`, e.rows, 1);
    int(`${at}.cols`, e.cols, 128);
  });
  if (Array.isArray(w.gemms) && Array.isArray(w.quantizers) && w.gemms.length + w.quantizers.length === 0) {
    add('gemms', 'a workload needs at least one GEMM or quantizer shape');
  }
  return out;
}

/** A thrown workload error: one line per problem, each with its field path. */
export class WorkloadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WorkloadError';
  }
}

/** A built-in workload by name, or a JSON file; validated (throws WorkloadError naming every problem). */
export function loadWorkload(nameOrFile: string, knownKernels: readonly string[]): Workload {
  const builtIn = WORKLOADS.find((w) => w.name === nameOrFile);
  if (builtIn) return structuredClone(builtIn) as Workload;
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(nameOrFile, 'utf8'));
  } catch (e) {
    throw new WorkloadError(
      `--workload: "${nameOrFile}" is neither a built-in workload (${WORKLOADS.map((w) => w.name).join(
        ', ',
      )}) nor a readable JSON file (${(e as Error).message.split('\n')[0]})`,
    );
  }
  const problems = workloadProblems(value, knownKernels);
  if (problems.length > 0) {
    throw new WorkloadError(`${nameOrFile}: ${problems.map((p) => `${p.path}: ${p.message}`).join('\n  ')}`);
  }
  return value as Workload;
}
