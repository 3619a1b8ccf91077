// `qgen vendor`: a self-contained package a trainer builds with its own toolchain, no Node needed.
//   --target torch: a PyTorch extension (torch.library ops with fake implementations, Quartet2Linear, recipes);
//                   the hand-written parts live in runtime/torch/, the generated ones come from templates/vendor/.
//   --target c:     the kernels, qgen.h, one header declaring every entry point and a CMake file.
// Output is a pure function of (arch, target, qgen version, templates, runtime files): same inputs, same bytes.
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Arch, KernelSpec, QuantizeOutputs } from '../dsl/types.ts';
import { writesPlane } from '../dsl/types.ts';
import { catalogFor } from '../dsl/catalog.ts';
import {
  GEMM_CHOICE,
  GEMM_SPLIT_CHOICE,
  RECIPES,
  planeVariant,
  dequantizedPlaneVariant,
  recipeProblems,
  vendoredKernelNames,
  type LinearRecipe,
} from '../dsl/recipes.ts';
import { emitKernels, type Manifest, type ManifestKernel } from './emit.ts';
import { writeOutputFolder } from './output.ts';
import { numericsVersion, qgenVersion } from '../render/versions.ts';
import { renderTemplate } from '../render/render.ts';
import { hostProvenance, type HostProvenance } from '../harness/provenance.ts';
import { gemmDispatch, tunedGemmSpecs, type TuningFile } from '../tune/tuning.ts';
import { applyTunedQuantizers, tunedQuantizerLines } from '../tune/quantizers.ts';

export type VendorTarget = 'torch' | 'c';
export const VENDOR_TARGETS: readonly VendorTarget[] = ['torch', 'c'];

const repoDir = fileURLToPath(new URL('../', import.meta.url));
const torchRuntimeDir = path.join(repoDir, 'runtime/torch');

/** nvcc's -gencode for a target (sm_90a -> arch=compute_90a,code=sm_90a; a family target sm_100f likewise). */
export function gencode(target: string): string {
  const cc = target.slice(3);
  return `arch=compute_${cc},code=sm_${cc}`;
}

/**
 * The facts about one kernel that the Python side needs (shapes of outputs, dtypes, what the reference computes);
 * a quantizer's plane_kernel and dequantized_plane_kernel name its vendored plane-writing variants (dsl/recipes.ts
 * planeVariant, dequantizedPlaneVariant), or are null.
 */
export function kernelFacts(
  k: ManifestKernel,
  arch?: Arch,
  vendored: ReadonlySet<string> = new Set(),
): Record<string, unknown> {
  const s: KernelSpec = k.spec;
  const base = { kind: s.kind, doc: s.doc ?? '' };
  switch (s.kind) {
    case 'quantize':
      return {
        ...base,
        rounding: s.rounding,
        target: s.target,
        ceiling: s.ceiling,
        tensor_scale: s.tensorScale,
        block: s.block,
        hadamard: s.hadamard,
        input: s.input,
        transposed: s.transposedInput,
        random: s.rounding === 'sr' || s.rounding === 'ms-eden' || s.hadamard !== null,
        plane: writesPlane(s.outputs),
        // the plane is the dequantized tensor (NUMERICS §6.7, alpha 1 in the two-pass GEMM), not e2m1 * scale (§6.6)
        dequantized_plane: s.outputs === 'nvfp4+dequantized-plane',
        plane_kernel: arch === undefined ? null : twinOf(planeVariant(arch, k.name), vendored),
        dequantized_plane_kernel: arch === undefined ? null : twinOf(dequantizedPlaneVariant(arch, k.name), vendored),
      };
    case 'gemm':
      return { ...base, output: s.output };
    case 'dequantize':
      return { ...base, output: s.output };
    default:
      return base;
  }
}

function twinOf(twin: string | null, vendored: ReadonlySet<string>): string | null {
  return twin !== null && vendored.has(twin) ? twin : null;
}

/** A template of templates/vendor/, rendered by the project's one renderer (render/render.ts). */
function compile(name: string): (data: unknown) => string {
  return (data) => renderTemplate(`vendor/${name}`, data);
}

