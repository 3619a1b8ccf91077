"""Quartet2Linear across ranks (NUMERICS §3.5, §5.11): per-rank rounding seeds, and the NVFP4 weight all-gather
for FSDP2.

Seeds. Every rank draws the per-call seed table from torch's CPU generator as before (so a run stays reproducible
under torch.manual_seed, and activation checkpointing replays the same draws); when torch.distributed is
initialized, the stochastic-rounding seeds are then re-keyed by the rank through Philox (rank_seed), so ranks that
seeded torch alike still round independently. The Hadamard sign seed is left as drawn: identical on every rank that
seeded torch alike, as tensor parallelism needs where one GEMM's operands are quantized on different ranks.

NVFP4 all-gather (enable_nvfp4_all_gather, before fully_shard). Each rank quantizes its row shard of a weight with
the forward quantizer of the layer's recipe and a tensor scale agreed across ranks (one all-reduce of a max), and
FSDP2 gathers codes + scales (4.5 bits per element) instead of the bf16/fp32 weight. The gathered tensor equals the
quantization of the gathered weight bit for bit when every shard has a multiple of 128 rows (the 128x4 scale layout
then concatenates) and shards split rows only (16-element groups along K stay whole); anything else is refused.
"""
import torch
import torch.distributed as dist
import torch.nn as nn
from torch.utils._pytree import tree_flatten, tree_map_only

from . import _generated as G
from . import ops as Q
from .layout import scale_bytes

# NUMERICS §3.3 streams 1..3 are the quantizers'; stream 4 re-keys a drawn seed by the rank (§3.5).
STREAM_RANK_SEED = 4
# Rows per 128x4 scale tile: a shard boundary elsewhere would split a tile (NUMERICS §7).
SHARD_ROW_MULTIPLE = 128
# E4M3 code of 224: a one-pass tensor's largest scale lies in (224, 448] unless the tensor is zero (§5.1, §5.11).
E4M3_CODE_224 = 0x76

_M32 = 0xFFFFFFFF


def philox4x32_10(counter, key):
    """Philox4x32-10 (NUMERICS §3.1, curand's) of four uint32 counter words under a two-word key: four uint32."""
    x, y, z, w = counter
    ka, kb = key
    for round_ in range(10):
        if round_:
            ka, kb = (ka + 0x9E3779B9) & _M32, (kb + 0xBB67AE85) & _M32
        p0, p1 = 0xD2511F53 * x, 0xCD9E8D57 * z
        x, y, z, w = ((p1 >> 32) ^ y ^ ka) & _M32, p1 & _M32, ((p0 >> 32) ^ w ^ kb) & _M32, p0 & _M32
    return x, y, z, w


def rank_seed(seed, rank):
    """The seed a rank uses for a drawn `seed` (NUMERICS §3.5): words 0 and 1 of word(seed, STREAM_RANK_SEED, rank,
    .), the high word cut to 30 bits so that the result is a non-negative int64 below 2^62 like a drawn seed."""
    words = philox4x32_10((0, STREAM_RANK_SEED, rank & _M32, rank >> 32), (seed & _M32, (seed >> 32) & _M32))
    return words[0] | (words[1] & 0x3FFFFFFF) << 32


