/**
 * Hostile layers from a registry, pulled through berthd with the docker CLI: a gzip bomb (about
 * 4 MiB that inflate to 4 GiB of one file), a tar whose extended headers pile up (a chain of
 * 1 MiB pax headers with distinct keys, 600 MiB in all), and a tar of many entries. The registry
 * is a small distribution-v2 server inside the test on 127.0.0.1, serving exactly these images.
 *
 * berthd runs with BERTH_MAX_LAYER_SIZE at 512 MiB (the default, 32 GiB, would take minutes to
 * reach). Each bomb must end in a clear error, berthd must keep answering and pull a good image
 * afterwards, its resident memory must stay far below what the bombs would make it hold, and once
 * `image prune -a` has run the data root holds no snapshot, blob or partial download.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { readdir, readFile, stat } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { tarArchive, type TarEntry } from '../../src/archive/tar-writer.js';
import { createSandbox } from '../helpers/sandbox.js';
import { padded, paxRecord, tarHeader } from '../fuzz/tar-mutate.js';
import { apiRequest, docker, startBerthd } from '../helpers/berthd.js';

const MiB = 1024 * 1024;
const LAYER_LIMIT = 512 * MiB;
/**
 * Without a bound on pax records, the pax chain alone has berthd hold LAYER_LIMIT bytes; with it,
 * the pulls here add about 100 MiB (the apply worker, inflate buffers, allocator arenas), the
 * same with a limit of 1 GiB.
 */
const RSS_GROWTH_BOUND = 256 * MiB;

interface Blob {
  digest: string;
  size: number;
  chunks: Buffer[];
}

function blobOf(chunks: Buffer[]): Blob {
  const hash = createHash('sha256');
  let size = 0;
  for (const chunk of chunks) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { digest: `sha256:${hash.digest('hex')}`, size, chunks };
}

const sha256 = (data: Buffer): string => `sha256:${createHash('sha256').update(data).digest('hex')}`;

/**
 * One file of 4 GiB of zeros as gzip members: the header in the first, then the same 64 MiB
 * member of zeros 64 times (a gzip stream may hold several members, read one after the other).
 */
function gzipBombLayer(): Buffer[] {
  const zeros = gzipSync(Buffer.alloc(64 * MiB), { level: 9 });
  return [gzipSync(tarHeader('bomb', '0', 64 * 64 * MiB)), ...Array.from({ length: 64 }, () => zeros)];
}

/** 600 consecutive pax headers of 1 MiB each, every one with its own key, before one small file. */
function paxChainLayer(): Buffer[] {
  const value = 'a'.repeat(MiB - 64);
  const members: Buffer[] = [];
  for (let i = 0; i < 600; i++) {
    const record = paxRecord(`SCHILY.xattr.user.k${i}`, value);
    members.push(gzipSync(Buffer.concat([tarHeader(`PaxHeaders/${i}`, 'x', record.length), padded(record)])));
  }
  members.push(gzipSync(Buffer.concat([tarHeader('file', '0', 0), Buffer.alloc(1024)])));
  return members;
}

/** 20,000 small files in 20 directories: valid, just many. */
function manyEntriesTar(): Buffer {
  const entries: TarEntry[] = [];
  for (let d = 0; d < 20; d++) {
    entries.push({ path: `d${d}/`, type: 'directory', mode: 0o755 });
    for (let f = 0; f < 1000; f++)
      entries.push({ path: `d${d}/f${f}`, type: 'file', mode: 0o644, content: Buffer.from(`${d}/${f}`) });
  }
  return tarArchive(entries);
}

interface Image {
  manifest: Buffer;
  blobs: Blob[];
}

/** An OCI image of one gzip layer; `diffId` is what the config claims (only checked after a full read). */
function image(layer: Buffer[], diffId: string): Image {
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: ['/bin/sh'] },
      rootfs: { type: 'layers', diff_ids: [diffId] },
    }),
  );
  const configBlob = blobOf([config]);
  const layerBlob = blobOf(layer);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: configBlob.digest,
        size: configBlob.size,
      },
      layers: [
        {
          mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
          digest: layerBlob.digest,
          size: layerBlob.size,
        },
      ],
    }),
  );
  return { manifest, blobs: [configBlob, layerBlob] };
}

