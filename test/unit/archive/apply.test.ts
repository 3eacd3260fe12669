import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { Stats } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { applyTar, type ApplyOptions } from '../../../src/archive/apply.js';
import { tarArchive, type TarEntry } from '../../../src/archive/tar-writer.js';

const T = 1_600_000_000;
const dir = (path: string, mode = 0o755): TarEntry => ({ path, type: 'directory', mode, mtime: T });
const file = (path: string, content = path, mode = 0o644): TarEntry => ({
  path,
  type: 'file',
  mode,
  mtime: T,
  content: Buffer.from(content),
});
const link = (path: string, target: string): TarEntry => ({
  path,
  type: 'symlink',
  mode: 0o777,
  linkTarget: target,
});
const hard = (path: string, target: string): TarEntry => ({
  path,
  type: 'hardlink',
  mode: 0o644,
  linkTarget: target,
});

async function* once(data: Buffer): AsyncGenerator<Buffer> {
  yield data;
}

/** Flat-mode apply without root: ownership is not preserved. */
const apply = (root: string, entries: TarEntry[], options: Partial<ApplyOptions> = {}) =>
  applyTar(once(gzipSync(tarArchive(entries))), root, { mode: 'flat', preserveOwnership: false, ...options });

interface Workspace {
  base: string;
  root: string;
  sentinel: string;
  snapshot(): Promise<string>;
}

/** A root to apply into and, beside it, a sentinel directory that hostile layers aim at. */
async function workspace(t: { after(fn: () => Promise<void>): void }): Promise<Workspace> {
  const base = await mkdtemp(join(tmpdir(), 'berth-apply-'));
  t.after(() => rm(base, { recursive: true, force: true }));
  const root = join(base, 'root');
  const sentinel = join(base, 'sentinel');
  await mkdir(root);
  await mkdir(join(sentinel, 'sub'), { recursive: true });
  await writeFile(join(sentinel, 'passwd'), 'root:x:0:0\n');
  await writeFile(join(sentinel, 'sub/keep'), 'keep\n');
  /** Everything observable about the sentinel: names, types, modes, sizes, link counts, times, contents. */
  const snapshot = async (): Promise<string> => {
    const lines: string[] = [];
    const walk = async (path: string, name: string): Promise<void> => {
      const stat: Stats = await lstat(path);
      const content = stat.isFile()
        ? createHash('sha256')
            .update(await readFile(path))
            .digest('hex')
        : '';
      lines.push(`${name} ${stat.mode.toString(8)} ${stat.size} ${stat.nlink} ${stat.mtimeMs} ${content}`);
      if (stat.isDirectory())
        for (const child of (await readdir(path)).sort()) await walk(join(path, child), `${name}/${child}`);
    };
    await walk(base, '.');
    return lines.filter((line) => !line.startsWith('./root')).join('\n');
  };
  return { base, root, sentinel, snapshot };
}

const exists = (path: string): Promise<boolean> =>
  lstat(path).then(
    () => true,
    () => false,
  );

test('applies files, directories, symlinks, hardlinks and fifos with modes and times', async (t) => {
  const { root } = await workspace(t);
  const result = await apply(root, [
    dir('etc', 0o750),
    file('etc/hosts', '127.0.0.1 localhost\n', 0o640),
    file('bin/tool', '#!/bin/sh\n', 0o4755),
    link('etc/link', '../bin/tool'),
    hard('etc/hosts-again', 'etc/hosts'),
    { path: 'run/fifo', type: 'fifo', mode: 0o600, mtime: T },
    dir('tmp', 0o1777),
  ]);
  assert.equal(result.entries, 7);
  assert.match(result.diffId, /^sha256:[0-9a-f]{64}$/);
  assert.equal(await readFile(join(root, 'etc/hosts'), 'utf8'), '127.0.0.1 localhost\n');
  assert.equal((await lstat(join(root, 'etc/hosts'))).mode & 0o7777, 0o640);
  assert.equal((await lstat(join(root, 'bin/tool'))).mode & 0o7777, 0o4755);
  assert.equal(await readlink(join(root, 'etc/link')), '../bin/tool');
  assert.equal((await lstat(join(root, 'etc/hosts-again'))).ino, (await lstat(join(root, 'etc/hosts'))).ino);
  assert.ok((await lstat(join(root, 'run/fifo'))).isFIFO());
  const etc = await lstat(join(root, 'etc'));
  assert.equal(etc.mode & 0o7777, 0o750);
  assert.equal(etc.mtimeMs, T * 1000, 'directory mtime is set after its content');
  assert.equal((await lstat(join(root, 'tmp'))).mode & 0o7777, 0o1777);
  assert.equal((await lstat(join(root, 'etc/hosts'))).mtimeMs, T * 1000);
});

