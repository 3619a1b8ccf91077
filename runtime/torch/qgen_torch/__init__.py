"""qgen_torch: NVFP4 (Quartet II) linear layers and kernels for PyTorch, vendored by `qgen vendor --target torch`."""
from . import _generated
from .linear import RECIPES, Quartet2Linear, quantize_model
from .ops import NVFP4, dequantize, gemm, quantize, requantize

__version__ = _generated.QGEN_VERSION
ARCH = _generated.ARCH

__all__ = ['ARCH', 'NVFP4', 'Quartet2Linear', 'RECIPES', 'dequantize', 'gemm', 'quantize', 'quantize_model', 'requantize']
