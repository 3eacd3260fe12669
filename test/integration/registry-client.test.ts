/**
 * The registry client against Debian's docker-registry: pull what skopeo pushed, push what skopeo
 * then reads back, multi-arch indexes, cross-repository mounts, chunked uploads, basic and token auth.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureFixture } from '../../fixtures/index.js';
import { BerthError } from '../../src/common/errors.js';
import { sha256Of } from '../../src/content/digest.js';
import { FsContentStore } from '../../src/content/fs-store.js';
import { DockerConfigCredentials } from '../../src/image/auth/docker-config.js';
import { StaticCredentials } from '../../src/image/auth/credentials.js';
import { RegistryClient } from '../../src/image/registry/client.js';
import { UnauthorizedError } from '../../src/image/registry/errors.js';
import type { ProgressEvent } from '../../src/image/registry/progress.js';
import { pull } from '../../src/image/registry/pull.js';
import { push } from '../../src/image/registry/push.js';
import {
  MEDIA_TYPE,
  type ImageConfig,
  type ImageIndex,
  type ImageManifest,
} from '../../src/oci/image-spec.js';
import { execOk } from '../helpers/exec.js';
import { skopeoCopy, startRegistry } from '../helpers/registry.js';
import { startBasicAuthRegistry, startTokenAuthRegistry } from '../helpers/registry-auth.js';
import { createSandbox } from '../helpers/sandbox.js';

const blobPath = (layout: string, digest: string): string => join(layout, 'blobs', 'sha256', digest.slice(7));

async function layoutManifestDigest(layout: string): Promise<string> {
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as ImageIndex;
  const digest = index.manifests[0]?.digest;
  assert.ok(digest);
  return digest;
}

/** Put every blob of an OCI layout into the store; returns the tagged manifest's digest. */
async function loadLayout(layout: string, store: FsContentStore): Promise<string> {
  for (const hex of await readdir(join(layout, 'blobs', 'sha256'))) {
    await store.writeBlob(await readFile(join(layout, 'blobs', 'sha256', hex)), { digest: `sha256:${hex}` });
  }
  return layoutManifestDigest(layout);
}

/** Every blob the pull stored is byte for byte the fixture's. */
async function assertSameBlobs(store: FsContentStore, layout: string, digests: string[]): Promise<void> {
  for (const digest of digests) {
    const stored = await store.readAll(digest);
    assert.equal(sha256Of(stored), digest);
    assert.deepEqual(stored, await readFile(blobPath(layout, digest)), `blob ${digest}`);
  }
}

test('pull images that skopeo pushed, verifying every blob, with Docker-style progress', async (t) => {
  const sandbox = await createSandbox(t);
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const store = new FsContentStore(sandbox.dataRoot);
  const client = new RegistryClient();
  const seen = new Set<string>();
  for (const name of ['busybox', 'layers'] as const) {
    const fixture = await ensureFixture(name);
    await skopeoCopy(`oci:${fixture.ociLayout}:latest`, `docker://${registry.host}/x/${name}:latest`);
    const events: ProgressEvent[] = [];
    const result = await pull(client, `${registry.host}/x/${name}`, {
      store,
      onProgress: (event) => events.push(event),
    });
    assert.equal(result.manifestDigest, fixture.manifestDigest);
    assert.equal(result.indexDigest, undefined);
    assert.equal(result.manifestMediaType, MEDIA_TYPE.ociManifest);
    assert.equal(result.config.os, 'linux');
    assert.deepEqual(result.layers, result.manifest.layers);
    await assertSameBlobs(store, fixture.ociLayout, [
      result.manifestDigest,
      result.configDigest,
      ...result.layers.map((layer) => layer.digest),
    ]);
    for (const layer of result.layers) {
      const id = layer.digest.slice(7, 19);
      const statuses = events.filter((event) => event.id === id).map((event) => event.status);
      // The layers image is built on the busybox layer pulled just before.
      if (seen.has(layer.digest)) {
        assert.deepEqual(statuses, ['Already exists']);
        continue;
      }
      seen.add(layer.digest);
      assert.equal(statuses[0], 'Pulling fs layer');
      assert.deepEqual(statuses.slice(-2), ['Verifying Checksum', 'Download complete']);
      const last = events.filter((event) => event.id === id && event.status === 'Downloading').at(-1);
      assert.deepEqual(last?.progressDetail, { current: layer.size, total: layer.size });
    }
    // Pulled blobs remember where they came from (for cross-repository mounts).
    const info = await store.info(result.layers.at(-1)?.digest ?? '');
    assert.equal(info?.labels[`berth.distribution.source.${registry.host}`], `x/${name}`);
  }

  const again: ProgressEvent[] = [];
  const second = await pull(client, `${registry.host}/x/layers:latest`, {
    store,
    onProgress: (e) => again.push(e),
  });
  assert.ok(again.length > 0);
  assert.ok(again.every((event) => event.status === 'Already exists'));
  assert.equal(again.length, second.layers.length);

  await assert.rejects(
    pull(client, `${registry.host}/x/busybox:missing`, { store }),
    (err: BerthError) => err.kind === 'not-found' && /manifest unknown/.test(err.message),
  );
  await assert.rejects(
    pull(client, `${registry.host}/x/busybox`, { store, platform: { os: 'linux', architecture: 'arm64' } }),
    (err: BerthError) =>
      err.kind === 'not-found' && /does not match the requested platform linux\/arm64/.test(err.message),
  );
});

