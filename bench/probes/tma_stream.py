"""Compiles and runs tma_stream.cu (see its header: the skinny GEMMs' weight loads alone, one change at a time) on
the GPU machine and writes bench/results/tma-stream-<date>-<commit7>/stream.md with qgen-provenance/1.

    python bench/probes/tma_stream.py [--n N] [--k K] [--out bench/results]

Default n = k = 8192 (the skinny bench shapes' weights). Needs nvcc and a Hopper GPU (TMA, sm_90a).
"""
import argparse
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from provenance import markdown_line, provenance, run_stamp  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
RUNTIME = os.path.join(os.path.dirname(os.path.dirname(HERE)), 'runtime')


def positive(multiple, flag):
    def parse(text):
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError('%s: %r is not an integer' % (flag, text))
        if v < multiple or v % multiple:
            raise argparse.ArgumentTypeError('%s = %d; allowed: a positive multiple of %d' % (flag, v, multiple))
        return v
    return parse


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--n', type=positive(128, '--n'), default=8192, help='weight rows (multiple of 128)')
    ap.add_argument('--k', type=positive(512, '--k'), default=8192, help='reduction size (multiple of 512)')
    ap.add_argument('--out', default=os.path.join(os.path.dirname(HERE), 'results'))
    args = ap.parse_args()
    p = provenance(sys.argv)
    with tempfile.TemporaryDirectory() as tmp:
        exe = os.path.join(tmp, 'tma_stream')
        subprocess.run(['nvcc', '-O2', '-std=c++17', '-arch=sm_90a', '-I', RUNTIME, os.path.join(HERE, 'tma_stream.cu'),
                        '-o', exe], check=True)
        run = subprocess.run([exe, str(args.n), str(args.k)], capture_output=True, text=True)
        sys.stderr.write(run.stderr)
        if run.returncode != 0:
            sys.exit('tma_stream: the probe failed (exit %d)' % run.returncode)
    folder = os.path.join(args.out, 'tma-stream-' + run_stamp(p))
    os.makedirs(folder, exist_ok=True)
    text = '\n'.join([
        markdown_line(p),
        '# The skinny GEMMs\' weight loads alone: TMA box width, L2 promotion, scale copies, CTAs per tile',
        '',
        'Device: %s, CUDA %s, driver %s. Median of 20 launches, 256 MiB written before each (L2 flushed); one '
        'producer thread and an 8-stage mbarrier ring per 64-row weight tile, no math '
        '(bench/probes/tma_stream.cu).' % (p['gpu'], p['cuda'], p['driver']),
        '',
        run.stdout.rstrip(),
        ''])
    with open(os.path.join(folder, 'stream.md'), 'w') as f:
        f.write(text)
    print(run.stdout)
    print('wrote %s' % os.path.relpath(os.path.join(folder, 'stream.md')))


if __name__ == '__main__':
    main()
