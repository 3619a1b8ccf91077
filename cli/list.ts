// `qgen list`: the named catalog as a table.
import type { KernelSpec, QuantizeSpec } from '../dsl/types.ts';
import { formatTable } from './table.ts';

function inputCell(s: QuantizeSpec): string {
  return `${s.input}${s.transposedInput ? '^T' : ''}`;
}

function row(s: KernelSpec): string[] {
  switch (s.kind) {
    case 'quantize':
      return [
        s.name,
        s.kind,
        `${s.rounding}${s.block === '16x16' ? ' 16x16' : ''}`,
        inputCell(s),
        `${s.scaleGroup.size} ${s.scaleGroup.format}`,
        s.hadamard === null ? '-' : String(s.hadamard),
        s.tensorScale === 'none' ? 'none' : s.tensorScale === 'caller' ? 'caller' : `${s.tensorScale} C=${s.ceiling}`,
        s.doc ?? '',
      ];
    case 'dequantize':
      return [s.name, s.kind, '-', 'nvfp4', `${s.scaleGroup.size} ${s.scaleGroup.format}`, '-', '-', s.doc ?? ''];
    case 'hadamard':
      return [s.name, s.kind, '-', s.input, '-', String(s.size), '-', s.doc ?? ''];
    case 'amax':
      return [s.name, s.kind, '-', s.input, '-', '-', '-', s.doc ?? ''];
    case 'gemm':
      return [
        s.name,
        s.kind,
        '-',
        'nvfp4 x nvfp4',
        '16 e4m3',
        '-',
        'alpha = tA*tB',
        `${s.doc ?? ''} [tile ${s.tiling.ctaTile.join('x')}]`,
      ];
  }
}

export function formatCatalog(specs: KernelSpec[]): string {
  return formatTable(['name', 'kind', 'rounding', 'input', 'group', 'hadamard', 'tensor scale', 'doc'], specs.map(row));
}
