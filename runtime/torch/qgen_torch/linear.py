"""Quartet2Linear: a drop-in nn.Linear whose three GEMMs run in NVFP4, and quantize_model.

One recipe (dsl/recipes.ts, rendered into _generated.RECIPES) names the quantizer of every GEMM operand:
    forward  Y  = Q(X) . Q(W)^T                       saved for backward: NVFP4 tensors only (4.5 bits/element)
    dX          = Q(E) . Q(W^T)^T                    reduction over out
    dW          = Q(E^T) . Q(X^T)^T                  reduction over tokens
Per call the layer draws a fresh sign seed (the Hadamard signs, shared by the four backward operands so that the
rotations cancel in both GEMMs) and a distinct Philox seed per quantizer (independent rounding noise), from torch's
CPU generator: reproducible under torch.manual_seed. Under torch.compile the layer runs eagerly by default (one graph
break per layer), which keeps the draws fresh on every step; see Quartet2Linear.traceable.
"""
import math
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import _generated as G
from . import distributed as D
from . import ops as Q
from .layout import transpose_16x16

RECIPES = tuple(G.RECIPES)
# in_features and out_features: NVFP4 groups of 16 along K and up to 128-point rotations along `out` (dX GEMM).
FEATURE_MULTIPLE = 128
# Tokens are padded with zero rows to this multiple: the dW GEMM rotates along tokens in 128-chunks. Zero rows add
# nothing to any product and are sliced off the outputs.
TOKEN_MULTIPLE = 128

# Rows of the per-call seed table; each row is (seed, sign_seed) for one quantizer role.
FWD, E, ET, WT, XT = range(5)


def recipe_of(name):
    r = G.RECIPES.get(name)
    if r is None:
        raise ValueError('recipe=%r; allowed: %s' % (name, ', '.join(RECIPES)))
    return r


def _draw_seed_table(anchor: torch.Tensor) -> torch.Tensor:
    s = torch.randint(0, 2 ** 62, (6,), dtype=torch.int64)
    table = torch.stack([s[1:], s[0].expand(5)], dim=1)
    rank = D.current_rank()   # under torch.distributed: rounding seeds re-keyed per rank (NUMERICS §3.5)
    return table if rank is None else D.rekey_seed_table(table, rank)


# The draw is an opaque op so that torch.compile runs it on every call: traced as plain torch.randint, some
# compiler versions hoisted or reused the draw and every step got the same seeds. Tagged nondeterministic_seeded so
# that two layers' draws are never merged (CSE). `anchor` (the layer input, detached) only orders the draw.
try:
    _seed_op = torch.library.custom_op('qgen::seed_table', _draw_seed_table, mutates_args=(),
                                       tags=(torch.Tag.nondeterministic_seeded,))
except TypeError:  # PyTorch without custom_op tags
    _seed_op = torch.library.custom_op('qgen::seed_table', _draw_seed_table, mutates_args=())


@_seed_op.register_fake
def _seed_table_fake(anchor):
    return torch.empty((5, 2), dtype=torch.int64)


def seed_table(anchor=None):
    """int64 [5, 2] on the CPU: column 0 a fresh seed per role, column 1 one fresh sign seed shared by all roles."""
    if anchor is None:
        anchor = torch.zeros(1)
    return _seed_op(anchor.detach())


def _pad_rows(t, multiple):
    pad = (-t.shape[0]) % multiple
    return F.pad(t, (0, 0, 0, pad)) if pad else t


# The two-pass GEMM (NUMERICS §6.4) on planes the quantizers write: in mode 'planes' (QGEN_GEMM=planes: every GEMM
# two-pass) and in mode 'tuned' with QGEN_PLANES=1 (the default), where both operands of a GEMM of the layer come from
# quantizers with a plane-writing twin (Q.plane_kernel; Quartet II's) and the GEMM runs two-pass, the twins quantize
# them and C = gemm_bf16_planes(plane A, plane B, alpha). The twins are those of Q.plane_kind(): 'dequantized'
# (default, §6.7: pass A writes the dequantized tensor, alpha = 1) or 'bf16' (§6.6: pass B writes e2m1 * scale,
# alpha = tA * tB). The same bits as Q.gemm_two_pass without its dequantize passes (§6.7 says when). Otherwise (mode
# 'two-pass' or 'fused', other recipes, an FSDP2-gathered weight) the GEMM runs as before. The planes are transient:
# made right before their GEMM and freed right after it; only NVFP4 tensors are saved.
def _uses_planes(m, n, k, device, *kernels):
    if not Q.layer_planes() or any(kernel is None or Q.plane_kernel(kernel) is None for kernel in kernels):
        return False
    return Q.gemm_plan(m, n, k, device.index)[0] == 'two-pass'


