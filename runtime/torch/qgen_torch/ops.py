"""Python side of the qgen torch.library ops: loading the compiled extension, fake (meta) implementations for
torch.compile, and thin wrappers that speak in NVFP4 tensors.

An NVFP4 tensor [rows, cols] quantized along cols is three tensors: codes uint8 [rows, cols/2] (two E2M1 codes per
byte, low nibble first), scales uint8 [scale_bytes(rows, cols)] (E4M3, 128x4 layout) and tensor_scale float32 [1].
"""
import functools
import os
import warnings
from typing import NamedTuple

import torch

from . import _generated as G
from . import dispatch
from .layout import scale_bytes

try:
    from . import _C  # noqa: F401  (importing it registers torch.ops.qgen.*)
    LOAD_ERROR = None
except ImportError as e:  # not built yet: every op raises with the build command
    _C = None
    LOAD_ERROR = e

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class NVFP4(NamedTuple):
    codes: torch.Tensor
    scales: torch.Tensor
    tensor_scale: torch.Tensor

    @property
    def rows(self):
        return self.codes.shape[0]

    @property
    def cols(self):
        return self.codes.shape[1] * 2

    def nbytes(self):
        return sum(t.numel() * t.element_size() for t in self)


def ops():
    """torch.ops.qgen, or a RuntimeError saying how to build the extension."""
    if _C is None:
        raise RuntimeError('qgen_torch: the compiled ops are missing (%s). Build them against this PyTorch with '
                           '`pip install --no-build-isolation %s`' % (LOAD_ERROR, PACKAGE_DIR))
    return torch.ops.qgen


def kernel_facts(kernel, kind):
    facts = G.KERNELS.get(kernel)
    if facts is None or facts['kind'] != kind:
        known = sorted(k for k, f in G.KERNELS.items() if f['kind'] == kind)
        raise ValueError('qgen_torch: no %s kernel named %r for %s; allowed: %s' % (kind, kernel, G.ARCH, ', '.join(known)))
    return facts


def new_seeds(count=1):
    """count fresh Philox keys from torch's CPU generator (reproducible under torch.manual_seed)."""
    return torch.randint(0, 2 ** 62, (count,), dtype=torch.int64)


_NO_SEEDS = None


def _seeds(seeds):
    global _NO_SEEDS
    if seeds is not None:
        return seeds
    if _NO_SEEDS is None:
        _NO_SEEDS = torch.zeros(2, dtype=torch.int64)
    return _NO_SEEDS


def quantize(x, kernel, seeds=None):
    """NVFP4 of bf16 x [rows, cols] along cols ([cols, rows] -> [rows, cols] for a transposed-input kernel).

    seeds: CPU int64 [2] = (seed, sign_seed); needed by kernels whose facts say random (SR, MS-EDEN, rotation).
    """
    facts = kernel_facts(kernel, 'quantize')
    if facts['input'] != 'bf16':
        raise ValueError('qgen_torch.quantize: %r requantizes an NVFP4 tensor; use requantize' % kernel)
    if facts['random'] and seeds is None:
        raise ValueError('qgen_torch.quantize: %r is randomized; pass seeds=(seed, sign_seed) as a CPU int64 tensor' % kernel)
    return NVFP4(*ops().quantize(x, kernel, _seeds(seeds)))


def requantize(q, kernel, seeds):
    """NVFP4 of the transpose [cols, rows] of the NVFP4 tensor q [rows, cols], quantized along rows (NUMERICS §5.9)."""
    kernel_facts(kernel, 'quantize')
    return NVFP4(*ops().requantize(q.codes, q.scales, q.tensor_scale, kernel, seeds))