/** A JSON document as a Python literal: json.loads of a raw string (JSON's escapes survive a raw string). */
function pythonJson(value: unknown): string {
  const text = JSON.stringify(value, null, 1);
  if (text.includes("'''")) throw new Error("vendor: JSON text contains ''' and cannot be embedded");
  return `json.loads(r'''${text}''')`;
}

async function copyTree(from: string, to: string, files: string[]): Promise<void> {
  await mkdir(to, { recursive: true });
  const entries = (await readdir(from, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name));
  for (const e of entries) {
    if (e.name === '__pycache__' || e.name.endsWith('.pyc')) continue;
    const src = path.join(from, e.name);
    const dst = path.join(to, e.name);
    if (e.isDirectory()) await copyTree(src, dst, files);
    else {
      await copyFile(src, dst);
      files.push(dst);
    }
  }
}

export interface VendorResult {
  files: string[];
  kernels: string[];
}

/** Emits the kernels a vendored package needs (recipes' quantizers, GEMM tilings, support kernels) into `dir`. */
async function emitVendoredKernels(
  arch: Arch,
  dir: string,
  tuning?: TuningFile,
): Promise<{ manifest: Manifest; files: string[] }> {
  const problems = recipeProblems(arch);
  if (problems.length > 0) throw new Error(`vendor: the recipes are invalid on ${arch}:\n  ${problems.join('\n  ')}`);
  const wanted = new Set(vendoredKernelNames(arch));
  // The quantizers' tuned launch shapes under their catalog names (same results, NUMERICS §6.5).
  const tuned = applyTunedQuantizers(
    catalogFor(arch).filter((s) => wanted.has(s.name)),
    tuning,
  );
  for (const line of tunedQuantizerLines(tuned, 'the vendored recipes')) process.stderr.write(`${line}\n`);
  const catalog = tuned.specs;
  // The fused tilings a tuning table picks (NUMERICS §6.5), after the catalog's, under their tiling names.
  const specs = [
    ...catalog,
    ...(tuning ? tunedGemmSpecs(tuning).filter((t) => !catalog.some((c) => c.name === t.name)) : []),
  ];
  const { files, manifestPath } = await emitKernels(specs, arch, dir);
  const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as Manifest;
  return { manifest, files };
}

function headerData(manifest: Manifest) {
  const byKind = (kind: string) => manifest.kernels.filter((k) => k.kind === kind);
  const quantizers = byKind('quantize').map((k) => ({
    name: k.name,
    fn: k.host.function,
    workspace: k.host.workspaceFunction ?? '',
    hasWorkspace: k.host.workspaceFunction !== null,
    requant: (k.spec as { input?: string }).input === 'nvfp4',
    plane: writesPlane((k.spec as { outputs?: QuantizeOutputs }).outputs),
    transposed: (k.spec as { transposedInput?: boolean }).transposedInput === true,
  }));
  const gemms = byKind('gemm').map((k) => ({
    name: k.name,
    fn: k.host.function,
    f32: (k.spec as { output?: string }).output === 'f32',
  }));
  const dequantizers = byKind('dequantize').map((k) => ({
    name: k.name,
    fn: k.host.function,
    f32: (k.spec as { output?: string }).output === 'f32',
  }));
  return {
    arch: manifest.arch,
    qgenVersion: qgenVersion(),
    numericsVersion: numericsVersion(),
    quantizers,
    gemms,
    dequantizers,
    signatures: manifest.kernels.flatMap((k) => [
      k.host.signature,
      ...(k.host.workspaceSignature ? [k.host.workspaceSignature] : []),
    ]),
    sources: manifest.kernels.map((k) => k.source),
  };
}

