// GEMM lowering, one function per arch (NUMERICS §6.2-§6.3): sm_90a emulates NVFP4 exactly on bf16 wgmma; sm_100a
// uses tcgen05 block-scaled MMA with tensor memory; sm_120a uses warp-level block-scaled mma.sync. What does not
// depend on the arch (tile order, 128x4 scale blocks, host checks, tails, epilogue arithmetic) lives in the shared
// runtime headers qgen_gemm_tiles.cuh, qgen_layout.cuh, qgen_gemm_host.cuh and qgen_async.cuh. The plan holds the
// arch model's layout (arch/gemm_sm*.ts) and names only: render/facts.ts spells it in C++, render/explain.ts in words.
import type { Arch, GemmSpec } from '../dsl/types.ts';
import { isProducerDecode, sm90GemmLayout, sm90PdLayout, sm90SwapLayout } from '../arch/gemm_sm90.ts';
import { sm100GemmLayout, sm100InstrDescriptor } from '../arch/gemm_sm100.ts';
import { sm120GemmLayout } from '../arch/gemm_sm120.ts';
import type { GemmPlan, GemmTiling } from './lower.ts';
import { cIdent, hostNames, LoweringError } from './names.ts';

/** Host shape rule shared by every arch: TMA rows of k/2 bytes need 16-byte strides. */
const GEMM_K_MULTIPLE = 32;
const GEMM_HEADERS = ['qgen.h', 'qgen_host.cuh', 'qgen_gemm_host.cuh', 'qgen_async.cuh', 'qgen_layout.cuh'];
const ARCH_HEADERS: Record<Arch, string[]> = {
  'sm_90a': ['qgen_sm90_wgmma.cuh', 'qgen_fp4_bf16.cuh', 'qgen_gemm_tiles.cuh'],
  'sm_100a': ['qgen_sm100_tcgen05.cuh', 'qgen_gemm_tiles.cuh'],
  'sm_120a': ['qgen_sm120_mma.cuh', 'qgen_gemm_tiles.cuh'],
};

/** The arch model's layout of the spec's tiling, or a LoweringError naming the tiling field that does not fit. */
function tiling(spec: GemmSpec, name: string, arch: Arch): GemmTiling {
  const t = spec.tiling;
  const fail = (r: { field: string; message: string }): never => {
    throw new LoweringError(`${name}: tiling.${r.field}: ${r.message}`);
  };
  if (arch !== 'sm_90a' && t.decode !== undefined) {
    fail({ field: 'decode', message: `exists on sm_90a only, not on ${arch} (nothing is decoded there)` });
  }
  switch (arch) {
    case 'sm_90a': {
      const r =
        t.registerOperand === 'b'
          ? sm90SwapLayout(t.ctaTile, t.stages, t.consumers, t.fragmentSets)
          : isProducerDecode(t.decode)
            ? sm90PdLayout(t.ctaTile, t.consumers, t.stages, t.decode)
            : sm90GemmLayout(t.ctaTile, t.consumers, t.stages);
      return 'field' in r ? fail(r) : { arch, layout: r.layout };
    }
    case 'sm_100a': {
      const r = sm100GemmLayout(t.ctaTile, t.consumers, t.stages);
      return 'field' in r ? fail(r) : { arch, layout: r.layout, idesc: sm100InstrDescriptor(r.layout.bn) };
    }
    case 'sm_120a': {
      const r = sm120GemmLayout(t.ctaTile, t.consumers, t.stages);
      return 'field' in r ? fail(r) : { arch, layout: r.layout };
    }
  }
}

/** Elements per thread of the epilogue: the accumulators a thread holds (NUMERICS §4 chunk in explain's words). */
function elemsPerThread(g: GemmTiling): number {
  switch (g.arch) {
    case 'sm_90a':
      return 64;
    case 'sm_100a':
      return 32;
    case 'sm_120a':
      return g.layout.accumulators;
  }
}

/** Lowers a validated GEMM spec for an arch (alpha epilogue only). */
export function lowerGemm(spec: GemmSpec, arch: Arch): GemmPlan {
  const name = cIdent(spec.name);
  if (spec.epilogue !== 'alpha') {
    throw new LoweringError(`${name}: epilogue '${spec.epilogue}' is not implemented on ${arch}; allowed: 'alpha'`);
  }
  const g = tiling(spec, name, arch);
  const E = elemsPerThread(g);
  return {
    name,
    kind: 'gemm',
    arch,
    spec,
    ...hostNames(name, 'qgen_gemm_args', false),
    launches: [{ kernel: `qgen_${name}_impl::gemm`, role: 'gemm', block: g.layout.threads }],
    threadsPerBlock: g.layout.threads,
    headers: [...GEMM_HEADERS, ...ARCH_HEADERS[arch]],
    constants: [],
    choices: { e2m1Rn: null, e2m1Sr: null, e4m3Rn: null },
    mapping: { elemsPerThread: E, lanesPerUnit: 1, unitWidth: E, order: 'row-major' },
    colsMultiple: GEMM_K_MULTIPLE,
    gemm: { ...g, tileOrder: spec.tiling.tileOrder, output: spec.output },
  };
}
