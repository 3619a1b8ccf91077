# Interleaving model of the _pdr GEMM's hand-offs (templates/gemm_sm90_pdr.cu.hbs; bench/NOTES.md "Issue 16: A decoded
# in consumer registers (h-pdr)"), run on the host: random schedules of the 4 decoder warps (lanes 0 of warps 0-2 issue
# the copies), the 2 consumer warpgroups, TMA landings and in-order wgmma completions, with the kernel's mbarrier
# counts (raw_full 3 + bytes, raw_empty 128 decoder threads + 8 consumer warps, tile_full 128, tile_empty 8) and
# parity waits. Each raw stage part, ring tile part and fragment set holds the id of the K block last written into it;
# every read checks the id it expects (a wgmma's operands at its issue and again at its completion), and a schedule
# that stops making progress is reported as 'livelock' (a deadlock). Mutations (a missing consumer arrival, no
# wait_group before a fragment set is rewritten, an arrival before the loaded codes are used) show that it can fail.
# With --decoders 2 it models _pdr2 (bench/NOTES.md "Issue 16: two decoder warpgroups (h-pdr2)"): 8 decoder warps
# (still only lanes 0 of warps 0-2 issue), raw_empty 256 + 8 and tile_full 256 arrivals; the mutation 'pdr-counts'
# keeps _pdr's counts (128 + 8, 128) with 8 decoder warps and must be caught.
# With --copies consumer it models _pdr3 (bench/NOTES.md "Issue 16: copies issued by a consumer lane (h-pdr3)"): the
# decoders issue nothing; consumer warpgroup 0 (its warps 0-2, one agent here) copies K blocks 0 .. R - 1 before its
# first raw_full wait and, in step k >= 1 after the tile release, block k - 1 + R into the stage of block k - 1 once
# raw_empty of that stage passed (stage and parity derived from its A cursor at block k + 1, as the kernel does).
# Mutations 'refill-no-wait' (no raw_empty wait) and 'refill-stage' (block k's stage instead) must be caught.
# Usage: python3 bench/probes/pdr_handoff_model.py [schedules] [--decoders 1|2] [--copies decoder|consumer]
import random
import sys

class Bar:
    def __init__(s, count): s.count, s.pending, s.done, s.tx = count, count, 0, 0
    def arrive(s, n=1):
        s.pending -= n
        assert s.pending >= 0, 'over-arrival'
        s.check()
    def check(s):
        if s.pending == 0 and s.tx == 0: s.done += 1; s.pending = s.count
    def passed(s, parity): return (s.done & 1) != parity

class Err(Exception): pass

