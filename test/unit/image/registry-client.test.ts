import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { BerthError } from '../../../src/common/errors.js';
import { FsContentStore } from '../../../src/content/fs-store.js';
import { StaticCredentials } from '../../../src/image/auth/credentials.js';
import { RegistryClient, type RegistryClientOptions } from '../../../src/image/registry/client.js';
import { UnauthorizedError } from '../../../src/image/registry/errors.js';
import type { ProgressEvent } from '../../../src/image/registry/progress.js';
import { pull } from '../../../src/image/registry/pull.js';
import { push } from '../../../src/image/registry/push.js';
import { addImage, FakeRegistry } from './registry-fake.js';

async function tempStore(t: TestContext): Promise<FsContentStore> {
  const root = await mkdtemp(join(tmpdir(), 'berth-registry-unit-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  return new FsContentStore(root);
}

/** Fast retries so failure paths do not slow the suite; the counts are what is tested. */
const fast = (options: RegistryClientOptions = {}): RegistryClient =>
  new RegistryClient({ backoffMs: 1, maxBackoffMs: 5, timeoutMs: 5_000, ...options });

test('pull verifies and stores config, layers and manifest, reporting progress per layer', async (t) => {
  const registry = await FakeRegistry.start(t);
  const image = addImage(registry, 'app/one', 'v1', { layerSizes: [700_000, 2000, 3000, 4000] });
  const store = await tempStore(t);
  const events: ProgressEvent[] = [];
  const result = await pull(fast(), `${registry.host}/app/one:v1`, {
    store,
    concurrency: 2,
    onProgress: (event) => events.push(event),
  });
  assert.equal(result.manifestDigest, image.manifestDigest);
  assert.equal(result.configDigest, image.configDigest);
  assert.deepEqual(
    result.layers.map((l) => l.digest),
    image.layerDigests,
  );
  for (const [i, digest] of image.layerDigests.entries())
    assert.deepEqual(await store.readAll(digest), image.layers[i]);
  assert.deepEqual(await store.readAll(image.manifestDigest), image.manifest);

  const id = (digest: string): string => digest.slice(7, 19);
  // Two run at once; the other two wait.
  const waiting = events.filter((e) => e.status === 'Waiting').map((e) => e.id);
  assert.deepEqual(waiting, image.layerDigests.slice(2).map(id));
  const big = events.filter((e) => e.id === id(image.layerDigests[0] as string));
  assert.equal(big[0]?.status, 'Pulling fs layer');
  const downloading = big.filter((e) => e.status === 'Downloading');
  assert.ok(downloading.length >= 2, 'a 700 kB layer reports progress more than once');
  assert.deepEqual(downloading.at(-1)?.progressDetail, { current: 700_000, total: 700_000 });
  assert.deepEqual(
    big.slice(-2).map((e) => e.status),
    ['Verifying Checksum', 'Download complete'],
  );
});

test('bearer auth: the token comes from the challenge realm with service and scope, and is cached', async (t) => {
  for (const tokenField of ['token', 'access_token'] as const) {
    const registry = await FakeRegistry.start(t, { auth: 'bearer', tokenField, users: { u: 'p' } });
    addImage(registry, 'team/app', 'latest');
    const client = fast({
      credentials: new StaticCredentials({ [registry.host]: { username: 'u', password: 'p' } }),
    });
    // Two pulls at once: the second waits for the first one's token request.
    const stores = [await tempStore(t), await tempStore(t)];
    await Promise.all(stores.map((store) => pull(client, `${registry.host}/team/app`, { store })));
    await pull(client, `${registry.host}/team/app`, { store: await tempStore(t) });
    assert.equal(registry.tokenRequests.length, 1, `one token for all pulls (${tokenField})`);
    const params = registry.tokenRequests[0] as URLSearchParams;
    assert.equal(params.get('service'), 'fake-registry');
    assert.deepEqual(params.getAll('scope'), ['repository:team/app:pull']);
    assert.equal(params.get('account'), 'u');
    const blobRequests = registry.requests('GET', /\/blobs\//);
    assert.ok(blobRequests.length > 0);
    assert.ok(blobRequests.every((r) => r.authorization?.startsWith('Bearer ')));
  }
});

test('bearer auth with an identity token posts an OAuth refresh-token grant', async (t) => {
  const registry = await FakeRegistry.start(t, { auth: 'bearer', tokenField: 'access_token' });
  const image = addImage(registry, 'team/app', 'latest');
  const client = fast({
    credentials: new StaticCredentials({ [registry.host]: { identityToken: 'good-refresh' } }),
  });
  const result = await pull(client, `${registry.host}/team/app`, { store: await tempStore(t) });
  assert.equal(result.manifestDigest, image.manifestDigest);
  const form = registry.tokenRequests[0] as URLSearchParams;
  assert.equal(form.get('grant_type'), 'refresh_token');
  assert.equal(form.get('refresh_token'), 'good-refresh');
  assert.equal(form.get('service'), 'fake-registry');
  assert.equal(form.get('scope'), 'repository:team/app:pull');
  assert.equal(registry.requests('POST', /^\/token$/).length, 1);
  const rejected = fast({
    credentials: new StaticCredentials({ [registry.host]: { identityToken: 'stale' } }),
  });
  await assert.rejects(
    pull(rejected, `${registry.host}/team/app`, { store: await tempStore(t) }),
    (err: Error) => err instanceof UnauthorizedError && /bad refresh token/.test(err.message),
  );
});

test('bearer auth: wrong credentials give an UnauthorizedError with the server message', async (t) => {
  const registry = await FakeRegistry.start(t, { auth: 'bearer', users: { u: 'p' } });
  addImage(registry, 'team/app', 'latest');
  const client = fast({
    credentials: new StaticCredentials({ [registry.host]: { username: 'u', password: 'x' } }),
  });
  await assert.rejects(
    pull(client, `${registry.host}/team/app`, { store: await tempStore(t) }),
    (err: Error) => err instanceof UnauthorizedError && /bad credentials/.test(err.message),
  );
});

test('basic auth: credentials are sent; without them the pull is refused', async (t) => {
  const registry = await FakeRegistry.start(t, { auth: 'basic', users: { u: 'p' } });
  const image = addImage(registry, 'team/app', 'latest');
  const client = fast({
    credentials: new StaticCredentials({ [registry.host]: { username: 'u', password: 'p' } }),
  });
  const result = await pull(client, `${registry.host}/team/app`, { store: await tempStore(t) });
  assert.equal(result.manifestDigest, image.manifestDigest);
  const expected = `Basic ${Buffer.from('u:p').toString('base64')}`;
  assert.ok(registry.requests('GET', /\/manifests\//).every((r) => r.authorization === expected));
  await assert.rejects(
    pull(fast(), `${registry.host}/team/app`, { store: await tempStore(t) }),
    (err: Error) => err instanceof UnauthorizedError && /docker login/.test(err.message),
  );
});

test('a redirect to blob storage on another host drops the Authorization header', async (t) => {
  const registry = await FakeRegistry.start(t, { auth: 'basic', users: { u: 'p' } });
  const image = addImage(registry, 'team/app', 'latest');
  const seen: Array<string | undefined> = [];
  const storage = createServer((request, response) => {
    seen.push(request.headers.authorization);
    const digest = (request.url ?? '').slice(1);
    const data = registry.blobs.get('team/app')?.get(digest);
    response.writeHead(data ? 200 : 404);
    response.end(data);
  });
  await new Promise<void>((resolve) => storage.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => storage.close(() => resolve())));
  const address = storage.address();
  const storageUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  registry.hook = (request, response) => {
    const match = /\/blobs\/(sha256:[0-9a-f]+)$/.exec(request.url ?? '');
    if (request.method !== 'GET' || !match) return false;
    response.writeHead(307, { location: `${storageUrl}/${match[1]}` });
    response.end();
    return true;
  };
  const client = fast({
    credentials: new StaticCredentials({ [registry.host]: { username: 'u', password: 'p' } }),
  });
  const store = await tempStore(t);
  await pull(client, `${registry.host}/team/app`, { store });
  assert.equal(seen.length, 1 + image.layerDigests.length);
  assert.ok(
    seen.every((header) => header === undefined),
    'storage never sees the registry credentials',
  );
  for (const [i, digest] of image.layerDigests.entries())
    assert.deepEqual(await store.readAll(digest), image.layers[i]);
});

test('503 answers are retried with backoff, a bounded number of times', async (t) => {
  const registry = await FakeRegistry.start(t);
  const image = addImage(registry, 'app/x', 'latest');
  let failures = 2;
  registry.hook = (request, response) => {
    if (!/\/manifests\//.test(request.url ?? '') || failures <= 0) return false;
    failures--;
    response.writeHead(503, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: 'try later' }] }));
    return true;
  };
  const result = await pull(fast(), `${registry.host}/app/x`, { store: await tempStore(t) });
  assert.equal(result.manifestDigest, image.manifestDigest);
  assert.equal(registry.requests('GET', /\/manifests\//).length, 3);

  failures = Infinity;
  await assert.rejects(
    pull(fast({ retries: 2 }), `${registry.host}/app/x`, { store: await tempStore(t) }),
    (err: BerthError) => err.kind === 'unavailable' && /503 unavailable: try later/.test(err.message),
  );
  assert.equal(registry.requests('GET', /\/manifests\//).length, 3 + 3, 'first try and two retries');
});

test('a connection reset before any answer is retried', async (t) => {
  const registry = await FakeRegistry.start(t);
  const image = addImage(registry, 'app/x', 'latest');
  let resets = 1;
  registry.hook = (request) => {
    if (!/\/manifests\//.test(request.url ?? '') || resets <= 0) return false;
    resets--;
    request.socket.destroy();
    return true;
  };
  const result = await pull(fast(), `${registry.host}/app/x`, { store: await tempStore(t) });
  assert.equal(result.manifestDigest, image.manifestDigest);
  assert.equal(registry.requests('GET', /\/manifests\//).length, 2);
});

test('a connection cut mid-blob is resumed with a Range request', async (t) => {
  const registry = await FakeRegistry.start(t);
  const image = addImage(registry, 'app/big', 'latest', { layerSizes: [300_000] });
  const layerDigest = image.layerDigests[0] as string;
  const layer = image.layers[0] as Buffer;
  let cut = false;
  registry.hook = (request, response) => {
    if (cut || !(request.url ?? '').endsWith(layerDigest) || request.method !== 'GET') return false;
    cut = true;
    response.writeHead(200, { 'content-length': layer.length });
    response.write(layer.subarray(0, 100_000), () => setTimeout(() => response.socket?.destroy(), 20));
    return true;
  };
  const store = await tempStore(t);
  const result = await pull(fast(), `${registry.host}/app/big`, { store });
  assert.deepEqual(await store.readAll(layerDigest), layer);
  const gets = registry.requests('GET', new RegExp(`${layerDigest}$`));
  assert.equal(gets.length, 2);
  assert.equal(gets[0]?.range, undefined);
  const resumedAt = Number(/^bytes=(\d+)-$/.exec(gets[1]?.range ?? '')?.[1]);
  assert.ok(resumedAt > 0 && resumedAt <= 100_000, `resumed at ${gets[1]?.range}`);
  assert.equal(result.manifestDigest, image.manifestDigest);
});

test('with one attempt per blob, the partial download stays and the next pull resumes it', async (t) => {
  const registry = await FakeRegistry.start(t);
  const image = addImage(registry, 'app/big', 'latest', { layerSizes: [200_000] });
  const layerDigest = image.layerDigests[0] as string;
  const layer = image.layers[0] as Buffer;
  let cut = false;
  registry.hook = (request, response) => {
    if (cut || !(request.url ?? '').endsWith(layerDigest) || request.method !== 'GET') return false;
    cut = true;
    response.writeHead(200, { 'content-length': layer.length });
    response.write(layer.subarray(0, 50_000), () => setTimeout(() => response.socket?.destroy(), 20));
    return true;
  };
  const store = await tempStore(t);
  await assert.rejects(pull(fast(), `${registry.host}/app/big`, { store, blobAttempts: 1 }));
  const [partial] = await store.listIngests();
  assert.ok(partial && partial.offset > 0, 'partial data is kept');
  assert.equal(await store.info(image.manifestDigest), undefined, 'no manifest without its layers');
  await pull(fast(), `${registry.host}/app/big`, { store });
  const gets = registry.requests('GET', new RegExp(`${layerDigest}$`));
  assert.equal(gets.at(-1)?.range, `bytes=${partial.offset}-`);
  assert.deepEqual(await store.readAll(layerDigest), layer);
});

test('a registry that never answers times out, bounded in attempts', async (t) => {
  const registry = await FakeRegistry.start(t);
  addImage(registry, 'app/x', 'latest');
  registry.hook = (request) => /\/manifests\//.test(request.url ?? '');
  await assert.rejects(
    pull(fast({ timeoutMs: 100, retries: 1 }), `${registry.host}/app/x`, { store: await tempStore(t) }),
    (err: BerthError) => err.kind === 'unavailable' && /no data from the registry/.test(err.message),
  );
  assert.equal(registry.requests('GET', /\/manifests\//).length, 2);
});

test('schema 1 manifests and foreign layers are refused with a clear message', async (t) => {
  const registry = await FakeRegistry.start(t);
  registry.addManifest(
    'old/image',
    'latest',
    'application/vnd.docker.distribution.manifest.v1+prettyjws',
    Buffer.from(JSON.stringify({ schemaVersion: 1, name: 'old/image', tag: 'latest', fsLayers: [] })),
  );
  await assert.rejects(
    pull(fast(), `${registry.host}/old/image`, { store: await tempStore(t) }),
    (err: BerthError) =>
      err.kind === 'invalid-argument' && /schema 1, which berth does not support/.test(err.message),
  );
  addImage(registry, 'win/image', 'latest', {
    mutate: (manifest) => {
      const layers = manifest.layers as Array<Record<string, unknown>>;
      (layers[0] as Record<string, unknown>).mediaType =
        'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip';
      (layers[0] as Record<string, unknown>).urls = ['https://example.invalid/layer'];
    },
  });
  const store = await tempStore(t);
  await assert.rejects(
    pull(fast(), `${registry.host}/win/image`, { store }),
    (err: BerthError) =>
      err.kind === 'invalid-argument' && /foreign \(non-distributable\) layer/.test(err.message),
  );
  assert.equal(registry.requests('GET', /\/blobs\//).length, 0, 'nothing is downloaded');
});

test('a manifest whose content does not match the digest asked for is refused', async (t) => {
  const registry = await FakeRegistry.start(t);
  const image = addImage(registry, 'app/x', 'latest');
  const other = addImage(registry, 'app/x', 'other');
  registry.manifests.get('app/x')?.set(image.manifestDigest, {
    contentType: 'application/vnd.docker.distribution.manifest.v2+json',
    data: other.manifest,
  });
  await assert.rejects(
    pull(fast(), `${registry.host}/app/x@${image.manifestDigest}`, { store: await tempStore(t) }),
    (err: BerthError) => err.kind === 'invalid-argument' && err.message.includes(other.manifestDigest),
  );
});

test('a manifest list is resolved by platform', async (t) => {
  const registry = await FakeRegistry.start(t);
  const amd = addImage(registry, 'multi/app', 'amd', { architecture: 'amd64' });
  const arm = addImage(registry, 'multi/app', 'arm', { architecture: 'arm', layerSizes: [100] });
  const list = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json',
      manifests: [
        {
          mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
          digest: arm.manifestDigest,
          size: arm.manifest.length,
          platform: { os: 'linux', architecture: 'arm', variant: 'v6' },
        },
        {
          mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
          digest: amd.manifestDigest,
          size: amd.manifest.length,
          platform: { os: 'linux', architecture: 'amd64' },
        },
      ],
    }),
  );
  const listDigest = registry.addManifest(
    'multi/app',
    'latest',
    'application/vnd.docker.distribution.manifest.list.v2+json',
    list,
  );
  const store = await tempStore(t);
  const onAmd = await pull(fast(), `${registry.host}/multi/app`, { store });
  assert.equal(onAmd.manifestDigest, amd.manifestDigest);
  assert.equal(onAmd.indexDigest, listDigest);
  assert.deepEqual(await store.readAll(listDigest), list);
  // An arm/v7 host runs the arm/v6 image.
  const onArm = await pull(fast(), `${registry.host}/multi/app`, {
    store,
    platform: { os: 'linux', architecture: 'arm', variant: 'v7' },
  });
  assert.equal(onArm.manifestDigest, arm.manifestDigest);
  assert.equal(registry.requests('GET', new RegExp(amd.layerDigests[0] as string)).length, 1);
});

test('docker.io pulls go to the mirrors in order and fall through a failing one', async (t) => {
  const broken = await FakeRegistry.start(t);
  const mirror = await FakeRegistry.start(t);
  const image = addImage(mirror, 'library/busybox', 'latest');
  const client = fast({ mirrors: [broken.url, `${mirror.url}/`] });
  const result = await pull(client, 'busybox', { store: await tempStore(t) });
  assert.equal(result.manifestDigest, image.manifestDigest);
  assert.equal(result.reference.domain, 'docker.io');
  assert.equal(broken.requests('GET', /\/v2\/library\/busybox\/manifests\/latest$/).length, 1);
  assert.equal(mirror.requests('GET', /\/v2\/library\/busybox\/manifests\/latest$/).length, 1);
});

test('push: HEAD skips present blobs, mounts known ones, uploads the rest (chunked above the threshold)', async (t) => {
  const registry = await FakeRegistry.start(t);
  const image = addImage(registry, 'src/app', 'v1', { layerSizes: [10_000, 2500, 100] });
  const store = await tempStore(t);
  await pull(fast(), `${registry.host}/src/app:v1`, { store });
  // The destination already has the small layer; the mid-size one must be uploaded, not mounted.
  registry.addBlob('dst/app', image.layers[2] as Buffer);
  await store.setLabels(image.layerDigests[1] as string, {
    [`berth.distribution.source.${registry.host}`]: '',
  });

  const events: ProgressEvent[] = [];
  const result = await push(fast(), `${registry.host}/dst/app:v2`, {
    store,
    manifestDigest: image.manifestDigest,
    chunkThreshold: 2000,
    chunkSize: 1000,
    onProgress: (event) => events.push(event),
  });
  assert.equal(result.digest, image.manifestDigest);
  assert.equal(result.size, image.manifest.length);
  assert.equal(result.blobs.get(image.layerDigests[0] as string), 'mounted');
  assert.equal(result.blobs.get(image.layerDigests[1] as string), 'uploaded');
  assert.equal(result.blobs.get(image.layerDigests[2] as string), 'exists');
  assert.equal(result.blobs.get(image.configDigest), 'mounted');
  assert.deepEqual(registry.blobs.get('dst/app')?.get(image.layerDigests[1] as string), image.layers[1]);
  const patches = registry.requests('PATCH', /\/v2\/dst\/app\/blobs\/uploads\//).map((r) => r.contentRange);
  assert.deepEqual(patches, ['0-999', '1000-1999', '2000-2499']);
  assert.ok(registry.requests('POST', /mount=/).every((r) => /from=src%2Fapp/.test(r.url)));
  const put = registry.requests('PUT', /\/v2\/dst\/app\/manifests\/v2$/);
  assert.equal(put[0]?.contentType, 'application/vnd.docker.distribution.manifest.v2+json');
  const statuses = new Map(events.map((e) => [e.id, e.status]));
  assert.equal(statuses.get((image.layerDigests[0] as string).slice(7, 19)), 'Mounted from src/app');
  assert.equal(statuses.get((image.layerDigests[1] as string).slice(7, 19)), 'Pushed');
  assert.equal(statuses.get((image.layerDigests[2] as string).slice(7, 19)), 'Layer already exists');
  assert.deepEqual(registry.manifests.get('dst/app')?.get('v2')?.data, image.manifest);

  // Monolithic: one PUT carrying the bytes, no PATCH.
  const before = registry.requests('PATCH', /./).length;
  await push(fast(), `${registry.host}/third/app:v1`, {
    store,
    manifestDigest: image.manifestDigest,
    mount: false,
  });
  assert.equal(registry.requests('PATCH', /./).length, before);
  assert.equal(registry.requests('PUT', /\/v2\/third\/app\/blobs\/uploads\/.*digest=/).length, 4);
});

test('push refuses a reference whose digest differs and blobs missing from the store', async (t) => {
  const registry = await FakeRegistry.start(t);
  const image = addImage(registry, 'src/app', 'v1');
  const store = await tempStore(t);
  await pull(fast(), `${registry.host}/src/app:v1`, { store });
  await assert.rejects(
    push(fast(), `${registry.host}/dst/app@sha256:${'0'.repeat(64)}`, {
      store,
      manifestDigest: image.manifestDigest,
    }),
    (err: BerthError) => err.kind === 'invalid-argument',
  );
  await store.delete(image.layerDigests[0] as string);
  await assert.rejects(
    push(fast(), `${registry.host}/dst/app:v1`, {
      store,
      manifestDigest: image.manifestDigest,
      mount: false,
    }),
    (err: BerthError) => err.kind === 'invalid-argument' && /not in the content store/.test(err.message),
  );
});