test('push an image with the client; skopeo reads it back with the same digests', async (t) => {
  const sandbox = await createSandbox(t);
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const store = new FsContentStore(sandbox.dataRoot);
  const client = new RegistryClient();
  const fixture = await ensureFixture('layers');
  const manifestDigest = await loadLayout(fixture.ociLayout, store);

  // Chunked upload forced by a tiny threshold: several PATCH requests per layer.
  const events: ProgressEvent[] = [];
  const pushed = await push(client, `${registry.host}/mine/layers:v1`, {
    store,
    manifestDigest,
    chunkThreshold: 1,
    chunkSize: 64 * 1024,
    onProgress: (event) => events.push(event),
  });
  assert.equal(pushed.digest, fixture.manifestDigest);
  assert.equal(pushed.size, (await readFile(blobPath(fixture.ociLayout, manifestDigest))).length);
  assert.ok([...pushed.blobs.values()].every((outcome) => outcome === 'uploaded'));
  assert.ok(events.some((event) => event.status === 'Pushed'));

  const inspected = JSON.parse(
    await execOk('skopeo', ['inspect', '--tls-verify=false', `docker://${registry.host}/mine/layers:v1`]),
  ) as { Digest: string; Layers: string[] };
  assert.equal(inspected.Digest, fixture.manifestDigest);
  const manifest = JSON.parse((await store.readAll(manifestDigest)).toString()) as ImageManifest;
  assert.deepEqual(
    inspected.Layers,
    manifest.layers.map((layer) => layer.digest),
  );

  const copied = join(sandbox.root, 'copied');
  await skopeoCopy(`docker://${registry.host}/mine/layers:v1`, `oci:${copied}:latest`);
  assert.equal(await layoutManifestDigest(copied), fixture.manifestDigest);
  for (const digest of [manifest.config.digest, ...manifest.layers.map((l) => l.digest)]) {
    assert.equal(sha256Of(await readFile(blobPath(copied, digest))), digest);
  }

  // Monolithic upload of another image, then the same again: every blob already exists.
  const busybox = await ensureFixture('busybox');
  const busyboxDigest = await loadLayout(busybox.ociLayout, store);
  const first = await push(client, `${registry.host}/mine/busybox:latest`, {
    store,
    manifestDigest: busyboxDigest,
  });
  assert.equal(first.digest, busybox.manifestDigest);
  const second = await push(client, `${registry.host}/mine/busybox:again`, {
    store,
    manifestDigest: busyboxDigest,
  });
  assert.ok([...second.blobs.values()].every((outcome) => outcome === 'exists'));
  const tagged = JSON.parse(
    await execOk('skopeo', ['inspect', '--tls-verify=false', `docker://${registry.host}/mine/busybox:again`]),
  ) as { Digest: string };
  assert.equal(tagged.Digest, busybox.manifestDigest);
});

test('a push mounts blobs from the repository they were pulled from', async (t) => {
  const sandbox = await createSandbox(t);
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const fixture = await ensureFixture('busybox');
  await skopeoCopy(`oci:${fixture.ociLayout}:latest`, `docker://${registry.host}/library/busybox:latest`);
  const store = new FsContentStore(sandbox.dataRoot);
  const client = new RegistryClient();
  const pulled = await pull(client, `${registry.host}/library/busybox`, { store });

  const events: ProgressEvent[] = [];
  const pushed = await push(client, `${registry.host}/other/copy:1`, {
    store,
    manifestDigest: pulled.manifestDigest,
    onProgress: (event) => events.push(event),
  });
  for (const layer of pulled.layers) assert.equal(pushed.blobs.get(layer.digest), 'mounted');
  assert.equal(pushed.blobs.get(pulled.configDigest), 'mounted');
  assert.ok(events.some((event) => event.status === 'Mounted from library/busybox'));
  const inspected = JSON.parse(
    await execOk('skopeo', ['inspect', '--tls-verify=false', `docker://${registry.host}/other/copy:1`]),
  ) as { Digest: string };
  assert.equal(inspected.Digest, fixture.manifestDigest);
});

