#!/usr/bin/env python3
"""Llama-style language model on the Brown corpus under bf16 and the NVFP4 recipes of qgen_torch.

    python bench/train/train.py --recipes bf16,quartet2,nvidia,tetrajet-v2 --seeds 0 --out $OUT/train

Every recipe starts from the same weights (initialised on the CPU from --seed), sees the same batches in the same
order (a schedule drawn from its own generator seeded by --seed, independent of the recipe) and uses the same
hyper-parameters. bf16 = the plain model under torch.autocast(bfloat16); any other recipe =
qgen_torch.quantize_model(model, recipe=R) after construction, still under bf16 autocast. The LM head is a
custom module (not nn.Linear), so quantize_model leaves it (and the embedding) in high precision.

Writes a NEW file per run, OUT/<recipe>-seed<N>-<date>-<HHMM>-<commit7>-p<pid>.json ('/' in a recipe name becomes
'-'): {"provenance": qgen-provenance/1 (bench/provenance.py), "rows": [the run]}.
See bench/train/README.md.
"""
import argparse
import datetime
import hashlib
import json
import math
import os
import platform
import subprocess
import sys
import time
import traceback
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # bench/, for provenance.py
import provenance  # noqa: E402

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:  # pure helpers below stay importable (and testable) without torch
    torch = None

HERE = os.path.dirname(os.path.abspath(__file__))
if torch is not None:
    sys.path.insert(0, HERE)
    import data_parallel as DP  # noqa: E402  (torchrun DDP / FSDP2, issue 18)
RECIPES = ['bf16', 'quartet2', 'nvidia', 'nvidia+4/6', 'tetrajet-v2']


# ------------------------------------------------------------------------------------------------ pure helpers
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--recipe', default=None, help='one recipe (%s)' % ', '.join(RECIPES))
    p.add_argument('--recipes', default=None, help='comma-separated recipes, run one after another in this process')
    p.add_argument('--seed', type=int, default=0, help='init + data-order seed (same for every recipe)')
    p.add_argument('--seeds', default=None, help='comma-separated seeds; runs seed-major: all recipes of seed 1, then seed 2, ...')
    p.add_argument('--steps', type=int, default=600)
    p.add_argument('--batch', type=int, default=16, help='sequences per step')
    p.add_argument('--seq', type=int, default=512, help='sequence length')
    p.add_argument('--lr', type=float, default=1e-3, help='peak learning rate')
    p.add_argument('--min-lr-ratio', type=float, default=0.1, help='cosine floor as a fraction of --lr')
    p.add_argument('--warmup', type=int, default=30, help='linear warmup steps')
    p.add_argument('--weight-decay', type=float, default=0.1)
    p.add_argument('--beta1', type=float, default=0.9)
    p.add_argument('--beta2', type=float, default=0.95)
    p.add_argument('--clip', type=float, default=1.0, help='gradient-norm clipping')
    p.add_argument('--d-model', type=int, default=512)
    p.add_argument('--layers', type=int, default=8)
    p.add_argument('--heads', type=int, default=8)
    p.add_argument('--ffn', type=int, default=1408, help='SwiGLU hidden size (multiple of 128)')
    p.add_argument('--rope-base', type=float, default=10000.0)
    p.add_argument('--eval-every', type=int, default=50)
    p.add_argument('--eval-batches', type=int, default=0, help='0 = every full batch of the validation set')
    p.add_argument('--log-every', type=int, default=25)
    p.add_argument('--data', default=os.path.join(HERE, 'data'))
    p.add_argument('--out', default=os.path.join(HERE, '..', 'results', 'train'))
    p.add_argument('--qgen-path', action='append', default=[],
                   help='directory to put on sys.path before importing qgen_torch (repeatable; also $QGEN_TORCH_PATH)')
    p.add_argument('--deadline-s', type=float, default=0.0,
                   help='wall-clock budget of this process: a run predicted to end past it is skipped, and a run '
                        'still going at the deadline stops and is saved with status "truncated" (0 = none)')
    p.add_argument('--fit-steps', action='store_true',
                   help='time a few steps of every recipe first (a throwaway model), then lower --steps (not below '
                        '--min-steps) so that every requested run fits in --deadline-s')
    p.add_argument('--min-steps', type=int, default=400)
    p.add_argument('--probe-steps', type=int, default=5, help='timed steps per recipe for --fit-steps')
    p.add_argument('--device', default='cuda')
    p.add_argument('--provenance', default=None,
                   help='host provenance JSON (default: .device/provenance.json from npm run gpu:bundle, else the '
                        "qgen_torch package's PROVENANCE.json)")
    p.add_argument('--dist', choices=['none', 'ddp', 'fsdp2'], default='none',
                   help='under torchrun: DDP or FSDP2 (fully_shard) on the same global --batch (bench/train/data_parallel.py)')
    p.add_argument('--nvfp4-gather', action='store_true',
                   help='FSDP2: all-gather NVFP4 codes + scales of the Quartet2Linear weights (qgen_torch.distributed)')
    a = p.parse_args(argv)
    if a.nvfp4_gather and a.dist != 'fsdp2':
        p.error('--nvfp4-gather needs --dist fsdp2')
    names = a.recipes if a.recipes is not None else (a.recipe if a.recipe is not None else 'bf16')
    a.recipe_list = [r.strip() for r in names.split(',') if r.strip()]
    for r in a.recipe_list:
        if r not in RECIPES:
            p.error('unknown recipe %r (known: %s)' % (r, ', '.join(RECIPES)))
    a.seed_list = [int(s) for s in a.seeds.split(',') if s.strip()] if a.seeds else [a.seed]
    if a.steps < 1 or a.batch < 1 or a.seq < 2:
        p.error('--steps, --batch must be >= 1 and --seq >= 2')
    if a.d_model % a.heads or (a.d_model // a.heads) % 2:
        p.error('--d-model must be a multiple of --heads with an even head size')
    if a.fit_steps and a.deadline_s <= 0:
        p.error('--fit-steps needs --deadline-s')
    return a


def shape_problems(a):
    """The NVFP4 kernels need every GEMM dimension to be a multiple of 128 (features and tokens)."""
    out = []
    for name, v in [('--d-model', a.d_model), ('--ffn', a.ffn), ('--batch * --seq', a.batch * a.seq)]:
        if v % 128:
            out.append('%s = %d is not a multiple of 128' % (name, v))
    return out


def lr_at(step, total, peak, warmup, min_ratio):
    if warmup > 0 and step < warmup:
        return peak * (step + 1) / warmup
    p = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * p)))


