// Renders lowered plans into CUDA sources through the handlebars templates in templates/. Every decision is in the
// plan (lower/lower.ts); render/facts.ts spells it in C++ for the templates, render/explain.ts in words.
import Handlebars from 'handlebars';
import { readdirSync, readFileSync } from 'node:fs';
import type { KernelPlan } from '../lower/lower.ts';
import { isRegisterADecode } from '../arch/gemm_sm90.ts';
import { STREAM_ELEMENT_SR, STREAM_SCALE_SR, STREAM_SIGNS, cudaF32 } from '../dsl/constants.ts';
import { constantComment, loweringSteps } from './explain.ts';
import { amaxFacts, dequantizeFacts, gemmFacts, hadamardFacts, quantizeFacts } from './facts.ts';
import { numericsVersion, qgenVersion } from './versions.ts';

const templatesDir = new URL('../templates/', import.meta.url);

const KIND_TITLES: Record<string, string> = {
  quantize: 'quantize',
  dequantize: 'dequantize',
  hadamard: 'Hadamard transform',
  amax: 'amax',
  gemm: 'GEMM',
};

type Template = (data: unknown) => string;

let cache: { hb: typeof Handlebars; templates: Map<string, Template> } | null = null;

function engine() {
  if (cache) return cache;
  const hb = Handlebars.create();
  hb.registerPartial('banner', readFileSync(new URL('banner.hbs', templatesDir), 'utf8'));
  // Partials: a template file named _<name>.hbs in a folder <dir> of templates/ is the partial <dir>/<name>.
  for (const dir of readdirSync(templatesDir, { withFileTypes: true }).filter((d) => d.isDirectory())) {
    for (const file of readdirSync(new URL(`${dir.name}/`, templatesDir)).filter((f) => /^_.*\.hbs$/.test(f))) {
      const partial = `${dir.name}/${file.slice(1, -'.hbs'.length)}`;
      hb.registerPartial(partial, readFileSync(new URL(`${dir.name}/${file}`, templatesDir), 'utf8'));
    }
  }
  cache = { hb, templates: new Map() };
  return cache;
}

/**
 * The one renderer of the project: the handlebars template at `file` (relative to templates/) applied to `data`.
 * Kernels (below), the runner's dispatch table (harness/gpu/bind.ts) and the vendored packages (emit/vendor.ts)
 * all render through it. Strict: a field the template names but the data lacks is an error, not an empty string.
 */
export function renderTemplate(file: string, data: unknown): string {
  const e = engine();
  let t = e.templates.get(file);
  if (!t) {
    const source = readFileSync(new URL(file, templatesDir), 'utf8');
    t = e.hb.compile(source, { noEscape: true, strict: true, knownHelpersOnly: true });
    e.templates.set(file, t);
  }
  return t(data);
}

/** The C signatures of a plan's host entry and workspace query (runtime/qgen.h). */
export function hostSignatures(plan: KernelPlan): { host: string; workspace: string | null } {
  return {
    host: `qgen_status ${plan.hostFunction}(const ${plan.argsStruct}* args, cudaStream_t stream)`,
    workspace: plan.workspaceFunction ? `size_t ${plan.workspaceFunction}(int64_t rows, int64_t cols)` : null,
  };
}

function kindFacts(plan: KernelPlan): Record<string, unknown> {
  switch (plan.kind) {
    case 'quantize':
      return quantizeFacts(plan);
    case 'dequantize':
      return dequantizeFacts(plan);
    case 'hadamard':
      return hadamardFacts(plan);
    case 'amax':
      return amaxFacts(plan);
    case 'gemm':
      return gemmFacts(plan);
  }
}

/** The data a template sees: the facts of the plan's kind plus what every kernel file shows. */
export function templateData(plan: KernelPlan): Record<string, unknown> {
  return {
    ...kindFacts(plan),
    name: plan.name,
    doc: plan.spec.doc ?? '',
    kindTitle: KIND_TITLES[plan.kind],
    arch: plan.arch,
    qgenVersion: qgenVersion(),
    numericsVersion: numericsVersion(),
    specLines: JSON.stringify(plan.spec, null, 2).split('\n'),
    steps: loweringSteps(plan),
    headers: plan.headers,
    threads: 'tiling' in plan.spec && 'threadsPerBlock' in plan.spec.tiling ? plan.spec.tiling.threadsPerBlock : 0,
    elemsPerThread: plan.mapping.elemsPerThread,
    lanesPerUnit: plan.mapping.lanesPerUnit,
    colsMultiple: plan.colsMultiple,
    constants: plan.constants.map((c) => ({ ...c, cuda: cudaF32(c.value), comment: constantComment(plan, c) })),
    streams: { signs: STREAM_SIGNS, elementSr: STREAM_ELEMENT_SR, scaleSr: STREAM_SCALE_SR },
    hostSignature: hostSignatures(plan).host,
  };
}

/** The CUDA source of one lowered kernel. */
export function renderKernel(plan: KernelPlan): string {
  let name: string = plan.kind;
  if (plan.kind === 'gemm') {
    name = `gemm_${plan.arch.replace('_', '').replace(/a$/, '')}`;
    if (plan.gemm.arch === 'sm_90a' && plan.gemm.layout.registerOperand === 'b') name += '_swap';
    if (plan.gemm.arch === 'sm_90a' && plan.gemm.layout.decode === 'producer') name += '_pd';
    if (plan.gemm.arch === 'sm_90a' && plan.gemm.layout.decode === 'producer-pipelined') name += '_pdp';
    if (plan.gemm.arch === 'sm_90a' && plan.gemm.layout.decode === 'producer-cluster') name += '_pdc';
    // 'producer2-b-register-a' (-consumer-copies) renders the _pdr template with two decoder warpgroups (facts.ts)
    if (plan.gemm.arch === 'sm_90a' && isRegisterADecode(plan.gemm.layout.decode)) name += '_pdr';
  }
  return renderTemplate(`${name}.cu.hbs`, templateData(plan));
}