def current_rank():
    """torch.distributed's global rank, or None when no process group is initialized."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return None


def rekey_seed_table(table, rank):
    """The seed table (int64 [roles, 2] = (seed, sign_seed)) with column 0 re-keyed by `rank`; signs unchanged."""
    out = table.clone()
    for i, s in enumerate(table[:, 0].tolist()):
        out[i, 0] = rank_seed(s, rank)
    return out


# ------------------------------------------------------------------------------------------------ sharded quantize
def forward_weight_kernel(recipe):
    """The forward W quantizer of a recipe, refusing recipes whose backward needs the bf16 weight (W^T quantized
    from bf16 in the forward, 'forward-bf16'): with an NVFP4 gather the bf16 weight never exists on the rank."""
    r = G.RECIPES[recipe]
    allowed = ', '.join(k for k, v in G.RECIPES.items() if v['dx']['wt']['from'] != 'forward-bf16')
    if r['dx']['wt']['from'] == 'forward-bf16':
        raise ValueError('nvfp4_all_gather: recipe %r quantizes W^T from the bf16 weight (dx.wt from forward-bf16); '
                         'allowed: recipes whose W^T comes from the forward NVFP4 weight (%s)'
                         % (recipe, allowed))
    return r['forward']['w']


def check_row_shards(rows, cols, world_size, what='weight'):
    """Refuses a row sharding that would not give the quantization of the whole tensor bit for bit."""
    if world_size < 1 or rows % world_size:
        raise ValueError('nvfp4_all_gather: %s has %d rows for %d ranks; allowed: rows divisible by the ranks (even '
                         'FSDP2 shards)' % (what, rows, world_size))
    if (rows // world_size) % SHARD_ROW_MULTIPLE:
        raise ValueError('nvfp4_all_gather: %s [%d, %d] over %d ranks gives %d-row shards; allowed: a multiple of %d '
                         'rows per shard (the 128x4 scale layout concatenates only along whole 128-row tiles)'
                         % (what, rows, cols, world_size, rows // world_size, SHARD_ROW_MULTIPLE))
    if cols % 16:
        raise ValueError('nvfp4_all_gather: %s has %d columns; allowed: a multiple of 16' % (what, cols))


_E4M3 = {}
# The quantizer the FSDP2 hooks call (None: the compiled qgen op); tests without a GPU put the reference here.
shard_quantizer = None


def _e4m3_table(device):
    t = _E4M3.get(device)
    if t is None:
        vals = [((c & 7) / 8.0) * 2.0 ** -6 if (c >> 3) == 0 else (1 + (c & 7) / 8.0) * 2.0 ** ((c >> 3) - 7)
                for c in range(127)] + [float('nan')] * 129
        t = _E4M3[device] = torch.tensor(vals, dtype=torch.float32, device=device)
    return t


def shard_statistic(shard, kernel, quantize=None):
    """float32 [1] on the shard's device: the max whose all-reduce fixes the tensor scale (NUMERICS §5.11).

    computed mode: the amax of the finite elements; one-pass mode: the largest proxy m, read exactly from the shard's
    own quantization as decode(largest scale) * t (0 for a zero shard). No host synchronisation.
    """
    mode = G.KERNELS[kernel]['tensor_scale']
    if mode == 'computed':
        a = torch.where(torch.isfinite(shard), shard.abs(), torch.zeros_like(shard)).amax()
        return a.float().reshape(1)
    if mode == 'one-pass':
        q = (quantize or Q.quantize)(shard, kernel)
        top = q.scales.max().long()
        m = _e4m3_table(q.scales.device)[top] * q.tensor_scale.reshape(())
        return torch.where(top > E4M3_CODE_224, m, torch.zeros_like(m)).reshape(1)
    raise ValueError('nvfp4_all_gather: kernel %r has tensor scale mode %r; allowed: computed, one-pass'
                     % (kernel, mode))


def quantize_shard(shard, kernel, global_statistic, quantize=None):
    """NVFP4 of a row shard (bf16 [rows, cols], rows a multiple of 128) with the tensor scale of the whole tensor.

    The kernels compute their tensor scale from their own input, so the shard is quantized with 128 extra rows that
    hold one sentinel element and zeros: the sentinel is the global amax (computed mode) or 6 m (one-pass: its group
    has proxy exactly m), which makes the kernel's tensor scale the global one; every other group is quantized as in
    the whole tensor (per-group arithmetic, 16x16 blocks within 16-row blocks), and the sentinel rows are cut off.
    """
    rows, cols = shard.shape
    if rows % SHARD_ROW_MULTIPLE:
        raise ValueError('quantize_shard: %d rows; allowed: a multiple of %d' % (rows, SHARD_ROW_MULTIPLE))
    mode = G.KERNELS[kernel]['tensor_scale']
    stat = global_statistic.reshape(()).float()
    sentinel = stat if mode == 'computed' else stat * 6.0
    pad = torch.zeros(SHARD_ROW_MULTIPLE, cols, dtype=torch.bfloat16, device=shard.device)
    pad[0, 0] = sentinel.to(torch.bfloat16)
    q = (quantize or Q.quantize)(torch.cat([shard.to(torch.bfloat16), pad]).contiguous(), kernel)
    return Q.NVFP4(q.codes[:rows].contiguous(), q.scales[:scale_bytes(rows, cols)].contiguous(), q.tensor_scale)


def quantize_sharded(shard, kernel, all_reduce_max, quantize=None):
    """quantize_shard with the statistic all-reduced (max) by `all_reduce_max` (in place on a float32 [1])."""
    stat = shard_statistic(shard.to(torch.bfloat16), kernel, quantize)
    all_reduce_max(stat)
    return quantize_shard(shard, kernel, stat, quantize)


def concat_shards(parts):
    """The NVFP4 tensor of the row shards `parts` (each a multiple of 128 rows, one tensor scale)."""
    return Q.NVFP4(torch.cat([p.codes for p in parts]), torch.cat([p.scales for p in parts]), parts[0].tensor_scale)


def nvfp4_gather_bytes(rows, cols):
    """Bytes one rank receives per gathered weight with the NVFP4 gather: codes + 128x4 scales."""
    return rows * cols // 2 + scale_bytes(rows, cols)


# ------------------------------------------------------------------------------------------------ FSDP2 extension
_aten = torch.ops.aten
# Ops FSDP2 applies to a parameter while sharding it and copying it in: their result is still (part of) the weight.
_SHARD_KEEPS = {_aten.split.Tensor, _aten.split_with_sizes.default, _aten.slice.Tensor, _aten.view.default,
                _aten.as_strided.default, _aten.new_zeros.default, _aten.empty_like.default, _aten.clone.default,
                _aten.detach.default, _aten.alias.default, _aten.copy_.default, _aten._to_copy.default,
                _aten.narrow.default, _aten.chunk.default}


_keep_version = getattr(torch.autograd, '_unsafe_preserve_version_counter', None)


def _refill(dst, src):
    """dst.copy_(src) without bumping dst's version counter (what FSDP2 does when it refills a parameter)."""
    if _keep_version is None:
        dst.copy_(src)
        return
    with _keep_version(dst):
        dst.copy_(src)


