/**
 * Ids at the tar boundary of a remapped container: the layer diff, export, cp out and in, and
 * `docker diff`, each given a mapping. Unprivileged: the files are the test's own, and the
 * mappings move the test's own uid and gid.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { lstat, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ByteSource } from '../../../src/archive/byte-source.js';
import { diffOverlayUpper } from '../../../src/archive/diff.js';
import { readTar } from '../../../src/archive/tar-reader.js';
import { tarArchive } from '../../../src/archive/tar-writer.js';
import {
  ChangeKind,
  RootView,
  archivePath,
  exportTree,
  extractArchive,
  overlayChanges,
} from '../../../src/engine/container-fs.js';
import { idShift, shiftEntry, type IdMaps } from '../../../src/snapshot/shift-ids.js';

const uid = process.getuid?.() ?? 0;
const gid = process.getgid?.() ?? 0;
/** The test's own ids are the container's 7 and 8: what the host stores, seen from inside. */
const maps: IdMaps = {
  uids: [{ containerID: 7, hostID: uid, size: 1 }],
  gids: [{ containerID: 8, hostID: gid, size: 1 }],
};
const toContainer = shiftEntry(idShift(maps, 'to-container'), 'overflow');

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-userns-tar-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function owners(tar: AsyncIterable<Buffer>): Promise<Map<string, string>> {
  const chunks: Buffer[] = [];
  for await (const chunk of tar) chunks.push(chunk);
  const result = new Map<string, string>();
  for await (const { header, body } of readTar(new ByteSource(Readable.from([Buffer.concat(chunks)])))) {
    for await (const chunk of body) void chunk;
    result.set(header.path, `${header.uid}:${header.gid}`);
  }
  return result;
}

async function tree(t: TestContext): Promise<string> {
  const root = join(await tempDir(t), 'root');
  await mkdir(join(root, 'etc'), { recursive: true });
  await writeFile(join(root, 'etc', 'passwd'), 'root:x:0:0\n');
  return root;
}

test('the layer diff, export and cp out give the container ids', async (t) => {
  const root = await tree(t);
  const expected = new Map([
    ['etc/', '7:8'],
    ['etc/passwd', '7:8'],
  ]);
  assert.deepEqual(await owners(diffOverlayUpper(root, { mapEntry: toContainer })), expected);
  assert.deepEqual(
    await owners(diffOverlayUpper(root)),
    new Map([...expected.keys()].map((k) => [k, `${uid}:${gid}`])),
  );
  assert.deepEqual(await owners(exportTree(root, toContainer)), expected);
  const view = await RootView.open(root, []);
  try {
    let seen = new Map<string, string>();
    await archivePath(
      view,
      '/etc',
      async (_stat, tar) => {
        seen = await owners(tar);
      },
      toContainer,
    );
    assert.deepEqual(seen, expected);
  } finally {
    await view.close();
  }
});

test('cp in writes host ids and refuses an id the namespace cannot represent', async (t) => {
  const root = await tree(t);
  const toHost = shiftEntry(idShift(maps, 'to-host'), 'refuse');
  const options = { noOverwriteDirNonDir: true, readOnlyRootfs: false, shift: toHost };
  const archive = (entryUid: number): AsyncIterable<Uint8Array> =>
    Readable.from([
      tarArchive([
        { path: 'f', type: 'file', mode: 0o640, uid: entryUid, gid: 8, content: Buffer.from('x') },
      ]),
    ]);
  const view = await RootView.open(root, []);
  try {
    await extractArchive(view, '/etc', archive(7), options);
    const written = await lstat(join(root, 'etc', 'f'));
    assert.deepEqual([written.uid, written.gid], [uid, gid]);
    await assert.rejects(extractArchive(view, '/etc', archive(0), options), /f: uid 0 has no mapping/);
  } finally {
    await view.close();
  }
});

test('docker diff compares the upper directory in container ids with the layers', async (t) => {
  const base = await tempDir(t);
  const lower = join(base, 'lower');
  const upper = join(base, 'upper');
  await mkdir(join(lower, 'etc'), { recursive: true });
  await mkdir(join(upper, 'etc'), { recursive: true });
  const opaque = async (): Promise<boolean> => false;
  // Same owner on both sides: no change; through a mapping the upper's owner is another id.
  assert.deepEqual(await overlayChanges(upper, [lower], new Set(), opaque), []);
  assert.deepEqual(await overlayChanges(upper, [lower], new Set(), opaque, idShift(maps, 'to-container')), [
    { Path: '/etc', Kind: ChangeKind.Modified },
  ]);
});
