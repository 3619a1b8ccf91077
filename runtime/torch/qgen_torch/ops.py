"""Python side of the qgen torch.library ops: loading the compiled extension, fake (meta) implementations for
torch.compile, and thin wrappers that speak in NVFP4 tensors.

An NVFP4 tensor [rows, cols] quantized along cols is three tensors: codes uint8 [rows, cols/2] (two E2M1 codes per
byte, low nibble first), scales uint8 [scale_bytes(rows, cols)] (E4M3, 128x4 layout) and tensor_scale float32 [1].
"""
import os
from typing import NamedTuple

import torch

from . import _generated as G
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


def gemm_kernel(m):
    for rule in G.GEMM_CHOICE:
        if rule['maxM'] is None or m <= rule['maxM']:
            return rule['kernel']
    raise AssertionError('GEMM_CHOICE has no rule for m = %d' % m)


def gemm(a, b, kernel=None):
    """C [m, n] = tA tB . A [m, k] . B [n, k]^T in bf16, both NVFP4 along k; the tiling is picked by m unless given."""
    if a.cols != b.cols:
        raise ValueError('qgen_torch.gemm: a is [%d, %d] and b is [%d, %d]; allowed: the same K (C = A . B^T)'
                         % (a.rows, a.cols, b.rows, b.cols))
    kernel = kernel or gemm_kernel(a.rows)
    kernel_facts(kernel, 'gemm')
    return ops().gemm(a.codes, a.scales, a.tensor_scale, b.codes, b.scales, b.tensor_scale, kernel)


def dequantize(q, kernel='dequantize_nvfp4'):
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

    @torch.library.register_fake('qgen::gemm')
    def _gemm_fake(a_codes, a_scales, a_ts, b_codes, b_scales, b_ts, kernel):
        dtype = torch.float32 if kernel_facts(kernel, 'gemm')['output'] == 'f32' else torch.bfloat16
        return a_codes.new_empty((a_codes.shape[0], b_codes.shape[0]), dtype=dtype)

    @torch.library.register_fake('qgen::dequantize')
    def _dequantize_fake(codes, scales, tensor_scale, kernel):
        dtype = torch.float32 if kernel_facts(kernel, 'dequantize')['output'] == 'f32' else torch.bfloat16
        return codes.new_empty((codes.shape[0], codes.shape[1] * 2), dtype=dtype)
