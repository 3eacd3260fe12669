/**
 * Mounts through berth-mount (mount.ts -> mount-helper.ts -> native/mount): overlays over more
 * layers than one option page holds, bind mounts and their read-only remount, failures that say
 * what is wrong, one long-lived helper that comes back after it died, and an idle helper that does
 * not keep its process alive.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSandbox, listMounts } from '../helpers/sandbox.js';
import { MOUNT_DATA_LIMIT, mountAll, unmount } from '../../src/snapshot/mount.js';
import type { Mount } from '../../src/snapshot/snapshotter.js';

const isMounted = async (path: string): Promise<boolean> =>
  (await listMounts()).some((mount) => mount.mountPoint === path);

/** Process ids of this process's berth-mount children. */
async function helperPids(): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    // pid (comm) state ppid ...: comm may hold spaces, so read after its closing parenthesis.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const exe = await readlink(`/proc/${entry}/exe`).catch(() => '');
    if (ppid === process.pid && exe.endsWith('/berth-mount')) pids.push(Number(entry));
  }
  return pids;
}

test('an overlay over more layers than one option page holds, then unmounted', async (t) => {
  const sandbox = await createSandbox(t);
  const layers = join(sandbox.root, 'layers');
  const lowers: string[] = [];
  for (let i = 0; i < 60; i++) {
    const dir = join(layers, `layer-${String(i).padStart(3, '0')}-${'x'.repeat(40)}`);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, `file-${i}`), `layer ${i}\n`);
    await writeFile(join(dir, 'shadowed'), `from layer ${i}\n`);
    lowers.push(dir);
  }
  const upper = join(sandbox.root, 'upper');
  const work = join(sandbox.root, 'work');
  const target = join(sandbox.root, 'target with space');
  for (const dir of [upper, work, target]) await mkdir(dir);
  const overlay: Mount = {
    type: 'overlay',
    source: 'overlay',
    options: [`lowerdir=${lowers.join(':')}`, `upperdir=${upper}`, `workdir=${work}`],
  };
  assert.ok(overlay.options.join(',').length > MOUNT_DATA_LIMIT, 'too long for one mount(2) as it is');
  sandbox.trackMount(target);
  await mountAll([overlay], target);
  assert.ok(await isMounted(target));
  assert.equal(await readFile(join(target, 'file-0'), 'utf8'), 'layer 0\n');
  assert.equal(await readFile(join(target, 'file-59'), 'utf8'), 'layer 59\n');
  assert.equal(
    await readFile(join(target, 'shadowed'), 'utf8'),
    'from layer 0\n',
    'the first lowerdir is on top',
  );
  await writeFile(join(target, 'new'), 'written\n');
  assert.equal(await readFile(join(upper, 'new'), 'utf8'), 'written\n');
  await unmount(target);
  assert.equal(await isMounted(target), false);
  assert.deepEqual(await readdir(target), []);
});

test('bind mounts: rbind,ro is read-only, rbind,rw writable; unmount of a lazy detach', async (t) => {
  const sandbox = await createSandbox(t);
  const source = join(sandbox.root, 'source');
  const ro = join(sandbox.root, 'ro');
  const rw = join(sandbox.root, 'rw');
  for (const dir of [source, ro, rw]) await mkdir(dir);
  await writeFile(join(source, 'file'), 'content\n');
  sandbox.trackMount(ro);
  sandbox.trackMount(rw);
  await mountAll([{ type: 'bind', source, options: ['rbind', 'ro'] }], ro);
  await mountAll([{ type: 'bind', source, options: ['rbind', 'rw'] }], rw);
  assert.equal(await readFile(join(ro, 'file'), 'utf8'), 'content\n');
  await assert.rejects(writeFile(join(ro, 'other'), 'x'), { code: 'EROFS' });
  await writeFile(join(rw, 'other'), 'x');
  assert.equal(await readFile(join(source, 'other'), 'utf8'), 'x');
  await unmount(ro);
  await unmount(rw, { lazy: true });
  assert.equal(await isMounted(ro), false);
  assert.equal(await isMounted(rw), false);
});

