/**
 * Go's text/tabwriter with flags 0 and a space pad character, which docker's tables use
 * (minwidth 10, tabwidth 1, padding 3). Cells end at a tab; the text after a line's last tab is not
 * part of a column. A column's width is taken over each block of consecutive lines that have that
 * column, and widths count characters (runes), not display cells.
 */
export interface TabwriterOptions {
  minWidth: number;
  padding: number;
}

export const DOCKER_TABLE: TabwriterOptions = { minWidth: 10, padding: 3 };

const runeLength = (text: string): number => [...text].length;

/** Aligns tab-separated text and returns it; a trailing newline is kept as it was. */
export function tabwrite(text: string, options: TabwriterOptions = DOCKER_TABLE): string {
  const lines = text.split('\n').map((line) => line.split('\t'));
  const out: string[] = [];
  const widths: number[] = [];

  const writeLines = (from: number, to: number): void => {
    for (let i = from; i < to; i++) {
      const cells = lines[i] ?? [];
      let line = '';
      cells.forEach((cell, j) => {
        line += cell;
        if (j < cells.length - 1 && j < widths.length) {
          line += ' '.repeat(Math.max(0, (widths[j] ?? 0) - runeLength(cell)));
        }
      });
      out[i] = line;
    }
  };

  const format = (line0: number, line1: number): void => {
    const column = widths.length;
    for (let current = line0; current < line1; current++) {
      if (column >= (lines[current]?.length ?? 0) - 1) continue;
      writeLines(line0, current);
      line0 = current;
      let width = options.minWidth;
      for (; current < line1; current++) {
        const cells = lines[current] ?? [];
        if (column >= cells.length - 1) break;
        width = Math.max(width, runeLength(cells[column] ?? '') + options.padding);
      }
      widths.push(width);
      format(line0, current);
      widths.pop();
      line0 = current;
      current--;
    }
    writeLines(line0, line1);
  };

  format(0, lines.length);
  return out.join('\n');
}
