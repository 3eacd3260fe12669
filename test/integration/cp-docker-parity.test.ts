/**
 * `berth cp` against `docker cp`: both CLIs run the same arguments against the same berthd, each
 * into its own copy of the same local layout (or its own, identically prepared container), and
 * must leave the same tree behind (names, types, modes, sizes, contents, link targets, file
 * times), exit with the same code and print the same error. Covers the container's root (`ctr:/
 * out`), trailing `/` and `/.`, existing and missing destinations, symlinks on both sides, -L, and
 * `-` for tar streams both ways.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  link,
  lstat,
  lutimes,
  mkdir,
  readdir,
  readFile,
  readlink,
  rm,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { createSandbox, type Sandbox } from '../helpers/sandbox.js';
import { docker, startBerthd, type Berthd } from '../helpers/berthd.js';
import { ensureFixture } from '../../fixtures/index.js';
import { ByteSource } from '../../src/archive/byte-source.js';
import { readTar } from '../../src/archive/tar-reader.js';
import { tarArchive } from '../../src/archive/tar-writer.js';

const BERTH_SCRIPT =
  process.env.BERTH_SCRIPT ?? fileURLToPath(new URL('../../../bin/berth.js', import.meta.url));
const FIXED_TIME = new Date('2021-03-04T05:06:07Z');

interface Ran {
  code: number;
  stdout: Buffer;
  stderr: string;
}

/** One CLI run with bytes in and out, in `cwd`, bounded in time. */
function runCli(
  program: string[],
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; input?: Buffer },
): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(program[0] ?? '', [...program.slice(1), ...args], {
      cwd: options.cwd,
      env: options.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout: Buffer.concat(out), stderr: err });
    });
    child.stdin.end(options.input);
  });
}

interface Clis {
  sandbox: Sandbox;
  berthd: Berthd;
  docker(args: string[], cwd: string, input?: Buffer): Promise<Ran>;
  berth(args: string[], cwd: string, input?: Buffer): Promise<Ran>;
  ok(args: string[]): Promise<string>;
}

async function setUp(t: TestContext): Promise<Clis> {
  const sandbox = await createSandbox(t);
  const berthd = await startBerthd(t, sandbox);
  const config = join(sandbox.root, 'docker-config');
  await mkdir(config, { recursive: true });
  const env = {
    PATH: process.env.PATH,
    HOME: sandbox.root,
    DOCKER_CONFIG: config,
    DOCKER_HOST: berthd.dockerHost,
    BERTH_HOST: berthd.dockerHost,
  };
  const clis: Clis = {
    sandbox,
    berthd,
    docker: (args, cwd, input) => runCli(['docker'], args, { cwd, env, ...(input ? { input } : {}) }),
    berth: (args, cwd, input) =>
      runCli([process.execPath, BERTH_SCRIPT], args, { cwd, env, ...(input ? { input } : {}) }),
    ok: async (args) => {
      const result = await docker(sandbox, berthd.dockerHost, args);
      assert.equal(result.code, 0, `docker ${args.join(' ')}: ${result.stderr}`);
      return result.stdout;
    },
  };
  const busybox = await ensureFixture('busybox');
  await clis.ok(['load', '-i', busybox.dockerArchive]);
  return clis;
}

/** Files, modes and links inside a container, with fixed times on the files. */
const CONTAINER_LAYOUT = [
  'mkdir -p /data/sub/deep /data/empty',
  'echo a > /data/a.txt',
  'echo bee > /data/sub/b.txt',
  'ln -s a.txt /data/rel-link',
  'ln -s /data/sub /data/abs-dirlink',
  'ln /data/a.txt /data/hard',
  'chmod 4750 /data/a.txt',
  'chmod 700 /data/sub/deep',
  'touch -h -d "2020-01-02 03:04:05" /data/a.txt /data/sub/b.txt /data/rel-link /data/abs-dirlink',
].join(' && ');

/** What must be equal of a tree: entries by relative path, with type, mode, size, content or target. */
async function describeTree(root: string): Promise<string[]> {
  const lines: string[] = [];
  const walk = async (dir: string, rel: string): Promise<void> => {
    for (const name of (await readdir(dir)).sort()) {
      const path = join(dir, name);
      const info = await lstat(path);
      const where = rel === '' ? name : `${rel}/${name}`;
      const mode = (info.mode & 0o7777).toString(8);
      if (info.isDirectory()) {
        lines.push(`${where}/ dir ${mode}`);
        await walk(path, where);
      } else if (info.isSymbolicLink()) {
        lines.push(`${where} -> ${await readlink(path)} ${info.mtimeMs}`);
      } else {
        const hash = createHash('sha256')
          .update(await readFile(path))
          .digest('hex')
          .slice(0, 16);
        lines.push(`${where} file ${mode} ${info.size} ${hash} ${info.mtimeMs} links=${info.nlink}`);
      }
    }
  };
  const top = await lstat(root).catch(() => undefined);
  if (top?.isDirectory()) lines.push(`. dir ${(top.mode & 0o7777).toString(8)}`);
  await walk(root, '');
  return lines;
}

