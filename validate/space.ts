// The search space of `qgen tune`: the points of dsl/tunables.ts applied to a base spec, each validated on the arch
// (validate/validate.ts) so that an illegal point is pruned, with its first problem, before anything compiles.
import { createHash } from 'node:crypto';
import type { Arch, ElementwiseTiling, GemmSpec, GemmTiling, KernelSpec, QuantizeSpec } from '../dsl/types.ts';
import {
  ELEMENTWISE_TUNABLES,
  GEMM_TUNABLES,
  elementwiseTilingPoints,
  gemmTilingPoints,
  tilingLabel,
} from '../dsl/tunables.ts';
import { validate } from './validate.ts';
import { lower } from '../lower/lower.ts';
import { tunedGemmName } from '../dsl/naming.ts';

/**
 * The first reason `spec` cannot be built on `arch` (a validation problem with its field path, or the lowering's
 * refusal, e.g. the sm_90a register budget), or null when it can. The space keeps exactly the points without one.
 */
export function buildProblem(spec: KernelSpec, arch: Arch, path = spec.name): { path: string; message: string } | null {
  const problems = validate(spec, arch, path);
  if (problems.length > 0) return problems[0];
  try {
    lower(spec, arch);
    return null;
  } catch (e) {
    const message = (e as Error).message.replace(new RegExp(`^${spec.name}: `), '');
    const field = /^(tiling\.[A-Za-z[\]0-9.]+):\s*/.exec(message);
    return field ? { path: `${path}.${field[1]}`, message: message.slice(field[0].length) } : { path, message };
  }
}

export interface Pruned {
  name: string;
  problem: string;
}
export interface Space<S extends KernelSpec> {
  candidates: S[];
  pruned: Pruned[];
}

/** The base GEMM with `tiling`, named by the naming grammar's tuned form (tunedGemmName, dsl/naming.ts). */
export function gemmWithTiling(base: GemmSpec, tiling: GemmTiling): GemmSpec {
  const { doc: _doc, ...rest } = base;
  const spec: GemmSpec = {
    ...rest,
    name: '',
    tiling: {
      ...tiling,
      ctaTile: [...tiling.ctaTile] as [number, number, number],
      cluster: [...tiling.cluster] as [number, number],
    },
  };
  return { ...spec, name: tunedGemmName(spec) };
}

/** Every tiling of `base` on `arch`: legal ones as candidates, illegal ones pruned with their first problem. */
export function gemmSpace(arch: Arch, base: GemmSpec): Space<GemmSpec> {
  const candidates: GemmSpec[] = [];
  const pruned: Pruned[] = [];
  for (const tiling of gemmTilingPoints(arch)) {
    const spec = gemmWithTiling(base, tiling);
    const problem = buildProblem(spec, arch);
    if (problem === null) candidates.push(spec);
    else pruned.push({ name: spec.name, problem: `${problem.path}: ${problem.message}` });
  }
  return { candidates, pruned };
}

/** The base quantizer with `tiling`, named `<base>__<tilingLabel>` (dsl/tunables.ts tilingLabel). */
export function quantizeWithTiling(base: QuantizeSpec, tiling: ElementwiseTiling): QuantizeSpec {
  return { ...base, name: `${base.name}__${tilingLabel(tiling)}`, tiling: { ...tiling } };
}

/** Every launch shape of a quantizer on `arch` (named by quantizeWithTiling), pruned the same way. */
export function quantizeSpace(arch: Arch, base: QuantizeSpec): Space<QuantizeSpec> {
  const candidates: QuantizeSpec[] = [];
  const pruned: Pruned[] = [];
  for (const tiling of elementwiseTilingPoints()) {
    const spec = quantizeWithTiling(base, tiling);
    const problem = buildProblem(spec, arch);
    if (problem === null) candidates.push(spec);
    else pruned.push({ name: spec.name, problem: `${problem.path}: ${problem.message}` });
  }
  return { candidates, pruned };
}

/** Hash of the declared space of `arch` (the tunables' values): part of a tuning file's cache key. */
export function configSpaceHash(arch: Arch): string {
  const text = JSON.stringify({ gemm: GEMM_TUNABLES[arch], elementwise: ELEMENTWISE_TUNABLES });
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}