def run(R, ksteps, tiles, seed, mut=None, dwarps=4, copies='decoder'):
    rng = random.Random(seed)
    steps = ksteps * tiles
    T = 3
    threads = 128 if mut == 'pdr-counts' else 32 * dwarps  # decoder threads the barriers count
    raw_full = [Bar(3) for _ in range(R)]
    raw_empty = [Bar(threads + (0 if mut == 'no-consumer-arrive' else 8)) for _ in range(R)]
    tile_full = [Bar(threads) for _ in range(T)]
    tile_empty = [Bar(8) for _ in range(T)]
    stage = {}  # (slot, part) -> block
    tile = {}   # (tslot, decoder warp) -> block
    events = []  # async: ('tma', slot, part, block) or ('mma', consumer)
    groups = {0: [], 1: []}  # in-flight wgmma groups per consumer warpgroup: (block, tslot, set)
    frag = {0: [None, None], 1: [None, None]}

    def read(slot, part, blk, who):
        got = stage.get((slot, part))
        if got != blk:
            raise Err(f'{who} read stage {slot} part {part}: {got} != {blk}')

    def issue(part, blk):
        b = raw_full[blk % R]
        b.tx += 1
        b.arrive()  # arrive.expect_tx of the part (the tx keeps the phase open)
        events.append(('tma', blk % R, part, blk))

    def wait(bar, parity):
        while not bar.passed(parity): yield
    def decoder(d):
        issuer = d < 3 and copies == 'decoder'
        loaded = 0
        if issuer:
            while loaded < R and loaded < steps: issue(d, loaded); loaded += 1
        yield from wait(raw_full[0], 0)
        read(0, 1, 0, 'dec'); read(0, 2, 0, 'dec')
        for step in range(steps):
            more = step + 1 < steps
            nxt = step + 1
            if more:
                yield from wait(raw_full[nxt % R], (nxt // R) & 1)
                read(nxt % R, 2, nxt, 'dec scales')
            yield
            yield from wait(tile_empty[step % T], ((step // T) & 1) ^ 1)
            tile[(step % T, d)] = step
            yield
            tile_full[step % T].arrive(32)
            raw_empty[step % R].arrive(32)
            if more: read(nxt % R, 1, nxt, 'dec codes')
            yield
            if issuer and step > 0 and loaded < steps:
                yield from wait(raw_empty[loaded % R], ((loaded // R) & 1) ^ 1)
                issue(d, loaded); loaded += 1

    def wait_group(c, n):
        while len(groups[c]) > n: yield

    def consumer(c):
        copier = copies == 'consumer' and c == 0
        if copier:
            for blk in range(min(R, steps)):
                for part in range(3): issue(part, blk)
        yield from wait(raw_full[0], 0)
        read(0, 0, 0, 'cons'); frag[c][0] = 0
        if mut != 'no-consumer-arrive': raw_empty[0].arrive(4)
        held = None
        for step in range(steps):
            kset = step % 2
            more = step + 1 < steps
            yield from wait(tile_full[step % T], (step // T) & 1)
            for d in range(dwarps):
                if tile.get((step % T, d)) != step:
                    raise Err(f'cons {c} issue: tile {step % T} holds {tile.get((step % T, d))}')
            if frag[c][kset] != step: raise Err(f'cons {c} issue: set {kset} holds {frag[c][kset]} != {step}')
            groups[c].append((step, step % T, kset)); events.append(('mma', c))
            yield
            if mut != 'no-wait': yield from wait_group(c, 1)
            if held is not None: tile_empty[held].arrive(4)
            held = step % T
            if copier and step > 0:
                a_idx = step + 1  # the A cursor: K block k + 1
                target = a_idx - 2 + R
                if target < steps:
                    prev = a_idx - 2 if mut != 'refill-stage' else a_idx - 1
                    if mut != 'refill-no-wait': yield from wait(raw_empty[prev % R], (prev // R) & 1)
                    for part in range(3):
                        b = raw_full[prev % R]
                        b.tx += 1
                        b.arrive()
                        events.append(('tma', prev % R, part, target))
                    yield
            if more:
                nxt = step + 1
                yield from wait(raw_full[nxt % R], (nxt // R) & 1)
                read(nxt % R, 0, nxt, 'cons A')
                if mut == 'early-arrive': raw_empty[nxt % R].arrive(4)
                yield
                read(nxt % R, 0, nxt, 'cons A (used)')
                for g in groups[c]:
                    if g[2] == kset ^ 1: raise Err(f'cons {c}: set {kset ^ 1} written while block {g[0]} in flight')
                frag[c][kset ^ 1] = nxt
                if mut not in ('early-arrive', 'no-consumer-arrive'): raw_empty[nxt % R].arrive(4)
            if step % ksteps == ksteps - 1:
                yield from wait_group(c, 0)
                tile_empty[step % T].arrive(4)
                held = None
            yield
        yield from wait_group(c, 0)

    agents = [decoder(d) for d in range(dwarps)] + [consumer(c) for c in range(2)]
    alive = list(range(len(agents)))
    guard = 0
    while alive or events:
        guard += 1
        if guard > 200000: raise Err('livelock')
        # a deadlock shows as agents spinning in their waits forever: the guard above reports it as 'livelock'
        choices = [('a', i) for i in alive] + [('e', j) for j in range(len(events))]
        kind, i = rng.choice(choices)
        if kind == 'e':
            ev = events[i]
            if ev[0] == 'mma' and any(e[0] == 'mma' and e[1] == ev[1] for e in events[:i]): continue  # in order
            events.pop(i)
            if ev[0] == 'tma':
                _, slot, part, blk = ev
                stage[(slot, part)] = blk
                b = raw_full[slot]; b.tx -= 1; b.check()
            else:
                c = ev[1]
                blk, ts, ks = groups[c].pop(0)
                for d in range(dwarps):
                    if tile.get((ts, d)) != blk: raise Err(f'mma {c} block {blk}: tile {ts} now {tile.get((ts, d))}')
                if frag[c][ks] != blk: raise Err(f'mma {c} block {blk}: set {ks} now {frag[c][ks]}')
        else:
            try: next(agents[i])
            except StopIteration: alive.remove(i)
    return True

def trial(R, ksteps, tiles, seed, mut=None, dwarps=4, copies='decoder'):
    try:
        return run(R, ksteps, tiles, seed, mut, dwarps, copies)
    except (Err, AssertionError) as e:
        return str(e) or 'assert'

if __name__ == '__main__':
    argv = sys.argv[1:]
    dw = 4
    if '--decoders' in argv:
        i = argv.index('--decoders')
        dw = {'1': 4, '2': 8}[argv[i + 1]]
        del argv[i:i + 2]
    cp = 'decoder'
    if '--copies' in argv:
        i = argv.index('--copies')
        cp = argv[i + 1]
        assert cp in ('decoder', 'consumer')
        del argv[i:i + 2]
    n = int(argv[0]) if argv else 2000
    print(f'{dw} decoder warps ({32 * dw} decoder threads), copies issued by the {cp}s')
    rng = random.Random(1)
    bad = 0
    for k in range(n):
        R, ks, tl = rng.choice([3, 4, 6, 8]), rng.randint(1, 6), rng.randint(1, 3)
        r = trial(R, ks, tl, k, None, dw, cp)
        if r is not True: bad += 1; print('FAIL', R, ks, tl, k, r)
    print(f'correct protocol: {n - bad}/{n} schedules clean')
    stuck = sum(trial(2, rng.randint(2, 6), rng.randint(1, 3), 50000 + k, None, dw, cp) == 'livelock'
                for k in range(50))
    print(f'stages = 2 (validation refuses it): deadlock in {stuck}/50 schedules')
    muts = ['no-consumer-arrive', 'no-wait', 'early-arrive'] + (['pdr-counts'] if dw == 8 else [])
    if cp == 'consumer': muts += ['refill-no-wait', 'refill-stage']
    for mut in muts:
        caught = 0
        for k in range(2000):
            R, ks, tl = rng.choice([3, 4, 8]), rng.randint(2, 6), rng.randint(1, 3)
            if trial(R, ks, tl, 10000 + k, mut, dw, cp) is not True: caught += 1
        print(f'mutation {mut}: caught in {caught}/2000 schedules')