def plane_kernel(kernel, kind=None):
    """The vendored variant of quantizer `kernel` that also writes a bf16 plane, or None: kind 'dequantized' (the
    dequantized tensor from pass A, NUMERICS §6.7) or 'bf16' (e2m1 * scale, §6.6); default plane_kind()."""
    kind = plane_kind() if kind is None else kind
    if kind not in PLANE_KINDS:
        raise ValueError('qgen_torch.plane_kernel: kind %r; allowed: %s' % (kind, ', '.join(PLANE_KINDS)))
    key = 'dequantized_plane_kernel' if kind == 'dequantized' else 'plane_kernel'
    return kernel_facts(kernel, 'quantize').get(key)


def plane_alpha_factor(q, kernel):
    """The factor of the two-pass GEMM's alpha for an operand whose plane `kernel` wrote: 1 for a dequantized plane
    (§6.7: the tensor scale is inside), its tensor scale q.tensor_scale for an e2m1 * scale plane (§6.6)."""
    if kernel_facts(kernel, 'quantize').get('dequantized_plane'):
        return _one(q.codes.device)
    return q.tensor_scale


def quantize_plane(x, kernel, seeds=None):
    """(NVFP4, plane): quantize() by a plane-writing kernel (see plane_kernel), which also returns the bf16 plane
    [rows, cols]: e2m1 * scale without the tensor scale (NUMERICS §6.6), or the dequantized tensor (§6.7);
    gemm_bf16_planes' operand, with plane_alpha_factor's alpha."""
    facts = kernel_facts(kernel, 'quantize')
    if not facts.get('plane'):
        raise ValueError('qgen_torch.quantize_plane: %r writes no bf16 plane; use plane_kernel(name)' % kernel)
    if facts['random'] and seeds is None:
        raise ValueError('qgen_torch.quantize_plane: %r is randomized; pass seeds=(seed, sign_seed)' % kernel)
    codes, scales, ts, plane = ops().quantize_plane(x, kernel, _seeds(seeds))
    return NVFP4(codes, scales, ts), plane


def requantize_plane(q, kernel, seeds):
    """(NVFP4, plane): requantize() by a plane-writing kernel, with the bf16 plane [cols, rows] of the result."""
    if not kernel_facts(kernel, 'quantize').get('plane'):
        raise ValueError('qgen_torch.requantize_plane: %r writes no bf16 plane; use plane_kernel(name)' % kernel)
    codes, scales, ts, plane = ops().requantize_plane(q.codes, q.scales, q.tensor_scale, kernel, seeds)
    return NVFP4(codes, scales, ts), plane


_ONE = {}


def _one(device):
    """A device fp32 [1] holding 1.0, made once per device. Not cached when first asked for during CUDA-graph
    capture: a tensor made there lives in the graph's pool and holds 1.0 only once the graph has replayed."""
    one = _ONE.get(device)
    if one is None:
        one = torch.ones(1, dtype=torch.float32, device=device)
        if not torch.cuda.is_current_stream_capturing():
            _ONE[device] = one
    return one


def is_one(t):
    """Whether t is the device 1.0 that plane_alpha_factor returns for a dequantized plane (identity, not value)."""
    return _ONE.get(t.device) is t


def plane_of(q):
    """The bf16 plane of an NVFP4 tensor by the separate dequantize pass (tensor scale 1, NUMERICS §6.4): for an
    operand no plane-writing quantizer made (an FSDP2-gathered weight, a recipe without plane kernels)."""
    one = _one(q.codes.device)
    return dequantize(NVFP4(q.codes, q.scales, one))


def gemm_kernel(m):
    """The fused GEMM tiling GEMM_CHOICE picks for m (the fallback's fused kernel)."""
    for rule in G.GEMM_CHOICE:
        if rule['maxM'] is None or m <= rule['maxM']:
            return rule['kernel']
    raise AssertionError('GEMM_CHOICE has no rule for m = %d' % m)


