"""A plain-torch reference of the forward quantizers (RTN and 4/6, 1x16 or 16x16, computed or one-pass tensor scale)
and of NVFP4 dequantization, written from runtime/NUMERICS.md independently of the CUDA kernels.

Every float operation is one binary32 torch op on the CPU (IEEE, round-to-nearest-even), in the order the contract
states, so codes, scales and tensor scales are comparable bit for bit with the kernels'. The backward quantizers
(SR, MS-EDEN, rotations) are checked against qgen's TypeScript reference by qgen's own GPU suite, not here.
"""
import math

import torch

from .layout import grid_to_scales, pack_codes, scales_to_grid, unpack_codes

E2M1_MAGNITUDES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)


def _e4m3_value(code):
    e, m = (code >> 3) & 0xF, code & 0x7
    return (m / 8.0) * 2.0 ** -6 if e == 0 else (1.0 + m / 8.0) * 2.0 ** (e - 7)


# The 127 finite non-negative E4M3 values (codes 0x00..0x7E), ascending; 0x7F is NaN.
E4M3_VALUES = torch.tensor([_e4m3_value(c) for c in range(127)], dtype=torch.float64)


def e2m1_decode(codes4):
    """float64 values of 4-bit E2M1 codes (sign << 3 | magnitude)."""
    mag = torch.tensor(E2M1_MAGNITUDES, dtype=torch.float64, device=codes4.device)[(codes4 & 7).long()]
    return torch.where((codes4 & 8) != 0, -mag, mag)


def e4m3_decode(codes8):
    """float64 values of E4M3 scale codes (non-negative; 0x7F decodes to NaN)."""
    v = E4M3_VALUES.to(codes8.device)[(codes8 & 0x7F).long().clamp(max=126)]
    return torch.where((codes8 & 0x7F) == 0x7F, torch.full_like(v, float('nan')), v)


def rn_e4m3(x):
    """RN_E4M3 (NUMERICS §2.3) of non-negative float32 values: uint8 codes, ties to the even code, > 448 -> 448."""
    xd = x.double()
    table = E4M3_VALUES.to(x.device)
    hi = torch.bucketize(xd.clamp(max=448.0), table).clamp(max=126)
    lo = (hi - 1).clamp(min=0)
    d_lo, d_hi = xd - table[lo], table[hi] - xd
    code = torch.where((d_hi < d_lo) | ((d_hi == d_lo) & (hi % 2 == 0)), hi, lo)
    return torch.where(torch.isnan(x), torch.full_like(code, 0x7F), code).to(torch.uint8)


def rn_e2m1(v):
    """RN_E2M1 (NUMERICS §2.1): the threshold rule; sign copied (NaN -> 0x7)."""
    a = v.abs()
    mag = torch.full(v.shape, 7, dtype=torch.uint8)
    for threshold, code, inclusive in ((5.0, 6, True), (3.5, 5, False), (2.5, 4, True), (1.75, 3, False),
                                       (1.25, 2, True), (0.75, 1, False), (0.25, 0, True)):
        below = a <= threshold if inclusive else a < threshold
        mag = torch.where(below, torch.full_like(mag, code), mag)
    negative = (v.view(torch.int32) < 0) & ~torch.isnan(v)
    return mag | (negative.to(torch.uint8) << 3)


def rn_p4(x):
    """RN_P4 (NUMERICS §2.5) of non-negative float32 values: keep 3 explicit mantissa bits, ties to even."""
    b = x.view(torch.int32)
    return ((b + 0x7FFFF + ((b >> 20) & 1)) & -0x100000).view(torch.float32)


def tree(a):
    """Pairwise sum over the last dimension with halving strides (NUMERICS §1.3), in float32."""
    n = a.shape[-1]
    while n > 1:
        h = n // 2
        a = a[..., :h] + a[..., h:n]
        n = h
    return a[..., 0]


def _f32(value):
    return torch.tensor(value, dtype=torch.float32)


def _candidate(xg, inv, step):
    """Codes and the tree16 squared error of one candidate: v = x * inv, q = RN_E2M1(v), d = x - q * step."""
    q = rn_e2m1(xg * inv[..., None])
    qv = e2m1_decode(q).to(torch.float32)
    d = xg - qv * step[..., None]
    return q, tree(d * d)


