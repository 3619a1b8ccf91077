"""Quartet2Linear forward+backward vs bf16 nn.Linear under autocast, same run, same GPU (issue 15: <= 1.25x bf16).

    python bench/linear/bench_linear.py --qgen-path DIR --out OUT [--tokens 32768] [--reps 20] [--gemm tuned,fused]

Shapes: the Llama-7B linear layers (in -> out) at --tokens tokens. For every shape and recipe: median of --reps
timed forward+backward steps (CUDA events; a 256 MiB buffer is rewritten before each step so no operand is served
from L2; each step from an idle GPU, so host time before its first kernel counts), the same steps back to back (the
steady state of training, where host time overlaps earlier steps; the flushes' own time subtracted), the host time
to enqueue one step, peak memory above the inputs, activation memory saved for backward, and the time of the three
NVFP4 GEMMs alone (the floor the quantizers add to). --gemm: how the package picks each GEMM (qgen_torch.ops.set_gemm_mode):
'tuned' (its GEMM_DISPATCH: the tuning table it was vendored with, or the fallback rule), 'fused', 'two-pass'
(NUMERICS §6.4: dequantize passes + cuBLASLt) or 'planes' (two-pass on the bf16 planes the quantizers write,
§6.6 or §6.7 by QGEN_PLANE_KIND; 'tuned' does that too where it picks two-pass unless QGEN_PLANES=0);
a comma-separated list measures each. Rows carry the mode, the strategy of the forward, dX and dW GEMM and the tuning
table's source, and the GPU time of one profiled step by kind of kernel (quantize, dequantize, GEMM, other torch
kernels) with the slowest kernels, so that the remaining gap is visible. Writes OUT/linear.json and OUT/linear.md.
"""
import argparse
import cProfile
import io
import json
import pstats
import time
import os
import re
import statistics
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # bench/, for provenance.py
import provenance  # noqa: E402

SHAPES = [(4096, 4096), (4096, 22016), (11008, 4096)]


def parse():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--qgen-path', default=None, help='directory holding qgen_torch (default: the installed package)')
    p.add_argument('--out', required=True)
    p.add_argument('--tokens', type=int, default=32768)
    p.add_argument('--reps', type=int, default=20)
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--cpu-profile', type=int, default=0, metavar='N',
                   help='also print the N Python functions with the most own time over 10 steps (cProfile)')
    p.add_argument('--recipes', default='quartet2,nvidia,nvidia+4/6,tetrajet-v2')
    p.add_argument('--gemm', default='tuned', help='tuned | fused | two-pass | planes, or a comma-separated list')
    return p.parse_args()


def timed(fn, reps, warmup, flush, after_flush=None):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        flush.add_(1.0)  # evicts L2 (50 MiB on an H100) before every timed step
        if after_flush is not None:
            after_flush()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times), times


def pipelined_ms(fn, reps, flush):
    """Steady-state time per step: `reps` steps enqueued back to back (each after the L2 flush, nothing synchronised
    between them), minus the same loop of flushes alone. Host time that overlaps the GPU's work of earlier steps is
    hidden here, as in training, where it is not in the isolated steps of timed()."""
    def loop(body):
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(reps):
            flush.add_(1.0)
            body()
        end.record()
        end.synchronize()
        return start.elapsed_time(end)
    fn()
    return (loop(fn) - loop(lambda: None)) / reps


def gpu_ms(fn, reps, flush, host):
    """Median GPU time of one isolated step whose launches are all queued before it starts: after the L2 flush the
    GPU spins (torch.cuda._sleep, no memory traffic) for longer than the host takes to enqueue the step (`host` ms,
    host_ms below), so no kernel of the step waits for its launch. timed() minus this is the host latency an isolated
    step exposes (the first launch after the start event, launches that fall behind); None where torch has no
    _sleep."""
    sleep = getattr(torch.cuda, '_sleep', None)
    if sleep is None:
        return None
    cycles = int(max(2.0, 3.0 * host) * 1e-3 * 2.5e9)   # >= 3x the enqueue time at up to 2.5 GHz
    return timed(fn, reps, 0, flush, after_flush=lambda: sleep(cycles))[0]


