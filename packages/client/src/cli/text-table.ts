import { printable } from './format.js';

export interface TableColumn {
  header: string;
  /** Numbers read best right-aligned. @defaultValue 'left' */
  align?: 'left' | 'right';
}

/** A plain-text table: columns padded to their widest cell, two spaces apart; cells made {@link printable}. */
export function renderTable(columns: readonly TableColumn[], shownRows: readonly (readonly string[])[]): string {
  const rows = shownRows.map((row) => row.map(printable));
  const widths = columns.map((column, index) => Math.max(column.header.length, ...rows.map((row) => (row[index] ?? '').length)));
  const line = (cells: readonly string[]) =>
    columns
      .map((column, index) => {
        const cell = cells[index] ?? '';
        const width = widths[index]!;
        return column.align === 'right' ? cell.padStart(width) : cell.padEnd(width);
      })
      .join('  ')
      .trimEnd();
  return `${[line(columns.map((column) => column.header)), ...rows.map(line)].join('\n')}\n`;
}
