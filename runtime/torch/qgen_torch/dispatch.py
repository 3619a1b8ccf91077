"""The GEMM shape dispatch rule, free of torch (tests run it on the CPU): tune/tuning.ts chooseGemm, in Python.

dispatch: _generated.GEMM_DISPATCH = {source, gpu, sourceHash, shapes, buckets, fallback}; each rule
{mMin, mMax (None: unbounded), n, k (None: any), strategy ('fused' | 'two-pass'), kernel (fused: its name)}.
"""


def rule_matches(rule, m, n, k):
    return m >= rule['mMin'] and (rule['mMax'] is None or m <= rule['mMax']) \
        and rule['n'] in (None, n) and rule['k'] in (None, k)


def choose(dispatch, m, n, k, use_table=True):
    """(strategy, kernel, source): the table's exact shape class, else its m bucket's rule, else the fallback."""
    groups = (('shape', dispatch['shapes']), ('bucket', dispatch['buckets'])) if use_table else ()
    for source, rules in groups + (('fallback', dispatch['fallback']),):
        for rule in rules:
            if rule_matches(rule, m, n, k):
                return rule['strategy'], rule['kernel'], source
    raise AssertionError('GEMM_DISPATCH has no fallback rule for m = %d' % m)