def host_ms(fn, reps):
    """Median host time to enqueue one call of fn from an idle GPU (synchronised before each): when it exceeds the
    GPU time of the step's kernels, the step is host-bound and the GPU waits for its launches."""
    times = []
    for _ in range(reps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    torch.cuda.synchronize()
    return statistics.median(times)


def cpu_profile(fn, top):
    """The `top` functions with the most own host time over 10 calls of fn (cProfile), as text."""
    torch.cuda.synchronize()
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(10):
        fn()
    prof.disable()
    torch.cuda.synchronize()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats('tottime').print_stats(top)
    return out.getvalue()


def measure(layer, x, dy, reps, warmup, flush):
    def step():
        layer.zero_grad(set_to_none=True)
        x.grad = None
        with torch.autocast('cuda', dtype=torch.bfloat16):
            y = layer(x)
        y.backward(dy)

    def fwd():
        with torch.no_grad(), torch.autocast('cuda', dtype=torch.bfloat16):
            layer(x)

    t_step, all_times = timed(step, reps, warmup, flush)
    t_fwd, _ = timed(fwd, reps, warmup, flush)
    t_host = host_ms(step, reps)
    t_gpu = gpu_ms(step, reps, flush, t_host)
    t_pipe = pipelined_ms(step, reps, flush)
    # peak memory of one step above what exists before it (inputs, parameters, the flush buffer)
    layer.zero_grad(set_to_none=True)
    x.grad = None
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    step()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    # bytes saved for backward
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        with torch.autocast('cuda', dtype=torch.bfloat16):
            layer(x)
    seen, saved_bytes = set(), 0
    for t in saved:
        if t.is_cuda and t.data_ptr() not in seen and t.data_ptr() != layer.weight.data_ptr():
            seen.add(t.data_ptr())
            saved_bytes += t.numel() * t.element_size()
    kinds, kernels = step_breakdown(step)
    return {'time_ms': t_step, 'fwd_ms': t_fwd, 'peak_mem_mb': peak / 2 ** 20, 'saved_mb': saved_bytes / 2 ** 20,
            'times_ms': all_times, 'breakdown_ms': kinds, 'kernels': kernels, 'host_ms': t_host, 'step': step,
            'pipelined_ms': t_pipe, 'gpu_ms': t_gpu}


# Kinds of GPU kernels in a step: qgen's generated kernels live in namespaces qgen_<kernel>_impl (templates/), cuBLAS's
# are nvjet / xmma / cutlass / gemm kernels; the rest is torch (casts, padding, the alpha product, grad accumulation).
KERNEL_KINDS = (
    ('dequantize', re.compile(r'qgen_dequantize\w*_impl::')),
    ('quantize', re.compile(r'qgen_\w+_impl::(pass_a|pass_b|quantize|amax_pass)\b')),
    ('gemm', re.compile(r'qgen_gemm\w*_impl::|nvjet|xmma|cutlass|gemm|Gemm|sm90_', )),
)


def kernel_kind(name):
    for kind, pattern in KERNEL_KINDS:
        if pattern.search(name):
            return kind
    return 'other'


def step_breakdown(step):
    """GPU time (ms) of one step by kernel kind, and its kernels [(name, kind, ms, count)] slowest first
    (torch.profiler, CUDA activity only; after one untimed step so that plans and caches exist)."""
    from torch.profiler import ProfilerActivity, profile
    step()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        step()
        torch.cuda.synchronize()
    kinds, kernels = {}, []
    for e in prof.key_averages():
        us = getattr(e, 'self_device_time_total', None)
        if us is None:
            us = getattr(e, 'self_cuda_time_total', 0)
        if not us:
            continue
        kind = kernel_kind(e.key)
        kinds[kind] = kinds.get(kind, 0.0) + us / 1000
        kernels.append((e.key, kind, us / 1000, e.count))
    kernels.sort(key=lambda k: -k[2])
    return {k: round(v, 3) for k, v in sorted(kinds.items())}, kernels


def gemm_floor(Q, qlayer, x, dy, reps, warmup, flush, planes=False):
    """The three NVFP4 GEMMs of one step alone, on operands quantized beforehand."""
    from qgen_torch.linear import recipe_of
    r = recipe_of('quartet2')
    s = torch.zeros(2, dtype=torch.int64)
    with torch.no_grad():
        return _gemm_floor(Q, r, s, qlayer, x, dy, reps, warmup, flush, planes)


def _gemm_floor(Q, r, s, qlayer, x, dy, reps, warmup, flush, planes):
    xq = Q.quantize(x.to(torch.bfloat16), r['forward']['x'])
    wq = Q.quantize(qlayer.weight.to(torch.bfloat16), r['forward']['w'])
    eq = Q.quantize(dy, r['dx']['e'], s)
    wt = Q.requantize(wq, r['dx']['wt']['kernel'], s)
    et = Q.quantize(dy, r['dw']['et'], s)
    xt = Q.requantize(xq, r['dw']['xt']['kernel'], s)
    pairs = ((xq, wq), (eq, wt), (et, xt))
    if planes:   # the cuBLASLt GEMMs alone, on planes made beforehand (NUMERICS §6.6)
        ready = [(Q.plane_of(a), Q.plane_of(b), a.tensor_scale * b.tensor_scale) for a, b in pairs]

        def three():
            for pa, pb, alpha in ready:
                Q.gemm_bf16_planes(pa, pb, alpha)
    else:
        def three():
            for a, b in pairs:
                Q.gemm(a, b)
    return timed(three, reps, warmup, flush)[0]


def main():
    a = parse()
    if a.qgen_path:
        sys.path.insert(0, os.path.abspath(a.qgen_path))
    import qgen_torch
    from qgen_torch import ops as Q
    from qgen_torch import _generated as G
    dev = torch.device('cuda')
    name = torch.cuda.get_device_name()
    flush = torch.empty(64 * 2 ** 20, dtype=torch.float32, device=dev)
    rows = []
    print('device %s, torch %s, qgen_torch %s (%s), tokens %d, median of %d' % (
        name, torch.__version__, qgen_torch.__version__, qgen_torch.ARCH, a.tokens, a.reps), flush=True)
    for fin, fout in SHAPES:
        torch.manual_seed(0)
        x = (torch.randn(a.tokens, fin, device=dev) * 0.5).to(torch.bfloat16).requires_grad_()
        dy = (torch.randn(a.tokens, fout, device=dev) * 1e-3).to(torch.bfloat16)
        ref = nn.Linear(fin, fout, bias=False, device=dev)   # fp32 master weights, bf16 compute under autocast
        base = measure(ref, x, dy, a.reps, a.warmup, flush)
        for mode, recipe in [(g, r) for g in a.gemm.split(',') for r in a.recipes.split(',')]:
            Q.set_gemm_mode(mode)
            floor = None
            q = qgen_torch.Quartet2Linear.from_linear(ref, recipe)
            m = measure(q, x, dy, a.reps, a.warmup, flush)
            if recipe == 'quartet2':
                floor = gemm_floor(Q, q, x, dy, a.reps, a.warmup, flush, planes=Q.layer_planes())
            padded = -(-a.tokens // 128) * 128
            plans = [Q.gemm_plan(*mnk) for mnk in ((padded, fout, fin), (padded, fin, fout), (fout, fin, padded))]
            row = {
                'shape': '%d->%d' % (fin, fout), 'tokens': a.tokens, 'recipe': recipe, 'gemm': mode,
                'gemm_strategies': ['%s%s' % (st, ':' + k if k else '') for st, k, _ in plans],
                'layer_planes': Q.layer_planes(),   # two-pass GEMMs on quantizer-written planes (QGEN_PLANES)
                'tuning': G.GEMM_DISPATCH['source'], 'tuning_source_hash': G.GEMM_DISPATCH['sourceHash'],
                'tuning_gpu': G.GEMM_DISPATCH['gpu'],
                'time_ms': round(m['time_ms'], 3), 'bf16_time_ms': round(base['time_ms'], 3),
                'ratio': round(m['time_ms'] / base['time_ms'], 3),
                'fwd_ms': round(m['fwd_ms'], 3), 'bf16_fwd_ms': round(base['fwd_ms'], 3),
                'nvfp4_gemms_ms': round(floor, 3) if recipe == 'quartet2' else None,
                'peak_mem_mb': round(m['peak_mem_mb'], 1), 'bf16_peak_mem_mb': round(base['peak_mem_mb'], 1),
                'saved_activation_mb': round(m['saved_mb'], 1), 'bf16_saved_activation_mb': round(base['saved_mb'], 1),
                'breakdown_ms': m['breakdown_ms'], 'bf16_breakdown_ms': base['breakdown_ms'],
                # host time to enqueue one step from an idle GPU; above the kernels' sum the step is host-bound
                'host_ms': round(m['host_ms'], 3), 'bf16_host_ms': round(base['host_ms'], 3),
                'kernels_ms': round(sum(m['breakdown_ms'].values()), 3),
                # steady state: steps back to back, host time hidden under earlier steps (pipelined_ms)
                'pipelined_ms': round(m['pipelined_ms'], 3), 'bf16_pipelined_ms': round(base['pipelined_ms'], 3),
                'pipelined_ratio': round(m['pipelined_ms'] / base['pipelined_ms'], 3),
                # isolated step with every launch queued before it starts (gpu_ms): time_ms minus this is host latency
                'gpu_ms': round(m['gpu_ms'], 3) if m['gpu_ms'] is not None else None,
                'bf16_gpu_ms': round(base['gpu_ms'], 3) if base['gpu_ms'] is not None else None,
                'gpu_ratio': (round(m['gpu_ms'] / base['gpu_ms'], 3)
                              if m['gpu_ms'] is not None and base['gpu_ms'] is not None else None),
                'top_kernels': [{'name': k[0][:160], 'kind': k[1], 'ms': round(k[2], 3), 'count': k[3]}
                                for k in m['kernels'][:12]],
                'device': name, 'torch': torch.__version__, 'reps': a.reps,
            }
            rows.append(row)
            print('%-12s %-9s %-12s %8.3f ms vs bf16 %8.3f ms = %.2fx; fwd %.3f vs %.3f; gemms alone %s; peak %.0f vs %.0f MiB; saved %.0f vs %.0f MiB'
                  % (row['shape'], mode, recipe, row['time_ms'], row['bf16_time_ms'], row['ratio'], row['fwd_ms'], row['bf16_fwd_ms'],
                     '%.3f ms' % floor if recipe == 'quartet2' else '-', row['peak_mem_mb'], row['bf16_peak_mem_mb'],
                     row['saved_activation_mb'], row['bf16_saved_activation_mb']), flush=True)
            print('    GEMM strategies (fwd, dX, dW): %s%s; tuning: %s' % (', '.join(row['gemm_strategies']),
                  ' (two-pass ones on quantizer-written planes)' if Q.layer_planes() else '', row['tuning']), flush=True)
            print('    one step by kernel kind (ms): %s; bf16: %s' % (
                ', '.join('%s %.3f' % kv for kv in row['breakdown_ms'].items()),
                ', '.join('%s %.3f' % kv for kv in row['bf16_breakdown_ms'].items())), flush=True)
            for k in m['kernels'][:8]:
                print('      %8.3f ms x%-3d %-10s %s' % (k[2], k[3], k[1], k[0][:110]), flush=True)
            print('    host enqueue of one step %.3f ms (bf16 %.3f) against %.3f ms of kernels; back to back %.3f ms vs '
                  'bf16 %.3f ms = %.2fx' % (row['host_ms'], row['bf16_host_ms'], row['kernels_ms'], row['pipelined_ms'],
                                           row['bf16_pipelined_ms'], row['pipelined_ratio']), flush=True)
            if row['gpu_ratio'] is not None:
                print('    launches queued ahead (no host latency): %.3f ms vs bf16 %.3f ms = %.2fx; the isolated step '
                      'exposes %.3f ms of host latency (bf16 %.3f)' % (
                          row['gpu_ms'], row['bf16_gpu_ms'], row['gpu_ratio'], row['time_ms'] - row['gpu_ms'],
                          row['bf16_time_ms'] - row['bf16_gpu_ms']), flush=True)
            if a.cpu_profile:
                print(cpu_profile(m['step'], a.cpu_profile), flush=True)
        del x, dy, ref
        torch.cuda.empty_cache()
    # A new folder per run, linear-<date>-<HHMM>-<commit7>/, its files with qgen-provenance/1 (bench/provenance.py).
    pkg = os.path.dirname(os.path.dirname(os.path.abspath(qgen_torch.__file__)))
    prov = provenance.provenance(['python', 'bench/linear/bench_linear.py'] + sys.argv[1:], package_dir=pkg)
    a.out = os.path.join(a.out, 'linear-%s' % provenance.run_stamp(prov))
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, 'linear.json'), 'w') as f:
        json.dump(provenance.with_provenance(prov, rows), f, indent=1)
    lines = ['# Quartet2Linear vs bf16 nn.Linear (forward + backward)', '',
             'Device: %s, torch %s, %d tokens, median of %d steps (CUDA events, L2 flushed before each), fp32 master '
             'weights, bf16 autocast. Target (issue 15): quartet2 <= 1.25x the bf16 time.' % (name, torch.__version__, a.tokens, a.reps), '',
             'GEMM tuning table: %s (GPU %s, sources %s).' % (G.GEMM_DISPATCH['source'], G.GEMM_DISPATCH['gpu'],
                                                               G.GEMM_DISPATCH['sourceHash']), '',
             '| shape (in->out) | gemm | strategies (fwd, dX, dW) | recipe | time (ms) | bf16 (ms) | x bf16 | fwd (ms) | bf16 fwd (ms) | 3 NVFP4 GEMMs alone (ms) | peak MiB | bf16 peak MiB | saved act. MiB | bf16 saved MiB | one step by kind (ms) | host enqueue (ms) | back to back (ms) | bf16 back to back (ms) | x bf16 back to back | launches ahead (ms) | bf16 launches ahead (ms) | x bf16 launches ahead |',
             '|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|']
    fmt = lambda v: '' if v is None else '%.2f' % v   # noqa: E731
    for r in rows:
        lines.append('| %s | %s | %s | %s | %.2f | %.2f | %.2f | %.2f | %.2f | %s | %.0f | %.0f | %.0f | %.0f | %s | %.2f | %.2f | %.2f | %.2f | %s | %s | %s |' % (
            r['shape'], r['gemm'], ', '.join(r['gemm_strategies']), r['recipe'], r['time_ms'], r['bf16_time_ms'], r['ratio'], r['fwd_ms'], r['bf16_fwd_ms'],
            '%.2f' % r['nvfp4_gemms_ms'] if r['nvfp4_gemms_ms'] is not None else '', r['peak_mem_mb'], r['bf16_peak_mem_mb'],
            r['saved_activation_mb'], r['bf16_saved_activation_mb'],
            ', '.join('%s %.2f' % kv for kv in r['breakdown_ms'].items()), r['host_ms'], r['pipelined_ms'],
            r['bf16_pipelined_ms'], r['pipelined_ratio'], fmt(r['gpu_ms']), fmt(r['bf16_gpu_ms']), fmt(r['gpu_ratio'])))
    with open(os.path.join(a.out, 'linear.md'), 'w') as f:
        f.write(provenance.markdown_line(prov) + '\n' + '\n'.join(lines) + '\n')
    print('wrote %s' % a.out)


if __name__ == '__main__':
    main()
