"""NVFP4 storage layouts in plain torch ops (NUMERICS §2.7 packing, §7 the 128x4 scale layout).

Used by the layer for the NVIDIA recipe's W^T (a 16x16-block tensor and its transpose share scales, §5.7) and by
the reference and tests to read scales back. Everything here is index arithmetic: exact, and traceable by
torch.compile.
"""
import torch


def ceil_div(a, b):
    return (a + b - 1) // b


def scale_bytes(rows, cols):
    """Bytes of the 128x4 layout for a [rows, cols/16] scale grid: rows padded to 128, groups to 4."""
    return ceil_div(rows, 128) * 128 * ceil_div(cols // 16, 4) * 4


def scale_offsets(rows, cols, device=None):
    """int64 [rows, cols/16]: the byte offset of the scale of (row r, group kb) in the 128x4 layout."""
    kb_count = cols // 16
    r = torch.arange(rows, device=device, dtype=torch.int64)[:, None]
    kb = torch.arange(kb_count, device=device, dtype=torch.int64)[None, :]
    return (((r // 128) * ceil_div(kb_count, 4) + kb // 4) * 512 + (r % 32) * 16 + ((r % 128) // 32) * 4 + kb % 4)


def scales_to_grid(scales, rows, cols):
    """uint8 [rows, cols/16] scale codes from the 128x4 byte array."""
    return scales[scale_offsets(rows, cols, scales.device)]


def grid_to_scales(grid, cols):
    """The 128x4 byte array (padding bytes 0) of a uint8 [rows, cols/16] scale grid."""
    rows = grid.shape[0]
    out = torch.zeros(scale_bytes(rows, cols), dtype=torch.uint8, device=grid.device)
    out[scale_offsets(rows, cols, grid.device).reshape(-1)] = grid.reshape(-1)
    return out


def unpack_codes(codes):
    """uint8 [rows, cols] E2M1 codes (4 bits each) from the packed [rows, cols/2] bytes (low nibble first)."""
    lo = codes & 0xF
    hi = codes >> 4
    return torch.stack([lo, hi], dim=-1).reshape(codes.shape[0], codes.shape[1] * 2)


def pack_codes(nibbles):
    """Packed uint8 [rows, cols/2] from [rows, cols] codes: element 2i in the low nibble of byte i."""
    return (nibbles[:, 0::2] | (nibbles[:, 1::2] << 4)).contiguous()


def transpose_16x16(codes, scales, rows, cols):
    """(codes, scales) of the transpose [cols, rows] of an NVFP4 tensor [rows, cols] quantized in 16x16 blocks.

    Exact: every 16x16 block has one scale, stored in each of its 16 rows' slots (NUMERICS §5.7), so the transposed
    tensor holds the same codes and the same block scales. rows must be a multiple of 16.
    """
    if rows % 16 or cols % 16:
        raise ValueError('transpose_16x16: shape [%d, %d]; allowed: both multiples of 16' % (rows, cols))
    nib_t = unpack_codes(codes).t().contiguous()                    # [cols, rows]
    block = scales_to_grid(scales, rows, cols)[::16, :]              # [rows/16, cols/16]: one scale per block
    grid_t = block.t().repeat_interleave(16, dim=0).contiguous()     # [cols, rows/16]
    return pack_codes(nib_t), grid_to_scales(grid_t, rows)
