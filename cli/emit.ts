// `qgen emit`: validate every spec first (all problems reported, nothing written on failure), then hand the specs to
// the code generator (emit/emit.ts).
import path from 'node:path';
import type { Arch, KernelSpec } from '../dsl/types.ts';
import { catalogFor } from '../dsl/catalog.ts';
import { loadSpecFile, SpecLoadError } from '../dsl/load.ts';
import { SpecError, validateFile } from '../validate/validate.ts';
import { UserError } from './errors.ts';
import { emitKernels, planKernels } from '../emit/emit.ts';
import { writeOutputFolder } from '../emit/output.ts';
import { gemmDispatch, tunedGemmSpecs } from '../tune/tuning.ts';
import { loadTuningOption } from './tuning.ts';
import { applyTunedQuantizers, tunedQuantizerLines } from '../tune/quantizers.ts';
import { writeFile } from 'node:fs/promises';

/** The specs of a spec file, validated on `arch`; or the catalog. A user error lists every problem. */
export async function specsFor(arch: Arch, specFile?: string): Promise<KernelSpec[]> {
  if (specFile === undefined) return catalogFor(arch);
  let file: unknown;
  try {
    file = await loadSpecFile(specFile);
  } catch (e) {
    if (e instanceof SpecLoadError) throw new UserError(e.message);
    throw e;
  }
  const problems = validateFile(file, arch);
  if (problems.length > 0) throw new UserError(new SpecError(problems, `${specFile} (${arch})`).message);
  return (file as { kernels: KernelSpec[] }).kernels;
}

/** Keeps the kernels named in `only` (each name must exist). */
export function selectSpecs(specs: KernelSpec[], only: string[] | undefined): KernelSpec[] {
  if (!only || only.length === 0) return specs;
  const names = new Set(specs.map((s) => s.name));
  const missing = only.filter((n) => !names.has(n));
  if (missing.length > 0) {
    throw new UserError(
      `--only: no kernel named ${missing.map((n) => `"${n}"`).join(', ')}; available: ` + `${[...names].join(', ')}`,
    );
  }
  return specs.filter((s) => only.includes(s.name));
}

export async function runEmit(opts: {
  arch: Arch;
  out: string;
  spec?: string;
  only?: string[];
  force?: boolean;
  tuning?: string;
}): Promise<void> {
  const { tuning, tuningName } = loadTuningOption(opts.tuning, opts.arch);
  // --tuning: the quantizers' tuned launch shapes under their catalog names (same results, NUMERICS §6.5).
  const withQuantizers = applyTunedQuantizers(selectSpecs(await specsFor(opts.arch, opts.spec), opts.only), tuning);
  for (const line of tunedQuantizerLines(withQuantizers, 'the emitted kernels')) process.stderr.write(`${line}\n`);
  const selected = withQuantizers.specs;
  // --tuning: the winning fused tilings join the specs, and gemm_dispatch.json says which runs for which shape.
  const tuned = tuning ? tunedGemmSpecs(tuning).filter((t) => !selected.some((s) => s.name === t.name)) : [];
  const specs = [...selected, ...tuned];
  planKernels(specs, opts.arch); // a spec that cannot be lowered fails here, before the output folder is looked at
  const { files } = await writeOutputFolder(
    opts.out,
    `qgen emit --arch ${opts.arch}`,
    { force: opts.force },
    async (dir) => {
      const result = await emitKernels(specs, opts.arch, dir);
      if (tuning) {
        const dispatchPath = path.join(dir, 'gemm_dispatch.json');
        await writeFile(dispatchPath, `${JSON.stringify(gemmDispatch(opts.arch, tuning, tuningName), null, 2)}\n`);
        result.files.push(dispatchPath);
      }
      return result;
    },
  );
  const shown = (f: string) => path.relative(process.cwd(), path.resolve(f)) || f;
  console.log(`qgen: emitted ${specs.length} kernel(s) for ${opts.arch} into ${opts.out}: ${files.length} file(s)`);
  for (const f of files) console.log(`  ${shown(f)}`);
}
