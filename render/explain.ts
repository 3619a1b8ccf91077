// The words of a plan: the lowering steps that `qgen explain` prints and every generated file's banner shows, what
// each launch reads and writes (manifest.json), the launch summary and the comments of the plan's constants. All
// of it is derived from the plan (lower/lower.ts), which holds no prose. Section numbers refer to
// runtime/NUMERICS.md.
import { STREAM_ELEMENT_SR, STREAM_SCALE_SR, STREAM_SIGNS } from '../dsl/constants.ts';
import type {
  AmaxPlan,
  DequantizePlan,
  GemmPlan,
  HadamardPlan,
  KernelLaunch,
  KernelPlan,
  PlanConstant,
  QuantizePlan,
} from '../lower/lower.ts';
import { SM100_SF_SETS } from '../arch/gemm_sm100.ts';
import { isRegisterADecode } from '../arch/gemm_sm90.ts';

/** What a launch reads and writes in global memory. */
export interface LaunchDescription {
  kernel: string;
  role: string;
  reads: string;
  writes: string;
}

/** The launch summary `qgen explain` prints. */
export interface LaunchSummary {
  threadsPerBlock: number;
  grid: string;
  kernels: string[];
  workspace: string;
}

function constantBits(plan: KernelPlan, name: PlanConstant['name']): string {
  const c = plan.constants.find((k) => k.name === name);
  if (!c) throw new Error(`${plan.name}: the plan has no constant '${name}'`);
  return c.bits;
}

function rotationSize(plan: KernelPlan): number {
  return plan.kind === 'quantize' ? plan.quantize.rotation : plan.kind === 'hadamard' ? plan.hadamard.size : 0;
}

