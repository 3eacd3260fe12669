/**
 * TCP throughput between two containers on one bridge: iperf3 from the host run inside each
 * container's network namespace (nsenter --net), server in one, client in the other, so traffic
 * stays between namespaces the suite created. berthd against dockerd, alternating.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { execProgram } from '../test/helpers/exec.js';
import { alternate, median, summarize, type Contender } from './lib/measure.js';
import type { Engine } from './lib/references.js';
import type { Scenario, ScenarioOptions, ScenarioResult } from './lib/scenario.js';

interface Pair {
  engine: Engine;
  ids: string[];
  serverPid: number;
  clientPid: number;
  serverIp: string;
}

async function pair(engine: Engine): Promise<Pair> {
  const ids: string[] = [];
  for (let i = 0; i < 2; i++) {
    ids.push((await engine.ok(['run', '-d', engine.image, 'sleep', '600'])).trim());
  }
  const info = await engine.ok([
    'inspect',
    '--format',
    '{{.State.Pid}} {{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}',
    ...ids,
  ]);
  const [server, client] = info
    .trim()
    .split('\n')
    .map((line) => line.split(' '));
  if (!server?.[1] || !client?.[0])
    throw new Error(`${engine.name}: no address for the iperf3 containers: ${info}`);
  return { engine, ids, serverPid: Number(server[0]), clientPid: Number(client[0]), serverIp: server[1] };
}

/** One iperf3 run of `seconds`; bits per second received. */
async function measure(p: Pair, seconds: number): Promise<number> {
  let server: ChildProcess | undefined;
  let exited: Promise<unknown> = Promise.resolve();
  // The one-off server (-1) is started again after a run that ended without a received sum
  // (iperf3 then reports an error in its JSON and may exit 0): such a run is retried, not
  // counted as no throughput.
  const serve = (): void => {
    server = spawn('nsenter', [`--net=/proc/${p.serverPid}/ns/net`, 'iperf3', '-s', '-1', '-p', '5201'], {
      stdio: 'ignore',
    });
    exited = once(server, 'exit');
  };
  let failure = 'could not connect';
  try {
    serve();
    // The server needs a moment to listen; retry the client a bounded number of times.
    for (let attempt = 0; attempt < 20; attempt++) {
      const result = await execProgram(
        'nsenter',
        [
          `--net=/proc/${p.clientPid}/ns/net`,
          'iperf3',
          '-c',
          p.serverIp,
          '-p',
          '5201',
          '-t',
          String(seconds),
          '-J',
        ],
        { timeoutMs: (seconds + 20) * 1000 },
      );
      if (result.code === 0 || result.stdout.trim().startsWith('{')) {
        const report = JSON.parse(result.stdout) as {
          error?: string;
          end?: { sum_received?: { bits_per_second?: number } };
        };
        const bps = report.end?.sum_received?.bits_per_second;
        if (result.code === 0 && bps !== undefined && Number.isFinite(bps)) return bps;
        failure = report.error ?? 'no received sum in its report';
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
      if (server?.exitCode !== null || server.signalCode !== null) {
        await exited;
        serve();
      }
    }
    throw new Error(`${p.engine.name}: iperf3 client to ${p.serverIp}: ${failure}`);
  } finally {
    if (server && server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
    await exited;
  }
}

async function iperf(options: ScenarioOptions): Promise<ScenarioResult> {
  const { berthdDocker, dockerd } = options.engines;
  const engines = [berthdDocker, ...(dockerd ? [dockerd] : [])];
  const seconds = options.quick ? 1 : 5;
  const pairs: Pair[] = [];
  try {
    for (const engine of engines) pairs.push(await pair(engine));
    const gbps = new Map<string, number[]>();
    // alternate() times each run; the figure that matters is the throughput iperf3 reports.
    const contenders: Contender[] = pairs.map((p) => ({
      name: p.engine.name,
      run: async () => {
        const bps = await measure(p, seconds);
        gbps.set(p.engine.name, [...(gbps.get(p.engine.name) ?? []), bps / 1e9]);
      },
    }));
    const samples = await alternate(contenders, options.quick ? 1 : 5, 0);
    const figures: Record<string, number> = {};
    for (const [name, values] of gbps)
      figures[`Gbit/s (median): ${name}`] = Number(median(values).toFixed(2));
    const berth = median(gbps.get(berthdDocker.name) ?? []);
    const docker = dockerd ? median(gbps.get(dockerd.name) ?? []) : NaN;
    const ratios: Record<string, number> = {};
    const chart = [];
    if (Number.isFinite(docker)) {
      ratios['throughput: berthd / dockerd'] = berth / docker;
      chart.push({
        label: 'iperf3 throughput: berthd / dockerd',
        value: berth / docker,
        goal: 0.9,
        better: 'higher' as const,
      });
    }
    return {
      name: `iperf3 between two containers on one bridge (${seconds} s per run)`,
      goal: 'within 10% of the same measurement under Docker',
      met: options.quick || !Number.isFinite(docker) ? undefined : berth >= docker * 0.9,
      contenders: samples.map(summarize),
      ratios,
      figures,
      notes: ['The contender times are whole iperf3 runs; the throughput figures are what iperf3 reports.'],
      chart,
    };
  } finally {
    for (const p of pairs) await p.engine.cli(['rm', '-f', ...p.ids]);
  }
}

export const iperfScenario: Scenario = { name: 'iperf', run: iperf };
