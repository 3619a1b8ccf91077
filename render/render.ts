// Renders lowered plans into CUDA sources through the handlebars templates in templates/. Every decision is in the
// plan (lower/lower.ts); render/facts.ts spells it in C++ for the templates, render/explain.ts in words.
import Handlebars from 'handlebars';
import { readFileSync } from 'node:fs';
import type { KernelPlan } from '../lower/lower.ts';
import { STREAM_ELEMENT_SR, STREAM_SCALE_SR, STREAM_SIGNS, cudaF32 } from '../dsl/constants.ts';
import { constantComment, loweringSteps } from './explain.ts';
import { amaxFacts, dequantizeFacts, hadamardFacts, quantizeFacts } from './facts.ts';
import { numericsVersion, qgenVersion } from './versions.ts';

const templatesDir = new URL('../templates/', import.meta.url);

const KIND_TITLES: Record<string, string> = {
  quantize: 'quantize', dequantize: 'dequantize', hadamard: 'Hadamard transform', amax: 'amax', gemm: 'GEMM',
};

type Template = (data: unknown) => string;

let cache: { hb: typeof Handlebars; templates: Map<string, Template> } | null = null;

function engine() {
  if (cache) return cache;
  const hb = Handlebars.create();
  hb.registerPartial('banner', readFileSync(new URL('banner.hbs', templatesDir), 'utf8'));
  cache = { hb, templates: new Map() };
  return cache;
}

function template(kind: string): Template {
  const e = engine();
  let t = e.templates.get(kind);
  if (!t) {
    const source = readFileSync(new URL(`${kind}.cu.hbs`, templatesDir), 'utf8');
    // strict: a field the template names but the plan lacks is an error, not an empty string.
    t = e.hb.compile(source, { noEscape: true, strict: true, knownHelpersOnly: true });
    e.templates.set(kind, t);
  }
  return t;
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
    case 'quantize': return quantizeFacts(plan);
    case 'dequantize': return dequantizeFacts(plan);
    case 'hadamard': return hadamardFacts(plan);
    case 'amax': return amaxFacts(plan);
    case 'gemm': return plan.render;
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
  const name = plan.kind === 'gemm' ? `gemm_${plan.arch.replace('_', '').replace(/a$/, '')}` : plan.kind;
  return template(name)(templateData(plan));
}
