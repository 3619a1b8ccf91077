"""CPU-only checks of qgen_torch.distributed (no GPU, no compiled ops): `python tests/distributed_cpu.py`.

The forward-W quantizers are replaced by the plain-torch reference (qgen_torch.reference), so this runs wherever
torch runs: row shards quantized with the all-reduced statistic equal the whole weight bit for bit, and FSDP2
(fully_shard, gloo, 2 processes) with NVFP4ShardedWeight gathers that tensor, trains two SGD steps and matches an
unsharded twin (and on 1 process, FSDP2's one-rank shortcut). Prints `N passed, M failed`.
"""
import os
import sys
import traceback

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from qgen_torch import _generated as G  # noqa: E402
from qgen_torch import distributed as D  # noqa: E402
from qgen_torch import ops as Q  # noqa: E402
from qgen_torch.reference import dequantize_reference, quantize_reference  # noqa: E402

KERNEL = G.RECIPES['quartet2']['forward']['w']


def reference_quantize(x, kernel, seeds=None):
    return Q.NVFP4(*quantize_reference(x, G.KERNELS[kernel]))


def test_shards_equal_whole():
    g = torch.Generator().manual_seed(0)
    kernels = sorted({r['forward']['w'] for r in G.RECIPES.values()})
    for kernel in kernels:
        for world in (2, 4):
            w = torch.randn(512, 256, generator=g)
            w[300, 7] = 40.0
            w[:128] *= 0.01
            w = w.to(torch.bfloat16)
            whole = reference_quantize(w, kernel)
            shards = w.chunk(world)
            stat = torch.stack([D.shard_statistic(s, kernel, reference_quantize) for s in shards]).amax(0)
            got = D.concat_shards([D.quantize_shard(s, kernel, stat, reference_quantize) for s in shards])
            for a, b, what in zip(got, whole, ('codes', 'scales', 'tensor scale')):
                assert torch.equal(a, b), '%s, %d shards: %s differ' % (kernel, world, what)
    return '%d kernels x 2/4 shards' % len(kernels)


class _RefLinear(torch.autograd.Function):
    gathered = []   # per forward call: did the weight arrive NVFP4-gathered

    @staticmethod
    def forward(ctx, x, w):
        q = D.gathered_nvfp4(w, KERNEL)
        _RefLinear.gathered.append(q is not None)
        if q is None:
            q = reference_quantize(w.to(torch.bfloat16), KERNEL)
        # Saved as Quartet2Linear saves it: the NVFP4 tensors themselves (views of FSDP2's unsharded weight, which
        # FSDP2 frees after the forward and refills before the backward), dequantized again in the backward.
        ctx.save_for_backward(x, *q)
        return x @ dequantize_reference(*q).float().t()

    @staticmethod
    def backward(ctx, gy):
        x, *q = ctx.saved_tensors
        wd = dequantize_reference(*q).float()
        return gy @ wd, gy.t() @ x


class _Layer(nn.Module):
    def __init__(self, out_features, in_features):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))

    def forward(self, x):
        return _RefLinear.apply(x, self.weight)


def _fsdp_worker(rank, world, port, errors):
    try:
        from torch.distributed.fsdp import fully_shard
        os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
        dist.init_process_group('gloo', rank=rank, world_size=world)
        D.shard_quantizer = reference_quantize
        torch.manual_seed(0)
        # Two layers, each its own FSDP2 unit under a root: the layers free their unsharded weights after the
        # forward and gather them again for the backward (the path that refills the saved NVFP4 tensors in place).
        twin, model = (nn.Sequential(_Layer(256, 128), _Layer(256, 256)) for _ in range(2))
        model.load_state_dict(twin.state_dict())
        for layer in model:
            layer.weight = nn.Parameter(D.NVFP4ShardedWeight(layer.weight.data, KERNEL))
            fully_shard(layer)
        fully_shard(model)
        x = torch.randn(8, 128)
        for step in range(2):
            y, yt = model(x), twin(x)
            assert _RefLinear.gathered[-4:] == [True, True, False, False], 'FSDP2 layers got NVFP4-gathered weights'
            assert torch.equal(y, yt), 'step %d: gathered forward differs' % step
            y.square().sum().backward()
            yt.square().sum().backward()
            for layer, ref in zip(model, twin):
                assert torch.allclose(layer.weight.grad.full_tensor(), ref.weight.grad, rtol=1e-5), 'gradients'
                assert type(layer.weight._local_tensor) is D.NVFP4ShardedWeight, 'shard keeps the subclass'
                with torch.no_grad():
                    layer.weight -= 0.1 * layer.weight.grad
                    ref.weight -= 0.1 * ref.weight.grad
                layer.weight.grad = ref.weight.grad = None
        dist.destroy_process_group()
    except Exception:
        errors.put('rank %d: %s' % (rank, traceback.format_exc()))


def test_fsdp2_gloo_two_ranks():
    ctx = mp.get_context('spawn')
    errors = ctx.Queue()
    mp.start_processes(_fsdp_worker, args=(2, 29517, errors), nprocs=2, start_method='spawn')
    if not errors.empty():
        raise AssertionError(errors.get())
    return 'fully_shard over 2 gloo ranks: forward = unsharded twin bit for bit, 2 SGD steps'


def test_fsdp2_gloo_one_rank():
    # FSDP2 on one rank skips the collective and copies only the first all-gather input of an extension: the
    # gathered weight must still be whole (tests/run.py test_fsdp2_nvfp4_gather_world1 runs this on the GPU).
    ctx = mp.get_context('spawn')
    errors = ctx.Queue()
    mp.start_processes(_fsdp_worker, args=(1, 29519, errors), nprocs=1, start_method='spawn')
    if not errors.empty():
        raise AssertionError(errors.get())
    return 'fully_shard on 1 gloo rank: forward = unsharded twin bit for bit, 2 SGD steps'


def main():
    passed = failed = 0
    for t in (test_shards_equal_whole, test_fsdp2_gloo_two_ranks, test_fsdp2_gloo_one_rank):
        try:
            print('PASS %s: %s' % (t.__name__, t()), flush=True)
            passed += 1
        except Exception:
            print('FAIL %s\n%s' % (t.__name__, traceback.format_exc()), flush=True)
            failed += 1
    print('%d passed, %d failed' % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()
