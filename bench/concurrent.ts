/**
 * 100 containers started at once with `run -d busybox sleep 300` (one CLI process each, all
 * spawned together): wall time per engine, then, with all of them idle, the resident memory of
 * each container's monitor (berth-shim, containerd-shim-runc-v2, conmon: the parent of the
 * container's first process) and of the daemon. One round per engine: a round is 100 starts.
 */
import { readFile } from 'node:fs/promises';
import { median, timeMs } from './lib/measure.js';
import { rssKiB } from './lib/host.js';
import type { Engine } from './lib/references.js';
import type { ChartBar, Scenario, ScenarioOptions, ScenarioResult } from './lib/scenario.js';

async function parentPid(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may hold spaces.
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

async function comm(pid: number): Promise<string> {
  return (await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')).trim();
}

interface Measured {
  engine: Engine;
  ms: number;
  monitorKiB: number;
  monitorName: string;
  daemonKiB: number;
}

async function startMany(engine: Engine, count: number): Promise<Measured> {
  const label = `bench-${process.pid}`;
  const ms = await timeMs(() =>
    Promise.all(
      // Explicit names: berthd's generated names can collide under 100 concurrent creates.
      Array.from({ length: count }, (_, i) =>
        engine.ok(['run', '-d', '--name', `${label}-${i}`, '--label', label, engine.image, 'sleep', '300'], {
          timeoutMs: 300_000,
        }),
      ),
    ),
  );
  try {
    // Let start-up allocations settle before reading idle memory.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const ids = (await engine.ok(['ps', '-q', '--filter', `label=${label}`])).split('\n').filter(Boolean);
    if (ids.length !== count) throw new Error(`${engine.name}: ${ids.length} of ${count} containers running`);
    const pids = (await engine.ok(['inspect', '--format', '{{.State.Pid}}', ...ids]))
      .split('\n')
      .filter(Boolean);
    const monitors: number[] = [];
    let monitorName = '';
    for (const pid of pids) {
      const monitor = await parentPid(Number(pid));
      monitorName = await comm(monitor);
      monitors.push(await rssKiB(monitor));
    }
    const daemonKiB = engine.daemonPid === undefined ? NaN : await rssKiB(engine.daemonPid);
    return { engine, ms, monitorKiB: median(monitors), monitorName, daemonKiB };
  } finally {
    const ids = (await engine.cli(['ps', '-aq', '--filter', `label=${label}`])).stdout
      .split('\n')
      .filter(Boolean);
    for (let i = 0; i < ids.length; i += 25) {
      await engine.cli(['rm', '-f', ...ids.slice(i, i + 25)], { timeoutMs: 300_000 });
    }
  }
}

async function concurrent(options: ScenarioOptions): Promise<ScenarioResult[]> {
  const count = options.quick ? 5 : 100;
  const { berthdDocker, dockerd, podman } = options.engines;
  const engines = [berthdDocker, dockerd, podman].filter((e): e is Engine => e !== undefined);
  const measured: Measured[] = [];
  for (const engine of engines) {
    process.stderr.write(`bench:   ${count} x run -d on ${engine.name}\n`);
    measured.push(await startMany(engine, count));
  }
  const berth = measured.find((m) => m.engine.kind === 'berth');
  const docker = measured.find((m) => m.engine.kind === 'docker');
  const throughput: ScenarioResult = {
    name: `${count} concurrent run -d busybox sleep 300`,
    goal: 'throughput at least 5x dockerd’s (same docker CLI)',
    met: options.quick || !berth || !docker ? undefined : berth.ms * 5 <= docker.ms,
    contenders: measured.map((m) => ({
      name: m.engine.name,
      runs: 1,
      medianMs: m.ms,
      minMs: m.ms,
      maxMs: m.ms,
    })),
    ratios: {},
    figures: Object.fromEntries(
      measured.map((m) => [
        `containers per second: ${m.engine.name}`,
        Number(((count * 1000) / m.ms).toFixed(1)),
      ]),
    ),
    notes: [
      'One round per engine (each round is 100 starts); the default network (bridge) for every engine; each container named explicitly (berthd’s generated names collided under this load: "Conflict. The container name ... is already in use").',
    ],
    chart: [],
  };
  const memory: ScenarioResult = {
    name: `idle memory with ${count} running containers`,
    goal: 'per-container monitor under 1 MiB resident; berthd under 150 MiB resident with 100 containers',
    met: options.quick || !berth ? undefined : berth.monitorKiB < 1024 && berth.daemonKiB < 150 * 1024,
    contenders: [],
    ratios: {},
    figures: {},
    chart: [],
  };
  for (const m of measured) {
    memory.figures![`median monitor RSS KiB: ${m.engine.name} (${m.monitorName})`] = m.monitorKiB;
    if (Number.isFinite(m.daemonKiB)) memory.figures![`daemon RSS KiB: ${m.engine.name}`] = m.daemonKiB;
  }
  if (berth) {
    for (const reference of measured.filter((m) => m.engine.kind !== 'berth')) {
      const ratio = berth.ms / reference.ms;
      throughput.ratios[`berthd / ${reference.engine.name} (time for ${count})`] = ratio;
      const chart: ChartBar = {
        label: `${count} concurrent starts: berthd / ${reference.engine.name}`,
        value: ratio,
        better: 'lower',
      };
      if (reference.engine.kind === 'docker') chart.goal = 1 / 5;
      throughput.chart!.push(chart);
      const memRatio = berth.monitorKiB / reference.monitorKiB;
      memory.ratios[`monitor RSS: berth-shim / ${reference.monitorName}`] = memRatio;
      memory.chart!.push({
        label: `monitor RSS: berth-shim / ${reference.monitorName}`,
        value: memRatio,
        better: 'lower',
      });
    }
  }
  return [throughput, memory];
}

export const concurrentScenario: Scenario = { name: 'concurrent', run: concurrent };