/** The comment of a plan constant in the generated source. */
export function constantComment(plan: KernelPlan, c: PlanConstant): string {
  switch (c.name) {
    case 'target6':
      return 'NUMERICS §5.5: candidate 6 (also T_ref)';
    case 'target4':
      return 'NUMERICS §5.5: candidate 4';
    case 'ceiling':
      return 'NUMERICS §5.1: ceiling C';
    case 'inv_sqrt_n':
      return `NUMERICS §1.5: f32(1/sqrt(${rotationSize(plan)}))`;
    case 'target':
      if (plan.kind === 'quantize' && plan.quantize.scaleFormat === 'ue8m0') {
        return 'NUMERICS §5.8: s_g = RP_UE8M0(amax_g / 6)';
      }
      return `NUMERICS §5: target T (${plan.kind === 'quantize' ? plan.spec.target : ''})`;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Quantize

function quantizeInput(plan: QuantizePlan): string {
  const q = plan.quantize;
  if (q.input === 'nvfp4') return 'NVFP4 input (in_codes, in_scales, in_tensor_scale)';
  return plan.spec.transposedInput ? 'x (bf16, [cols, rows])' : 'x (bf16, [rows, cols])';
}

function scaleWrites(plan: QuantizePlan): string {
  const layout = plan.quantize.scaleLayout;
  return `scales (${layout}${layout === '128x4' ? ', padding zeroed' : ''})`;
}

function quantizeLaunchWords(plan: QuantizePlan, launch: KernelLaunch): { reads: string; writes: string } {
  const mode = plan.quantize.tensorScale;
  const input = quantizeInput(plan);
  const plane = plan.quantize.outputs === 'nvfp4+bf16-plane' ? ', bf16 plane (§6.6)' : '';
  const dq = plan.quantize.outputs === 'nvfp4+dequantized-plane';
  switch (launch.role) {
    case 'amax-pass':
      return { reads: input, writes: 'workspace max word (atomicMax)' };
    case 'pass-a':
      return {
        reads: input,
        writes:
          `codes, ${dq ? 'dequantized plane from the proxies (§6.7), ' : ''}bf16 proxies (workspace), ` +
          'workspace max word (atomicMax)',
      };
    case 'pass-b':
      return {
        reads: `bf16 proxies, max word${plane ? ', codes' : ''}${dq ? ', codes of the groups it rewrites' : ''}`,
        writes: `${scaleWrites(plan)}, tensor_scale${plane}${dq ? ', plane of the groups pass A could not know' : ''}`,
      };
    default:
      return {
        reads: `${input}${mode === 'computed' ? ', max word' : mode === 'caller' ? ', tensor_scale' : ''}`,
        writes: `codes, ${scaleWrites(plan)}${mode === 'computed' ? ', tensor_scale' : ''}${plane}`,
      };
  }
}

function quantizeInputStep(plan: QuantizePlan): string {
  const { elemsPerThread: E, lanesPerUnit: L } = plan.mapping;
  const tileShape = `${plan.threadsPerBlock / L}-row x ${E * L}-column tile`;
  switch (plan.quantize.load) {
    case 'nvfp4-transposed':
    case 'nvfp4-transposed-tile':
      return (
        'Input: NVFP4 A [cols, rows] dequantized as f32(f32(e2m1 * e4m3) * t_in) and read transposed (§5.9); ' +
        'rows must be a multiple of 16.' +
        (plan.quantize.load === 'nvfp4-transposed-tile'
          ? ` Each block iteration stages a ${tileShape} through shared memory` +
            " (16-byte code loads along A's rows, decoded into exact bf16 e2m1 * e4m3 pairs, times t_in after the " +
            'transposed read); partial or unaligned tiles read A directly.'
          : '')
      );
    case 'bf16-transposed-tile':
      return (
        'Input: bf16 stored [cols, rows]; element (r, k) is at x[k * rows + r]. Each block iteration stages a ' +
        `${tileShape} through shared memory (16-byte coalesced loads along rows, then each thread reads its row ` +
        'segment as bf16 pairs); partial tiles read x directly.'
      );
    case 'bf16-transposed':
      return (
        'Input: bf16 stored [cols, rows]; element (r, k) is read at x[k * rows + r] (coalesced across lanes: ' +
        'consecutive rows).'
      );
    case 'bf16-row':
    case 'bf16-row-prefetch':
      return 'Input: bf16 [rows, cols] row-major, 16-byte loads.';
  }
}

function quantizeRoundingSteps(plan: QuantizePlan): string[] {
  const q = plan.quantize;
  const mx = q.scaleFormat === 'ue8m0';
  const tensorForm = q.tensorScale === 'computed' || q.tensorScale === 'caller';
  const amax = q.block16
    ? 'amax over the 16x16 block (16 lanes, __shfl_xor_sync)'
    : `amax_g over the ${q.groupSize}-group`;
  switch (q.rounding) {
    case 'rtn':
      return [
        mx
          ? `Per 32-group: ${amax}; s_g = RP_UE8M0(f32(amax_g / 6)) (1.0 for a zero group); ` +
            'q_i = RN_E2M1(f32(x_i * 2^(127-e))).'
          : `Per group: ${amax}; ${
              tensorForm ? 's_g = RN_E4M3(f32(amax_g / f32(T * t))), inv = f32(1 / f32(s_g * t))' : 'inv = f32(1 / p_g)'
            }; q_i = RN_E2M1(f32(x_i * inv)) (§5.3).`,
      ];
    case 'sr':
      return [
        `Per group: ${amax}; ${
          mx
            ? 's_g = RP_UE8M0(f32(amax_g / 6))'
            : tensorForm
              ? 's_g = RN_E4M3(f32(amax_g / f32(V_sr * t)))'
              : 'p_g = RN_P4(f32(amax_g / V_sr))'
        }; ` +
          `q_i = SR_E2M1(v_i, r16) with r16 from word(seed, STREAM_ELEMENT_SR=${STREAM_ELEMENT_SR}, g16, e >> 1) ` +
          '(§5.4, §3.2; software on every arch).',
      ];
    case 'four-six':
      return [
        `Per group: ${amax}; candidates T = 6 and T = 4 (§5.5), each RTN; errors tree16(f32(d_i^2)); ` +
          'keep 6 unless e_4 < e_6.',
      ];
    case 'ms-eden': {
      const per128 = q.correction === 'per-128';
      return [
        per128
          ? `Per group: ${amax}; RTN codes with T = s_eden; products f32(y_i^2), f32(y_i * f32(q_i * D_g)) in the ` +
            'input domain (§5.6).'
          : `Per group: ${amax}; RTN codes with T = s_eden; products f32(v_i^2), f32(v_i q_i) in scaled units (§5.6).`,
        per128
          ? 'Correction S per 128-chunk: tree128 over 128 products (cross-lane strides by __shfl_xor_sync, then ' +
            'registers); zero groups contribute 0.'
          : 'Correction S per 16-group: S = f32(tree16(v^2) / tree16(v q)), 1 when the denominator is 0 or S is not ' +
            'finite.',
        tensorForm
          ? `Scale: s'_g = SR_E4M3(f32(S * s_g), word(seed, STREAM_SCALE_SR=${STREAM_SCALE_SR}, g, 0)); codes ` +
            'are not changed.'
          : `Proxy: c_g = SR_P4(f32(S * p_g), word(seed, STREAM_SCALE_SR=${STREAM_SCALE_SR}, g, 0)).`,
      ];
    }
  }
}

function quantizeSteps(plan: QuantizePlan): string[] {
  const q = plan.quantize,
    spec = plan.spec;
  const mx = q.scaleFormat === 'ue8m0';
  const mode = q.tensorScale;
  const msEden = q.rounding === 'ms-eden';
  const { elemsPerThread: E, lanesPerUnit: L, unitWidth, order } = plan.mapping;
  const threads = plan.threadsPerBlock;
  const n = q.rotation;
  const steps: string[] = [];
  steps.push(
    `${plan.name}: ${
      mx ? 'MXFP4 (32-groups, UE8M0 scales, no tensor scale; NUMERICS §5.8)' : 'NVFP4 (16-groups, E4M3 scales)'
    }, rounding ${q.rounding}${q.block16 ? ' over 16x16 blocks (§5.7)' : ''}, ` +
      `tensor scale ${mode}, scale layout ${q.scaleLayout} (§7), arch ${plan.arch}.`,
  );
  steps.push(quantizeInputStep(plan));
  steps.push(
    `Mapping: ${E} consecutive elements of one row per thread${
      L > 1 ? `, a ${unitWidth}-element chunk over ${L} adjacent lanes` : ''
    }; ${order} work order, grid-stride over ` + `${threads}-thread blocks (tiling never changes results, §3.2).`,
  );
  if (n) {
    steps.push(
      `Rotate each ${n}-chunk along K (§4): signs from word(sign_seed, STREAM_SIGNS=${STREAM_SIGNS}, 0, ` +
        `j >> 5); butterfly stages h < ${Math.min(E, n)} in registers${
          q.rotationLanes > 1 ? `, h >= ${E} with __shfl_xor_sync over ${q.rotationLanes} lanes` : ''
        }; scale by inv_sqrt_n = ` +
        `${constantBits(plan, 'inv_sqrt_n')}.`,
    );
  }
  if (mode === 'computed') {
    const tRef = plan.constants.find((c) => c.name === 'target' || c.name === 'target6')!.value;
    steps.push(
      `Pass 1 (amax-pass): amax over the${n ? ' rotated' : ''} tensor (finite values, §1.4) into a workspace ` +
        'word (zeroed by cudaMemsetAsync; atomicMax on bit patterns).',
    );
    steps.push(
      `Tensor scale (§5.1 computed): t = f32(amax / f32(T_ref * C)), T_ref = ${tRef}, C = ${spec.ceiling}; ` +
        't = 1 when amax = 0; written to tensor_scale.',
    );
  }
  if (mode === 'caller') steps.push('Tensor scale (§5.1 caller): t is read from *tensor_scale.');
  if (mode === 'one-pass') {
    steps.push(
      'Pass A (§5.1 one-pass): per group the proxy p_g = RN_P4(f32(amax_g / T)) replaces s_g * t; codes are ' +
        'written, c_g is stored as bf16 in the workspace, and m = max c_g goes to a workspace word (zeroed by ' +
        'cudaMemsetAsync).',
    );
  }
  steps.push(...quantizeRoundingSteps(plan));
  if (!mx) {
    steps.push(
      `Zero groups (§5.2): amax_g = 0 or a ${mode === 'one-pass' ? 'proxy' : 'scale'} that rounds to 0 -> ` +
        `scale 1.0 (E4M3 0x38), finite elements -> ±0, non-finite -> RN_E2M1${
          msEden ? '; in a correction sum their elements count as v = 0 (finite) or x (non-finite)' : ''
        }.`,
    );
  }
  if (mode === 'one-pass') {
    steps.push(
      `Pass B (§5.1): t = 2^k, the smallest k with m / 2^k <= C = ${spec.ceiling} (k in [-149, 127]; t = 1 ` +
        'when m = 0); ' +
        (msEden
          ? `w = f32(c_g / t); s'_g = w when w >= 2^-6, else SR_E4M3(w, word(seed, ` + `${STREAM_SCALE_SR}, g, 1)).`
          : 's_g = RN_E4M3(f32(c_g / t)).'),
    );
  }
  steps.push(
    `E2M1 round-to-nearest on ${plan.arch}: ${
      plan.choices.e2m1Rn === 'hardware'
        ? 'hardware cvt.rn.satfinite.e2m1x2.f32 with NaN mapped to +6 first (§2.1)'
        : 'software, f32((a + c) - c) onto the grid (equal to the threshold rule; no FP4 cvt on Hopper)'
    }; ` + 'E4M3 RN: hardware cvt.rn.satfinite.e4m3x2.f32 (all archs).',
  );
  steps.push(
    `Outputs: codes [rows, cols/2] (low index in the low nibble), ${scaleWrites(plan)}${
      mode === 'none' ? '' : ', tensor_scale'
    }.`,
  );
  steps.push(
    `Launches: ${plan.launches.map((l) => `${l.role} (${l.kernel})`).join(' -> ')}; workspace: ` + `${q.workspace}.`,
  );
  steps.push(
    `Shapes (§8): rows >= 1, cols a positive multiple of ${plan.colsMultiple}${
      q.input === 'nvfp4' ? ', rows a multiple of 16' : ''
    }; checked before any launch.`,
  );
  // ptxas's default register target would make some mappings spill, and spills are build errors; minBlocks caps the
  // registers at what the mapping needs so that several blocks share an SM.
  // Registers are allocated per warp in units of 256, i.e. 8 per thread.
  const minBlocks = q.minBlocksPerSm;
  steps.push(
    `Registers: __launch_bounds__(${threads}, ${minBlocks}) (at most ` +
      `${Math.min(255, Math.floor(65536 / (threads * minBlocks) / 8) * 8)} per thread, no spills).`,
  );
  if (q.loopState === 'recomputed')
    steps.push(
      'Loop state: the thread index, signs and walk step are re-read in every iteration (shared memory, a ' +
        'volatile %tid.x read), not kept in registers through the loop.',
    );
  return steps;
}

// ---------------------------------------------------------------------------------------------------------------
// Dequantize, Hadamard, amax

function dequantizeSteps(plan: DequantizePlan): string[] {
  const d = plan.dequantize;
  const mx = d.scaleFormat === 'ue8m0';
  return [
    `${plan.name}: dequantize ${mx ? 'MXFP4 (32-groups, UE8M0)' : 'NVFP4 (16-groups, E4M3, tensor scale t)'} with ` +
      `${d.scaleLayout} scales to ${d.output}, arch ${plan.arch}.`,
    mx
      ? 'y_i = f32(e2m1_i * 2^(e-127)) (NUMERICS §6).'
      : 'y_i = f32(f32(e2m1_i * s_g) * t) (NUMERICS §6; the inner product is exact).',
    ...(d.output === 'bf16' ? ['bf16 output: RNE, NaN stays NaN (§2.8).'] : []),
    ...(d.output === 'bf16' && !mx
      ? [
          't = 1 (the two-pass planes, §6.4): e2m1 and the scale as exact bf16 values (byte tables, prmt) and one ' +
            'bf16x2 multiply per two elements; the same bits, nothing rounds.',
        ]
      : []),
    `Mapping: ${plan.mapping.elemsPerThread / 8} pieces of 8 elements per thread and iteration, piece 32 * c + lane ` +
      "of its warp's run (32-bit coalesced code loads, 16-byte stores), grid-stride; each piece's (row, group) " +
      'from one walk per thread and additions.',
    `Shapes: rows >= 1, cols a positive multiple of ${d.groupSize}.`,
  ];
}

function hadamardSteps(plan: HadamardPlan): string[] {
  const h = plan.hadamard,
    n = h.size,
    E = plan.mapping.elemsPerThread;
  return [
    `${plan.name}: randomized Hadamard transform of size ${n} along cols (NUMERICS §4), ${h.input} -> ${h.output}, ` +
      `arch ${plan.arch}.`,
    `Signs: word(seed, STREAM_SIGNS=${STREAM_SIGNS}, 0, j >> 5), bit j & 31 (set -> -1); args.seed is the sign seed ` +
      "(a quantizer's sign_seed, §3.2).",
    `Mapping: ${E} elements per thread${
      h.lanes > 1 ? `; a ${n}-chunk over ${h.lanes} lanes: stages h >= ${E} by ` + '__shfl_xor_sync' : ''
    }; stages h < ${Math.min(E, n)} in registers.`,
    'Every butterfly output is one binary32 add/sub (__fadd_rn/__fsub_rn); then y_j = f32(a_j * ' +
      `${constantBits(plan, 'inv_sqrt_n')}).`,
    `Registers: __launch_bounds__(${plan.threadsPerBlock}, 1) (no spills).`,
    ...(h.output === 'bf16' ? ['bf16 output: RNE (§2.8).'] : []),
    `Shapes: rows >= 1, cols a positive multiple of ${n}.`,
  ];
}

function amaxSteps(plan: AmaxPlan): string[] {
  return [
    `${plan.name}: amax over the finite elements of x (${plan.amax.input}; NUMERICS §1.4), arch ${plan.arch}.`,
    "The result word is zeroed with cudaMemsetAsync on the caller's stream, then every block folds its maximum in " +
      'with atomicMax on the bit pattern.',
    `Mapping: the tensor as one flat array, ${plan.amax.perLoad} elements per 16-byte load, grid-stride; ` +
      'a scalar tail.',
    'Shapes: rows >= 1, cols >= 1.',
  ];
}

// ---------------------------------------------------------------------------------------------------------------
// GEMM (lower/gemm.ts plans; NUMERICS §6.2-§6.3)

const GEMM_SHAPES =
  'Shapes: m >= 1; n a positive multiple of 16; k a positive multiple of 32 (TMA rows of k/2 ' +
  'bytes need 16-byte strides). Tails: TMA reads zeros past m, n, k; scales of groups past k are replaced by 0; ' +
  'rows >= m and columns >= n are not written.';

function gemmSteps(plan: GemmPlan): string[] {
  const { name, spec, arch } = plan;
  const g = plan.gemm;
  const { bm, bn, bk } = g.layout;
  const bf16 = spec.output === 'bf16' ? ', bf16 RNE' : '';
  const head =
    `${name}: C = alpha * A . B^T, A [m, k] and B [n, k] NVFP4 (K-major, 128x4 E4M3 scales), alpha = ` +
    `tA * tB, ${spec.output} out, arch ${arch}.`;
  const codeBytes = `${bm}x${bk / 2} + ${bn}x${bk / 2} code bytes`;
  switch (g.arch) {
    case 'sm_90a': {
      const L = g.layout;
      const atoms = bk / 64;
      if (L.registerOperand === 'b') {
        const c = L.consumers;
        const consumersText = c === 1 ? 'a consumer warpgroup' : `${c} consumer warpgroups`;
        const split =
          c === 1
            ? []
            : [
                `K split inside the CTA (NUMERICS §6.2): consumer w sums the K blocks kb mod ${c} == w of every tile ` +
                  `(tiles padded to a multiple of ${c} steps by empty ones), ${L.wSets} W fragment set(s) each; ` +
                  `at the tile's end ${c === 2 ? 'consumer 1 writes its' : `consumers 1..${c - 1} write their`} fp32 ` +
                  'partials to shared memory (named ' +
                  `barriers) and consumer 0 adds them in order, ${partialSum(c)}, as it stores.`,
              ];
        return [
          head,
          `Operands swapped (tiling.registerOperand 'b'): tile ${bm}x${bn}x${bk} computed as C^T = B . A^T; ` +
            `persistent CTAs (${L.ctasPerSm} per SM), tile order ${g.tileOrder}; ${L.threads} threads = ` +
            `${consumersText} (B fragments, wgmma) + an A-decoding warpgroup + a TMA warp (one thread issues).`,
          ...split,
          `Pipeline: ${L.rawStages} raw stages filled by TMA (${codeBytes}, ${2 * atoms} scale blocks of 512 B; ` +
            `mbarriers full/empty) -> a ring of ${L.xStages} dequantized bf16 A tiles (${atoms} SW128 atom(s) of ` +
            `${bm * 128} B; mbarriers full/empty); ${L.smemBytes} B shared memory.`,
          'Dequantize (NUMERICS §6.2): code -> bf16 pattern s<<15 | (e1 e0 m)<<6 (= e2m1 * 2^-126), times ' +
            'bf16(s_e4m3 * 2^118): exact e2m1 * s * 2^-8.',
          `Consumer, per K block: issue the ${bk / 16} wgmmas of block k (B from registers, A's tile from the ring), ` +
            (L.wSets === 2
              ? `dequantize B of block k+${c} into the other fragment set while they run, wait, release the A tile. `
              : "wait, release the A tile, dequantize B of the consumer's next block. ") +
            'The decoders fill the A ring ahead (1, 2 or 4 warps per K block by the A tile size, groups taking K ' +
            'blocks in turn); no CTA-wide barrier.',
          `Accumulate: wgmma.m64n${bm}k16.f32.bf16.bf16, fp32, same products and ` +
            `${c === 1 ? 'K order as the unswapped kernel' : 'K permutation as the unswapped kernel'}. ` +
            `Epilogue (transposed): out = f32(acc * f32(f32(tA * tB) * 2^16))${bf16}.`,
          `Registers: ${L.launchRegs}/thread (__launch_bounds__(${L.threads}, ${L.ctasPerSm})).`,
          GEMM_SHAPES,
        ];
      }
      if (isRegisterADecode(L.decode)) {
        const two = L.decode !== 'producer-b-register-a';
        const consumerCopies = L.decode === 'producer2-b-register-a-consumer-copies';
        const issuers = consumerCopies ? 'lanes 0 of consumer warps 0-2' : 'lanes 0 of decoder warps 0-2';
        const accumulateTwo =
          `Accumulate: two wgmma.m64n${bn / 2}k16.f32.bf16.bf16 per k16 step (A from registers; the accumulators' ` +
          `halves: one m64n${bn}k16 needs more registers than the ${L.launchRegs} of the launch share), `;
        return [
          head,
          `Producer-side B decode, A in consumer registers (tiling.decode '${L.decode}'): tile ${bm}x${bn}x${bk}, ` +
            `persistent CTAs (${L.ctasPerSm} per SM), tile order ${g.tileOrder}; ${L.threads} threads = ` +
            `${L.consumers} consumer warpgroup(s) of ${L.slabs} m64 slab(s) (A decode into RS fragments, RS wgmma, ` +
            'the epilogue) + ' +
            (consumerCopies
              ? 'two decoder warpgroups (B only, one B row of a K block per thread; no copies: lanes 0 of ' +
                "consumer warps 0-2 issue TMA, in the consumers' prologue and after each K block's wait_group 1)."
              : two
                ? "two decoder warpgroups (B only, one B row of a K block per thread; lanes 0 of the first one's " +
                  'warps 0-2 issue TMA).'
                : 'a decoder warpgroup (B only; lanes 0 of its warps 0-2 issue TMA).'),
          `Pipeline: ${L.rawStages} raw stages filled by TMA (${codeBytes}, codes with the TMA swizzle of ` +
            `${bk / 2}-byte rows, ${atoms * (1 + Math.ceil(bn / 128))} scale blocks of 512 B; mbarrier full, raw ` +
            'empty: every decoder thread once it used the B registers it loaded from the stage, and lane 0 of every ' +
            `consumer warp once the warp decoded its A fragments; ${issuers} refill the previous K ` +
            `block's stage) -> a ring of ${L.tileStages} dequantized bf16 B tiles (${atoms} SW128 atom(s) of ` +
            `${bn * 128} B; mbarriers full/empty: the decoders run up to ${L.tileStages - 1} K blocks ahead); ` +
            `${L.smemBytes} B shared memory (no bf16 A tile).`,
          'Dequantize (NUMERICS §6.2): code -> bf16 pattern s<<15 | (e1 e0 m)<<6 (= e2m1 * 2^-126), times ' +
            'bf16(s_e4m3 * 2^118): exact e2m1 * s * 2^-8. Decoders: one B row of a 64-wide atom per task into its ' +
            'SW128 line, codes and scales loaded from the raw stage one K block before their decode. Consumers: ' +
            'rows r, r + 8 and group lane mod 4 of their slab (two 8-byte code reads, two scale bytes) straight into ' +
            'the 16 A fragment registers of a K block, in the K permutation of the SW128 tiles.',
          `Consumers, per K block k (fragment set k mod 2): wait for the B tile, issue its ${bk / 16} RS wgmmas, ` +
            'wait until one group is left in flight and release the previous tile, decode the A of block k + 1 into ' +
            "the other set (released by that wait) and release its raw stage; at a tile's last K block wait for all, " +
            'release, store. The first K block of a tile starts with scale-d = 0.',
          (two ? accumulateTwo : `Accumulate: wgmma.m64n${bn}k16.f32.bf16.bf16 (A from registers), `) +
            'fp32, same products and K order as the ' +
            'other sm_90a tilings. Epilogue: out = f32((acc + 0) * f32(f32(tA * tB) * 2^16))' +
            `${bf16} (+ 0 turns a -0 sum into +0, as accumulating from +0 does).`,
          `Registers: ${L.launchRegs}/thread at launch (__launch_bounds__(${L.threads}, ${L.ctasPerSm})); ` +
            `setmaxnreg: decoders ${L.decoderRegs}, consumers ${L.consumerRegs} (${(L.slabs * bn) / 2} accumulators ` +
            '+ 2 x 16 A fragment registers).',
          GEMM_SHAPES,
        ];
      }
      if (L.decode === 'producer' || L.decode === 'producer-pipelined' || L.decode === 'producer-cluster') {
        const piped = L.decode !== 'producer';
        const pdc = L.decode === 'producer-cluster';
        const kind = pdc ? 'Cluster-shared B' : piped ? 'Pipelined producer-side' : 'Producer-side';
        return [
          head,
          ...(pdc
            ? [
                `2-CTA clusters along M (tiling.cluster [2, 1], cudaLaunchKernelEx): the two CTAs compute tiles ` +
                  `(2p, n) and (2p + 1, n) in lockstep and share the ${bn}-row B slab; each decodes its A slab and ` +
                  `half of the B slab (${bn / 2} rows) into its own tile and, st.shared::cluster, the peer's; ` +
                  "tile full counts both CTAs' decoders (remote arrivals, release.cluster), tile empty both " +
                  "CTAs' consumers; a CTA whose tile row lies past m decodes and delivers its B half, stores nothing.",
              ]
            : []),
          `${kind} decode (tiling.decode '${L.decode}'): ` +
            `tile ${bm}x${bn}x${bk}, persistent CTAs ` +
            `(${L.ctasPerSm} per SM), tile order ${g.tileOrder}; ${L.threads} threads = ${L.consumers} consumer ` +
            `warpgroup(s) of ${L.slabs} m64 slab(s) (SS wgmma and the epilogue only) + a decoder warpgroup (both ` +
            (piped ? 'operands; lanes 0 of its warps 0-2 issue TMA).' : 'operands; its thread 0 issues TMA).'),
          `Pipeline: ${L.rawStages} raw stages filled by TMA (` +
            (pdc ? `${bm}x${bk / 2} + ${bn / 2}x${bk / 2} code bytes` : codeBytes) +
            ', codes with the TMA swizzle of ' +
            `${bk / 2}-byte rows, ${atoms * (1 + Math.ceil((pdc ? bn / 2 : bn) / 128))} scale blocks of 512 B; ` +
            'mbarrier full, ' +
            (piped
              ? 'raw empty: every decoder thread arrives once it used the registers it loaded from the stage; ' +
                "lanes 0 of decoder warps 0-2 refill the previous K block's stage, a third of the copies each"
              : 'refilled by decoder thread 0 after a named barrier') +
            `) -> a ring of ${L.tileStages} dequantized bf16 A + ` +
            `B tiles (${atoms} SW128 atom(s) of ${bm * 128} + ${bn * 128} B; mbarriers full/empty: the decoders run ` +
            `up to ${L.tileStages - 1} K blocks ahead); ${L.smemBytes} B shared memory.`,
          'Dequantize (NUMERICS §6.2): code -> bf16 pattern s<<15 | (e1 e0 m)<<6 (= e2m1 * 2^-126), times ' +
            'bf16(s_e4m3 * 2^118): exact e2m1 * s * 2^-8; one thread decodes one row of a 64-wide atom (one A ' +
            'row, then its B rows) into its SW128 line' +
            (piped
              ? ", from registers: each task's codes (8 registers) are loaded from the raw stage one K block " +
                'before their decode, right after the same task of the previous K block is decoded, its scales at ' +
                "the start of the previous K block, once that block's multipliers are made."
              : '.'),
          `Consumers, per K block: wait for the ring tile, issue its ${(bk / 16) * L.slabs} SS wgmmas (A and B ` +
            "descriptors), wait until one group is left in flight and release the previous tile; at a tile's last " +
            'K block wait for all, release, store. The first K block of a tile starts with scale-d = 0.',
          `Accumulate: wgmma.m64n${bn}k16.f32.bf16.bf16, fp32, same products and K order as the other sm_90a ` +
            'tilings. Epilogue: out = f32((acc + 0) * f32(f32(tA * tB) * 2^16))' +
            `${bf16} (+ 0 turns a -0 sum into +0, as accumulating from +0 does).`,
          `Registers: ${L.launchRegs}/thread at launch (__launch_bounds__(${L.threads}, ${L.ctasPerSm})); ` +
            `setmaxnreg: decoders ${L.decoderRegs}, consumers ${L.consumerRegs}.`,
          GEMM_SHAPES,
        ];
      }
      return [
        head,
        `Tile ${bm}x${bn}x${bk}, persistent CTAs (${L.ctasPerSm} per SM), tile order ${g.tileOrder}; ${L.threads} ` +
          `threads = ${L.consumers} consumer warpgroup(s) of ${L.slabs} m64 slab(s) + a TMA warpgroup (one thread ` +
          'issues).',
        `Pipeline: ${L.rawStages} raw stages filled by TMA (${codeBytes}, ${atoms * (1 + Math.ceil(bn / 128))} ` +
          `scale blocks of 512 B; mbarriers full/empty) -> 2 dequantized bf16 B tiles (${atoms} SW128 atom(s) of ` +
          `${bn * 128} B); ${L.smemBytes} B shared memory.`,
        'Dequantize (NUMERICS §6.2): code -> bf16 pattern s<<15 | (e1 e0 m)<<6 (= e2m1 * 2^-126), times ' +
          'bf16(s_e4m3 * 2^118): exact e2m1 * s * 2^-8.',
        `Consumers, per K block: issue the ${(bk / 16) * L.slabs} wgmmas of block k (A from registers), dequantize B ` +
          'of block k+1 into the other bf16 tile, wait, dequantize A of block k+1 straight into the RS fragments, ' +
          'bar.sync; K blocks continue across tiles.',
        `Accumulate: wgmma.m64n${bn}k16.f32.bf16.bf16, fp32. Epilogue: out = f32(acc * f32(f32(tA * tB) * 2^16)) ` +
          `(the 2^16 undoes both operands' 2^-8 exactly)${bf16}.`,
        `Registers: ${L.launchRegs}/thread (__launch_bounds__(${L.threads}, ${L.ctasPerSm})); no setmaxnreg (ptxas ` +
          'keeps consumer code within this share).',
        GEMM_SHAPES,
      ];
    }
    case 'sm_100a': {
      const L = g.layout;
      const idesc = `0x${g.idesc.toString(16).padStart(8, '0')}`;
      const scaleBlocks = L.atoms * (1 + L.bRowBlocks);
      return [
        head,
        `Tile ${bm}x${bn}x${bk}, persistent CTAs (1 per SM), tile order ${g.tileOrder}; ${L.threads} threads: warp 0 ` +
          `issues TMA, warp 1 issues tcgen05 (one lane) and owns tensor memory, ${L.consumers} epilogue ` +
          'warpgroup(s).',
        `Pipeline: ${L.stages} stages of ${L.chunks} SW128 chunk(s) per operand (${codeBytes}) and ${scaleBlocks} ` +
          'scale blocks of 512 B; mbarriers full (TMA bytes) / empty (tcgen05.commit); ' +
          `${L.smemBytes} B shared memory.`,
        `Tensor memory (${L.tmemColumnsAllocated} columns allocated, ${L.tmemColumnsUsed} used): ${L.accBuffers} fp32 ` +
          `accumulator(s) of ${bn} columns, then ${SM100_SF_SETS} scale sets of ${L.sfColumnsPerSet} columns (SFA 4 ` +
          `+ SFB ${4 * L.bRowBlocks} per K = 64); a set is refilled only after the MMAs that read it completed.`,
        `MMA (one thread), per K block: tcgen05.cp of the ${scaleBlocks} scale blocks, then ${L.atoms} x ` +
          'tcgen05.mma.cta_group::1.kind::mxf4nvf4.block_scale.block16 ' +
          `(M 128, N ${bn}, K 64; idesc ${idesc}), commit to the stage's empty barrier; after a tile's last K block, ` +
          'commit to acc_full.',
        'K tail: the MMA warp zeroes the scale bytes of groups past k in shared memory before copying them (NaN ' +
          'padding never multiplies the zero codes TMA read past k); 64-wide K atoms past k are not issued.',
        'Epilogue: each warp reads its 32 TMEM lanes (= rows) with tcgen05.ld.32x32b.x32, out = f32(acc * f32(tA * ' +
          `tB))${bf16}, then releases the accumulator buffer (acc_empty).`,
        GEMM_SHAPES,
        'Verification: compiled and SASS-inspected only (no Blackwell GPU here); `qgen check --arch sm_100a` is the ' +
          'first-hardware test.',
      ];
    }
    case 'sm_120a': {
      const L = g.layout;
      const mmas = (L.warpM / 16) * (L.warpN / 8);
      return [
        head,
        `Tile ${bm}x${bn}x${bk}, persistent CTAs (1 per SM), tile order ${g.tileOrder}; ${L.threads} threads: ` +
          `${L.warps} math warps as ${L.warpsM}x${L.warpsN} warp tiles of ${L.warpM}x${L.warpN}, then one TMA warp ` +
          '(one lane issues).',
        `Pipeline: ${L.stages} stages (${codeBytes} in ${L.chunks} chunk(s) of ${L.chunkBytes}-byte rows, TMA ` +
          `swizzle ${L.chunkBytes} B; ${L.atoms * (L.aRowBlocks + L.bRowBlocks)} scale blocks of 512 B); mbarriers ` +
          `full (TMA bytes) / empty (one arrival per math warp); ${L.smemBytes} B shared memory.`,
        `Per K = 64 atom and warp: ldmatrix.x4 of ${L.warpM / 16} A and ${L.warpN / 16} B 16-row pieces, one 32-bit ` +
          'scale word per fragment row (SFA row g + 8 (lane mod 2), SFB column g: every lane holds valid scales), ' +
          `then ${mmas} x mma.sync.m16n8k64.kind::mxf4nvf4.block_scale.scale_vec::4X (fp32, ${L.accumulators} ` +
          'accumulators per thread).',
        'K tail: scale bytes of groups past k are masked to 0 in registers (zero codes from TMA times zero scales).',
        `Epilogue: out = f32(acc * f32(tA * tB))${bf16}, fragment pairs (row g / g + 8, columns 2c, 2c + 1) stored ` +
          'directly.',
        GEMM_SHAPES,
        'Verification: compiled and SASS-inspected only (no sm_120 GPU here); `qgen check --arch sm_120a` is the ' +
          'first-hardware test.',
      ];
    }
  }
}

/** What a GEMM launch reads (how its loads travel differs per arch) and writes. */
function gemmLaunchWords(plan: GemmPlan): { reads: string; writes: string } {
  const g = plan.gemm;
  const codes = g.arch === 'sm_90a' ? 'TMA' : `TMA, ${g.arch === 'sm_100a' ? 128 : g.layout.chunkBytes}-byte swizzle`;
  return {
    reads:
      `a_codes, b_codes (${codes}), a_scales, b_scales (bulk copies of 128x4 blocks), a_tensor_scale, ` +
      'b_tensor_scale',
    writes: `c (${plan.spec.output})`,
  };
}

function gemmGrid(plan: GemmPlan): string {
  if (plan.gemm.arch === 'sm_90a' && plan.gemm.layout.decode === 'producer-cluster')
    return '2 x min(ceil(tiles_m / 2) * tiles_n, SMs, co-resident clusters) persistent CTAs in 2-CTA clusters';
  return plan.gemm.arch === 'sm_90a'
    ? `min(tiles, SMs * ${plan.gemm.layout.ctasPerSm}) persistent CTAs`
    : 'min(tiles, SMs) persistent CTAs';
}

// ---------------------------------------------------------------------------------------------------------------
// Per plan

/** The lowering in words, one line per step. */
export function loweringSteps(plan: KernelPlan): string[] {
  switch (plan.kind) {
    case 'quantize':
      return quantizeSteps(plan);
    case 'dequantize':
      return dequantizeSteps(plan);
    case 'hadamard':
      return hadamardSteps(plan);
    case 'amax':
      return amaxSteps(plan);
    case 'gemm':
      return gemmSteps(plan);
  }
}

/** What each launch of a plan reads and writes. */
export function launchDescriptions(plan: KernelPlan): LaunchDescription[] {
  if (plan.kind === 'gemm') {
    return plan.launches.map((l) => ({ kernel: l.kernel, role: l.role, ...gemmLaunchWords(plan) }));
  }
  return plan.launches.map((l) => {
    const words = (() => {
      switch (plan.kind) {
        case 'quantize':
          return quantizeLaunchWords(plan, l);
        case 'dequantize':
          return {
            reads: `codes, scales (${plan.dequantize.scaleLayout})${
              plan.dequantize.scaleFormat === 'ue8m0' ? '' : ', tensor_scale'
            }`,
            writes: `y (${plan.dequantize.output})`,
          };
        case 'hadamard':
          return { reads: `x (${plan.hadamard.input})`, writes: `y (${plan.hadamard.output})` };
        case 'amax':
          return { reads: `x (${plan.amax.input})`, writes: 'amax (atomicMax on its bit pattern)' };
      }
    })();
    return { kernel: l.kernel, role: l.role, ...words };
  });
}

/** Threads, grid, kernels and workspace of a plan, as `qgen explain` prints them. */
export function launchSummary(plan: KernelPlan): LaunchSummary {
  if (plan.kind === 'gemm') {
    return {
      threadsPerBlock: plan.threadsPerBlock,
      grid: gemmGrid(plan),
      kernels: plan.launches.map((l) => `${l.role}: ${l.kernel}`),
      workspace: 'none',
    };
  }
  const threads = plan.threadsPerBlock;
  const perBlock = plan.kind === 'dequantize' ? `(${threads} * ${plan.mapping.elemsPerThread / 8})` : `${threads}`;
  const workspace =
    plan.kind === 'quantize'
      ? plan.quantize.workspace
      : plan.kind === 'amax'
        ? 'none (the result word accumulates)'
        : 'none';
  return {
    threadsPerBlock: threads,
    grid: `min(ceil(items / ${perBlock}), SMs * ${plan.blocksPerSm})`,
    kernels: plan.launches.map((l) => `${l.role}: ${l.kernel}`),
    workspace,
  };
}

/** The fixed order in which consumer 0 adds c partials (NUMERICS §6.2): P0 + P1, (P0 + P1) + P2, ... */
function partialSum(c: number): string {
  let sum = 'P0';
  for (let w = 1; w < c; w++) sum = w === 1 ? `${sum} + P${w}` : `(${sum}) + P${w}`;
  return sum;
}