def _quantize_planed(x, kernel, seeds):
    """(NVFP4, plane, alpha factor) of bf16 x by the plane-writing twin of `kernel`."""
    twin = Q.plane_kernel(kernel)
    q, plane = Q.quantize_plane(x, twin, seeds)
    return q, plane, Q.plane_alpha_factor(q, twin)


def _requantize_planed(q, kernel, seeds):
    twin = Q.plane_kernel(kernel)
    r, plane = Q.requantize_plane(q, twin, seeds)
    return r, plane, Q.plane_alpha_factor(r, twin)


def _gemm_planes(a, b):
    """C = tA tB . A . B^T from the operands' (NVFP4, plane, alpha factor): alpha = f32(fA * fB), which is
    f32(tA * tB) as in gemm_two_pass for e2m1 * scale planes and 1 for dequantized ones (no product launched)."""
    fa, fb = a[2], b[2]
    alpha = fb if Q.is_one(fa) else fa if Q.is_one(fb) else fa * fb
    return Q.gemm_bf16_planes(a[1], b[1], alpha)


class NVFP4LinearFunction(torch.autograd.Function):
    """y = x . weight^T (+ bias) with every GEMM in NVFP4; x [tokens, in] 2-D."""

    @staticmethod
    def forward(ctx, x, weight, bias, seeds, recipe, out_dtype):
        r = G.RECIPES[recipe]
        m = x.shape[0]
        xb = _pad_rows(x.to(torch.bfloat16), TOKEN_MULTIPLE).contiguous()
        wq = D.gathered_nvfp4(weight, r['forward']['w'])   # FSDP2 NVFP4 all-gather: already quantized
        planes = wq is None and _uses_planes(xb.shape[0], weight.shape[0], weight.shape[1], x.device,
                                             r['forward']['x'], r['forward']['w'])
        if wq is None:
            wb = weight.to(torch.bfloat16).contiguous()
        if planes:
            xp = _quantize_planed(xb, r['forward']['x'], seeds[FWD])
            wp = _quantize_planed(wb, r['forward']['w'], seeds[FWD])
            y = _gemm_planes(xp, wp)[:m]
            xq, wq = xp[0], wp[0]
            del xp, wp
        else:
            xq = Q.quantize(xb, r['forward']['x'], seeds[FWD])
            if wq is None:
                wq = Q.quantize(wb, r['forward']['w'], seeds[FWD])
            y = Q.gemm(xq, wq)[:m]
        if bias is not None:
            y = y + bias.to(y.dtype)
        # Keep NVFP4 only. Where a recipe quantizes a transpose from bf16 (NVIDIA's X^T, NVIDIA+4/6's W^T), do it
        # now, while the bf16 tensor exists, and keep that instead of the forward tensor.
        saved_x, saved_w = xq, wq
        if r['dw']['xt']['from'] == 'forward-bf16':
            saved_x = Q.quantize(xb, r['dw']['xt']['kernel'], seeds[XT])
        if r['dx']['wt']['from'] == 'forward-bf16':
            saved_w = Q.quantize(wb, r['dx']['wt']['kernel'], seeds[WT])
        ctx.save_for_backward(*saved_x, *saved_w, seeds)
        ctx.recipe, ctx.m, ctx.in_features = recipe, m, weight.shape[1]
        ctx.x_dtype, ctx.w_dtype = x.dtype, weight.dtype
        ctx.bias_dtype = None if bias is None else bias.dtype
        return y.to(out_dtype)

    @staticmethod
    def backward(ctx, gy):
        r = G.RECIPES[ctx.recipe]
        saved = ctx.saved_tensors
        sx, sw, seeds = Q.NVFP4(*saved[0:3]), Q.NVFP4(*saved[3:6]), saved[6]
        m = ctx.m
        e = _pad_rows(gy.to(torch.bfloat16), TOKEN_MULTIPLE).contiguous()   # [tokens, out]
        dx = dw = db = None
        tokens, out = e.shape
        requant = lambda src: src['kernel'] if src['from'] == 'requant' else None   # noqa: E731
        if ctx.needs_input_grad[0]:
            src = r['dx']['wt']
            # dX [tokens, in] = E . (W^T)^T, reduction over out
            if _uses_planes(tokens, ctx.in_features, out, e.device, r['dx']['e'], requant(src)):
                eq = _quantize_planed(e, r['dx']['e'], seeds[E])                     # [tokens, out] along out
                wt = _requantize_planed(sw, src['kernel'], seeds[WT])               # [in, out] along out
                dx = _gemm_planes(eq, wt)[:m].to(ctx.x_dtype)
            else:
                eq = Q.quantize(e, r['dx']['e'], seeds[E])
                if src['from'] == 'requant':
                    wt = Q.requantize(sw, src['kernel'], seeds[WT])
                elif src['from'] == 'transpose-16x16':
                    wt = Q.NVFP4(*transpose_16x16(sw.codes, sw.scales, sw.rows, sw.cols), sw.tensor_scale)
                else:
                    wt = sw
                dx = Q.gemm(eq, wt)[:m].to(ctx.x_dtype)
            del eq, wt  # free the dX operands before the dW ones are made (peak memory)
        if ctx.needs_input_grad[1]:
            src = r['dw']['xt']
            # dW [out, in] = E^T . (X^T)^T, reduction over tokens
            if _uses_planes(out, ctx.in_features, tokens, e.device, r['dw']['et'], requant(src)):
                etq = _quantize_planed(e, r['dw']['et'], seeds[ET])                # [out, tokens] along tokens
                xt = _requantize_planed(sx, src['kernel'], seeds[XT])               # [in, tokens] along tokens
                dw = _gemm_planes(etq, xt).to(ctx.w_dtype)
            else:
                etq = Q.quantize(e, r['dw']['et'], seeds[ET])
                xt = Q.requantize(sx, src['kernel'], seeds[XT]) if src['from'] == 'requant' else sx   # [in, tokens]
                dw = Q.gemm(etq, xt).to(ctx.w_dtype)
            del etq, xt
        if ctx.bias_dtype is not None and ctx.needs_input_grad[2]:
            db = gy.sum(0).to(ctx.bias_dtype)
        return dx, dw, db, None, None, None


