// Plain-text tables for terminal output: columns padded to their widest cell, the last column left ragged.

export type Align = 'left' | 'right';

export function formatTable(headers: string[], rows: string[][], align: Align[] = []): string {
  const widths = headers.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, c) => {
        const last = c === cells.length - 1;
        if (align[c] === 'right') return cell.padStart(widths[c]);
        return last ? cell : cell.padEnd(widths[c]);
      })
      .join('  ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(headers), rule, ...rows.map(line)].join('\n');
}