# How gemm() picks its strategy: 'tuned' (G.GEMM_DISPATCH: the tuning table vendored with `qgen vendor --tuning`, or
# the fallback rule), 'fused' (always the fused kernel GEMM_CHOICE picks) or 'two-pass' (always NUMERICS §6.4).
# 'planes' is 'two-pass' where the layer (linear.py) takes the bf16 planes from plane-writing quantizers (§6.6)
# instead of dequantizing its operands; 'tuned' does the same wherever it picks two-pass when QGEN_PLANES=1;
# 'two-pass' always dequantizes. The results are identical.
GEMM_MODES = ('tuned', 'fused', 'two-pass', 'planes')
_gemm_mode = os.environ.get('QGEN_GEMM', 'tuned')
# QGEN_PLANES=1 (default) / 0: in mode 'tuned', whether the layer takes the operands of a GEMM the dispatch runs
# two-pass from plane-writing quantizers (linear.py) instead of dequantizing them in separate passes. Same bits
# either way (NUMERICS §6.6, §6.7); 'two-pass' and 'planes' modes force the one or the other. On by default since
# the dequantized planes (§6.7) removed the pass that re-read the codes (bench/NOTES.md "Dequantized planes").
_planes_env = os.environ.get('QGEN_PLANES', '1')
if _planes_env not in ('0', '1'):
    raise ValueError('qgen_torch: QGEN_PLANES=%r; allowed: 0 or 1' % _planes_env)
_tuned_planes = _planes_env == '1'
# QGEN_PLANE_KIND=dequantized (default) / bf16: which plane-writing twins the layer uses. 'dequantized' (NUMERICS
# §6.7): pass A writes the dequantized tensor and the GEMM's alpha is 1, so no pass re-reads the codes; 'bf16'
# (§6.6): pass B writes e2m1 * scale from the codes and alpha = tA * tB. Same bits wherever §6.7's underflow
# condition holds.
PLANE_KINDS = ('dequantized', 'bf16')
_plane_kind = os.environ.get('QGEN_PLANE_KIND', 'dequantized')
if _plane_kind not in PLANE_KINDS:
    raise ValueError('qgen_torch: QGEN_PLANE_KIND=%r; allowed: %s' % (_plane_kind, ', '.join(PLANE_KINDS)))
# The fallback's (and 'fused' mode's) operand-swapped kernels are replaced by their K-split variants (G.GEMM_SPLIT;
# NUMERICS §6.2, low bits may differ within the bound, §6.5): faster on the H100 at n = k = 8192, m = 1, 16, 64.
# QGEN_SKINNY_SPLIT=0 keeps the c = 1 kernels. A tuning table's pick is kept.
_skinny_split_env = os.environ.get('QGEN_SKINNY_SPLIT', '1')
if _skinny_split_env not in ('0', '1'):
    raise ValueError('qgen_torch: QGEN_SKINNY_SPLIT=%r; allowed: 0 or 1' % _skinny_split_env)
_skinny_split = _skinny_split_env == '1'
_warned = set()


def gemm_mode():
    """The current strategy mode (GEMM_MODES)."""
    return _gemm_mode


def layer_planes():
    """Whether the layer takes a two-pass GEMM's operands from plane-writing quantizers (NUMERICS §6.6): always in
    mode 'planes', in mode 'tuned' with QGEN_PLANES=1 (or set_layer_planes(True)), never in the other modes."""
    return _gemm_mode == 'planes' or (_gemm_mode == 'tuned' and _tuned_planes)


def plane_kind():
    """Which plane-writing twins the layer uses: 'dequantized' (default; env QGEN_PLANE_KIND) or 'bf16'."""
    return _plane_kind


def set_plane_kind(kind):
    """'dequantized' (NUMERICS §6.7) or 'bf16' (§6.6): see QGEN_PLANE_KIND."""
    global _plane_kind
    if kind not in PLANE_KINDS:
        raise ValueError('qgen_torch.set_plane_kind: %r; allowed: %s' % (kind, ', '.join(PLANE_KINDS)))
    _plane_kind = kind


