/**
 * Pull and unpack of the `large` fixture (Debian minbase, several layers) from the local
 * registry, cold (empty stores) and warm (already present); and preparing a container's root
 * filesystem on a 20-layer image. docker pull and podman pull of the same image from the same
 * registry are the references.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureFixture } from '../fixtures/index.js';
import { startRegistry, skopeoCopy } from '../test/helpers/registry.js';
import { ImageService } from '../src/image/image-service.js';
import { openSnapshotter } from '../src/snapshot/open.js';
import { applyLayer } from '../src/snapshot/apply-layer.js';
import { tarArchive } from '../src/archive/tar-writer.js';
import { Readable } from 'node:stream';
import { median, pairedRatio, summarize, timeMs } from './lib/measure.js';
import type { Engine } from './lib/references.js';
import type { ChartBar, Scenario, ScenarioOptions, ScenarioResult } from './lib/scenario.js';

/** One engine's pull, cold (nothing of the image stored) and warm (all of it stored). */
interface Puller {
  name: string;
  /** Make the next pull cold. */
  reset(): Promise<void>;
  pull(): Promise<void>;
}

function berthPuller(options: ScenarioOptions, reference: string): Puller {
  let round = 0;
  let images: ImageService | undefined;
  return {
    name: 'berth',
    reset: async () => {
      // A fresh data root per round: an empty content store and snapshotter.
      const dataRoot = join(options.workDir, `pull-${round++}`);
      await rm(join(options.workDir, `pull-${round - 2}`), { recursive: true, force: true });
      await mkdir(dataRoot, { recursive: true });
      images = await ImageService.open({
        dataRoot,
        snapshotter: await openSnapshotter(dataRoot, 'overlayfs'),
      });
    },
    pull: async () => {
      await images?.pull(reference);
    },
  };
}

function enginePuller(engine: Engine, reference: string, pullArgs: string[]): Puller {
  return {
    name: engine.name,
    reset: async () => {
      await engine.cli(['rmi', '-f', reference]);
    },
    pull: async () => {
      await engine.ok(['pull', ...pullArgs, reference], { timeoutMs: 600_000 });
    },
  };
}

async function pullScenario(options: ScenarioOptions): Promise<ScenarioResult> {
  const fixture = await ensureFixture(options.quick ? 'busybox' : 'large');
  const registry = await startRegistry();
  try {
    const reference = `${registry.host}/bench/${fixture.name}:latest`;
    await skopeoCopy(`oci:${fixture.ociLayout}:latest`, `docker://${reference}`);
    const { dockerd, podman } = options.engines;
    const pullers: Puller[] = [berthPuller(options, reference)];
    // dockerd treats 127.0.0.0/8 registries as insecure (plain HTTP) by default.
    if (dockerd) pullers.push(enginePuller(dockerd, reference, ['-q']));
    if (podman) pullers.push(enginePuller(podman, reference, ['-q', '--tls-verify=false']));
    const cold = pullers.map((p) => ({ name: `${p.name} cold`, ms: [] as number[] }));
    const warm = pullers.map((p) => ({ name: `${p.name} warm`, ms: [] as number[] }));
    const rounds = options.quick ? 1 : 3;
    for (let round = 0; round < rounds; round++) {
      for (const [index, puller] of pullers.entries()) {
        await puller.reset();
        cold[index]?.ms.push(await timeMs(() => puller.pull()));
        warm[index]?.ms.push(await timeMs(() => puller.pull()));
      }
    }
    for (const puller of pullers) await puller.reset();
    const berthCold = cold[0];
    const berthWarm = median(warm[0]?.ms ?? []);
    const ratios: Record<string, number> = {};
    const chart: ChartBar[] = [];
    for (const samples of cold.slice(1)) {
      if (!berthCold) continue;
      const ratio = pairedRatio(berthCold, samples);
      ratios[`cold: berth / ${samples.name.replace(/ cold$/, '')}`] = ratio;
      chart.push({
        label: `cold pull: berth / ${samples.name.replace(/ cold$/, '')}`,
        value: ratio,
        goal: 1 / 1.5,
        better: 'lower',
      });
    }
    const fastest = Math.min(...cold.slice(1).map((s) => median(s.ms)));
    const met =
      options.quick || cold.length < 2
        ? undefined
        : berthWarm < 50 && median(berthCold?.ms ?? []) * 1.5 <= fastest;
    return {
      name: `pull and unpack the ${fixture.name} fixture from a local registry`,
      goal: 'cold pull at least 1.5x faster than the faster of podman and docker; warm pull under 50 ms',
      met,
      contenders: [...cold, ...warm].map(summarize),
      ratios,
      chart,
      notes: [
        'berth pulls through its image library (as berthd does) into a fresh data root each round; docker and podman pull through their CLIs after `rmi` of the image, which removes its layers.',
      ],
    };
  } finally {
    await registry.stop();
  }
}

async function prepareScenario(options: ScenarioOptions): Promise<ScenarioResult> {
  const dataRoot = join(options.workDir, 'prepare');
  await mkdir(dataRoot, { recursive: true });
  const snapshotter = await openSnapshotter(dataRoot, 'overlayfs');
  let parent: string | undefined;
  for (let layer = 0; layer < 20; layer++) {
    const tar = tarArchive([
      { path: `layer-${layer}.txt`, type: 'file', mode: 0o644, content: Buffer.from(`${layer}\n`) },
    ]);
    const result = await applyLayer(snapshotter, Readable.from([tar]), parent);
    parent = result.chainId;
  }
  const samples: number[] = [];
  const rounds = options.quick ? 3 : 200;
  for (let i = 0; i < rounds; i++) {
    samples.push(await timeMs(() => snapshotter.prepare(`container-${i}`, parent)));
  }
  const med = median(samples);
  return {
    name: "prepare a container's root filesystem on a 20-layer image",
    goal: 'under 5 ms',
    met: options.quick ? undefined : med < 5,
    contenders: [summarize({ name: 'berth overlayfs prepare', ms: samples })],
    ratios: {},
  };
}

export const imagePullScenario: Scenario = { name: 'image-pull', run: pullScenario };
export const prepareRootfsScenario: Scenario = { name: 'prepare-rootfs', run: prepareScenario };
