import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  applyDockerignore,
  ignoreMatcher,
  parseDockerignore,
  unpackContext,
} from '../../../src/build/context.js';
import { packContext } from '../../../src/build/context-tar.js';
import { cacheKey } from '../../../src/build/cache.js';
import { componentPattern, hasWildcard } from '../../../src/build/copy.js';
import { parseMount } from '../../../src/build/mounts.js';
import { OrderedOutput } from '../../../src/build/output.js';

async function listTree(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) =>
    a.name < b.name ? -1 : 1,
  )) {
    const path = `${prefix}${entry.name}`;
    out.push(entry.isDirectory() ? `${path}/` : path);
    if (entry.isDirectory()) out.push(...(await listTree(join(dir, entry.name), `${path}/`)));
  }
  return out;
}

test('.dockerignore rules: comments, negation, **, leading /, directories', () => {
  const patterns = parseDockerignore(
    '# comment\n\n/node_modules\n**/*.log\n!keep.log\ndocs\n!docs/README.md\n',
  );
  assert.deepEqual(patterns, ['/node_modules', '**/*.log', '!keep.log', 'docs', '!docs/README.md']);
  const ignored = ignoreMatcher(patterns);
  assert.equal(ignored('node_modules/x/y'), true);
  assert.equal(ignored('a/b/c.log'), true);
  assert.equal(ignored('keep.log'), false);
  assert.equal(ignored('docs/guide.md'), true);
  assert.equal(ignored('docs/README.md'), false);
  assert.equal(ignored('src/main.ts'), false);
});

test('a context packed by the client and unpacked by the daemon, .dockerignore applied on both sides', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'berth-context-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const source = join(root, 'src');
  await mkdir(join(source, 'docs'), { recursive: true });
  await mkdir(join(source, 'node_modules', 'pkg'), { recursive: true });
  await writeFile(join(source, 'Dockerfile'), 'FROM scratch\n');
  await writeFile(join(source, 'app.js'), 'x');
  await writeFile(join(source, 'debug.log'), 'x');
  await writeFile(join(source, 'docs', 'README.md'), 'x');
  await writeFile(join(source, 'docs', 'guide.md'), 'x');
  await writeFile(join(source, 'node_modules', 'pkg', 'index.js'), 'x');
  await symlink('app.js', join(source, 'link'));
  await writeFile(join(source, '.dockerignore'), 'node_modules\n*.log\ndocs\n!docs/README.md\nDockerfile\n');
  const unpacked = join(root, 'unpacked');
  await unpackContext(packContext(source), unpacked);
  assert.deepEqual(await listTree(unpacked), [
    '.dockerignore',
    'Dockerfile',
    'app.js',
    'docs/',
    'docs/README.md',
    'link',
  ]);
  await applyDockerignore(unpacked);
  assert.deepEqual(await listTree(unpacked), ['.dockerignore', 'app.js', 'docs/', 'docs/README.md', 'link']);
  const empty = join(root, 'empty');
  await unpackContext((async function* () {})(), empty);
  assert.deepEqual(await readdir(empty), []);
  await assert.rejects(
    unpackContext(
      (async function* () {
        yield Buffer.from('not a tar at all');
      })(),
      join(root, 'bad'),
    ),
    /the build context is not a valid tar archive/,
  );
});

test('wildcards follow Go filepath.Match, one path component at a time', () => {
  assert.equal(hasWildcard('src/*.ts'), true);
  assert.equal(hasWildcard('a\\*b'), false);
  assert.equal(hasWildcard('file[0-9]'), true);
  assert.ok(componentPattern('*.ts').test('main.ts'));
  assert.ok(!componentPattern('*.ts').test('main.tsx'));
  assert.ok(componentPattern('file?').test('file1'));
  assert.ok(componentPattern('file[0-9]').test('file7'));
  assert.ok(!componentPattern('file[^0-9]').test('file7'));
  assert.ok(componentPattern('a\\*b').test('a*b'));
  assert.ok(!componentPattern('a\\*b').test('axb'));
});

test('cache keys change with the parent, the instruction and the extras', () => {
  const base = cacheKey('sha256:a', '/bin/sh -c echo hi');
  assert.equal(cacheKey('sha256:a', '/bin/sh -c echo hi'), base);
  assert.notEqual(cacheKey('sha256:b', '/bin/sh -c echo hi'), base);
  assert.notEqual(cacheKey('sha256:a', '/bin/sh -c echo ho'), base);
  assert.notEqual(cacheKey('sha256:a', '/bin/sh -c echo hi', ['host']), base);
  assert.notEqual(cacheKey(undefined, '/bin/sh -c echo hi'), base);
});

test('RUN --mount specs', () => {
  assert.deepEqual(parseMount('type=cache,target=/root/.cache,id=pip', '/'), {
    type: 'cache',
    target: '/root/.cache',
    id: 'pip',
    readonly: false,
    mode: 0o755,
    uid: 0,
    gid: 0,
  });
  assert.deepEqual(parseMount('target=src,source=app,from=build', '/work'), {
    type: 'bind',
    target: '/work/src',
    source: 'app',
    from: 'build',
    readwrite: false,
  });
  assert.deepEqual(parseMount('type=tmpfs,target=/tmp,size=64m', '/'), {
    type: 'tmpfs',
    target: '/tmp',
    size: 64 * 1024 ** 2,
  });
  assert.deepEqual(parseMount('type=secret,id=token', '/'), {
    type: 'secret',
    id: 'token',
    target: '/run/secrets/token',
    required: false,
    mode: 0o400,
    uid: 0,
    gid: 0,
  });
  assert.throws(() => parseMount('type=ssh', '/'), /unsupported --mount type "ssh"/);
  assert.throws(() => parseMount('type=cache', '/'), /needs a target/);
  assert.throws(() => parseMount('type=cache,target=/x,colour=red', '/'), /unexpected key 'colour'/);
});

test('stage output is written in stage order while stages run at the same time', () => {
  let text = '';
  const out = new OrderedOutput(3, (chunk) => (text += chunk));
  out.write(1, 'b1 ');
  out.write(0, 'a1 ');
  out.write(2, 'c1 ');
  out.finish(1);
  out.write(0, 'a2 ');
  assert.equal(text, 'a1 a2 ');
  out.finish(0);
  assert.equal(text, 'a1 a2 b1 c1 ');
  out.write(2, 'c2');
  out.finish(2);
  assert.equal(text, 'a1 a2 b1 c1 c2');
});
