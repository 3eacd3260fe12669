import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ensureFixture } from '../../fixtures/index.js';
import { startRegistry, skopeoCopy } from '../helpers/registry.js';
import { execOk } from '../helpers/exec.js';

test('the registry fixture serves an image that skopeo pushed', async (t) => {
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const busybox = await ensureFixture('busybox');
  await skopeoCopy(`oci:${busybox.ociLayout}:latest`, `docker://${registry.host}/test/busybox:latest`);

  const catalog = (await (await fetch(`${registry.url}/v2/_catalog`)).json()) as { repositories: string[] };
  assert.deepEqual(catalog.repositories, ['test/busybox']);
  const inspected = JSON.parse(
    await execOk('skopeo', [
      'inspect',
      '--tls-verify=false',
      `docker://${registry.host}/test/busybox:latest`,
    ]),
  ) as { Digest: string; Layers: string[] };
  assert.equal(inspected.Digest, busybox.manifestDigest, 'the registry keeps the manifest byte for byte');
  assert.equal(inspected.Layers.length, 1);

  const manifest = await fetch(`${registry.url}/v2/test/busybox/manifests/latest`, {
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
  });
  assert.equal(manifest.status, 200);
  assert.equal(manifest.headers.get('docker-content-digest'), busybox.manifestDigest);
});

test('two registries run side by side on different ports and stop cleanly', async () => {
  const [a, b] = await Promise.all([startRegistry(), startRegistry()]);
  try {
    assert.notEqual(a.host, b.host);
    assert.equal((await fetch(`${a.url}/v2/`)).status, 200);
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
  await assert.rejects(fetch(`${a.url}/v2/`, { signal: AbortSignal.timeout(2000) }));
});