test('flat mode: whiteouts delete lower content, opaque directories empty it, same-layer entries survive', async (t) => {
  const { root } = await workspace(t);
  await apply(root, [
    dir('a'),
    file('a/keep'),
    file('a/gone'),
    dir('a/gone-dir'),
    file('a/gone-dir/inner'),
    dir('o'),
    file('o/old'),
    dir('o/sub'),
    file('o/sub/old'),
    file('same'),
  ]);
  await apply(root, [
    file('a/.wh.gone'),
    file('a/.wh.gone-dir'),
    file('a/.wh.never-existed'),
    dir('o'),
    dir('o/sub'),
    file('o/new'),
    file('o/.wh..wh..opq'),
    file('o/sub/newer'),
    file('fresh', 'written by this layer'),
    file('.wh.fresh'),
    file('.wh..wh.plnk'),
  ]);
  assert.deepEqual((await readdir(join(root, 'a'))).sort(), ['keep']);
  assert.deepEqual((await readdir(join(root, 'o'))).sort(), ['new', 'sub']);
  assert.deepEqual(await readdir(join(root, 'o/sub')), ['newer']);
  assert.equal(await readFile(join(root, 'fresh'), 'utf8'), 'written by this layer');
  assert.ok(await exists(join(root, 'same')));
  assert.equal(await exists(join(root, '.wh..wh.plnk')), false);
});

test('later entries replace earlier ones of another type', async (t) => {
  const { root } = await workspace(t);
  await apply(root, [dir('x'), file('x/inner'), file('y'), link('z', 'y')]);
  await apply(root, [file('x', 'now a file'), dir('y'), file('y/inside'), file('z', 'no longer a link')]);
  assert.equal(await readFile(join(root, 'x'), 'utf8'), 'now a file');
  assert.deepEqual(await readdir(join(root, 'y')), ['inside']);
  assert.equal(await readFile(join(root, 'z'), 'utf8'), 'no longer a link');
  assert.equal(await readFile(join(root, 'y/inside'), 'utf8'), 'y/inside');
});

test('the diff ID is the sha256 of the uncompressed tar, trailing padding included', async (t) => {
  const { root } = await workspace(t);
  const tar = Buffer.concat([tarArchive([file('f')]), Buffer.alloc(8192)]);
  const result = await applyTar(once(gzipSync(tar)), root, { mode: 'flat', preserveOwnership: false });
  assert.equal(result.diffId, `sha256:${createHash('sha256').update(tar).digest('hex')}`);
  assert.equal(result.size, tar.length);
  assert.equal(result.compression, 'gzip');
});

/**
 * Hostile layers. Policy: names or hardlink targets that climb above the root with "..",
 * hardlinks to anything missing from the tree, devices and bad whiteout names are refused (the
 * apply fails, or skips them with onRefused: 'skip'); absolute names and symlinks inside paths
 * are neutralised (resolved inside the root). In every case the sentinel beside the root is
 * untouched.
 */
const hostile: Array<{
  name: string;
  layers: (w: Workspace) => TarEntry[][];
  refused: RegExp | null;
  check?: (w: Workspace) => Promise<void>;
}> = [
  {
    name: 'an entry with ".." components',
    layers: () => [[file('../sentinel/passwd', 'owned')]],
    refused: /climbs above the root/,
  },
  {
    name: 'a deep ".." entry',
    layers: () => [[dir('a'), file('a/../../sentinel/evil', 'owned')]],
    refused: /climbs above the root/,
  },
  {
    name: 'an absolute path',
    layers: (w) => [[file(`${w.sentinel}/passwd`, 'owned')]],
    refused: null,
    check: async (w) => assert.equal(await readFile(join(w.root, w.sentinel, 'passwd'), 'utf8'), 'owned'),
  },
  {
    name: 'a symlink to an absolute directory outside, then a file through it',
    layers: (w) => [[link('link', w.sentinel), file('link/passwd', 'owned'), file('link/sub/keep', 'owned')]],
    refused: null,
    check: async (w) => {
      assert.equal(await readFile(join(w.root, w.sentinel, 'passwd'), 'utf8'), 'owned');
      assert.equal(await readlink(join(w.root, 'link')), w.sentinel, 'the symlink itself is kept as written');
    },
  },
  {
    name: 'a relative symlink climbing out (link -> ../../..), then a file through it',
    layers: () => [
      [link('link', '../../..'), file('link/sentinel/passwd', 'owned'), file('link/../sentinel/x', 'y')],
    ],
    refused: null,
    check: async (w) => assert.equal(await readFile(join(w.root, 'sentinel/passwd'), 'utf8'), 'owned'),
  },
  {
    name: 'a symlink from an earlier layer pointing outside',
    layers: (w) => [
      [link('etc', w.sentinel)],
      [file('etc/passwd', 'owned'), dir('etc/sub', 0o777), file('etc/sub/keep', 'x')],
    ],
    refused: null,
  },
  {
    name: 'a hardlink whose target climbs out',
    layers: () => [[hard('h', '../sentinel/passwd')]],
    refused: /climbs above the root/,
  },
  {
    name: 'a hardlink to an absolute path outside the layer',
    layers: (w) => [[hard('h', `${w.sentinel}/passwd`)]],
    refused: /does not exist/,
  },
  {
    name: 'a hardlink to /etc/shadow',
    layers: () => [[hard('shadow', '/etc/shadow')]],
    refused: /does not exist/,
  },
  {
    name: 'a hardlink through a symlink pointing outside',
    layers: (w) => [[link('link', w.sentinel), hard('h', 'link/passwd')]],
    refused: /does not exist/,
  },
  {
    name: 'a hardlink to a directory',
    layers: () => [[dir('d'), hard('h', 'd')]],
    refused: /is a directory/,
  },
  {
    name: 'a character device when devices are not allowed',
    layers: () => [[{ path: 'dev/mem', type: 'char', mode: 0o600, devMajor: 1, devMinor: 1 }]],
    refused: /char device entries are not allowed/,
  },
  {
    name: 'a block device when devices are not allowed',
    layers: () => [[{ path: 'dev/sda', type: 'block', mode: 0o600, devMajor: 8, devMinor: 0 }]],
    refused: /block device entries are not allowed/,
  },
  {
    name: 'a whiteout whose directory resolves through a symlink outside',
    layers: (w) => [[link('link', w.sentinel)], [file('link/.wh.passwd'), file('link/sub/.wh..wh..opq')]],
    refused: null,
  },
  {
    name: 'a whiteout climbing out',
    layers: () => [[file('../.wh.sentinel')]],
    refused: /climbs above the root/,
  },
  {
    name: 'a whiteout naming ".."',
    layers: () => [[dir('d'), file('d/.wh...')]],
    refused: /names no file/,
  },
  {
    name: 'an opaque marker through a relative symlink climbing out',
    layers: () => [[link('up', '../..'), file('up/sentinel/.wh..wh..opq'), file('up/.wh.sentinel')]],
    refused: null,
  },
  {
    name: 'a directory entry replacing a symlink that points outside',
    layers: (w) => [[link('evil', w.sentinel)], [dir('evil', 0o777), file('evil/passwd', 'owned')]],
    refused: null,
    check: async (w) => {
      assert.ok((await lstat(join(w.root, 'evil'))).isDirectory());
      assert.equal((await lstat(join(w.root, 'evil'))).mode & 0o7777, 0o777);
    },
  },
  {
    name: 'a file replacing a symlink to a file outside',
    layers: (w) => [[link('passwd', `${w.sentinel}/passwd`)], [file('passwd', 'owned', 0o666)]],
    refused: null,
    check: async (w) => assert.equal(await readFile(join(w.root, 'passwd'), 'utf8'), 'owned'),
  },
  {
    name: 'a symlink loop',
    layers: () => [[link('a', 'b'), link('b', 'a'), file('a/x')]],
    refused: /too many levels of symbolic links/,
  },
];