def result_name(recipe, seed, stamp=None):
    """<recipe>-seed<N>[-<stamp>].json; the stamp (date, time, commit, pid) makes every run's file new."""
    safe = recipe.replace('/', '-')
    return '%s-seed%d%s.json' % (safe, seed, '-' + stamp if stamp else '')


def predict_run_s(recipe, done, probed=None):
    """Predicted wall time of the next run from the runs done so far ([(recipe, wall_s)]) or the speed probe."""
    same = [w for r, w in done if r == recipe]
    if same:
        return max(same)
    if probed and recipe in probed:
        return probed[recipe]
    quant = [w for r, w in done if r != 'bf16']
    if recipe != 'bf16' and quant:
        return max(quant)
    bf = [w for r, w in done if r == 'bf16']
    if bf:
        return max(bf) * (1.0 if recipe == 'bf16' else 4.0)
    return 0.0


def clean(o):
    """JSON without NaN/Infinity (JSON.parse rejects them): non-finite floats become null."""
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [clean(v) for v in o]
    return o


def write_json(path, obj):
    if not IS_MAIN_RANK:
        return
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(clean(obj), f, indent=1, allow_nan=False)
        f.write('\n')
    os.replace(tmp, path)


def env_argv(argv):
    return ['python', 'bench/train/train.py'] + (sys.argv[1:] if argv is None else list(argv))


def qgen_dir(qgen):
    """The vendored package directory (the parent of qgen_torch/, where PROVENANCE.json lies), or None."""
    f = getattr(qgen, '__file__', None) if qgen is not None else None
    return os.path.dirname(os.path.dirname(os.path.abspath(f))) if f else None


def write_run(path, obj, prov):
    """A run's file: {"provenance": ..., "rows": [run]} (qgen-provenance/1, bench/provenance.py)."""
    write_json(path, {'provenance': prov, 'rows': [obj]})


IS_MAIN_RANK = True   # under torchrun only rank 0 logs and writes results


def log(msg):
    if IS_MAIN_RANK:
        print(msg, flush=True)


def run_cost(p, steps, eval_every, n_val_batches):
    """Predicted seconds of one run from a speed probe {setup_s, step_s, eval_batch_s}."""
    n_evals = steps // eval_every + 2
    return p['setup_s'] + steps * p['step_s'] + n_evals * n_val_batches * p['eval_batch_s']


def fit_steps(probes, runs, steps, eval_every, n_val_batches, budget_s, min_steps):
    """The largest step count <= steps (and >= min_steps) whose predicted total over runs fits budget_s."""
    total = lambda n: sum(run_cost(probes[r], n, eval_every, n_val_batches) for r in runs)
    if total(steps) <= budget_s:
        return steps
    lo, hi = min_steps, steps
    if total(lo) > budget_s:
        return min_steps
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if total(mid) <= budget_s:
            lo = mid
        else:
            hi = mid
    return lo


# ------------------------------------------------------------------------------------------------ data
def load_tokens(path, sha256=None):
    with open(path, 'rb') as f:
        raw = f.read()
    if sha256 and hashlib.sha256(raw).hexdigest() != sha256:
        raise SystemExit('%s: sha256 does not match meta.json (re-run node bench/train/prepare.mjs)' % path)
    if sys.byteorder != 'little':
        raise SystemExit('token files are little-endian; this host is big-endian')
    return torch.frombuffer(bytearray(raw), dtype=torch.int16).to(torch.int64) & 0xFFFF