test('a failing mount says what is wrong and leaves nothing mounted', async (t) => {
  const sandbox = await createSandbox(t);
  const lower = join(sandbox.root, 'lower');
  const missing = join(sandbox.root, 'no-such-layer');
  const upper = join(sandbox.root, 'upper');
  const work = join(sandbox.root, 'work');
  const target = join(sandbox.root, 'target');
  for (const dir of [lower, upper, work, target]) await mkdir(dir);
  sandbox.trackMount(target);
  const overlay = (lowers: string[]): Mount => ({
    type: 'overlay',
    source: 'overlay',
    options: [`lowerdir=${lowers.join(':')}`, `upperdir=${upper}`, `workdir=${work}`],
  });
  await assert.rejects(mountAll([overlay([lower, missing])], target), {
    name: 'MountError',
    errno: 'ENOENT',
    message: `cannot mount overlay overlay on ${target}: ${missing} does not exist`,
  });
  await assert.rejects(mountAll([{ type: 'bind', source: missing, options: ['rbind'] }], target), {
    message: `cannot mount bind ${missing} on ${target}: ${missing} does not exist`,
  });
  await assert.rejects(mountAll([overlay([lower]), { type: 'frobfs', source: 'x', options: [] }], target), {
    errno: 'ENODEV',
    message: `cannot mount frobfs x on ${target}: No such device`,
  });
  assert.equal(await isMounted(target), false, 'the overlay mounted first was undone');
  await assert.rejects(unmount(target), {
    errno: 'EINVAL',
    message: `cannot unmount ${target}: it is not a mount point`,
  });
});

test('one long-lived berth-mount, started again after it died', async (t) => {
  const sandbox = await createSandbox(t);
  const source = join(sandbox.root, 'source');
  const target = join(sandbox.root, 'target');
  for (const dir of [source, target]) await mkdir(dir);
  sandbox.trackMount(target);
  const bind: Mount = { type: 'bind', source, options: ['rbind'] };
  for (let i = 0; i < 5; i++) {
    await mountAll([bind], target);
    await unmount(target);
  }
  const [first, ...others] = await helperPids();
  assert.ok(first !== undefined);
  assert.deepEqual(others, [], 'one helper for all mounts');
  for (const pid of await helperPids()) sandbox.trackProcess(pid);
  process.kill(first, 'SIGKILL');
  // Until its exit is seen a request may still go to the dead helper and fail as unavailable.
  for (let attempt = 0; ; attempt++) {
    try {
      await mountAll([bind], target);
      break;
    } catch (err) {
      assert.match(String(err), /berth-mount/);
      assert.ok(attempt < 50, 'berth-mount came back');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  await unmount(target);
  const again = await helperPids();
  assert.equal(again.length, 1);
  assert.notEqual(again[0], first);
});

test('an idle berth-mount does not keep its process alive', async (t) => {
  const sandbox = await createSandbox(t);
  const source = join(sandbox.root, 'source');
  const target = join(sandbox.root, 'target');
  for (const dir of [source, target]) await mkdir(dir);
  sandbox.trackMount(target);
  const mountModule = fileURLToPath(new URL('../../src/snapshot/mount.js', import.meta.url));
  const script = [
    `const { mountAll, unmount } = await import(${JSON.stringify(mountModule)});`,
    `await mountAll([{ type: 'bind', source: ${JSON.stringify(source)}, options: ['rbind'] }], ${JSON.stringify(target)});`,
    `await unmount(${JSON.stringify(target)});`,
    `process.stdout.write('done');`,
  ].join('\n');
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid !== undefined) sandbox.trackProcess(child.pid);
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.once('exit', (c, s) => resolve([c, s])),
  );
  clearTimeout(timer);
  assert.equal(signal, null, 'the process ended by itself, not by the time-out');
  assert.equal(code, 0, output);
  assert.equal(output, 'done');
});