for (const scenario of hostile) {
  test(`hostile layer: ${scenario.name}`, async (t) => {
    const w = await workspace(t);
    const before = await w.snapshot();
    const layers = scenario.layers(w);
    const last = layers.length - 1;
    for (const [index, entries] of layers.entries()) {
      if (index === last && scenario.refused !== null) {
        await assert.rejects(apply(w.root, entries), { kind: 'invalid-argument', message: scenario.refused });
        // With onRefused: 'skip' the same layer applies and reports what it left out.
        const skipped = await apply(w.root, entries, { onRefused: 'skip' });
        assert.ok(skipped.skipped.length > 0, 'the refused entry is reported');
        assert.match(skipped.skipped[0]?.reason ?? '', scenario.refused);
      } else await apply(w.root, entries);
    }
    await scenario.check?.(w);
    assert.equal(await w.snapshot(), before, 'nothing outside the root changed');
  });
}

test('refused devices are skipped without creating anything when asked to', async (t) => {
  const { root } = await workspace(t);
  const result = await apply(
    root,
    [dir('dev'), { path: 'dev/null', type: 'char', mode: 0o666, devMajor: 1, devMinor: 3 }, file('dev/ok')],
    { onRefused: 'skip' },
  );
  assert.deepEqual(result.skipped, [{ path: 'dev/null', reason: 'char device entries are not allowed' }]);
  assert.deepEqual(await readdir(join(root, 'dev')), ['ok']);
});

test('a symlink in the tree is never followed when writing: files get O_NOFOLLOW, modes are never set through it', async (t) => {
  const w = await workspace(t);
  await symlink(join(w.sentinel, 'passwd'), join(w.root, 'target'));
  const before = await w.snapshot();
  await apply(w.root, [file('target', 'replaced', 0o777)]);
  assert.equal(await readFile(join(w.root, 'target'), 'utf8'), 'replaced');
  assert.equal(await w.snapshot(), before);
});

test('a failed apply stops reading its input', async (t) => {
  const { root } = await workspace(t);
  let closed = false;
  const tar = tarArchive([
    file('../escape'),
    ...Array.from({ length: 50 }, (_, i) => file(`f${i}`, 'x'.repeat(10_000))),
  ]);
  const input = (async function* () {
    try {
      for (let offset = 0; offset < tar.length; offset += 1024) yield tar.subarray(offset, offset + 1024);
    } finally {
      closed = true;
    }
  })();
  await assert.rejects(applyTar(input, root, { mode: 'flat', preserveOwnership: false }), {
    kind: 'invalid-argument',
  });
  assert.equal(closed, true);
  assert.deepEqual(await readdir(root), []);
});
