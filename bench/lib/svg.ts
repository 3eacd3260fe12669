/**
 * A horizontal bar chart of the berth/reference ratios, hand-written SVG. The x axis is
 * logarithmic and centred on 1 (parity): a bar grows left when berth needs less (time, memory)
 * and right when it needs more. Each row's goal is a dashed mark; green bars meet it, red ones
 * do not, grey ones have no ratio goal.
 */
import type { ChartBar } from './scenario.js';

const WIDTH = 960;
const LABEL_WIDTH = 420;
const ROW = 26;
const TOP = 60;
const PLOT_LEFT = LABEL_WIDTH + 10;
const PLOT_RIGHT = WIDTH - 70;

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

export function meetsGoal(bar: ChartBar): boolean | undefined {
  if (bar.goal === undefined || !Number.isFinite(bar.value)) return undefined;
  return bar.better === 'lower' ? bar.value <= bar.goal : bar.value >= bar.goal;
}

export function ratioChart(title: string, bars: ChartBar[]): string {
  const finite = bars.filter((bar) => Number.isFinite(bar.value) && bar.value > 0);
  const values = [1, ...finite.map((b) => b.value), ...finite.flatMap((b) => (b.goal ? [b.goal] : []))];
  const lo = Math.floor(Math.log10(Math.min(...values)) - 0.1);
  const hi = Math.ceil(Math.log10(Math.max(...values)) + 0.1);
  const x = (value: number): number =>
    PLOT_LEFT + ((Math.log10(value) - lo) / (hi - lo)) * (PLOT_RIGHT - PLOT_LEFT);
  const height = TOP + finite.length * ROW + 50;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    `<text x="10" y="22" font-size="16" font-weight="bold">${escape(title)}</text>`,
    `<text x="10" y="42" fill="#555">berth / reference (log scale; left of 1 = berth uses less). Dashed mark: goal. Green: goal met, red: not met, grey: no ratio goal.</text>`,
  ];
  for (let power = lo; power <= hi; power++) {
    const value = 10 ** power;
    const px = x(value).toFixed(1);
    out.push(
      `<line x1="${px}" y1="${TOP - 6}" x2="${px}" y2="${TOP + finite.length * ROW}" stroke="${power === 0 ? '#000' : '#ddd'}"/>`,
      `<text x="${px}" y="${TOP + finite.length * ROW + 16}" text-anchor="middle" fill="#555">${value >= 1 ? value : value.toFixed(-power)}</text>`,
    );
  }
  finite.forEach((bar, row) => {
    const y = TOP + row * ROW;
    const met = meetsGoal(bar);
    const colour = met === undefined ? '#999' : met ? '#2e8b57' : '#c0392b';
    const x0 = x(1);
    const x1 = x(bar.value);
    out.push(
      `<text x="${LABEL_WIDTH}" y="${y + 16}" text-anchor="end">${escape(bar.label)}</text>`,
      `<rect x="${Math.min(x0, x1).toFixed(1)}" y="${y + 4}" width="${Math.max(Math.abs(x1 - x0), 1).toFixed(1)}" height="${ROW - 8}" fill="${colour}"/>`,
      `<text x="${(Math.max(x0, x1) + 4).toFixed(1)}" y="${y + 16}" fill="#333">${bar.value.toFixed(2)}</text>`,
    );
    if (bar.goal !== undefined) {
      const gx = x(bar.goal).toFixed(1);
      out.push(
        `<line x1="${gx}" y1="${y + 1}" x2="${gx}" y2="${y + ROW - 1}" stroke="#000" stroke-width="2" stroke-dasharray="3,2"/>`,
      );
    }
  });
  out.push(
    `<text x="${PLOT_LEFT}" y="${height - 10}" fill="#555">ratio (berth / reference)</text>`,
    '</svg>',
    '',
  );
  return out.join('\n');
}
