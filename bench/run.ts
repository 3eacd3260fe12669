/**
 * `npm run bench [-- --quick]`: runs every scenario, writes bench/results/<time>.json and
 * bench/results/latest.md. --quick runs each scenario once against berth only (a smoke test).
 */
import { mkdtemp, mkdir, rm, writeFile, readdir, rmdir } from 'node:fs/promises';
import { tmpdir, cpus, totalmem, release } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Scenario, ScenarioResult } from './lib/scenario.js';
import { runtimeStartScenario } from './runtime-start.js';
import { imagePullScenario, prepareRootfsScenario } from './image-pull.js';

const SCENARIOS: Scenario[] = [runtimeStartScenario, imagePullScenario, prepareRootfsScenario];

const resultsDir = fileURLToPath(new URL('../../bench/results/', import.meta.url));

function markdown(results: ScenarioResult[], machine: Record<string, string | number>): string {
  const lines = [
    '# berth benchmark results',
    '',
    `Machine: ${Object.entries(machine)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
    '',
  ];
  for (const result of results) {
    const verdict = result.met === undefined ? 'not judged' : result.met ? 'met' : 'NOT met';
    lines.push(`## ${result.name}`, '', `Goal: ${result.goal} — **${verdict}**`, '');
    lines.push('| contender | runs | median ms | min ms | max ms |', '| --- | ---: | ---: | ---: | ---: |');
    for (const c of result.contenders) {
      lines.push(
        `| ${c.name} | ${c.runs} | ${c.medianMs.toFixed(2)} | ${c.minMs.toFixed(2)} | ${c.maxMs.toFixed(2)} |`,
      );
    }
    if (Object.keys(result.ratios).length > 0) {
      lines.push('', '| ratio (paired medians) | value |', '| --- | ---: |');
      for (const [name, value] of Object.entries(result.ratios))
        lines.push(`| ${name} | ${value.toFixed(2)} |`);
    }
    for (const [name, value] of Object.entries(result.figures ?? {})) lines.push('', `${name}: ${value}`);
    for (const note of result.notes ?? []) lines.push('', note);
    lines.push('');
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const only = process.argv.slice(2).filter((a) => !a.startsWith('--'));
  const results: ScenarioResult[] = [];
  for (const scenario of SCENARIOS) {
    if (only.length > 0 && !only.includes(scenario.name)) continue;
    const workDir = await mkdtemp(join(tmpdir(), `berth-bench-${scenario.name}-`));
    try {
      process.stderr.write(`bench: ${scenario.name}${quick ? ' (quick)' : ''}\n`);
      results.push(await scenario.run({ quick, workDir }));
    } finally {
      await rm(workDir, { recursive: true, force: true });
      for (const hierarchy of await readdir('/sys/fs/cgroup').catch(() => [] as string[])) {
        await rmdir(join('/sys/fs/cgroup', hierarchy, `berth-bench-${process.pid}`)).catch(() => undefined);
      }
    }
  }
  const machine = {
    cpus: cpus().length,
    'memory GiB': Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
  };
  const report = { time: new Date().toISOString(), quick, machine, results };
  process.stdout.write(markdown(results, machine));
  if (!quick) {
    await mkdir(resultsDir, { recursive: true });
    await writeFile(
      join(resultsDir, `${report.time.replace(/[:.]/g, '-')}.json`),
      JSON.stringify(report, null, 2),
    );
    await writeFile(join(resultsDir, 'latest.md'), markdown(results, machine));
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
