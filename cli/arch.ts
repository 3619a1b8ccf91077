// How the CLI reads --arch: the exact targets (sm_90a, sm_100a, sm_120a), the plain names people type (sm_90,
// sm_100, sm_120: the kernels use arch-specific instructions, so each plain name means its `a` target, said in one
// line on stderr), a "did you mean" for near misses, and the one default that list, explain and emit share.
import { ARCHS, type Arch } from '../dsl/types.ts';
import { UsageError } from './errors.ts';

/** The arch list, list, explain and emit use when --arch is not given (said in their output). */
export const DEFAULT_ARCH: Arch = 'sm_100a';

/** Plain compute-capability names and the arch-specific target each one means. */
export const PLAIN_ARCH_NAMES: Readonly<Record<string, Arch>> = {
  sm_90: 'sm_90a',
  sm_100: 'sm_100a',
  sm_120: 'sm_120a',
};

/** Whether `b` is `a` with one character more (an insertion, never a substitution: sm_80 is no typo of sm_90). */
function oneInserted(a: string, b: string): boolean {
  if (b.length !== a.length + 1) return false;
  for (let i = 0; i < b.length; i++) if (b.slice(0, i) + b.slice(i + 1) === a) return true;
  return false;
}

/**
 * The accepted arch a near miss means (other case, no `_`, a compute_ prefix, one digit missing or doubled), when
 * exactly one fits; else undefined. A different number (sm_80) is no near miss.
 */
export function suggestArch(value: string): Arch | undefined {
  const normal = value
    .trim()
    .toLowerCase()
    .replace(/^compute_/, 'sm_')
    .replace(/^sm(?=\d)/, 'sm_');
  const exact = (ARCHS as readonly string[]).includes(normal) ? (normal as Arch) : PLAIN_ARCH_NAMES[normal];
  if (exact) return exact;
  const digits = /^sm_(\d+)[a-z]?$/.exec(normal)?.[1];
  if (digits === undefined) return undefined;
  const fits = ARCHS.filter((arch) => {
    const archDigits = arch.slice(3, -1);
    return oneInserted(digits, archDigits) || oneInserted(archDigits, digits);
  });
  return fits.length === 1 ? fits[0] : undefined;
}

/**
 * CUDA 13 family targets: the kernels of an arch-specific target, compiled so that they also run on the later chips
 * of its family. Compile-verified only (every catalog kernel of the arch compiles warning-free with nvcc 13.0 for
 * the family target, and the hardware paths are kept: tcgen05.mma, block-scaled mma.sync, the e2m1 cvt); never run.
 */
export const FAMILY_TARGETS: Readonly<Record<string, { arch: Arch; chips: string }>> = {
  sm_100f: { arch: 'sm_100a', chips: 'B200, B300' },
  sm_120f: { arch: 'sm_120a', chips: 'RTX 5090, DGX Spark GB10' },
};

/** What a command compiles for: the kernels of `arch`, built for `target` (the arch itself or its family). */
export interface GpuTarget {
  arch: Arch;
  target: string;
}

/** Parses --arch of emit and vendor, which also take the family targets (sm_100f, sm_120f). */
export function parseGpuTarget(
  value: unknown,
  note: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): GpuTarget {
  const family = FAMILY_TARGETS[String(value)];
  if (family) {
    note(
      `qgen: --arch ${String(value)}: the ${family.arch} kernels, built for the family target ${String(value)} ` +
        `(runs on ${family.chips}; compile-verified only, never run on a GPU)`,
    );
    return { arch: family.arch, target: String(value) };
  }
  const arch = parseArch(value, note);
  return { arch, target: arch };
}

/**
 * Parses --arch. A plain name (sm_100) becomes its arch-specific target and `note` receives the one line saying so;
 * anything else unknown is a usage error that suggests the nearest accepted name.
 */
export function parseArch(value: unknown, note: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Arch {
  if ((ARCHS as readonly unknown[]).includes(value)) return value as Arch;
  const text = String(value);
  const target = PLAIN_ARCH_NAMES[text];
  if (target) {
    note(`qgen: --arch ${text} means ${target} (the kernels use ${target}-specific instructions)`);
    return target;
  }
  if (FAMILY_TARGETS[text]) {
    throw new UsageError(
      `--arch: ${text} is a family target, which only emit and vendor take; here use ` + `${FAMILY_TARGETS[text].arch}`,
    );
  }
  const suggestion = suggestArch(text);
  throw new UsageError(
    `--arch: unknown architecture "${text}"; ${suggestion ? `did you mean ${suggestion}? ` : ''}` +
      `allowed: ${ARCHS.join(', ')} (or ${Object.keys(PLAIN_ARCH_NAMES).join(', ')})`,
  );
}
