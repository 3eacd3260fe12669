/**
 * Manifests, indexes and image configs from a registry, fuzzed: mutated documents (a seeded PRNG,
 * BERTH_FUZZ_SEED) go through parseManifestDocument, platform selection on the indexes it accepts,
 * and runConfigOf / historyOf on configs. Each must end in a result or a BerthError; a TypeError
 * or any other exception is a crash.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BerthError } from '../../../src/common/errors.js';
import { parseManifestDocument } from '../../../src/image/registry/manifest.js';
import { selectManifest } from '../../../src/image/registry/platform.js';
import { historyOf, runConfigOf } from '../../../src/image/store/image-config.js';
import type { ImageConfig } from '../../../src/oci/image-spec.js';
import { prng } from '../../helpers/prng.js';

const SEED = Number(process.env.BERTH_FUZZ_SEED ?? 0x5eed);
const ITERATIONS = 4000;
const BUDGET_MS = 3000;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const digest = (c: string): string => `sha256:${c.repeat(64)}`;
const MANIFEST: Json = {
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digest('a'), size: 100 },
  layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: digest('b'), size: 200 }],
};
const INDEX: Json = {
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.index.v1+json',
  manifests: [
    {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: digest('c'),
      size: 300,
      platform: { architecture: 'amd64', os: 'linux' },
    },
    {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: digest('d'),
      size: 300,
      platform: { architecture: 'arm', os: 'linux', variant: 'v7', 'os.features': ['x'] },
    },
  ],
};
const CONFIG: Json = {
  architecture: 'amd64',
  os: 'linux',
  created: '2024-01-01T00:00:00Z',
  config: {
    Entrypoint: ['/bin/sh'],
    Cmd: ['-c', 'true'],
    Env: ['PATH=/bin'],
    User: '1000',
    WorkingDir: '/w',
    ExposedPorts: { '80/tcp': {} },
    Volumes: { '/v': {} },
    Labels: { a: 'b' },
    Healthcheck: { Test: ['CMD', 'true'] },
    StopSignal: 'SIGTERM',
    Shell: ['/bin/sh', '-c'],
    OnBuild: ['RUN true'],
  },
  rootfs: { type: 'layers', diff_ids: [digest('e')] },
  history: [{ created: '2024-01-01T00:00:00Z', created_by: 'ADD x', empty_layer: false, comment: 'c' }],
};

function mutateJson(document: Json, random: () => number): Json {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const values: Json[] = [
    null,
    true,
    0,
    -1,
    1.5,
    2 ** 63,
    '',
    'x',
    'sha256:',
    [],
    {},
    [null],
    { a: 1 },
    '1e309',
  ];
  const copy = JSON.parse(JSON.stringify(document)) as Json;
  for (let round = 1 + Math.floor(random() * 3); round > 0; round--) {
    const holders: Array<[Record<string | number, Json>, string | number]> = [];
    const walk = (node: Json): void => {
      if (Array.isArray(node))
        node.forEach((child, i) => {
          holders.push([node as unknown as Record<number, Json>, i]);
          walk(child);
        });
      else if (node !== null && typeof node === 'object')
        for (const [key, child] of Object.entries(node)) {
          holders.push([node, key]);
          walk(child);
        }
    };
    walk(copy);
    if (holders.length === 0) break;
    const [parent, key] = pick(holders);
    if (random() < 0.2) delete parent[key];
    // A copy, so that no value is shared (and no cycle made) between places.
    else parent[key] = JSON.parse(JSON.stringify(pick(values))) as Json;
  }
  return copy;
}

function mutateText(text: string, random: () => number): string {
  const at = Math.floor(random() * (text.length + 1));
  return random() < 0.5 ? text.slice(0, at) : text.slice(0, at) + '"]},' + text.slice(at + 1);
}

function fuzz(name: string, seed: Json, run: (text: string) => unknown): string[] {
  const random = prng(SEED ^ name.length);
  const crashes: string[] = [];
  const started = Date.now();
  let runs = 0;
  for (; runs < ITERATIONS && Date.now() - started < BUDGET_MS; runs++) {
    let text = JSON.stringify(mutateJson(seed, random));
    if (random() < 0.1) text = mutateText(text, random);
    try {
      run(text);
    } catch (err) {
      if (!(err instanceof BerthError) && crashes.length < 5)
        crashes.push(`${text}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    }
  }
  assert.ok(runs >= 100, `only ${runs} inputs in the time budget`);
  return crashes;
}

const parseAndSelect = (text: string): void => {
  const parsed = parseManifestDocument(Buffer.from(text), undefined, 'manifest');
  if (parsed.kind === 'index') selectManifest(parsed.index.manifests, { architecture: 'amd64', os: 'linux' });
};

test('manifests: a result or a BerthError', () => {
  assert.deepEqual(fuzz('manifest', MANIFEST, parseAndSelect), [], `seed ${SEED}`);
});

test('indexes and platform selection: a result or a BerthError', () => {
  assert.deepEqual(fuzz('index-and-platform', INDEX, parseAndSelect), [], `seed ${SEED}`);
});

test('image configs: run config and history, a result or a BerthError', () => {
  const crashes = fuzz('image-config', CONFIG, (text) => {
    const config = JSON.parse(text) as ImageConfig;
    runConfigOf(config);
    historyOf(digest('f'), config, [200], ['a:b']);
  });
  // JSON.parse of a text mutation throws a SyntaxError before berth sees it: not a crash of ours.
  assert.deepEqual(
    crashes.filter((crash) => !/SyntaxError/.test(crash)),
    [],
    `seed ${SEED}`,
  );
});