async function vendorTorch(
  arch: Arch,
  out: string,
  target: string,
  tuning?: TuningFile,
  tuningName?: string,
  provenance?: HostProvenance,
): Promise<VendorResult> {
  const files: string[] = [];
  const write = async (rel: string, text: string) => {
    const file = path.join(out, rel);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, text);
    files.push(file);
  };
  await copyTree(torchRuntimeDir, out, files);
  const kernelDir = path.join(out, 'qgen_torch/csrc/kernels');
  const { manifest, files: kernelFiles } = await emitVendoredKernels(arch, kernelDir, tuning);
  files.push(...kernelFiles);
  const data = headerData(manifest);
  await write('qgen_torch/csrc/qgen_torch_kernels.h', compile('qgen_torch_kernels.h.hbs')(data));
  const vendored = new Set(manifest.kernels.map((k) => k.name));
  const kernels = Object.fromEntries(manifest.kernels.map((k) => [k.name, kernelFacts(k, manifest.arch, vendored)]));
  const recipes = Object.fromEntries(RECIPES.map((r: LinearRecipe) => [r.name, r]));
  await write(
    'qgen_torch/_generated.py',
    compile('qgen_torch_generated.py.hbs')({
      ...data,
      gencode: gencode(target),
      kernelsJson: pythonJson(kernels),
      recipesJson: pythonJson(recipes),
      gemmChoiceJson: pythonJson(GEMM_CHOICE[arch]),
      gemmSplitJson: pythonJson(GEMM_SPLIT_CHOICE[arch]),
      gemmDispatchJson: pythonJson(gemmDispatch(arch, tuning, tuningName)),
    }),
  );
  await write('README.md', compile('torch_README.md.hbs')({ ...data, recipes: RECIPES }));
  // The tree this package came from (commit + dirty, no date, so two vendorings at one commit are byte-identical):
  // tests/run.py and the benches put it in their results' provenance (bench/provenance.py).
  const tree = provenance ?? hostProvenance(repoDir, { sourceHash: false });
  await write('PROVENANCE.json', JSON.stringify(tree, null, 1) + '\n');
  return { files: files.sort(), kernels: manifest.kernels.map((k) => k.name) };
}

async function vendorC(arch: Arch, out: string, target: string, tuning?: TuningFile): Promise<VendorResult> {
  const files: string[] = [];
  const { manifest, files: kernelFiles } = await emitVendoredKernels(arch, path.join(out, 'kernels'), tuning);
  files.push(...kernelFiles);
  const data = { ...headerData(manifest), cudaArch: target.slice(3) };
  for (const [name, template] of [
    ['qgen_kernels.h', 'qgen_kernels.h.hbs'],
    ['CMakeLists.txt', 'CMakeLists.txt.hbs'],
    ['README.md', 'c_README.md.hbs'],
  ] as const) {
    const file = path.join(out, name);
    await writeFile(file, compile(template)(data));
    files.push(file);
  }
  return { files: files.sort(), kernels: manifest.kernels.map((k) => k.name) };
}

/**
 * Writes the package for `target` into `out` (see emit/output.ts: created if missing, an earlier qgen output replaced,
 * a foreign non-empty folder refused unless `force`, a file qgen did not write never overwritten).
 */
export async function vendor(opts: {
  target: VendorTarget;
  arch: Arch;
  out: string;
  force?: boolean;
  /** What nvcc builds for: `arch` (the default) or its family target (sm_100f, sm_120f). */
  gpuTarget?: string;
  /** A validated tuning file of this arch (tune/tuning.ts): its fused winners are vendored and the torch package
   * dispatches by its table (`tuningName`: how _generated.py names its source); its quantizer winners' launch
   * shapes replace the catalog's under the same names (tune/quantizers.ts applyTunedQuantizers). */
  tuning?: TuningFile;
  tuningName?: string;
  /** The tree's provenance for PROVENANCE.json where git cannot say it (the GPU machine: the bundle's record). */
  provenance?: HostProvenance;
}): Promise<VendorResult> {
  const gpuTarget = opts.gpuTarget ?? opts.arch;
  const command = `qgen vendor --target ${opts.target} --arch ${gpuTarget}`;
  const { result, files } = await writeOutputFolder(opts.out, command, { force: opts.force }, (dir) =>
    opts.target === 'torch'
      ? vendorTorch(opts.arch, dir, gpuTarget, opts.tuning, opts.tuningName, opts.provenance)
      : vendorC(opts.arch, dir, gpuTarget, opts.tuning),
  );
  return { kernels: result.kernels, files };
}
