"""Compiles and runs cublaslt_modes.cu (see its header) on the GPU machine and writes
bench/results/cublaslt-modes-<date>-<commit7>/modes.md with qgen-provenance/1.

    python bench/probes/cublaslt_modes.py [--shapes m,n,k ...] [--out bench/results]

Default shapes: the 16 GEMMs of `qgen tune`'s llama-7b workload (forward, dX and dW of the three 7B layer shapes at
16384 and 32768 tokens). Needs nvcc and cuBLASLt (CUDA 12.x or 13.x); prints the table as it goes.
"""
import argparse
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from provenance import markdown_line, provenance, run_stamp  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
LAYERS = [(4096, 4096), (4096, 22016), (11008, 4096)]   # (in, out) of a 7B layer's linear maps


def llama_shapes():
    shapes = []
    for tokens in (16384, 32768):
        for fin, fout in LAYERS:
            for shape in ((tokens, fout, fin), (tokens, fin, fout), (fout, fin, tokens)):   # fwd, dX, dW
                if shape not in shapes:
                    shapes.append(shape)
    return shapes


def shape_arg(text):
    try:
        m, n, k = (int(x) for x in text.split(','))
    except ValueError:
        raise argparse.ArgumentTypeError("--shapes: '%s' is not m,n,k (three positive integers)" % text)
    if min(m, n, k) < 1:
        raise argparse.ArgumentTypeError("--shapes: '%s' has a size < 1" % text)
    return (m, n, k)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--shapes', nargs='+', type=shape_arg, help='m,n,k triples (default: llama-7b)')
    ap.add_argument('--out', default=os.path.join(os.path.dirname(HERE), 'results'))
    ap.add_argument('--arch', default='sm_90a')
    args = ap.parse_args()
    shapes = args.shapes or llama_shapes()
    p = provenance(sys.argv)
    with tempfile.TemporaryDirectory() as tmp:
        exe = os.path.join(tmp, 'modes')
        build = ['nvcc', '-O2', '-std=c++17', '-arch=' + args.arch, os.path.join(HERE, 'cublaslt_modes.cu'),
                 '-lcublasLt', '-o', exe]
        subprocess.run(build, check=True)
        run = subprocess.run([exe] + ['%d,%d,%d' % s for s in shapes], capture_output=True, text=True)
        sys.stderr.write(run.stderr)
        if run.returncode != 0:
            sys.exit('cublaslt_modes: the probe failed (exit %d)' % run.returncode)
    folder = os.path.join(args.out, 'cublaslt-modes-' + run_stamp(p))
    os.makedirs(folder, exist_ok=True)
    text = '\n'.join([
        markdown_line(p),
        '# cuBLASLt bf16 TN GEMM: host vs device alpha/beta (the two-pass GEMM\'s second pass)',
        '',
        'Device: %s, CUDA %s, driver %s. Median of 20 launches, 256 MiB written before each (L2 flushed). '
        'C [m, n] = alpha . A [m, k] . B [n, k]^T, bf16 in and out, fp32 accumulation. host: alpha and beta host '
        'scalars (the cuBLAS bf16 baseline); device: device pointers with their own heuristic; dev+host: device '
        'pointers running the host heuristic\'s algorithm (bench/probes/cublaslt_modes.cu).' % (
            p['gpu'], p['cuda'], p['driver']),
        '',
        run.stdout.rstrip(),
        ''])
    with open(os.path.join(folder, 'modes.md'), 'w') as f:
        f.write(text)
    print(run.stdout)
    print('wrote %s' % os.path.relpath(os.path.join(folder, 'modes.md')))


if __name__ == '__main__':
    main()
