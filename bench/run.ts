/**
 * `npm run bench [-- --quick] [scenario...]`: sets up berthd and the reference engines (runc,
 * crun, dockerd, podman), runs every scenario, tears everything down, and writes
 * bench/results/<time>.json, bench/results/latest.md and bench/results/latest.svg (a run of some
 * scenarios replaces theirs in the newest full run's report: lib/merge.ts).
 * --quick runs each scenario once against berth only (a smoke test; nothing installed or written).
 */
import { mkdtemp, mkdir, rm, writeFile, readdir, rmdir } from 'node:fs/promises';
import { tmpdir, cpus, totalmem, release } from 'node:os';
import { join } from 'node:path';
import { cleanupAll, cleanupOnSignals, onCleanup } from './lib/cleanup.js';
import { kernelAndCpu, unmountUnder } from './lib/host.js';
import { RESULTS_DIR } from './lib/paths.js';
import { setupEngines } from './lib/references.js';
import { mergeResults, newestFullRun, partialRunsSince } from './lib/merge.js';
import { markdown } from './lib/report.js';
import type { Scenario, ScenarioResult } from './lib/scenario.js';
import { ratioChart } from './lib/svg.js';
import { runtimeStartScenario } from './runtime-start.js';
import { imagePullScenario, prepareRootfsScenario } from './image-pull.js';
import { runRmScenario } from './run-rm.js';
import { concurrentScenario } from './concurrent.js';
import { buildScenario } from './build.js';
import { buildParityScenario } from './build-parity.js';
import { logsScenario } from './logs.js';
import { iperfScenario } from './iperf.js';

const SCENARIOS: Scenario[] = [
  runtimeStartScenario,
  runRmScenario,
  concurrentScenario,
  imagePullScenario,
  prepareRootfsScenario,
  buildScenario,
  buildParityScenario,
  logsScenario,
  iperfScenario,
];

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const only = process.argv.slice(2).filter((a) => !a.startsWith('--'));
  const unknown = only.filter((name) => !SCENARIOS.some((s) => s.name === name));
  if (unknown.length > 0) {
    throw new Error(
      `unknown scenario ${unknown.join(', ')}; known: ${SCENARIOS.map((s) => s.name).join(', ')}`,
    );
  }
  cleanupOnSignals();
  const root = await mkdtemp(join(tmpdir(), 'berth-bench-'));
  onCleanup('work directory', async () => {
    await unmountUnder(root);
    // After a signal the interrupted scenario may still be writing here: retry a few times.
    await rm(root, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  });
  process.stderr.write(`bench: setting up engines${quick ? ' (quick: berth only)' : ''} in ${root}\n`);
  const engines = await setupEngines(join(root, 'engines'), quick);
  const results: ScenarioResult[] = [];
  for (const scenario of SCENARIOS) {
    if (only.length > 0 && !only.includes(scenario.name)) continue;
    const workDir = join(root, `scenario-${scenario.name}`);
    await mkdir(workDir, { recursive: true });
    const started = Date.now();
    try {
      process.stderr.write(`bench: ${scenario.name}${quick ? ' (quick)' : ''}\n`);
      const result = await scenario.run({ quick, workDir, engines });
      results.push(...(Array.isArray(result) ? result : [result]));
    } catch (err) {
      // One broken scenario must not hide the others' results; the run still fails at the end.
      const message = err instanceof Error ? err.message : String(err);
      process.stderr.write(`bench: ${scenario.name} failed: ${message}\n`);
      process.exitCode = 1;
      results.push({
        name: scenario.name,
        goal: 'see docs/benchmarks.md',
        met: false,
        contenders: [],
        ratios: {},
        notes: [`The scenario failed: ${message.split('\n')[0]?.slice(0, 500)}`],
      });
    } finally {
      await unmountUnder(workDir);
      await rm(workDir, { recursive: true, force: true });
      for (const hierarchy of await readdir('/sys/fs/cgroup').catch(() => [] as string[])) {
        await rmdir(join('/sys/fs/cgroup', hierarchy, `berth-bench-${process.pid}`)).catch(() => undefined);
        // The bench's berthd puts containers under its default parent `berth`: empty once they are gone.
        await rmdir(join('/sys/fs/cgroup', hierarchy, 'berth')).catch(() => undefined);
      }
      process.stderr.write(`bench: ${scenario.name} took ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    }
  }
  const machine = {
    cpus: cpus().length,
    'memory GiB': Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    ...(await kernelAndCpu()),
  };
  const time = new Date().toISOString();
  process.stdout.write(markdown(results, machine, engines.versions));
  if (!quick) {
    await mkdir(RESULTS_DIR, { recursive: true });
    // A run of some scenarios replaces theirs in the newest full run's report, after those that
    // earlier partial runs measured again.
    const base = only.length > 0 ? await newestFullRun(RESULTS_DIR) : undefined;
    let reported = results;
    if (base) {
      let merged = base.results;
      for (const partial of await partialRunsSince(RESULTS_DIR, base))
        merged = mergeResults({ ...base, results: merged }, partial.results, partial.time);
      reported = mergeResults({ ...base, results: merged }, results, time);
    }
    const report = {
      time,
      quick,
      ...(only.length > 0 ? { only } : {}),
      machine,
      versions: engines.versions,
      results,
    };
    await writeFile(
      join(RESULTS_DIR, `${time.replace(/[:.]/g, '-')}.json`),
      JSON.stringify(report, null, 2) + '\n',
    );
    await writeFile(
      join(RESULTS_DIR, 'latest.md'),
      markdown(reported, machine, engines.versions, 'latest.svg'),
    );
    const chart = ratioChart(
      `berth benchmark ratios, ${(base?.time ?? time).slice(0, 10)}`,
      reported.flatMap((r) => r.chart ?? []),
    );
    await writeFile(join(RESULTS_DIR, 'latest.svg'), chart);
  }
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => cleanupAll());