/** GET /v2/, manifests by tag or digest, blobs: all a pull needs. */
async function startRegistry(
  images: Record<string, Image>,
): Promise<{ host: string; close: () => Promise<void> }> {
  const manifests = new Map<string, Buffer>();
  const blobs = new Map<string, Blob>();
  for (const [name, img] of Object.entries(images)) {
    const [repo, tag] = name.split(':') as [string, string];
    manifests.set(`${repo}/manifests/${tag}`, img.manifest);
    manifests.set(`${repo}/manifests/${sha256(img.manifest)}`, img.manifest);
    for (const blob of img.blobs) blobs.set(`${repo}/blobs/${blob.digest}`, blob);
  }
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '').replace(/^\/v2\//, '');
    const manifest = manifests.get(path);
    const blob = blobs.get(path);
    if (req.url === '/v2/') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    } else if (manifest) {
      res.writeHead(200, {
        'content-type': 'application/vnd.oci.image.manifest.v1+json',
        'content-length': manifest.length,
        'docker-content-digest': sha256(manifest),
      });
      res.end(req.method === 'HEAD' ? undefined : manifest);
    } else if (blob) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': blob.size });
      if (req.method === 'HEAD') res.end();
      else {
        // Written with back-pressure; a client that goes away ends the loop.
        void (async () => {
          for (const chunk of blob.chunks) {
            if (res.destroyed) return;
            if (!res.write(chunk)) await once(res, 'drain');
          }
          res.end();
        })().catch(() => res.destroy());
      }
    } else {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"NOT_FOUND"}]}');
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    host: `127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0);
  return kb * 1024;
}

/** Every file below `dir` with its size (a missing directory is empty). */
async function filesBelow(dir: string): Promise<Array<{ path: string; size: number }>> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  const files: Array<{ path: string; size: number }> = [];
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    files.push({ path, size: (await stat(path)).size });
  }
  return files;
}

test('gzip and tar bombs from a registry: clear errors, bounded memory, nothing left behind', async (t) => {
  const sandbox = await createSandbox(t);
  const many = manyEntriesTar();
  const good = tarArchive([{ path: 'hello', type: 'file', mode: 0o644, content: Buffer.from('hello\n') }]);
  const registry = await startRegistry({
    'bomb/gzip:v1': image(gzipBombLayer(), sha256(Buffer.from('not checked: the limit comes first'))),
    'bomb/pax:v1': image(paxChainLayer(), sha256(Buffer.from('not checked: the reader refuses first'))),
    'bomb/entries:v1': image([gzipSync(many)], sha256(many)),
    'good/small:v1': image([gzipSync(good)], sha256(good)),
  });
  t.after(() => registry.close());

  // berthd inherits the environment: the limit applies to its layer applies.
  process.env.BERTH_MAX_LAYER_SIZE = String(LAYER_LIMIT);
  const berthd = await startBerthd(t, sandbox);
  delete process.env.BERTH_MAX_LAYER_SIZE;
  const pid = berthd.child.pid as number;
  const baseline = await rssOf(pid);
  let peak = baseline;
  const sampler = setInterval(() => {
    rssOf(pid).then(
      (rss) => (peak = Math.max(peak, rss)),
      () => undefined,
    );
  }, 50);
  t.after(() => clearInterval(sampler));
  const ping = async (): Promise<void> => {
    const answer = await apiRequest({ socketPath: berthd.socket }, '/_ping');
    assert.equal(answer.body, 'OK');
  };

  const gzipBomb = await docker(sandbox, berthd.dockerHost, ['pull', `${registry.host}/bomb/gzip:v1`]);
  assert.notEqual(gzipBomb.code, 0, gzipBomb.stdout);
  assert.match(
    gzipBomb.stderr,
    new RegExp(`larger than the limit of ${LAYER_LIMIT} bytes when uncompressed`),
  );
  await ping();

  const paxChain = await docker(sandbox, berthd.dockerHost, ['pull', `${registry.host}/bomb/pax:v1`]);
  assert.notEqual(paxChain.code, 0, paxChain.stdout);
  assert.match(paxChain.stderr, /pax headers of more than \d+ bytes/);
  await ping();

  const entries = await docker(sandbox, berthd.dockerHost, ['pull', `${registry.host}/bomb/entries:v1`]);
  assert.equal(entries.code, 0, entries.stderr);
  const goodPull = await docker(sandbox, berthd.dockerHost, ['pull', `${registry.host}/good/small:v1`]);
  assert.equal(goodPull.code, 0, goodPull.stderr);
  clearInterval(sampler);

  const listed = await docker(sandbox, berthd.dockerHost, ['images', '--format', '{{.Repository}}:{{.Tag}}']);
  assert.deepEqual(listed.stdout.trim().split('\n').sort(), [
    `${registry.host}/bomb/entries:v1`,
    `${registry.host}/good/small:v1`,
  ]);
  t.diagnostic(
    `berthd resident memory: ${Math.round(baseline / MiB)} MiB before, ${Math.round(peak / MiB)} MiB at most`,
  );
  assert.ok(
    peak - baseline < RSS_GROWTH_BOUND,
    `berthd grew from ${Math.round(baseline / MiB)} MiB to ${Math.round(peak / MiB)} MiB resident`,
  );

  // The failed applies removed their partial snapshots: one snapshot per layer pulled is left.
  const layerSnapshots = async (): Promise<string[]> =>
    (await readdir(join(sandbox.dataRoot, 'snapshots')).catch(() => [] as string[])).filter(
      (name) => name !== 'l',
    );
  assert.equal((await layerSnapshots()).length, 2, 'snapshots of the two images pulled, and no others');

  // The failed pulls' blobs are garbage for a prune; with every image gone, nothing is left at all.
  const pruned = await docker(sandbox, berthd.dockerHost, ['image', 'prune', '-a', '-f']);
  assert.equal(pruned.code, 0, pruned.stderr);
  const content = await filesBelow(join(sandbox.dataRoot, 'content'));
  assert.deepEqual(
    content.filter((file) => /\/(blobs|ingest)\//.test(file.path)),
    [],
    'blobs or partial downloads left',
  );
  assert.deepEqual(await layerSnapshots(), [], 'snapshots left');
  const left = await filesBelow(sandbox.dataRoot);
  const bytes = left.reduce((sum, file) => sum + file.size, 0);
  assert.ok(bytes < MiB, `${bytes} bytes left in the data root: ${left.map((f) => f.path).join(', ')}`);
  await ping();
});