/** The local layout both CLIs start from, in `dir`. */
async function localLayout(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(join(dir, 'ex'), { recursive: true });
  await writeFile(join(dir, 'exfile'), 'old\n');
  await symlink('ex', join(dir, 'linkdir'));
  await symlink('missing', join(dir, 'dangling'));
  await mkdir(join(dir, 'src', 'inner'), { recursive: true });
  await writeFile(join(dir, 'src', 'one.txt'), 'one\n');
  await writeFile(join(dir, 'src', 'inner', 'two.txt'), 'two\n');
  await link(join(dir, 'src', 'one.txt'), join(dir, 'src', 'one-again.txt'));
  await symlink('one.txt', join(dir, 'src', 'to-one'));
  await writeFile(join(dir, 'file.txt'), 'file\n');
  await symlink('src', join(dir, 'srclink'));
  for (const file of ['src/one.txt', 'src/inner/two.txt', 'file.txt', 'exfile'])
    await utimes(join(dir, file), FIXED_TIME, FIXED_TIME);
  for (const link of ['linkdir', 'dangling', 'src/to-one', 'srclink'])
    await lutimes(join(dir, link), FIXED_TIME, FIXED_TIME);
}

/** Error text with each side's own directory and program name taken out. */
const normalise = (text: string, dir: string): string =>
  text
    .split(dir)
    .join('<dir>')
    .replace(/^DEPRECATED:[\s\S]*?\n\n/gm, '')
    // The docker CLI logs tar writer errors when the copy is refused before the archive is read.
    .replace(/^time=".*\n/gm, '')
    .replace(/\bdocker\b/g, 'berth');

test('berth cp from a container leaves what docker cp leaves', async (t) => {
  const clis = await setUp(t);
  await clis.ok([
    'run',
    '-d',
    '--name',
    'src',
    '--cgroup-parent',
    clis.sandbox.cgroupParent,
    'busybox',
    'sleep',
    '600',
  ]);
  await clis.ok(['exec', 'src', 'sh', '-c', CONTAINER_LAYOUT]);
  const cases: string[][] = [
    ['src:/', 'out'],
    ['src:/', 'ex'],
    ['src:/', 'ex/'],
    ['src:/data', 'out'],
    ['src:/data', 'ex'],
    ['src:/data/', 'ex'],
    ['src:/data/.', 'ex'],
    ['src:/data/.', 'out'],
    ['src:/data/', 'out/'],
    ['src:/data/a.txt', 'out'],
    ['src:/data/a.txt', 'out/'],
    ['src:/data/a.txt', 'ex'],
    ['src:/data/a.txt', 'ex/'],
    ['src:/data/a.txt', 'exfile'],
    ['src:/data', 'exfile'],
    ['src:/data', 'linkdir'],
    ['src:/data/a.txt', 'dangling'],
    ['src:/data/a.txt', 'nodir/x'],
    ['src:/data/rel-link', 'out'],
    ['-L', 'src:/data/rel-link', 'out'],
    ['-L', 'src:/data/abs-dirlink', 'out'],
    ['src:/data/abs-dirlink/', 'out'],
    ['src:/nonexistent', 'out'],
    ['src:data/sub', 'ex/.'],
    ['src:', 'out'],
    ['nocontainer:/data', 'out'],
  ];
  for (const args of cases) {
    const dockerDir = join(clis.sandbox.root, 'from-docker');
    const berthDir = join(clis.sandbox.root, 'from-berth');
    await localLayout(dockerDir);
    await localLayout(berthDir);
    const expected = await clis.docker(['cp', ...args], dockerDir);
    const actual = await clis.berth(['cp', ...args], berthDir);
    const label = `cp ${args.join(' ')}`;
    assert.equal(actual.code, expected.code, `${label}: exit code (${actual.stderr})`);
    assert.equal(
      normalise(actual.stderr, berthDir),
      normalise(expected.stderr, dockerDir),
      `${label}: stderr`,
    );
    assert.deepEqual(await describeTree(berthDir), await describeTree(dockerDir), `${label}: tree`);
  }
  // The root really is in `out`, not spread over the working directory.
  const rootCopy = join(clis.sandbox.root, 'root-copy');
  await localLayout(rootCopy);
  assert.equal((await clis.berth(['cp', 'src:/', 'out'], rootCopy)).code, 0);
  assert.equal(await readFile(join(rootCopy, 'out', 'data', 'sub', 'b.txt'), 'utf8'), 'bee\n');
  assert.equal((await lstat(join(rootCopy, 'bin')).catch(() => undefined)) === undefined, true);

  // `-` streams the daemon's archive as it is.
  const expected = await clis.docker(['cp', 'src:/data', '-'], clis.sandbox.root);
  const actual = await clis.berth(['cp', 'src:/data', '-'], clis.sandbox.root);
  assert.equal(actual.code, 0, actual.stderr);
  assert.ok(expected.stdout.length > 1024);
  assert.ok(actual.stdout.equals(expected.stdout), 'the same tar on stdout');
});

/** A container's /t as an entry listing (directory times left out: extraction changes them). */
async function containerTree(clis: Clis, container: string): Promise<string[]> {
  const tar = await clis.docker(['cp', `${container}:/t`, '-'], clis.sandbox.root);
  assert.equal(tar.code, 0, tar.stderr);
  const lines: string[] = [];
  for await (const { header, body } of readTar(new ByteSource(Readable.from([tar.stdout])))) {
    const hash = createHash('sha256');
    for await (const chunk of body) hash.update(chunk);
    const time = header.type === 'directory' ? '' : ` ${header.mtime}`;
    lines.push(
      `${header.path} ${header.type} ${header.mode.toString(8)} ${header.uid}:${header.gid} ${header.size} ${hash.digest('hex').slice(0, 16)} ${header.linkTarget}${time}`,
    );
  }
  return lines;
}

test('berth cp into a container leaves what docker cp leaves', async (t) => {
  const clis = await setUp(t);
  const cg = ['--cgroup-parent', clis.sandbox.cgroupParent];
  await clis.ok(['run', '-d', '--name', 'dk', ...cg, 'busybox', 'sleep', '600']);
  await clis.ok(['run', '-d', '--name', 'bt', ...cg, 'busybox', 'sleep', '600']);
  const reset = [
    'rm -rf /t',
    'mkdir -p /t/exdir',
    'echo x > /t/exfile',
    'ln -s exdir /t/linkdir',
    'touch -h -d "2020-01-02 03:04:05" /t/exfile /t/linkdir',
  ].join(' && ');
  const stdinTar = tarArchive([
    { path: 'piped/', type: 'directory', mode: 0o750, mtime: 1_600_000_000 },
    { path: 'piped/p.txt', type: 'file', mode: 0o640, mtime: 1_600_000_000, content: Buffer.from('p\n') },
  ]);
  const cases: Array<{ args: (ctr: string) => string[]; input?: Buffer }> = [
    { args: (c) => ['src', `${c}:/t/new`] },
    { args: (c) => ['src', `${c}:/t/exdir`] },
    { args: (c) => ['src', `${c}:/t/exdir/`] },
    { args: (c) => ['src/', `${c}:/t/exdir`] },
    { args: (c) => ['src/.', `${c}:/t/exdir`] },
    { args: (c) => ['src/.', `${c}:/t/new`] },
    { args: (c) => ['file.txt', `${c}:/t/new`] },
    { args: (c) => ['file.txt', `${c}:/t/new/`] },
    { args: (c) => ['file.txt', `${c}:/t/exfile`] },
    { args: (c) => ['src', `${c}:/t/exfile`] },
    { args: (c) => ['file.txt', `${c}:/t/linkdir`] },
    { args: (c) => ['srclink', `${c}:/t/new`] },
    { args: (c) => ['-L', 'srclink', `${c}:/t/new`] },
    { args: (c) => ['srclink/', `${c}:/t/exdir`] },
    { args: (c) => ['missing', `${c}:/t/x`] },
    { args: (c) => ['file.txt', `${c}:/t/nodir/sub/x`] },
    { args: (c) => ['-a', 'src', `${c}:/t/new`] },
    { args: (c) => ['-', `${c}:/t/exdir`], input: stdinTar },
    { args: (c) => ['-', `${c}:/t/exfile`], input: stdinTar },
  ];
  const dockerDir = join(clis.sandbox.root, 'to-docker');
  const berthDir = join(clis.sandbox.root, 'to-berth');
  await localLayout(dockerDir);
  await localLayout(berthDir);
  for (const { args, input } of cases) {
    await clis.ok(['exec', 'dk', 'sh', '-c', reset]);
    await clis.ok(['exec', 'bt', 'sh', '-c', reset]);
    const expected = await clis.docker(['cp', ...args('dk')], dockerDir, input);
    const actual = await clis.berth(['cp', ...args('bt')], berthDir, input);
    const label = `cp ${args('ctr').join(' ')}`;
    assert.equal(actual.code, expected.code, `${label}: exit code (${actual.stderr})`);
    assert.equal(
      normalise(actual.stderr, berthDir).replace(/\bbt\b/g, 'ctr'),
      normalise(expected.stderr, dockerDir).replace(/\bdk\b/g, 'ctr'),
      `${label}: stderr`,
    );
    assert.deepEqual(await containerTree(clis, 'bt'), await containerTree(clis, 'dk'), `${label}: tree`);
  }
});