def set_layer_planes(enabled):
    """Mode 'tuned': take two-pass operands from plane-writing quantizers (True, the default unless QGEN_PLANES=0) or
    dequantize them (False)."""
    global _tuned_planes
    if not isinstance(enabled, bool):
        raise ValueError('qgen_torch.set_layer_planes: %r; allowed: True or False' % (enabled,))
    _tuned_planes = enabled


def set_gemm_mode(mode):
    """'tuned' (default; env QGEN_GEMM), 'fused', 'two-pass' or 'planes': how gemm() picks its strategy when no kernel
    is given; 'planes' also makes every GEMM of the layer two-pass on bf16 planes from the quantizers (linear.py),
    which 'tuned' does where it picks two-pass (see layer_planes)."""
    global _gemm_mode
    if mode not in GEMM_MODES:
        raise ValueError('qgen_torch.set_gemm_mode: %r; allowed: %s' % (mode, ', '.join(GEMM_MODES)))
    _gemm_mode = mode


@functools.lru_cache(maxsize=None)
def _table_matches_gpu(device_index):
    """Whether the vendored tuning table was measured on this GPU; warns once when it was not."""
    want = G.GEMM_DISPATCH['gpu']
    if want is None:
        return False
    have = torch.cuda.get_device_name(device_index)
    if have != want:
        warnings.warn('qgen_torch: the GEMM tuning table (%s) was measured on %s, this GPU is %s: using the fallback '
                      'rule instead (re-run qgen tune on this GPU and vendor with --tuning)'
                      % (G.GEMM_DISPATCH['source'], want, have))
        return False
    return True


def gemm_plan(m, n, k, device_index=None):
    """(strategy, kernel, source) for C [m, n] = A [m, k] . B [n, k]^T: 'fused' with a kernel name, or 'two-pass'.

    dispatch.choose (= tune/tuning.ts chooseGemm): the tuning table's exact shape class (m bucket, n, k), else its m
    bucket's rule, else the fallback (G.GEMM_DISPATCH['fallback']; sm_90a: fused for m <= 64, two-pass above).
    The table is used only on the GPU it was measured on.
    """
    if _gemm_mode == 'fused':
        return 'fused', _split(gemm_kernel(m)), 'forced'
    if _gemm_mode in ('two-pass', 'planes'):
        return 'two-pass', None, 'forced'
    d = G.GEMM_DISPATCH
    use_table = d['gpu'] is not None and _table_matches_gpu(
        torch.cuda.current_device() if device_index is None else device_index)
    strategy, kernel, source = dispatch.choose(d, m, n, k, use_table)
    return strategy, (_split(kernel) if source == 'fallback' else kernel), source


def _split(kernel):
    """The K-split variant of a fused kernel unless QGEN_SKINNY_SPLIT=0, where one exists, else the kernel."""
    return G.GEMM_SPLIT.get(kernel, kernel) if _skinny_split and kernel is not None else kernel


def gemm(a, b, kernel=None):
    """C [m, n] = tA tB . A [m, k] . B [n, k]^T in bf16, both NVFP4 along k.

    kernel: a fused GEMM kernel by name; None: the strategy gemm_plan picks (fused or two-pass, NUMERICS §6.4).
    """
    if a.cols != b.cols:
        raise ValueError('qgen_torch.gemm: a is [%d, %d] and b is [%d, %d]; allowed: the same K (C = A . B^T)'
                         % (a.rows, a.cols, b.rows, b.cols))
    if kernel is None:
        strategy, kernel, _ = gemm_plan(a.rows, b.rows, a.cols, a.codes.device.index)
        if strategy == 'two-pass':
            return gemm_two_pass(a, b)
    kernel_facts(kernel, 'gemm')
    return ops().gemm(a.codes, a.scales, a.tensor_scale, b.codes, b.scales, b.tensor_scale, kernel)


