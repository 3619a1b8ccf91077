"""Data-parallel training for train.py under torchrun (issue 18): DDP or FSDP2 (fully_shard), optionally with
qgen_torch's NVFP4 weight all-gather, on the same global batch as a single-GPU run (each rank takes an equal slice
of every step's batch; gradients are averaged, so the update is the single-GPU one up to rounding).

All-gather traffic is measured, not estimated: the all-gather functions FSDP2 calls are wrapped to count the bytes
of every gathered output tensor.
"""
import os

import torch
import torch.distributed as dist

_gathered = {'bytes': 0, 'calls': 0}


def setup(a):
    """Initialises the process group from torchrun's environment; returns (rank, world_size, device)."""
    if a.dist == 'none':
        return 0, 1, torch.device(a.device)
    if 'LOCAL_RANK' not in os.environ:
        raise SystemExit('train.py: --dist %s needs torchrun (LOCAL_RANK is not set)' % a.dist)
    local = int(os.environ['LOCAL_RANK'])
    if a.device == 'cpu':   # gloo: a CPU check of the plumbing (bf16 recipe only; the NVFP4 layers need CUDA)
        dist.init_process_group('gloo')
        device = torch.device('cpu')
    else:
        torch.cuda.set_device(local)
        device = torch.device('cuda', local)
        dist.init_process_group('nccl', device_id=device)
    world = dist.get_world_size()
    if a.batch % world:
        raise SystemExit('train.py: --batch %d is not divisible by %d ranks (the global batch is split evenly)'
                         % (a.batch, world))
    _count_all_gathers()
    return dist.get_rank(), world, device


def _count_all_gathers():
    # FSDP2 calls dist.all_gather_single (torch >= 2.12) or dist.all_gather_into_tensor (earlier), looked up at call
    # time; both take (output_tensor, input_tensor, ...) and both are counted.
    for name in ('all_gather_single', 'all_gather_into_tensor'):
        inner = getattr(dist, name, None)
        if inner is None:
            continue

        def counted(output_tensor, input_tensor, *args, _inner=inner, **kwargs):
            _gathered['bytes'] += output_tensor.numel() * output_tensor.element_size()
            _gathered['calls'] += 1
            return _inner(output_tensor, input_tensor, *args, **kwargs)
        setattr(dist, name, counted)


def all_gather_counts():
    return dict(_gathered)


def wrap(model, a, world):
    """DDP or FSDP2 around the (already quantized) model; returns (model, info for the result JSON)."""
    info = {'mode': a.dist, 'world_size': world, 'nvfp4_gather': bool(a.nvfp4_gather)}
    if a.dist == 'ddp':
        from torch.nn.parallel import DistributedDataParallel
        ids = [torch.cuda.current_device()] if next(model.parameters()).is_cuda else None
        return DistributedDataParallel(model, device_ids=ids), info
    from torch.distributed.fsdp import fully_shard
    if a.nvfp4_gather:
        from qgen_torch.distributed import enable_nvfp4_all_gather
        info['nvfp4_layers'], info['regular_gather_layers'] = enable_nvfp4_all_gather(model, world, unaligned='keep')
    for block in model.blocks:
        fully_shard(block)
    fully_shard(model)
    return model, info


def local_rows(w, rank, world):
    """This rank's equal slice of the global batch (rows of w)."""
    per = w.shape[0] // world
    return w[rank * per:(rank + 1) * per]


def mean_over_ranks(t):
    """The mean of a tensor over ranks (a logged loss of the global batch)."""
    t = t.clone()
    dist.all_reduce(t, op=dist.ReduceOp.AVG)
    return t


def full(t):
    """A DTensor's full value (FSDP2's grad norm), a plain tensor unchanged."""
    return t.full_tensor() if hasattr(t, 'full_tensor') else t


def cleanup(a):
    if a.dist != 'none' and dist.is_initialized():
        dist.destroy_process_group()
