// `qgen emit`: lower every spec for one arch, render the kernels, copy the runtime headers they include and write
// manifest.json. Output is a pure function of (specs, arch, qgen version, templates, headers): no timestamps.
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Arch, KernelSpec } from '../dsl/types.ts';
import { lower, type KernelPlan } from '../lower/lower.ts';
import { hostSignatures, renderKernel } from '../render/render.ts';
import { launchDescriptions } from '../render/explain.ts';
import { assertValid } from '../validate/validate.ts';
import { numericsVersion, qgenVersion } from '../render/versions.ts';

const runtimeDir = fileURLToPath(new URL('../runtime/', import.meta.url));

export interface ManifestKernel {
  name: string;
  kind: KernelSpec['kind'];
  source: string;
  spec: KernelSpec;
  host: {
    function: string;
    signature: string;
    argsStruct: string;
    workspaceFunction: string | null;
    workspaceSignature: string | null;
  };
  launches: { kernel: string; role: string; reads: string; writes: string }[];
  headers: string[];
  choices: KernelPlan['choices'];
}

export interface Manifest {
  qgenVersion: string;
  numericsVersion: string;
  arch: Arch;
  headers: string[];
  kernels: ManifestKernel[];
}

/**
 * Validates the specs (a SpecError lists every problem with its field path, `kernels[i].field`), then lowers each
 * (throws on the first that cannot be lowered, naming it). Emission never trusts its caller to have validated.
 */
export function planKernels(specs: KernelSpec[], arch: Arch): KernelPlan[] {
  assertValid(specs, arch, `kernel specs (${arch})`);
  const seen = new Set<string>();
  return specs.map((spec) => {
    if (seen.has(spec.name)) throw new Error(`duplicate kernel name '${spec.name}'`);
    seen.add(spec.name);
    return lower(spec, arch);
  });
}

export function manifestFor(plans: KernelPlan[], arch: Arch, headers: string[]): Manifest {
  return {
    qgenVersion: qgenVersion(),
    numericsVersion: numericsVersion(),
    arch,
    headers,
    kernels: plans.map((p) => ({
      name: p.name,
      kind: p.kind,
      source: `${p.name}.cu`,
      spec: p.spec,
      host: {
        function: p.hostFunction,
        signature: hostSignatures(p).host,
        argsStruct: p.argsStruct,
        workspaceFunction: p.workspaceFunction,
        workspaceSignature: hostSignatures(p).workspace,
      },
      launches: launchDescriptions(p),
      headers: p.headers,
      choices: p.choices,
    })),
  };
}

/**
 * One translation unit that includes every given kernel source: nvcc then parses the runtime headers once for all
 * kernels (the compile test builds the whole set per arch this way). Not written by emitKernels, whose `.cu` files
 * each stand alone.
 */
export function unitySource(kernelSources: string[], arch: Arch): string {
  return [
    `// Every kernel below as one translation unit (qgen ${qgenVersion()}, ${arch}).`,
    ...kernelSources.map((f) => `#include "${f}"`),
    '',
  ].join('\n');
}

/** Writes `<name>.cu` per spec, the runtime headers they include and `manifest.json` into outDir. */
export async function emitKernels(
  specs: KernelSpec[],
  arch: Arch,
  outDir: string,
): Promise<{ files: string[]; manifestPath: string }> {
  const plans = planKernels(specs, arch);
  await mkdir(outDir, { recursive: true });
  const files: string[] = [];
  const write = async (name: string, text: string) => {
    const file = path.join(outDir, name);
    await writeFile(file, text);
    files.push(file);
  };
  for (const plan of plans) await write(`${plan.name}.cu`, renderKernel(plan));

  const headers = [...new Set(plans.flatMap((p) => p.headers))].sort();
  for (const header of headers) {
    const file = path.join(outDir, header);
    await copyFile(path.join(runtimeDir, header), file);
    files.push(file);
  }
  const manifestPath = path.join(outDir, 'manifest.json');
  await write('manifest.json', `${JSON.stringify(manifestFor(plans, arch, headers), null, 2)}\n`);
  return { files, manifestPath };
}

/** Reads an emitted manifest back. */
export async function readManifest(manifestPath: string): Promise<Manifest> {
  return JSON.parse(await readFile(manifestPath, 'utf8')) as Manifest;
}
