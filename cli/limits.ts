// Size limits of commands that compute on the CPU (qgen quality): refused up front, with the memory a size would
// need, instead of a RangeError from a typed array or minutes of swapping.
import { UsageError } from './errors.ts';

/** Peak memory of `qgen quality` per matrix value (measured: 256 vs 1024 rows of 4096 grow RSS by ~32 B a value). */
export const QUALITY_BYTES_PER_VALUE = 32;
/** Most values `qgen quality` accepts: 2^26 (e.g. 16384 x 4096), about 2 GiB and a minute or two. */
export const QUALITY_MAX_VALUES = 2 ** 26;

function gib(bytes: number): string {
  const g = bytes / 2 ** 30;
  return g >= 100 ? `${Math.round(g)} GiB` : `${g.toFixed(1)} GiB`;
}

/** Throws a usage error when rows x cols exceeds maxValues, saying what it would need and what the limit is. */
export function checkMatrixSize(rows: number, cols: number, maxValues: number, bytesPerValue: number): void {
  const values = rows * cols;
  if (values <= maxValues) return;
  throw new UsageError(
    `--rows x --cols: ${rows} x ${cols} = ${values.toExponential(2)} values would need about ` +
      `${gib(values * bytesPerValue)} of memory; the limit is ${maxValues} values (${gib(maxValues * bytesPerValue)})`,
  );
}