def gemm_two_pass(a, b):
    """The exact two-pass GEMM (NUMERICS §6.4): both operands dequantized to bf16 without tensor scale, then cuBLASLt
    bf16 with alpha = tA * tB on the device. Same contract as the fused kernels (within §6.2's bound)."""
    return ops().gemm_two_pass(a.codes, a.scales, a.tensor_scale, b.codes, b.scales, b.tensor_scale)


def gemm_bf16_planes(a, b, alpha):
    """C = alpha . A . B^T from ready bf16 planes (the exact e2m1 * scale values, no tensor scale) and a device fp32
    alpha [1]: the second pass of gemm_two_pass, for quantizers that write the planes themselves."""
    return ops().gemm_bf16_planes(a, b, alpha)


def dequantize(q, kernel='dequantize_nvfp4_bf16'):
    kernel_facts(kernel, 'dequantize')
    return ops().dequantize(q.codes, q.scales, q.tensor_scale, kernel)


def _nvfp4_like(rows, cols, device):
    return (torch.empty((rows, cols // 2), dtype=torch.uint8, device=device),
            torch.empty((scale_bytes(rows, cols),), dtype=torch.uint8, device=device),
            torch.empty((1,), dtype=torch.float32, device=device))


if _C is not None:
    @torch.library.register_fake('qgen::quantize')
    def _quantize_fake(x, kernel, seeds):
        transposed = kernel_facts(kernel, 'quantize')['transposed']
        rows, cols = (x.shape[1], x.shape[0]) if transposed else (x.shape[0], x.shape[1])
        return _nvfp4_like(rows, cols, x.device)

    @torch.library.register_fake('qgen::requantize')
    def _requantize_fake(codes, scales, tensor_scale, kernel, seeds):
        return _nvfp4_like(codes.shape[1] * 2, codes.shape[0], codes.device)

    @torch.library.register_fake('qgen::quantize_plane')
    def _quantize_plane_fake(x, kernel, seeds):
        transposed = kernel_facts(kernel, 'quantize')['transposed']
        rows, cols = (x.shape[1], x.shape[0]) if transposed else (x.shape[0], x.shape[1])
        return _nvfp4_like(rows, cols, x.device) + (torch.empty((rows, cols), dtype=torch.bfloat16, device=x.device),)

    @torch.library.register_fake('qgen::requantize_plane')
    def _requantize_plane_fake(codes, scales, tensor_scale, kernel, seeds):
        rows, cols = codes.shape[1] * 2, codes.shape[0]
        return _nvfp4_like(rows, cols, codes.device) + (torch.empty((rows, cols), dtype=torch.bfloat16, device=codes.device),)

    @torch.library.register_fake('qgen::gemm')
    def _gemm_fake(a_codes, a_scales, a_ts, b_codes, b_scales, b_ts, kernel):
        dtype = torch.float32 if kernel_facts(kernel, 'gemm')['output'] == 'f32' else torch.bfloat16
        return a_codes.new_empty((a_codes.shape[0], b_codes.shape[0]), dtype=dtype)

    @torch.library.register_fake('qgen::gemm_two_pass')
    def _gemm_two_pass_fake(a_codes, a_scales, a_ts, b_codes, b_scales, b_ts):
        return a_codes.new_empty((a_codes.shape[0], b_codes.shape[0]), dtype=torch.bfloat16)

    @torch.library.register_fake('qgen::gemm_bf16_planes')
    def _gemm_bf16_planes_fake(a, b, alpha):
        return a.new_empty((a.shape[0], b.shape[0]))

    @torch.library.register_fake('qgen::dequantize')
    def _dequantize_fake(codes, scales, tensor_scale, kernel):
        dtype = torch.float32 if kernel_facts(kernel, 'dequantize')['output'] == 'f32' else torch.bfloat16
        return codes.new_empty((codes.shape[0], codes.shape[1] * 2), dtype=dtype)
