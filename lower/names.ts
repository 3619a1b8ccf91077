// What every lowering shares: its error, the check that a kernel name is a C identifier, and the C ABI names of a
// kernel's host entry (runtime/qgen.h). Both lower/lower.ts and lower/gemm.ts import it; neither imports the other
// back at run time (gemm.ts reads lower.ts's plan types only).

/** Thrown when a spec is valid but cannot be lowered (yet) for an arch. */
export class LoweringError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LoweringError';
  }
}

export function cIdent(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new LoweringError(`kernel name '${name}' is not a C identifier`);
  return name;
}

/** The C ABI names of a kernel (runtime/qgen.h); render/ spells their signatures. */
export interface HostNames {
  hostFunction: string;
  workspaceFunction: string | null;
  argsStruct: string;
}

export function hostNames(name: string, argsStruct: string, workspace: boolean): HostNames {
  return {
    hostFunction: `qgen_${name}`,
    workspaceFunction: workspace ? `qgen_${name}_workspace_bytes` : null,
    argsStruct,
  };
}