/** An OCI layout whose `latest` is an index of the busybox image as amd64 and as arm64/v8. */
async function writeMultiArchLayout(dir: string): Promise<{ amd64: string; arm64: string; index: string }> {
  const busybox = await ensureFixture('busybox');
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  for (const hex of await readdir(join(busybox.ociLayout, 'blobs', 'sha256'))) {
    await copyFile(join(busybox.ociLayout, 'blobs', 'sha256', hex), join(dir, 'blobs', 'sha256', hex));
  }
  const put = async (data: Buffer): Promise<{ digest: string; size: number }> => {
    const digest = sha256Of(data);
    await writeFile(blobPath(dir, digest), data);
    return { digest, size: data.length };
  };
  const amd64 = busybox.manifestDigest;
  const amd64Bytes = await readFile(blobPath(busybox.ociLayout, amd64));
  const manifest = JSON.parse(amd64Bytes.toString()) as ImageManifest;
  const config = JSON.parse(
    (await readFile(blobPath(busybox.ociLayout, manifest.config.digest))).toString(),
  ) as ImageConfig;
  const armConfig = await put(
    Buffer.from(JSON.stringify({ ...config, architecture: 'arm64', variant: 'v8' })),
  );
  const armManifest = await put(
    Buffer.from(JSON.stringify({ ...manifest, config: { ...manifest.config, ...armConfig } })),
  );
  const index = await put(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA_TYPE.ociIndex,
        manifests: [
          {
            mediaType: MEDIA_TYPE.ociManifest,
            digest: amd64,
            size: amd64Bytes.length,
            platform: { os: 'linux', architecture: 'amd64' },
          },
          {
            mediaType: MEDIA_TYPE.ociManifest,
            ...armManifest,
            platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
          },
        ],
      }),
    ),
  );
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPE.ociIndex,
      manifests: [
        {
          mediaType: MEDIA_TYPE.ociIndex,
          ...index,
          annotations: { 'org.opencontainers.image.ref.name': 'latest' },
        },
      ],
    }),
  );
  return { amd64, arm64: armManifest.digest, index: index.digest };
}

test('a multi-arch index pushed by skopeo is pulled per platform', async (t) => {
  const sandbox = await createSandbox(t);
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const layout = join(sandbox.root, 'multi');
  const digests = await writeMultiArchLayout(layout);
  await execOk(
    'skopeo',
    [
      '--insecure-policy',
      'copy',
      '--quiet',
      '--all',
      '--dest-tls-verify=false',
      `oci:${layout}:latest`,
      `docker://${registry.host}/multi/busybox:latest`,
    ],
    { timeoutMs: 120_000 },
  );
  const client = new RegistryClient();
  const store = new FsContentStore(sandbox.dataRoot);

  const host = await pull(client, `${registry.host}/multi/busybox`, { store });
  assert.equal(host.indexDigest, digests.index);
  assert.equal(host.indexMediaType, MEDIA_TYPE.ociIndex);
  assert.equal(host.manifestDigest, digests.amd64);

  const arm = await pull(client, `${registry.host}/multi/busybox`, {
    store,
    platform: { os: 'linux', architecture: 'arm64' },
  });
  assert.equal(arm.manifestDigest, digests.arm64);
  assert.equal(arm.config.architecture, 'arm64');
  await assertSameBlobs(store, layout, [digests.index, digests.arm64, arm.configDigest]);

  await assert.rejects(
    pull(client, `${registry.host}/multi/busybox`, {
      store,
      platform: { os: 'linux', architecture: 's390x' },
    }),
    (err: BerthError) =>
      err.kind === 'not-found' &&
      err.message.includes('no matching manifest for linux/s390x') &&
      err.message.includes('linux/arm64/v8'),
  );

  // The index goes back up with its children, under a new tag, and keeps its digest.
  const pushed = await push(client, `${registry.host}/multi/copy:all`, {
    store,
    manifestDigest: digests.index,
  });
  assert.equal(pushed.digest, digests.index);
  assert.equal(pushed.mediaType, MEDIA_TYPE.ociIndex);
  const raw = JSON.parse(
    await execOk('skopeo', [
      'inspect',
      '--raw',
      '--tls-verify=false',
      `docker://${registry.host}/multi/copy:all`,
    ]),
  ) as ImageIndex;
  assert.deepEqual(
    raw.manifests.map((m) => m.digest),
    [digests.amd64, digests.arm64],
  );
});