def _autocast_dtype(device_type):
    try:
        if torch.is_autocast_enabled(device_type):
            return torch.get_autocast_dtype(device_type)
    except TypeError:  # older PyTorch: no device argument
        if torch.is_autocast_enabled():
            return torch.get_autocast_gpu_dtype()
    return None


def _apply_traced(x2, weight, bias, recipe, out_dtype):
    return NVFP4LinearFunction.apply(x2, weight, bias, seed_table(x2), recipe, out_dtype)


def _apply_untraced(x2, weight, bias, recipe, out_dtype):
    # Never traced, so the draw needs no opaque op: the same torch.randint on the same generator, hence the same seeds
    # as seed_table, without the custom op's dispatch on every call (host time the GPU waits for at the step's start).
    return NVFP4LinearFunction.apply(x2, weight, bias, _draw_seed_table(x2), recipe, out_dtype)


# By default torch.compile does not trace into the layer (one graph break per layer; the layer runs its kernels
# eagerly, the rest of the model is compiled). Traced, on PyTorch 2.11 + CUDA the compiled backward was measured to
# reuse the same random seeds on every step (tests/run.py test_torch_compile), which would freeze the rounding noise
# and the Hadamard signs: unbiased per step, but the same bias every step. Opt in with traceable=True.
_apply_eager = torch.compiler.disable(_apply_untraced) if hasattr(torch, 'compiler') else _apply_untraced


