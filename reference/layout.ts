// Memory layouts of quantized tensors: packed E2M1 codes (NUMERICS §2.7) and scale layouts (NUMERICS §7).

import type { ScaleLayout } from '../dsl/types.ts';

export type { ScaleLayout };

/** Two E2M1 codes per byte, the element with the lower index in bits 3:0 (NUMERICS §2.7). */
export function packCodes(codes: Uint8Array): Uint8Array {
  if (codes.length % 2 !== 0) throw new RangeError(`packCodes: odd number of codes (${codes.length})`);
  const packed = new Uint8Array(codes.length / 2);
  for (let i = 0; i < packed.length; i++) packed[i] = (codes[2 * i] & 0xf) | ((codes[2 * i + 1] & 0xf) << 4);
  return packed;
}

/** The first `count` codes of a packed array (inverse of packCodes). */
export function unpackCodes(packed: Uint8Array, count: number): Uint8Array {
  if (count > 2 * packed.length) throw new RangeError(`unpackCodes: ${count} codes from ${packed.length} bytes`);
  const codes = new Uint8Array(count);
  for (let i = 0; i < count; i++) codes[i] = (packed[i >> 1] >> ((i & 1) * 4)) & 0xf;
  return codes;
}

/** Rows of one 128x4 atom, and scale columns of one atom. */
const ATOM_ROWS = 128;
const ATOM_COLS = 4;
const ATOM_BYTES = ATOM_ROWS * ATOM_COLS;

/**
 * Byte offset of the scale of (row r, group kb) in the 128x4 layout (NUMERICS §7), Kb groups per row:
 * `((r div 128) * ceil(Kb/4) + kb div 4) * 512 + (r mod 32) * 16 + ((r mod 128) div 32) * 4 + kb mod 4`.
 */
export function scaleOffset128x4(r: number, kb: number, Kb: number): number {
  const atomsPerRowBlock = Math.ceil(Kb / ATOM_COLS);
  const atom = Math.floor(r / ATOM_ROWS) * atomsPerRowBlock + Math.floor(kb / ATOM_COLS);
  return atom * ATOM_BYTES + (r % 32) * 16 + Math.floor((r % ATOM_ROWS) / 32) * 4 + (kb % ATOM_COLS);
}

/** Bytes of the scales of a [rows, Kb] grid in a layout (128x4: rows padded to 128, Kb to 4). */
export function scaleBytes(rows: number, Kb: number, layout: ScaleLayout): number {
  if (layout === 'row-major') return rows * Kb;
  return Math.ceil(rows / ATOM_ROWS) * ATOM_ROWS * Math.ceil(Kb / ATOM_COLS) * ATOM_COLS;
}

/** Row-major [rows, Kb] scale codes laid out in `layout`; a new array, padding bytes 0. */
export function layoutScales(rowMajor: Uint8Array, rows: number, Kb: number, layout: ScaleLayout): Uint8Array {
  if (rowMajor.length !== rows * Kb) throw new RangeError(`layoutScales: ${rowMajor.length} scales for ${rows}x${Kb}`);
  if (layout === 'row-major') return rowMajor.slice();
  const out = new Uint8Array(scaleBytes(rows, Kb, layout));
  for (let r = 0; r < rows; r++) {
    for (let kb = 0; kb < Kb; kb++) out[scaleOffset128x4(r, kb, Kb)] = rowMajor[r * Kb + kb];
  }
  return out;
}

/** Scales stored in `layout` read back into row-major [rows, Kb] order (padding ignored). */
export function readScales(buf: Uint8Array, rows: number, Kb: number, layout: ScaleLayout): Uint8Array {
  const need = scaleBytes(rows, Kb, layout);
  if (buf.length < need) throw new RangeError(`readScales: ${buf.length} bytes, ${need} needed for ${rows}x${Kb}`);
  if (layout === 'row-major') return buf.slice(0, rows * Kb);
  const out = new Uint8Array(rows * Kb);
  for (let r = 0; r < rows; r++) {
    for (let kb = 0; kb < Kb; kb++) out[r * Kb + kb] = buf[scaleOffset128x4(r, kb, Kb)];
  }
  return out;
}