def batch_schedule(n_tokens, seq, batch, steps, seed):
    """[steps, batch] start offsets: per epoch a random shift in [0, seq) and a permutation of the windows."""
    g = torch.Generator().manual_seed(1_000_003 + seed)
    n_win = n_tokens // seq - 1
    parts, have = [], 0
    while have < steps * batch:
        off = int(torch.randint(0, seq, (1,), generator=g))
        parts.append(off + torch.randperm(n_win, generator=g) * seq)
        have += n_win
    return torch.cat(parts)[:steps * batch].view(steps, batch)


# ------------------------------------------------------------------------------------------------ model
if torch is not None:

    def lin(m, x):
        """Every projection sees a 2-D bf16 [tokens, features] input (what the NVFP4 layers expect)."""
        shp = x.shape
        y = m(x.reshape(-1, shp[-1]).to(torch.bfloat16))
        return y.reshape(*shp[:-1], y.shape[-1])

    class RMSNorm(nn.Module):
        def __init__(self, d, eps=1e-6):
            super().__init__()
            self.eps = eps
            self.weight = nn.Parameter(torch.ones(d))

        def forward(self, x):
            xf = x.float()
            return xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight.float()

    def rope(x, cos, sin):  # x [B, H, T, hd]; cos/sin [T, hd/2]
        h = x.shape[-1] // 2
        x = x.float()
        x1, x2 = x[..., :h], x[..., h:]
        return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)

    class Attention(nn.Module):
        def __init__(self, d, heads):
            super().__init__()
            self.heads = heads
            self.qkv = nn.Linear(d, 3 * d, bias=False)
            self.proj = nn.Linear(d, d, bias=False)

        def forward(self, x, cos, sin):
            B, T, C = x.shape
            H, hd = self.heads, C // self.heads
            q, k, v = lin(self.qkv, x).split(C, dim=-1)
            q = rope(q.reshape(B, T, H, hd).transpose(1, 2), cos, sin).to(torch.bfloat16)
            k = rope(k.reshape(B, T, H, hd).transpose(1, 2), cos, sin).to(torch.bfloat16)
            v = v.reshape(B, T, H, hd).transpose(1, 2).to(torch.bfloat16)
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return lin(self.proj, y.transpose(1, 2).reshape(B, T, C))

    class MLP(nn.Module):
        def __init__(self, d, ffn):
            super().__init__()
            self.gate_up = nn.Linear(d, 2 * ffn, bias=False)
            self.down = nn.Linear(ffn, d, bias=False)

        def forward(self, x):
            g, u = lin(self.gate_up, x).chunk(2, dim=-1)
            return lin(self.down, F.silu(g) * u)

    class Block(nn.Module):
        def __init__(self, d, heads, ffn):
            super().__init__()
            self.norm1 = RMSNorm(d)
            self.attn = Attention(d, heads)
            self.norm2 = RMSNorm(d)
            self.mlp = MLP(d, ffn)

        def forward(self, x, cos, sin):
            x = x + self.attn(self.norm1(x), cos, sin)
            return x + self.mlp(self.norm2(x))

    class LMHead(nn.Module):
        """Not an nn.Linear on purpose: quantize_model must leave the output layer alone."""

        def __init__(self, d, vocab):
            super().__init__()
            self.weight = nn.Parameter(torch.empty(vocab, d))

        def forward(self, x):
            return F.linear(x.to(torch.bfloat16), self.weight.to(torch.bfloat16))

    class LM(nn.Module):
        def __init__(self, vocab, d, layers, heads, ffn, max_seq, rope_base):
            super().__init__()
            self.vocab = vocab
            self.embed = nn.Embedding(vocab, d)
            self.blocks = nn.ModuleList([Block(d, heads, ffn) for _ in range(layers)])
            self.norm = RMSNorm(d)
            self.head = LMHead(d, vocab)
            hd = d // heads
            inv = 1.0 / (rope_base ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
            f = torch.outer(torch.arange(max_seq, dtype=torch.float32), inv)
            self.register_buffer('cos', f.cos(), persistent=False)
            self.register_buffer('sin', f.sin(), persistent=False)
            for name, p in self.named_parameters():
                if p.dim() == 2:
                    std = 0.02
                    if name.endswith('attn.proj.weight') or name.endswith('mlp.down.weight'):
                        std = 0.02 / math.sqrt(2 * layers)
                    nn.init.normal_(p, mean=0.0, std=std)

        def forward(self, idx, targets):
            T = idx.shape[1]
            cos, sin = self.cos[:T], self.sin[:T]
            x = self.embed(idx)
            for b in self.blocks:
                x = b(x, cos, sin)
            logits = self.head(self.norm(x))
            return F.cross_entropy(logits.float().reshape(-1, self.vocab), targets.reshape(-1))


def param_counts(model):
    emb = sum(p.numel() for n, p in model.named_parameters() if n.startswith('embed.') or n.startswith('head.'))
    tot = sum(p.numel() for p in model.parameters())
    return {'non_embedding': tot - emb, 'embedding_and_head': emb, 'total': tot}


# ------------------------------------------------------------------------------------------------ qgen_torch
def import_qgen(paths):
    for p in reversed(paths):
        if not p:
            continue
        if os.path.basename(os.path.normpath(p)) == 'qgen_torch' and os.path.isfile(os.path.join(p, '__init__.py')):
            p = os.path.dirname(os.path.abspath(p))  # the package directory itself was given: use its parent
        if not os.path.isdir(p):
            log('train.py: --qgen-path %s is not a directory (ignored)' % p)
        elif os.path.abspath(p) not in sys.path:
            sys.path.insert(0, os.path.abspath(p))
    try:
        import qgen_torch
    except Exception as e:  # ImportError, or a failure inside the package's own import (missing .so, ...)
        raise SystemExit(
            'train.py: cannot import qgen_torch (%s: %s).\n'
            'The NVFP4 recipes need the package built by `qgen vendor`: pip install it, or pass its parent '
            'directory with --qgen-path DIR (or $QGEN_TORCH_PATH). sys.path[:4] = %r.\n'
            'bf16 alone runs without it: --recipes bf16.' % (type(e).__name__, e, sys.path[:4]))
    if not hasattr(qgen_torch, 'quantize_model'):
        raise SystemExit('train.py: qgen_torch (%s) has no quantize_model' % getattr(qgen_torch, '__file__', '?'))
    return qgen_torch


def sum_sq(model):
    with torch.no_grad():
        return float(sum(p.detach().double().pow(2).sum() for p in model.parameters()))


def apply_recipe(model, recipe, qgen, probe, ac):
    """quantize_model + checks that it did something, left the head alone and kept the initial weights."""
    info = {'recipe': recipe}
    if recipe == 'bf16':
        return model, info

    def probe_loss(train_mode):
        model.train(train_mode)
        with torch.no_grad(), ac():
            v = float(model(*probe))
        model.train(True)
        return v

    plain_before = sum(1 for m in model.modules() if type(m) is nn.Linear)
    ss_before = sum_sq(model)
    base = probe_loss(True)
    ret = qgen.quantize_model(model, recipe=recipe)
    if isinstance(ret, nn.Module):
        model = ret
    if not isinstance(getattr(model, 'head', None), LMHead) or not isinstance(getattr(model, 'embed', None), nn.Embedding):
        raise RuntimeError('quantize_model replaced the LM head or the embedding; they must stay high precision')
    plain_after = sum(1 for m in model.modules() if type(m) is nn.Linear)
    ss_after = sum_sq(model)
    q_train, q_eval = probe_loss(True), probe_loss(False)
    info.update({
        'module_types': dict(Counter(type(m).__name__ for m in model.modules())),
        'plain_linear_before': plain_before, 'plain_linear_after': plain_after,
        'param_dtypes': dict(Counter(str(p.dtype) for p in model.parameters())),
        'sum_sq_params_before': ss_before, 'sum_sq_params_after': ss_after,
        'init_preserved': abs(ss_after - ss_before) <= 1e-3 * ss_before,
        'probe_loss_bf16': base, 'probe_loss_quantized_train_mode': q_train, 'probe_loss_quantized_eval_mode': q_eval,
    })
    log('  quantize_model(%s): plain nn.Linear %d -> %d; modules %s' % (recipe, plain_before, plain_after, info['module_types']))
    log('  probe loss: bf16 %.6f, quantized train-mode %.6f, eval-mode %.6f' % (base, q_train, q_eval))
    if q_train == base:
        raise RuntimeError('quantize_model(recipe=%r) had no effect: the probe loss equals the bf16 one bit for bit' % recipe)
    if q_eval == base:
        log('  WARNING: in eval mode the quantized model gives the bf16 loss: validation runs an unquantized forward')
    if not info['init_preserved']:
        log('  WARNING: parameters changed in quantize_model (sum of squares %.6g -> %.6g): not the same init as bf16'
            % (ss_before, ss_after))
    return model, info


# ------------------------------------------------------------------------------------------------ one run
def evaluate(model, val_windows, ac):
    model.eval()
    tot, n = None, 0
    with torch.no_grad(), ac():
        for w in val_windows:
            l = model(w[:, :-1], w[:, 1:]).float() * w[:, 1:].numel()
            tot = l if tot is None else tot + l
            n += w[:, 1:].numel()
    model.train()
    return float(tot) / n


def probe_speed(a, recipe, ctx):
    """Times --probe-steps training steps and two evaluation batches of a throwaway model of this recipe."""
    dev = ctx['device']
    sync = (lambda: torch.cuda.synchronize()) if dev.type == 'cuda' else (lambda: None)

    def ac():
        return torch.autocast(device_type=dev.type, dtype=torch.bfloat16)

    sync()
    t0 = time.perf_counter()
    torch.manual_seed(0)
    model = LM(ctx['vocab'], a.d_model, a.layers, a.heads, a.ffn, a.seq, a.rope_base).to(dev)
    if recipe != 'bf16':
        ret = ctx['qgen'].quantize_model(model, recipe=recipe)
        if isinstance(ret, nn.Module):
            model = ret
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    sched = ctx['schedules'][a.seed_list[0]].to(dev)
    ar = torch.arange(a.seq + 1, device=dev)

    def step(i):
        w = ctx['train'][sched[i % sched.shape[0]][:, None] + ar]
        with ac():
            loss = model(w[:, :-1], w[:, 1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    step(0)
    step(1)
    sync()
    t1 = time.perf_counter()
    for i in range(a.probe_steps):
        step(2 + i)
    sync()
    t2 = time.perf_counter()
    model.eval()
    with torch.no_grad(), ac():
        for w in ctx['val_windows'][:2]:
            float(model(w[:, :-1], w[:, 1:]))
    sync()
    t3 = time.perf_counter()
    del model, opt
    if dev.type == 'cuda':
        torch.cuda.empty_cache()
    n_eval = min(2, len(ctx['val_windows']))
    return {'setup_s': t1 - t0 + 2.0, 'step_s': (t2 - t1) / max(1, a.probe_steps),
            'eval_batch_s': (t3 - t2) / max(1, n_eval)}


def run_one(a, recipe, seed, ctx, deadline):
    dev = ctx['device']
    sync = (lambda: torch.cuda.synchronize()) if dev.type == 'cuda' else (lambda: None)

    def ac():
        return torch.autocast(device_type=dev.type, dtype=torch.bfloat16)

    t_start = time.perf_counter()
    res = {
        'recipe': recipe, 'seed': seed, 'status': 'running', 'complete': False,
        'config': {k: getattr(a, k) for k in ['steps', 'batch', 'seq', 'lr', 'min_lr_ratio', 'warmup', 'weight_decay',
                                               'beta1', 'beta2', 'clip', 'd_model', 'layers', 'heads', 'ffn',
                                               'rope_base', 'eval_every', 'eval_batches']},
        'data': dict(ctx['data_info']), 'env': ctx['env'],
        'started_at': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        'train_loss': [], 'grad_norm': [], 'eval': [],
    }
    path = os.path.join(a.out, result_name(recipe, seed, ctx['stamp']))

    if dev.type == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    torch.manual_seed(seed)
    model = LM(ctx['vocab'], a.d_model, a.layers, a.heads, a.ffn, a.seq, a.rope_base)  # on the CPU: same init everywhere
    res['params'] = param_counts(model)
    model = model.to(dev)
    probe = (ctx['val_windows'][0][:, :-1], ctx['val_windows'][0][:, 1:])
    model, res['quantization'] = apply_recipe(model, recipe, ctx['qgen'], probe, ac)
    rank, world = ctx['rank'], ctx['world']
    if a.dist != 'none':
        model, res['distributed'] = DP.wrap(model, a, world)
        gathered0 = DP.all_gather_counts()
    torch.manual_seed(10_000 + seed)  # the quantizers' random draws (if they use torch's generator)
    if dev.type == 'cuda':
        torch.cuda.manual_seed_all(10_000 + seed)

    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    other = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{'params': decay, 'weight_decay': a.weight_decay}, {'params': other, 'weight_decay': 0.0}]
    try:
        opt = torch.optim.AdamW(groups, lr=a.lr, betas=(a.beta1, a.beta2), eps=1e-8, fused=True)
        res['optimizer'] = 'AdamW (fused)'
    except Exception:
        opt = torch.optim.AdamW(groups, lr=a.lr, betas=(a.beta1, a.beta2), eps=1e-8)
        res['optimizer'] = 'AdamW'
    params = [p for p in model.parameters() if p.requires_grad]

    sched = ctx['schedules'][seed].to(dev)
    train = ctx['train']
    ar = torch.arange(a.seq + 1, device=dev)
    tok_per_step = a.batch * a.seq
    train_clock, eval_clock = 0.0, 0.0
    warm_steps = min(10, a.steps // 2)
    warm_clock = None

    eval_gather_bytes = 0

    def do_eval(step):
        nonlocal eval_clock, eval_gather_bytes
        t = time.perf_counter()
        g = DP.all_gather_counts()['bytes'] if a.dist != 'none' else 0
        v = evaluate(model, ctx['val_windows'], ac)
        eval_gather_bytes += (DP.all_gather_counts()['bytes'] - g) if a.dist != 'none' else 0
        eval_clock += time.perf_counter() - t
        res['eval'].append([step, v])
        return v

    v0 = do_eval(0)
    log('[%s seed %d] step 0 val %.4f' % (recipe, seed, v0))
    losses, gnorms = [], []
    last_log_clock, last_log_step = 0.0, 0
    sync()
    seg = time.perf_counter()
    status = 'ok'
    step = 0
    for step in range(1, a.steps + 1):
        lr = lr_at(step - 1, a.steps, a.lr, a.warmup, a.min_lr_ratio)
        for g in opt.param_groups:
            g['lr'] = lr
        w = train[sched[step - 1][:, None] + ar]
        if a.dist != 'none':
            w = DP.local_rows(w, rank, world)
        with ac():
            loss = model(w[:, :-1], w[:, 1:])
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(params, a.clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.detach())
        gnorms.append(DP.full(gn).detach() if a.dist != 'none' else gn.detach())
        if step == warm_steps:
            sync()
            warm_clock = train_clock + time.perf_counter() - seg
        is_eval = step % a.eval_every == 0 or step == a.steps
        past_deadline = deadline is not None and time.time() > deadline
        if step % a.log_every == 0 or is_eval or past_deadline:
            lv = torch.stack(losses).float()
            lv = (DP.mean_over_ranks(lv) if a.dist != 'none' else lv).cpu().tolist()
            gv = torch.stack(gnorms).float().cpu().tolist()
            losses, gnorms = [], []
            res['train_loss'].extend(lv)
            res['grad_norm'].extend(gv)
            now_clock = train_clock + time.perf_counter() - seg
            tps = (step - last_log_step) * tok_per_step / max(1e-9, now_clock - last_log_clock)
            last_log_clock, last_log_step = now_clock, step
            log('[%s seed %d] step %d/%d loss %.4f lr %.2e gnorm %.3f | %.0f tok/s | %.1f s'
                % (recipe, seed, step, a.steps, lv[-1], lr, gv[-1], tps, time.perf_counter() - t_start))
            if not all(math.isfinite(x) for x in lv):
                status = 'diverged'
                break
            if past_deadline:
                status = 'truncated'
                log('[%s seed %d] deadline reached at step %d: stopping, saved as truncated' % (recipe, seed, step))
                break
        if is_eval:
            sync()
            train_clock += time.perf_counter() - seg
            v = do_eval(step)
            log('[%s seed %d] step %d val %.4f' % (recipe, seed, step, v))
            res.update({'train_time_s': train_clock, 'eval_time_s': eval_clock, 'steps_done': step})
            write_run(path, res, ctx['provenance'])
            seg = time.perf_counter()
    sync()
    train_clock += time.perf_counter() - seg
    if status == 'truncated' and res['eval'][-1][0] != step:
        do_eval(step)
    evals = [e for e in res['eval'] if math.isfinite(e[1])]
    best = min(evals, key=lambda e: e[1]) if evals else [None, None]
    final = res['eval'][-1][1] if status != 'diverged' and math.isfinite(res['eval'][-1][1]) else None
    res.update({
        'status': status, 'complete': status == 'ok', 'steps_done': step,
        'final_val_loss': final,
        'best_val_loss': best[1], 'best_val_step': best[0],
        'tokens_seen': step * tok_per_step, 'epochs': step * tok_per_step / ctx['data_info']['train_tokens'],
        'train_time_s': train_clock, 'eval_time_s': eval_clock,
        'tokens_per_s': step * tok_per_step / max(1e-9, train_clock),
        'tokens_per_s_steady': ((step - warm_steps) * tok_per_step / max(1e-9, train_clock - warm_clock)
                                if warm_clock is not None and step > warm_steps else None),
        'wall_s': time.perf_counter() - t_start,
    })
    if dev.type == 'cuda':
        res['max_memory_gib'] = torch.cuda.max_memory_allocated() / 2 ** 30
    if a.dist != 'none':
        g = DP.all_gather_counts()   # every gather of the run (training steps and evaluations)
        train_bytes = g['bytes'] - gathered0['bytes'] - eval_gather_bytes
        res['distributed'].update({'all_gather_bytes': g['bytes'] - gathered0['bytes'],
                                   'all_gather_calls': g['calls'] - gathered0['calls'],
                                   'all_gather_bytes_per_step': train_bytes / max(1, step),
                                   'all_gather_bytes_evaluations': eval_gather_bytes, 'evals': len(res['eval'])})
        log('ALLGATHER recipe=%s seed=%d mode=%s%s world=%d bytes/step=%.0f (%.2f MB; evaluations %.2f MB in all)'
            % (recipe, seed, a.dist, '+nvfp4' if a.nvfp4_gather else '', world, train_bytes / max(1, step),
               train_bytes / max(1, step) / 1e6, eval_gather_bytes / 1e6))
    write_run(path, res, ctx['provenance'])
    log('RESULT recipe=%s seed=%d status=%s final_val=%s best_val=%.4f@%s tok/s=%.0f steady=%s wall=%.1fs -> %s'
        % (recipe, seed, status, '%.4f' % final if final is not None else '-',
           best[1] if best[1] is not None else float('nan'), best[0],
           res['tokens_per_s'], '%.0f' % res['tokens_per_s_steady'] if res['tokens_per_s_steady'] else '-',
           res['wall_s'], path))
    del model, opt
    return res


# ------------------------------------------------------------------------------------------------ main
def main(argv=None):
    t0 = time.time()
    a = parse_args(argv)
    if torch is None:
        raise SystemExit('train.py needs PyTorch')
    quant = [r for r in a.recipe_list if r != 'bf16']
    if quant:
        probs = shape_problems(a)
        if probs:
            raise SystemExit('train.py: the NVFP4 recipes need multiples of 128: ' + '; '.join(probs))
    global IS_MAIN_RANK
    rank, world, dev = DP.setup(a) if a.dist != 'none' else (0, 1, torch.device(a.device))
    IS_MAIN_RANK = rank == 0
    if dev.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('train.py: CUDA is not available (pass --device cpu for a slow smoke test)')
    qgen = import_qgen(a.qgen_path + [p for p in os.environ.get('QGEN_TORCH_PATH', '').split(os.pathsep) if p]) if quant else None
    deadline = t0 + a.deadline_s if a.deadline_s > 0 else None

    with open(os.path.join(a.data, 'meta.json')) as f:
        meta = json.load(f)
    vocab = int(meta['tokenizer']['vocab_size'])
    train = load_tokens(os.path.join(a.data, meta['train']['file']), meta['train'].get('sha256'))
    val = load_tokens(os.path.join(a.data, meta['val']['file']), meta['val'].get('sha256'))
    if int(train.max()) >= vocab or int(val.max()) >= vocab:
        raise SystemExit('token id out of range for vocab %d' % vocab)
    n_val_win = (val.numel() - 1) // a.seq
    n_val_batches = n_val_win // a.batch
    if a.eval_batches > 0:
        n_val_batches = min(n_val_batches, a.eval_batches)
    if n_val_batches < 1:
        raise SystemExit('validation set too small for one batch of %d x %d' % (a.batch, a.seq + 1))
    val_windows = []
    ar = torch.arange(a.seq + 1)
    for b in range(n_val_batches):
        starts = torch.arange(b * a.batch, (b + 1) * a.batch) * a.seq
        val_windows.append(val[starts[:, None] + ar].to(dev))
    train_dev = train.to(dev)
    os.makedirs(a.out, exist_ok=True)

    prov = provenance.provenance(env_argv(argv), package_dir=qgen_dir(qgen), host_file=a.provenance)
    env = {
        'torch': torch.__version__, 'cuda': torch.version.cuda, 'python': platform.python_version(),
        'device': torch.cuda.get_device_name(dev) if dev.type == 'cuda' else platform.processor() or 'cpu',
        'host': platform.node(),
        'qgen_torch': ({'file': getattr(qgen, '__file__', None), 'version': getattr(qgen, '__version__', None)}
                       if qgen is not None else None),
        'argv': env_argv(argv),
        # bench/train/run_all.sh sets it: runs sharing the GPU, whose tokens/s are not comparable.
        'concurrent_runs': int(os.environ.get('QGEN_CONCURRENT_RUNS', '1')),
    }
    data_info = {
        'source': '%s@%s' % (meta['source']['package'], meta['source']['version']),
        'tokenizer': meta['tokenizer']['description'], 'vocab': vocab,
        'train_tokens': int(train.numel()), 'val_tokens': int(val.numel()),
        'val_tokens_evaluated': n_val_batches * a.batch * a.seq,
    }
    ctx = {
        'device': dev, 'vocab': vocab, 'train': train_dev, 'val_windows': val_windows, 'qgen': qgen, 'env': env,
        'data_info': data_info, 'rank': rank, 'world': world,
        'schedules': {s: batch_schedule(train.numel(), a.seq, a.batch, a.steps, s) for s in a.seed_list},
        # Commit and dirty from the host's record (never git here); the stamp keeps each run's file new.
        'provenance': prov, 'stamp': '%s-p%d' % (provenance.run_stamp(prov), os.getpid()),
    }
    probe_model = LM(vocab, a.d_model, a.layers, a.heads, a.ffn, a.seq, a.rope_base)
    pc = param_counts(probe_model)
    del probe_model
    log('train.py: %s, torch %s, CUDA %s%s' % (env['device'], env['torch'], env['cuda'],
                                              ', qgen_torch %s' % env['qgen_torch']['file'] if qgen else ''))
    log('model: d=%d layers=%d heads=%d ffn=%d vocab=%d: %.2fM non-embedding params (+%.2fM embedding and head)'
        % (a.d_model, a.layers, a.heads, a.ffn, vocab, pc['non_embedding'] / 1e6, pc['embedding_and_head'] / 1e6))
    log('data: %s, %d train / %d val tokens (%d evaluated); %d steps x %d x %d = %.2fM tokens = %.2f epochs'
        % (data_info['source'], data_info['train_tokens'], data_info['val_tokens'], data_info['val_tokens_evaluated'],
           a.steps, a.batch, a.seq, a.steps * a.batch * a.seq / 1e6,
           a.steps * a.batch * a.seq / data_info['train_tokens']))
    log('runs: recipes %s x seeds %s -> %s' % (','.join(a.recipe_list), ','.join(map(str, a.seed_list)), a.out))

    probed, skip = {}, {}
    if a.fit_steps:
        probes = {}
        for recipe in a.recipe_list:
            try:
                probes[recipe] = probe_speed(a, recipe, ctx)
                pr = probes[recipe]
                log('probe %-12s %.1f ms/step (%.0f tok/s), eval batch %.1f ms, setup %.1f s'
                    % (recipe, 1e3 * pr['step_s'], a.batch * a.seq / pr['step_s'], 1e3 * pr['eval_batch_s'], pr['setup_s']))
            except Exception as e:
                skip[recipe] = '%s: %s' % (type(e).__name__, e)
                log('probe %-12s FAILED (%s); its runs are skipped\n%s' % (recipe, skip[recipe], traceback.format_exc()))
        runs = [r for s in a.seed_list for r in a.recipe_list if r in probes]
        budget = deadline - time.time() - 10.0
        steps = fit_steps(probes, runs, a.steps, a.eval_every, len(val_windows), budget, min(a.min_steps, a.steps))
        total = sum(run_cost(probes[r], steps, a.eval_every, len(val_windows)) for r in runs)
        log('fit: %d runs, predicted %.0f s at %d steps (budget %.0f s)%s'
            % (len(runs), total, steps, budget, '' if steps == a.steps else ': --steps %d -> %d' % (a.steps, steps)))
        if steps != a.steps:
            a.steps = steps
            ctx['schedules'] = {s: batch_schedule(train.numel(), a.seq, a.batch, a.steps, s) for s in a.seed_list}
        probed = {r: run_cost(p, a.steps, a.eval_every, len(val_windows)) for r, p in probes.items()}
        env['speed_probe'] = probes

    done, results = [], []
    for seed in a.seed_list:
        for recipe in a.recipe_list:
            if recipe in skip:
                write_run(os.path.join(a.out, result_name(recipe, seed, ctx['stamp'])),
                           {'recipe': recipe, 'seed': seed, 'status': 'error', 'complete': False,
                            'error': 'speed probe failed: ' + skip[recipe], 'env': env}, ctx['provenance'])
                results.append({'recipe': recipe, 'seed': seed, 'status': 'error'})
                continue
            if deadline is not None:
                pred = predict_run_s(recipe, done, probed)
                left = deadline - time.time()
                if pred > left or left < 5:
                    log('SKIP recipe=%s seed=%d: predicted %.0f s, %.0f s left before --deadline-s' % (recipe, seed, pred, left))
                    continue
            try:
                r = run_one(a, recipe, seed, ctx, deadline)
                done.append((recipe, r['wall_s']))
                results.append(r)
            except Exception as e:
                tb = traceback.format_exc()
                log('ERROR recipe=%s seed=%d: %s: %s\n%s' % (recipe, seed, type(e).__name__, e, tb))
                write_run(os.path.join(a.out, result_name(recipe, seed, ctx['stamp'])),
                           {'recipe': recipe, 'seed': seed, 'status': 'error', 'complete': False,
                            'error': '%s: %s' % (type(e).__name__, e), 'traceback': tb, 'env': env}, ctx['provenance'])
                results.append({'recipe': recipe, 'seed': seed, 'status': 'error'})
            if dev.type == 'cuda':
                torch.cuda.empty_cache()

    log('\nsummary (%.0f s):' % (time.time() - t0))
    log('%-12s %5s %10s %10s %10s %12s %8s' % ('recipe', 'seed', 'status', 'final val', 'gap', 'tok/s', 'wall s'))
    bf = {r['seed']: r.get('final_val_loss') for r in results if r['recipe'] == 'bf16' and r['status'] == 'ok'}
    for r in results:
        fv = r.get('final_val_loss')
        gap = fv - bf[r['seed']] if fv is not None and bf.get(r['seed']) is not None else None
        log('%-12s %5d %10s %10s %10s %12s %8s' % (
            r['recipe'], r['seed'], r['status'], '%.4f' % fv if fv is not None else '-',
            '%+.4f' % gap if gap is not None else '-',
            '%.0f' % r['tokens_per_s'] if r.get('tokens_per_s') else '-',
            '%.1f' % r['wall_s'] if r.get('wall_s') else '-'))
    if a.dist != 'none':
        DP.cleanup(a)
    return 0 if all(r['status'] == 'ok' for r in results) and results else 1


if __name__ == '__main__':
    sys.exit(main())