class NVFP4ShardedWeight(torch.Tensor):
    """A weight (or its FSDP2 shard) whose all-gather moves NVFP4 codes + scales. Any op other than the sharding
    ones (view, split, copy, ...) sees the plain tensor inside; the optimizer updates that tensor in place."""

    @staticmethod
    def __new__(cls, data, kernel):
        t = torch.Tensor._make_wrapper_subclass(cls, data.shape, strides=data.stride(), dtype=data.dtype,
                                                device=data.device, requires_grad=data.requires_grad)
        t._data, t._kernel = data, kernel
        return t

    def __init__(self, data, kernel):
        pass

    __torch_function__ = torch._C._disabled_torch_function_impl

    def __repr__(self):
        return 'NVFP4ShardedWeight(%s, kernel=%r)' % (self._data, self._kernel)

    def __tensor_flatten__(self):
        return ['_data'], self._kernel

    @staticmethod
    def __tensor_unflatten__(inner, kernel, outer_size, outer_stride):
        return NVFP4ShardedWeight(inner['_data'], kernel)

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        kernel = next(a._kernel for a in tree_flatten((args, kwargs))[0] if isinstance(a, cls))
        out = func(*tree_map_only(cls, lambda t: t._data, args), **tree_map_only(cls, lambda t: t._data, kwargs or {}))
        if func in _SHARD_KEEPS:
            return tree_map_only(torch.Tensor, lambda t: cls(t, kernel), out)
        return out

    def fsdp_pre_all_gather(self, mesh, outer_size, outer_stride, module, mp_policy):
        if mesh.ndim != 1:
            raise ValueError('nvfp4_all_gather: a %d-D device mesh; allowed: 1-D (FSDP, not HSDP)' % mesh.ndim)
        check_row_shards(outer_size[0], outer_size[1], mesh.size())
        group = mesh.get_group()
        q = quantize_sharded(self._data.to(torch.bfloat16).contiguous(), self._kernel,
                             lambda t: dist.all_reduce(t, op=dist.ReduceOp.MAX, group=group), shard_quantizer)
        # One all-gather input, this shard's codes then its scales: FSDP2 on one rank copies only the first input
        # of an extension (its world-size-1 shortcut), so two inputs would leave the scales unset.
        packed = torch.cat([q.codes.reshape(-1), q.scales.reshape(-1)])
        return (packed,), (q.tensor_scale, tuple(outer_size), q.codes.numel())

    def fsdp_post_all_gather(self, outputs, metadata, param_dtype, *, out=None):
        (packed,) = outputs
        tensor_scale, shape, code_bytes = metadata
        ranks = packed.view(shape[0] * shape[1] // 2 // code_bytes, -1)   # [ranks, a shard's codes and scales]
        codes, scales = ranks[:, :code_bytes], ranks[:, code_bytes:]
        if out is not None:
            # FSDP2 gathers a weight it freed after the forward again for the backward. The forward saved views of
            # these tensors, and the refill writes the values they held then (the forward W quantizers are
            # deterministic; the weight changes only in the optimizer step), so it keeps their version counters, as
            # FSDP2 does when it refills plain parameters.
            with torch.no_grad():
                _refill(out._tensor_scale, tensor_scale)
                _refill(out._codes.view(ranks.shape[0], -1), codes)
                _refill(out._scales.view(ranks.shape[0], -1), scales)
            return None
        # Own storage on every rank count: FSDP2 frees and reallocates `inner` between uses and the branch above
        # refills it, so one rank does not rely on views of FSDP2's all-gather buffer staying current.
        codes = codes.clone(memory_format=torch.contiguous_format).view(shape[0], shape[1] // 2)
        scales = scales.clone(memory_format=torch.contiguous_format).view(-1)
        w = NVFP4GatheredWeight(codes, scales, tensor_scale.clone(), shape, param_dtype, self._kernel)
        return w, (codes, scales)


class NVFP4GatheredWeight(torch.Tensor):
    """The unsharded weight FSDP2 hands to Quartet2Linear: the NVFP4 tensor of the forward quantizer, shaped and
    typed as the weight (its gradient has that shape and dtype). Only Quartet2Linear's forward can use it."""

    @staticmethod
    def __new__(cls, codes, scales, tensor_scale, shape, dtype, kernel):
        t = torch.Tensor._make_wrapper_subclass(cls, shape, dtype=dtype, device=codes.device)
        t._codes, t._scales, t._tensor_scale, t._kernel = codes, scales, tensor_scale, kernel
        return t

    def __init__(self, *args):
        pass

    __torch_function__ = torch._C._disabled_torch_function_impl

    def __repr__(self):
        return 'NVFP4GatheredWeight(shape=%s, kernel=%r)' % (tuple(self.shape), self._kernel)

    def nvfp4(self):
        return Q.NVFP4(self._codes.view(self.shape[0], self.shape[1] // 2), self._scales.view(-1), self._tensor_scale)

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        me = args[0]
        if func in (_aten.detach.default, _aten.alias.default) or (
                func is _aten.as_strided.default and tuple(args[1]) == tuple(me.shape)):
            return cls(me._codes, me._scales, me._tensor_scale, me.shape, me.dtype, me._kernel)
        raise NotImplementedError('NVFP4GatheredWeight: %s; only Quartet2Linear reads an NVFP4-gathered weight (use '
                                  'the layer, or disable nvfp4_all_gather)' % func)


def gathered_nvfp4(weight, kernel):
    """The NVFP4 forward weight if `weight` arrived through the NVFP4 all-gather with `kernel`, else None."""
    if not isinstance(weight, NVFP4GatheredWeight):
        return None
    if weight._kernel != kernel:
        raise ValueError('Quartet2Linear: weight gathered with %r; the recipe quantizes W with %r'
                         % (weight._kernel, kernel))
    return weight.nvfp4()


def enable_nvfp4_all_gather(model, world_size=None, unaligned='error'):
    """Marks every Quartet2Linear weight for the NVFP4 all-gather; call before fully_shard. Checks the recipe and
    the row sharding (world_size: the FSDP ranks, default torch.distributed's world size); a layer whose shards
    would not be whole 128-row tiles raises (unaligned='error') or keeps the regular gather ('keep').
    Returns (names gathered in NVFP4, names kept)."""
    from .linear import Quartet2Linear
    if unaligned not in ('error', 'keep'):
        raise ValueError("enable_nvfp4_all_gather: unaligned=%r; allowed: 'error', 'keep'" % (unaligned,))
    if world_size is None:
        world_size = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
    names, kept = [], []
    for name, m in model.named_modules():
        if not isinstance(m, Quartet2Linear) or isinstance(m.weight, NVFP4ShardedWeight):
            continue
        kernel = forward_weight_kernel(m.recipe)
        try:
            check_row_shards(m.out_features, m.in_features, world_size, '%s.weight' % name)
        except ValueError:
            if unaligned == 'error':
                raise
            kept.append(name)
            continue
        m.weight = nn.Parameter(NVFP4ShardedWeight(m.weight.data, kernel), requires_grad=m.weight.requires_grad)
        names.append(name)
    return names, kept
