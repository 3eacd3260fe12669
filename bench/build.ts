/**
 * A two-stage Dockerfile with a dozen steps from the busybox fixture, built cold (--no-cache),
 * fully cached, and after changing the file of the last COPY: the docker CLI (classic builder,
 * DOCKER_BUILDKIT=0) against berthd and dockerd, berth's CLI against podman build.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { alternate, pairedRatio, summarize, type Contender } from './lib/measure.js';
import type { Engine } from './lib/references.js';
import type { ChartBar, Scenario, ScenarioOptions, ScenarioResult } from './lib/scenario.js';

const PHASES = ['cold', 'cached', 'one file changed'] as const;
type Phase = (typeof PHASES)[number];

function dockerfile(image: string): string {
  return [
    `FROM ${image} AS base`,
    'RUN mkdir -p /app/data',
    'WORKDIR /app',
    'COPY a.txt /app/a.txt',
    'RUN for i in $(seq 1 200); do echo line $i; done > /app/data/lines',
    'ENV MODE=bench',
    'COPY b.txt /app/b.txt',
    'RUN cat /app/a.txt /app/b.txt > /app/ab.txt',
    `FROM ${image}`,
    'COPY --from=base /app/ab.txt /out/ab.txt',
    'COPY --from=base /app/data /out/data',
    'RUN wc -l /out/data/lines > /out/count',
    'COPY c.txt /out/c.txt',
    'LABEL bench=1',
    'CMD ["cat", "/out/count"]',
    '',
  ].join('\n');
}

/** Steps after the last COPY (which a one-file change must rebuild, and nothing before). */
const STEPS_AFTER_CHANGE = 2;

async function context(dir: string, image: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'Dockerfile'), dockerfile(image));
  await writeFile(join(dir, 'a.txt'), 'a\n');
  await writeFile(join(dir, 'b.txt'), 'b\n');
  await writeFile(join(dir, 'c.txt'), 'c 0\n');
}

interface Builder {
  engine: Engine;
  label: string;
  dir: string;
  env: NodeJS.ProcessEnv;
  /** "Using cache" lines of the last one-file-changed build. */
  cachedSteps?: number;
}

function contender(builder: Builder, phase: Phase, tag: string): Contender {
  let change = 0;
  return {
    name: `${builder.label} ${phase}`,
    run: async () => {
      // Content no other contender wrote: berthd's CLI and docker CLI share one content-addressed cache.
      if (phase === 'one file changed')
        await writeFile(join(builder.dir, 'c.txt'), `c ${builder.label} ${++change}\n`);
      const args = ['build', ...(phase === 'cold' ? ['--no-cache'] : []), '-t', tag, builder.dir];
      const out = await builder.engine.ok(args, { env: builder.env, timeoutMs: 300_000 });
      if (phase === 'one file changed') builder.cachedSteps = (out.match(/Using cache/g) ?? []).length;
    },
  };
}

async function build(options: ScenarioOptions): Promise<ScenarioResult> {
  const { berthdDocker, berth, dockerd, podman } = options.engines;
  const legacy = { DOCKER_BUILDKIT: '0' };
  const builders: Builder[] = [
    { engine: berthdDocker, label: 'berthd (docker CLI)', dir: '', env: legacy },
    ...(dockerd ? [{ engine: dockerd, label: 'dockerd (docker CLI)', dir: '', env: legacy }] : []),
    { engine: berth, label: 'berth CLI', dir: '', env: {} },
    ...(podman ? [{ engine: podman, label: 'podman', dir: '', env: {} }] : []),
  ];
  for (const [index, builder] of builders.entries()) {
    builder.dir = join(options.workDir, `context-${index}`);
    await context(builder.dir, builder.engine.image);
  }
  const tag = `bench-build-${process.pid}:latest`;
  const rounds = options.quick ? 1 : 5;
  const summaries = [];
  const ratios: Record<string, number> = {};
  const chart: ChartBar[] = [];
  const goals: Record<Phase, [string, string, number][]> = {
    cold: [['berthd (docker CLI)', 'dockerd (docker CLI)', 1 / 1.5]],
    cached: [
      ['berthd (docker CLI)', 'dockerd (docker CLI)', 1],
      ['berth CLI', 'podman', 1 / 5],
    ],
    'one file changed': [
      ['berthd (docker CLI)', 'dockerd (docker CLI)', 1],
      ['berth CLI', 'podman', 1],
    ],
  };
  let met: boolean | undefined = options.quick ? undefined : true;
  for (const phase of PHASES) {
    const samples = await alternate(
      builders.map((b) => contender(b, phase, tag)),
      rounds,
      options.quick || phase === 'cold' ? 0 : 1,
    );
    summaries.push(...samples.map(summarize));
    const byName = new Map(samples.map((s) => [s.name, s]));
    for (const [a, b, goal] of goals[phase]) {
      const sa = byName.get(`${a} ${phase}`);
      const sb = byName.get(`${b} ${phase}`);
      if (!sa || !sb) continue;
      const ratio = pairedRatio(sa, sb);
      ratios[`${phase}: ${a} / ${b}`] = ratio;
      chart.push({ label: `build ${phase}: ${a} / ${b}`, value: ratio, goal, better: 'lower' });
      // The one-file goal is about what is rebuilt (below), its ratio is reported only.
      if (phase !== 'one file changed' && met !== undefined && !(ratio <= goal)) met = false;
    }
  }
  const figures: Record<string, number> = {};
  for (const builder of builders)
    figures[`cached steps after the one-file change: ${builder.label}`] = builder.cachedSteps ?? NaN;
  const berthCached = builders.filter((b) => b.engine.kind === 'berth').map((b) => b.cachedSteps ?? 0);
  const totalSteps = dockerfile('x').trim().split('\n').length - 2; // FROM lines are no steps
  // More cached steps than that means the changed file was not noticed: as wrong as fewer.
  if (met !== undefined && berthCached.some((n) => n !== totalSteps - STEPS_AFTER_CHANGE - 1)) met = false;
  for (const builder of builders) await builder.engine.cli(['rmi', '-f', tag]);
  return {
    name: 'build a two-stage, 13-step Dockerfile',
    goal: 'cold at least 1.5x faster than docker; fully cached no slower than docker through the docker CLI and at least 5x faster than podman through berth’s CLI; a one-file change rebuilds only the steps after that COPY',
    met,
    contenders: summaries,
    ratios,
    figures,
    notes: [
      `"cached steps" counts the "Using cache" lines of the one-file-changed build: of the ${totalSteps} steps, exactly the ${totalSteps - STEPS_AFTER_CHANGE - 1} before the changed COPY should be cached; more means the change was missed.`,
    ],
    chart,
  };
}

export const buildScenario: Scenario = { name: 'build', run: build };