test('basic auth: credentials from a docker config.json; wrong or missing ones are refused', async (t) => {
  const registry = await startBasicAuthRegistry({ alice: 's3cret' });
  if (!registry) {
    t.skip('this machine has no bcrypt in crypt(3) (perl crypt), so no htpasswd file can be made');
    return;
  }
  t.after(() => registry.stop());
  const sandbox = await createSandbox(t);
  const fixture = await ensureFixture('busybox');
  const store = new FsContentStore(sandbox.dataRoot);
  const configPath = join(sandbox.root, 'docker-config.json');
  await writeFile(
    configPath,
    JSON.stringify({
      auths: { [`http://${registry.host}`]: { auth: Buffer.from('alice:s3cret').toString('base64') } },
    }),
  );
  const client = new RegistryClient({ credentials: new DockerConfigCredentials({ path: configPath }) });
  const manifestDigest = await loadLayout(fixture.ociLayout, store);
  const pushed = await push(client, `${registry.host}/private/busybox:1`, { store, manifestDigest });
  assert.equal(pushed.digest, fixture.manifestDigest);

  const other = new FsContentStore(join(sandbox.root, 'other'));
  const pulled = await pull(client, `${registry.host}/private/busybox:1`, { store: other });
  await assertSameBlobs(other, fixture.ociLayout, [
    pulled.manifestDigest,
    ...pulled.layers.map((l) => l.digest),
  ]);

  const anonymous = new RegistryClient();
  await assert.rejects(
    pull(anonymous, `${registry.host}/private/busybox:1`, { store: other }),
    UnauthorizedError,
  );
  const wrong = new RegistryClient({
    credentials: new StaticCredentials({ [registry.host]: { username: 'alice', password: 'nope' } }),
  });
  await assert.rejects(
    pull(wrong, `${registry.host}/private/busybox:1`, { store: other }),
    UnauthorizedError,
  );
});

test('token auth: the client follows the challenge to the token server and caches tokens per scope', async (t) => {
  const registry = await startTokenAuthRegistry({ bob: 'hunter2' });
  t.after(() => registry.stop());
  const sandbox = await createSandbox(t);
  const fixture = await ensureFixture('busybox');
  const store = new FsContentStore(sandbox.dataRoot);
  const client = new RegistryClient({
    credentials: new StaticCredentials({ [registry.host]: { username: 'bob', password: 'hunter2' } }),
  });
  const manifestDigest = await loadLayout(fixture.ociLayout, store);
  const pushed = await push(client, `${registry.host}/team/busybox:1`, { store, manifestDigest });
  assert.equal(pushed.digest, fixture.manifestDigest);
  const pushScope = 'repository:team/busybox:pull,push';
  const pushTokens = registry.tokenRequests.filter((r) => r.scopes.includes(pushScope));
  assert.equal(pushTokens.length, 1, 'one token serves every request of the push');
  assert.equal(pushTokens[0]?.user, 'bob');
  assert.equal(pushTokens[0]?.service, 'berth-test-registry');

  // Anonymous pull gets a pull-only token; anonymous push is refused by the registry.
  const anonymous = new RegistryClient();
  const other = new FsContentStore(join(sandbox.root, 'other'));
  const pulled = await pull(anonymous, `${registry.host}/team/busybox:1`, { store: other });
  assert.equal(pulled.manifestDigest, fixture.manifestDigest);
  await assertSameBlobs(
    other,
    fixture.ociLayout,
    pulled.layers.map((l) => l.digest),
  );
  const anonymousTokens = registry.tokenRequests.filter((r) => r.user === undefined);
  assert.equal(anonymousTokens.length, 1);
  assert.deepEqual(anonymousTokens[0]?.scopes, ['repository:team/busybox:pull']);
  await assert.rejects(
    push(anonymous, `${registry.host}/team/busybox:2`, { store, manifestDigest }),
    UnauthorizedError,
  );

  const wrong = new RegistryClient({
    credentials: new StaticCredentials({ [registry.host]: { username: 'bob', password: 'wrong' } }),
  });
  await assert.rejects(
    pull(wrong, `${registry.host}/team/busybox:1`, { store: other }),
    (err: Error) => err instanceof UnauthorizedError && /incorrect username or password/.test(err.message),
  );
});
