/** The Markdown report: machine and versions, then each scenario's goal, verdict and tables. */
import type { ScenarioResult } from './scenario.js';

const verdict = (met: boolean | undefined): string =>
  met === undefined ? 'not judged' : met ? 'met' : 'NOT met';

export function markdown(
  results: ScenarioResult[],
  machine: Record<string, string | number>,
  versions: Record<string, string>,
  chartFile?: string,
): string {
  const lines = [
    '# berth benchmark results',
    '',
    `Machine: ${Object.entries(machine)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
    '',
    `Versions: ${Object.entries(versions)
      .map(([k, v]) => `${k} ${v}`)
      .join('; ')}`,
    '',
  ];
  if (chartFile) lines.push(`![ratios berth / reference](${chartFile})`, '');
  lines.push('| scenario | goal |', '| --- | --- |');
  for (const result of results) lines.push(`| ${result.name} | ${verdict(result.met)} |`);
  lines.push('');
  for (const result of results) {
    lines.push(`## ${result.name}`, '', `Goal: ${result.goal} — **${verdict(result.met)}**`, '');
    if (result.contenders.length > 0) {
      lines.push('| contender | runs | median ms | min ms | max ms |', '| --- | ---: | ---: | ---: | ---: |');
      for (const c of result.contenders) {
        lines.push(
          `| ${c.name} | ${c.runs} | ${c.medianMs.toFixed(2)} | ${c.minMs.toFixed(2)} | ${c.maxMs.toFixed(2)} |`,
        );
      }
    }
    if (Object.keys(result.ratios).length > 0) {
      lines.push('', '| ratio (paired medians) | value |', '| --- | ---: |');
      for (const [name, value] of Object.entries(result.ratios))
        lines.push(`| ${name} | ${value.toFixed(2)} |`);
    }
    const figures = Object.entries(result.figures ?? {});
    if (figures.length > 0) {
      lines.push('', '| figure | value |', '| --- | ---: |');
      for (const [name, value] of figures) lines.push(`| ${name} | ${value} |`);
    }
    for (const note of result.notes ?? []) lines.push('', note);
    lines.push('');
  }
  return lines.join('\n');
}
