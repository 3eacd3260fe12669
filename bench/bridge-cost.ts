/**
 * Time the default bridge adds to `run --rm true` per engine: the median of per-round
 * differences (bridge minus none) of the run-rm samples, which alternate both in one loop, and
 * for berth's engines of more rounds of their own (run-rm.ts, EXTRA_BERTH_BRIDGE_ROUNDS).
 */
import { pairedDifference, type Samples } from './lib/measure.js';
import type { Engine } from './lib/references.js';
import type { ChartBar, ScenarioResult } from './lib/scenario.js';

export function bridgeCostResult(
  engines: Engine[],
  samples: Map<string, Samples>,
  quick: boolean,
): ScenarioResult {
  const figures: Record<string, number> = {};
  const added = new Map<Engine, number>();
  for (const engine of engines) {
    const none = samples.get(`${engine.name} none`);
    const bridge = samples.get(`${engine.name} bridge`);
    if (!none || !bridge) continue;
    const ms = pairedDifference(bridge, none);
    added.set(engine, ms);
    figures[`ms added by the bridge: ${engine.name}`] = Number(ms.toFixed(2));
    figures[`rounds: ${engine.name}`] = Math.min(bridge.ms.length, none.ms.length);
  }
  const berth = [...added].filter(([engine]) => engine.kind === 'berth').map(([, ms]) => ms);
  const references = [...added].filter(([engine]) => engine.kind !== 'berth');
  const berthWorst = Math.max(...berth);
  const ratios: Record<string, number> = {};
  const chart: ChartBar[] = [];
  for (const [engine, ms] of references) {
    // Against a reference whose bridge costs nothing measurable the ratio means nothing.
    if (ms <= 0) continue;
    const label = `bridge cost: berth (worst) / ${engine.name}`;
    ratios[label] = Math.max(berthWorst, 0) / ms;
    chart.push({ label, value: Math.max(berthWorst, 0.01) / ms, goal: 1 / 5, better: 'lower' });
  }
  const met =
    quick || references.length === 0
      ? undefined
      : berthWorst < 5 && references.every(([, ms]) => Math.max(berthWorst, 0) * 5 <= ms);
  return {
    name: 'bridge network setup cost (bridge minus none, run --rm true)',
    goal: 'under 5 ms added per container by berth, and at least 5x less than dockerd and podman',
    met,
    contenders: [],
    ratios,
    figures,
    notes: [
      'Computed from the run --rm samples: each round ran every engine with none and with bridge; berth’s engines then ran more rounds of their own (none and bridge, the order alternating, each run after a 150 ms pause so that what the run before left to finish does not land on it; the rounds figures), since their few milliseconds sit under the ±10 ms noise of one run.',
    ],
    chart,
  };
}
