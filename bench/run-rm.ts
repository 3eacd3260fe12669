/**
 * `run --rm busybox true` latency: the same docker CLI against berthd and dockerd, and berth's
 * own CLI against podman, each with --network none and with the default bridge, all alternating
 * in one loop. The bridge-cost scenario is computed from the same samples (bridge-cost.ts).
 */
import { performance } from 'node:perf_hooks';
import { alternate, pairedRatio, summarize, type Contender, type Samples } from './lib/measure.js';
import type { Engine } from './lib/references.js';
import type { ChartBar, Scenario, ScenarioOptions, ScenarioResult } from './lib/scenario.js';
import { bridgeCostResult } from './bridge-cost.js';

export const NETWORKS = ['none', 'bridge'] as const;

/**
 * More none/bridge pairs for berth's engines than the 15 rounds give: berth's few milliseconds of
 * bridge cost sit under run-to-run noise of ±10 ms, where the references' 50-250 ms do not.
 */
const EXTRA_BERTH_BRIDGE_ROUNDS = 85;
/** The pause before each of those runs (alternatePairs()). */
const SETTLE_MS = 150;

function contender(engine: Engine, network: string): Contender {
  return {
    name: `${engine.name} ${network}`,
    run: () =>
      engine
        .ok(['run', '--rm', '--network', network, engine.image, 'true'], { timeoutMs: 60_000 })
        .then(() => undefined),
  };
}

/** Pairs compared: [berth side, reference side, goal ratio]. */
function pairs(options: ScenarioOptions): [Engine, Engine | undefined, number][] {
  const { berthdDocker, berth, dockerd, podman } = options.engines;
  return [
    [berthdDocker, dockerd, 1 / 5],
    [berth, podman, 1 / 2.5],
  ];
}

async function runRm(options: ScenarioOptions): Promise<ScenarioResult[]> {
  const engines = pairs(options).flatMap(([a, b]) => (b ? [a, b] : [a]));
  const contenders = engines.flatMap((engine) => NETWORKS.map((network) => contender(engine, network)));
  const samples = await alternate(contenders, options.quick ? 1 : 15, options.quick ? 0 : 2);
  const byName = new Map<string, Samples>(samples.map((s) => [s.name, s]));
  const forBridgeCost = new Map(byName);
  if (!options.quick) {
    const berthEngines = engines.filter((engine) => engine.kind === 'berth');
    for (const extra of await alternatePairs(berthEngines, EXTRA_BERTH_BRIDGE_ROUNDS)) {
      const first = byName.get(extra.name);
      forBridgeCost.set(extra.name, { name: extra.name, ms: [...(first?.ms ?? []), ...extra.ms] });
    }
  }
  const ratios: Record<string, number> = {};
  const chart: ChartBar[] = [];
  let met: boolean | undefined = options.quick ? undefined : true;
  for (const [berthSide, reference, goal] of pairs(options)) {
    if (!reference) continue;
    for (const network of NETWORKS) {
      const a = byName.get(`${berthSide.name} ${network}`);
      const b = byName.get(`${reference.name} ${network}`);
      if (!a || !b) continue;
      const label = `${berthSide.name} / ${reference.name}, ${network}`;
      const ratio = pairedRatio(a, b);
      ratios[label] = ratio;
      chart.push({ label: `run --rm: ${label}`, value: ratio, goal, better: 'lower' });
      if (met !== undefined && !(ratio <= goal)) met = false;
    }
  }
  const result: ScenarioResult = {
    name: 'run --rm busybox true',
    goal: 'through the same docker CLI, berthd at least 5x faster than dockerd; berth run at least 2.5x faster than podman run (none and bridge)',
    met,
    contenders: samples.map(summarize),
    ratios,
    chart,
  };
  return [result, bridgeCostResult(engines, forBridgeCost, options.quick)];
}

/**
 * Rounds of none and bridge per engine, none first in even rounds and bridge first in odd ones.
 * Each run starts after a pause: what the run before left to finish (berthd removes a container's
 * files after answering; the kernel frees a network namespace after it is dropped) would
 * otherwise land on whichever run comes next, a few milliseconds either way.
 */
async function alternatePairs(engines: Engine[], rounds: number): Promise<Samples[]> {
  const samples = new Map<string, number[]>();
  for (let round = 0; round < rounds; round++) {
    for (const engine of engines) {
      const order = round % 2 === 0 ? NETWORKS : [...NETWORKS].reverse();
      for (const network of order) {
        const one = contender(engine, network);
        await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
        const start = performance.now();
        await one.run();
        const ms = performance.now() - start;
        samples.set(one.name, [...(samples.get(one.name) ?? []), ms]);
      }
    }
  }
  return [...samples].map(([name, ms]) => ({ name, ms }));
}

export const runRmScenario: Scenario = { name: 'run-rm', run: runRm };
