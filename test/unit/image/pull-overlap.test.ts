import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { invalidArgument } from '../../../src/common/errors.js';
import { FsContentStore } from '../../../src/content/fs-store.js';
import { RegistryClient } from '../../../src/image/registry/client.js';
import { pull } from '../../../src/image/registry/pull.js';
import { addImage, FakeRegistry } from './registry-fake.js';

async function tempStore(t: TestContext): Promise<FsContentStore> {
  const root = await mkdtemp(join(tmpdir(), 'berth-overlap-unit-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  return new FsContentStore(root);
}

const client = (): RegistryClient => new RegistryClient({ backoffMs: 1, maxBackoffMs: 5, timeoutMs: 5_000 });

test('work runs while layers download: stored(i) resolves once layer i is in the store', async (t) => {
  const registry = await FakeRegistry.start(t);
  const image = addImage(registry, 'app/one', 'v1', { layerSizes: [200_000, 3000, 4000] });
  const store = await tempStore(t);
  const seen: string[] = [];
  let layersOfPlan = 0;
  await pull(client(), `${registry.host}/app/one:v1`, {
    store,
    whileDownloading: async (plan) => {
      assert.equal(plan.configDigest, image.configDigest);
      layersOfPlan = plan.manifest.layers.length;
      for (const [i, layer] of plan.manifest.layers.entries()) {
        await plan.stored(i);
        assert.ok(await store.info(layer.digest), `layer ${i} is stored when stored(${i}) resolves`);
        seen.push(layer.digest);
      }
    },
  });
  assert.equal(layersOfPlan, 3);
  assert.deepEqual(seen, image.layerDigests);
  // The manifest is stored last, after the work finished.
  assert.ok(await store.info(image.manifestDigest));
});

test('a failing work fails the pull with its own error and stores no manifest', async (t) => {
  const registry = await FakeRegistry.start(t);
  const image = addImage(registry, 'app/two', 'v1', { layerSizes: [3000, 4000] });
  const store = await tempStore(t);
  await assert.rejects(
    pull(client(), `${registry.host}/app/two:v1`, {
      store,
      whileDownloading: async (plan) => {
        await plan.stored(0);
        throw invalidArgument('layer 0 cannot be applied');
      },
    }),
    /layer 0 cannot be applied/,
  );
  assert.equal(await store.info(image.manifestDigest), undefined);
});

test('a failing download rejects stored() and fails the pull', async (t) => {
  const registry = await FakeRegistry.start(t);
  const image = addImage(registry, 'app/three', 'v1', { layerSizes: [3000] });
  const layer = image.layerDigests[0] as string;
  registry.hook = (request, response) => {
    if (!request.url?.includes(layer)) return false;
    response.writeHead(404, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ errors: [{ code: 'BLOB_UNKNOWN', message: 'blob unknown' }] }));
    return true;
  };
  let storedFailed = false;
  await assert.rejects(
    pull(client(), `${registry.host}/app/three:v1`, {
      store: await tempStore(t),
      whileDownloading: async (plan) => {
        await plan.stored(0).catch((err: unknown) => {
          storedFailed = true;
          throw err;
        });
      },
    }),
  );
  assert.ok(storedFailed, 'the work saw the download fail');
});