def quantize_reference(x, facts):
    """(codes [R, C/2], scales (128x4 bytes), tensor_scale float32) of a forward quantizer on bf16/f32 x [R, C].

    facts: the kernel's entry in KERNELS (rounding 'rtn' or 'four-six', target 'six', tensor_scale 'computed' or
    'one-pass', block '1x16' or '16x16', no rotation, input not transposed).
    """
    if facts['rounding'] not in ('rtn', 'four-six') or facts['target'] != 'six' or facts['hadamard'] is not None \
            or facts['transposed'] or facts['tensor_scale'] not in ('computed', 'one-pass'):
        raise NotImplementedError('quantize_reference covers the forward quantizers only; got %r' % (facts,))
    x = x.detach().to('cpu', torch.float32)
    rows, cols = x.shape
    xg = x.reshape(rows, cols // 16, 16)
    amax_g = torch.where(torch.isfinite(xg), xg.abs(), torch.zeros_like(xg)).amax(-1)
    if facts['block'] == '16x16':
        amax_g = amax_g.reshape(rows // 16, 16, -1).amax(1, keepdim=True).expand(-1, 16, -1).reshape(rows, -1)
    candidates = (6.0, 4.0) if facts['rounding'] == 'four-six' else (6.0,)
    ceiling = float(facts['ceiling'])
    one = torch.ones_like(amax_g)

    if facts['tensor_scale'] == 'computed':  # §5.1: t = amax / (6 C); s_g = RN_E4M3(amax_g / (T t))
        amax = amax_g.max()
        t = amax / _f32(6.0 * ceiling) if float(amax) > 0 else _f32(1.0)
        results = []
        for c in candidates:
            s = rn_e4m3(amax_g / (_f32(c) * t))
            zero = s == 0                                     # §5.2: a scale that rounds to 0 stores 1.0
            s = torch.where(zero, torch.full_like(s, 0x38), s)
            step = e4m3_decode(s).to(torch.float32) * t
            q, err = _candidate(xg, one / step, step)
            results.append((q, err, s))
        q, err, s = results[0]
        if len(results) == 2:
            keep4 = results[1][1] < err                      # keep 6 on ties and NaN (§5.5)
            q = torch.where(keep4[..., None], results[1][0], q)
            s = torch.where(keep4, results[1][2], s)
        ts = t
    else:  # one-pass (§5.1): proxies p = RN_P4(amax_g / T), t = 2^k, s_g = RN_E4M3(c_g / t)
        results = []
        for c in candidates:
            p = rn_p4(amax_g / _f32(c))
            zero = p == 0                                    # §5.2: a zero group is quantized with scale 1
            q, err = _candidate(xg, torch.where(zero, one, one / p), torch.where(zero, one, p))
            results.append((q, err, p))
        q, err, proxy = results[0]
        if len(results) == 2:
            keep4 = results[1][1] < err
            q = torch.where(keep4[..., None], results[1][0], q)
            proxy = torch.where(keep4, results[1][2], proxy)
        m = float(proxy.max())
        k = 0
        if m > 0:
            k = math.ceil(math.log2(m / ceiling))
            while m / 2.0 ** k > ceiling:
                k += 1
            while k > -149 and m / 2.0 ** (k - 1) <= ceiling:
                k -= 1
            k = max(-149, min(127, k))
        ts = _f32(2.0 ** k)
        s = rn_e4m3(proxy / ts)
        s = torch.where(proxy == 0, torch.full_like(s, 0x38), s)

    codes = pack_codes(q.reshape(rows, cols))
    return codes, grid_to_scales(s, cols), ts.reshape(1)


def dequantize_reference(codes, scales, tensor_scale, rows=None, cols=None):
    """float64 [rows, cols] values e2m1 * e4m3 * t of an NVFP4 tensor (exact in float64)."""
    codes = codes.detach().cpu()
    rows = codes.shape[0] if rows is None else rows
    cols = codes.shape[1] * 2 if cols is None else cols
    vals = e2m1_decode(unpack_codes(codes))
    grid = e4m3_decode(scales_to_grid(scales.detach().cpu(), rows, cols))
    t = float(tensor_scale.detach().cpu().reshape(-1)[0])
    return vals * grid.repeat_interleave(16, dim=1) * t


def gemm_bound(a, b):
    """Per-element error bound of an sm_90a NVFP4 GEMM against the float64 product a @ b^T (NUMERICS §6.2), bf16 out.

    a, b: float64 dequantized operands (tensor scales folded in). e = 2 gamma_K sum|a||b| + 2^-23 |ref|;
    |c - ref| <= (1 + 2^-8) e + 2^-8 |ref|.
    """
    k = a.shape[1]
    u = 2.0 ** -24
    gamma = k * u / (1 - k * u)
    ref = a @ b.t()
    e = 2 * gamma * (a.abs() @ b.abs().t()) + 2.0 ** -23 * ref.abs()
    return ref, (1 + 2.0 ** -8) * e + 2.0 ** -8 * ref.abs()