class Quartet2Linear(nn.Module):
    """nn.Linear with NVFP4 forward and backward GEMMs (recipe: 'quartet2', 'nvidia', 'nvidia+4/6', 'tetrajet-v2').

    Parameters stay in their own dtype (fp32 or bf16); the layer quantizes from bf16 copies. Under autocast the
    output has the autocast dtype, otherwise the input's, like nn.Linear. in/out features: multiples of 128.
    """

    traceable = False  # let torch.compile trace into the layer (see _apply_eager); per instance or class-wide

    def __init__(self, in_features, out_features, bias=True, recipe='quartet2', device=None, dtype=None):
        super().__init__()
        for name, v in (('in_features', in_features), ('out_features', out_features)):
            if not isinstance(v, int) or v < FEATURE_MULTIPLE or v % FEATURE_MULTIPLE:
                raise ValueError('Quartet2Linear: %s = %r; allowed: a positive multiple of %d (NVFP4 16-groups and the '
                                 'backward rotations along K)' % (name, v, FEATURE_MULTIPLE))
        recipe_of(recipe)
        self.in_features, self.out_features, self.recipe = in_features, out_features, recipe
        self.weight = nn.Parameter(torch.empty(out_features, in_features, device=device, dtype=dtype))
        self.bias = nn.Parameter(torch.empty(out_features, device=device, dtype=dtype)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):  # nn.Linear's initialisation
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features)
            nn.init.uniform_(self.bias, -bound, bound)

    @classmethod
    def from_linear(cls, linear, recipe='quartet2'):
        """A Quartet2Linear that shares linear's Parameter objects (no copy: optimizers and ties keep working)."""
        layer = cls.__new__(cls)
        nn.Module.__init__(layer)
        for name, v in (('in_features', linear.in_features), ('out_features', linear.out_features)):
            if v % FEATURE_MULTIPLE:
                raise ValueError('Quartet2Linear.from_linear: %s = %d; allowed: a multiple of %d' % (name, v, FEATURE_MULTIPLE))
        recipe_of(recipe)
        layer.in_features, layer.out_features, layer.recipe = linear.in_features, linear.out_features, recipe
        layer.weight = linear.weight
        layer.bias = linear.bias
        return layer

    def forward(self, x):
        if x.shape[-1] != self.in_features:
            raise ValueError('Quartet2Linear: input has %d features (shape %s); allowed: in_features = %d'
                             % (x.shape[-1], tuple(x.shape), self.in_features))
        if not x.is_cuda:
            raise ValueError('Quartet2Linear: input is on %s; allowed: a CUDA tensor' % x.device)
        if not x.is_floating_point():
            raise ValueError('Quartet2Linear: input dtype %s; allowed: a floating-point tensor' % x.dtype)
        x2 = x.reshape(-1, self.in_features)
        if x2.shape[0] == 0:
            raise ValueError('Quartet2Linear: input has no tokens (shape %s); allowed: at least one' % (tuple(x.shape),))
        out_dtype = _autocast_dtype(x.device.type) or x.dtype
        apply = _apply_traced if self.traceable else _apply_eager
        y = apply(x2, self.weight, self.bias, self.recipe, out_dtype)
        return y.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self):
        return 'in_features=%d, out_features=%d, bias=%s, recipe=%r' % (
            self.in_features, self.out_features, self.bias is not None, self.recipe)


# Module names (last component) that quantize_model leaves alone: output layers / LM heads.
DEFAULT_SKIP = ('lm_head', 'head', 'output', 'output_layer', 'embed_out', 'classifier', 'score')


def quantize_model(model, recipe='quartet2', skip=DEFAULT_SKIP, verbose=False):
    """Replaces the model's nn.Linear layers (exact type) by Quartet2Linear in place and returns the model.

    Left alone: embeddings (not nn.Linear), layers named in `skip` (LM heads), layers whose weight is tied to an
    embedding, and layers whose features are not multiples of 128 (each reported with a warning).
    """
    recipe_of(recipe)
    embedding_weights = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    replaced, left = [], []
    for parent_name, parent in list(model.named_modules()):
        for child_name, child in list(parent.named_children()):
            if type(child) is not nn.Linear:
                continue
            full = '%s.%s' % (parent_name, child_name) if parent_name else child_name
            if child_name in skip:
                left.append((full, 'output layer (skip list)'))
            elif id(child.weight) in embedding_weights:
                left.append((full, 'weight tied to an embedding'))
            elif child.in_features % FEATURE_MULTIPLE or child.out_features % FEATURE_MULTIPLE:
                left.append((full, 'features %d -> %d not multiples of %d' % (child.in_features, child.out_features, FEATURE_MULTIPLE)))
                warnings.warn('quantize_model: %s stays high precision (%d -> %d features; NVFP4 layers need multiples of %d)'
                              % (full, child.in_features, child.out_features, FEATURE_MULTIPLE))
            else:
                setattr(parent, child_name, Quartet2Linear.from_linear(child, recipe))
                replaced.append(full)
    if verbose:
        print('quantize_model(%s): %d layers in NVFP4; kept: %s' % (recipe, len(replaced), left or 'none'))
    model.qgen_quantized = {'recipe': recipe, 'replaced': replaced, 'kept': left}
    return model
