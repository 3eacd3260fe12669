/**
 * The soak (issue 8, "Load and resource abuse"): `node dist/bench/soak.js [--minutes N]
 * [--json out.json]`. Starts its own berthd (own data root, exec root, socket, bridge, address
 * pool and nftables table), loads busybox, runs warm-up iterations of the mixed workload
 * (bench/soak-workload.ts), measures every figure of an idle berthd (bench/soak-measure.ts),
 * loops the workload until the time is up, measures again the same way and prints a table:
 * before / after / delta / verdict. Exits non-zero when a count did not come back to its
 * baseline, memory grew beyond its bound or a workload command failed. Everything it made is
 * removed at the end, on failure and on SIGINT/SIGTERM.
 */
import { writeFile } from 'node:fs/promises';
import { cpus, release, totalmem } from 'node:os';
import type { TestContext } from 'node:test';
import { parseArgs } from 'node:util';
import { cleanupAll, cleanupOnSignals, onCleanup } from './lib/cleanup.js';
import { kernelAndCpu } from './lib/host.js';
import { BERTHD_BIN } from './lib/paths.js';
import type { Memory, Row } from './soak-measure.js';
import type { SoakWorkload as Workload } from './soak-workload.js';

// test/helpers/berthd.ts reads this when it is loaded: the modules using it come after.
process.env.BERTHD_SCRIPT ??= BERTHD_BIN;
const { createSandbox } = await import('../test/helpers/sandbox.js');
const { startSoakTarget } = await import('./soak-target.js');
const { SoakWorkload } = await import('./soak-workload.js');
const { collectGarbage, compare, memory, settle, table, DATA_BYTES_BOUND, MEMORY_BOUNDS } =
  await import('./soak-measure.js');

/** Seconds of idle sampling before and after the workload. */
const WINDOW_SECONDS = 15;
/** Iterations before the baseline: caches, compiled code and pools reach their working size. */
const WARMUP = 3;
const GC_EVERY = 5;
const USAGE = 'usage: node dist/bench/soak.js [--minutes N] [--json out.json]\n';

function options(): { minutes: number; json?: string } {
  const { values } = parseArgs({
    options: { minutes: { type: 'string' }, json: { type: 'string' }, help: { type: 'boolean' } },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const minutes = Number(values.minutes ?? '10');
  if (!Number.isFinite(minutes) || minutes <= 0)
    throw new Error(`--minutes: expected a positive number, got ${values.minutes}`);
  return { minutes, ...(values.json ? { json: values.json } : {}) };
}

const log = (line: string): void => void process.stderr.write(`soak: ${line}\n`);

/** Set when a signal's teardown began: what fails afterwards is the teardown's doing. */
let stopping = false;

async function main(): Promise<void> {
  const { minutes, json } = options();
  cleanupOnSignals();
  const sandbox = await createSandbox();
  onCleanup('sandbox', () => sandbox.cleanup());
  // startBerthd and testSubnet only call t.after: the bench's teardown list stands in for it.
  const teardown = {
    after: (fn: () => unknown) =>
      onCleanup('berthd', async () => {
        await fn();
      }),
  } as unknown as TestContext;
  log(`starting berthd in ${sandbox.root}`);
  const target = await startSoakTarget(teardown, sandbox);
  const version = (await target.docker(['version', '--format', '{{.Server.Version}}'])).stdout.trim();
  const workload = new SoakWorkload(target);
  let current: Promise<void> = Promise.resolve();
  onCleanup('workload', async () => {
    stopping = true;
    // The iteration under way ends by itself (every command is bounded); wait a while for it.
    await Promise.race([current, new Promise((resolve) => setTimeout(resolve, 60_000).unref())]);
    workload.stop();
  });
  await workload.start();

  // Warm-up iterations are numbered 1..WARMUP, measured ones after them (names stay unique).
  for (let i = 1; i <= WARMUP && !stopping; i++) {
    log(`warm-up iteration ${i} of ${WARMUP}`);
    current = workload.iteration(i);
    await current;
  }
  await workload.quiesce();
  log(`measuring the idle baseline (${WINDOW_SECONDS} s or more)`);
  const before = await settle(target, workload.owned, WINDOW_SECONDS);

  const started = Date.now();
  const deadline = started + minutes * 60_000;
  // Memory after each iteration; every GC_EVERY iterations after a full GC, so the timeline
  // shows whether what stays alive grows (a leak) or levels off (caches, compiled code).
  const timeline: Array<{ iteration: number; seconds: number; gc: boolean } & Memory> = [];
  let iteration = 0;
  while (Date.now() < deadline && !stopping) {
    iteration++;
    current = workload.iteration(WARMUP + iteration);
    await current;
    const seconds = Math.round((Date.now() - started) / 1000);
    const gc = iteration % GC_EVERY === 0;
    if (gc) await collectGarbage(target);
    const now = await memory(target);
    timeline.push({ iteration, seconds, gc, ...now });
    log(
      `iteration ${iteration} done at ${seconds} s: RSS ${now.rssKiB} KiB, heap used ${now.heapUsedKiB} KiB${gc ? ' after GC' : ''}, ${workload.errors.length} failed steps`,
    );
  }
  if (stopping) return;
  const seconds = Math.round((Date.now() - started) / 1000);
  await workload.quiesce();
  log(`measuring the idle end (${WINDOW_SECONDS} s or more)`);
  const after = await settle(target, workload.owned, WINDOW_SECONDS);
  const rows = compare(before, after);
  const leaks = rows.filter((row) => !row.ok);
  const passed = leaks.length === 0 && workload.errors.length === 0;

  process.stdout.write(report({ version, minutes, seconds, iteration, workload, rows, passed }));
  if (json) {
    const machine = {
      cpus: cpus().length,
      'memory GiB': Math.round(totalmem() / 2 ** 30),
      kernel: release(),
      node: process.version,
      ...(await kernelAndCpu()),
    };
    const result = {
      time: new Date().toISOString(),
      machine,
      berthd: version,
      minutes,
      seconds,
      iterations: iteration,
      counts: workload.counts,
      bounds: { ...MEMORY_BOUNDS, dataRootBytes: DATA_BYTES_BOUND },
      before,
      after,
      rows,
      timeline,
      errors: workload.errors,
      passed,
    };
    await writeFile(json, JSON.stringify(result, null, 2) + '\n');
    log(`wrote ${json}`);
  }
  if (!passed) process.exitCode = 1;
}

function report(run: {
  version: string;
  minutes: number;
  seconds: number;
  iteration: number;
  workload: Workload;
  rows: Row[];
  passed: boolean;
}): string {
  const { counts, errors } = run.workload;
  const lines = [
    `# berth soak: ${run.minutes} min requested, ${run.seconds} s of workload, ${run.iteration} iterations (berthd ${run.version})`,
    '',
    `${counts.containers} containers, ${counts.commands} docker commands, ${counts.eventStreams} event streams; ${errors.length} failed steps`,
    '',
    table(run.rows),
  ];
  if (errors.length > 0) lines.push('Failed steps:', ...errors.map((e) => `- ${e}`), '');
  lines.push(`Verdict: ${run.passed ? 'PASS' : 'FAIL'}`, '');
  return lines.join('\n');
}

main()
  .catch((err: unknown) => {
    if (stopping) return;
    process.stderr.write(`soak: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => cleanupAll());
