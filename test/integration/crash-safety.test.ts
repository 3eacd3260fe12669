/**
 * Crash safety (issue 8): berthd is SIGKILLed at a random moment of a load, pull, push, build,
 * create, start, rm -f, volume or network operation, in a seeded loop, and restarted. After each
 * restart the stores must be consistent (every listing answers, every container inspects and its
 * image exists, a created container starts), the images from before the loop still run, and
 * nothing is orphaned: no mount, cgroup, veth or nftables DNAT rule that no running container owns.
 * The seed is printed; set CRASH_SEED to replay a run.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CGROUP_ROOT, createSandbox, listMounts, type Sandbox } from '../helpers/sandbox.js';
import { docker, firewallTable, startBerthd, type Berthd } from '../helpers/berthd.js';
import { execProgram, type ExecResult } from '../helpers/exec.js';
import { startRegistry, type Registry } from '../helpers/registry.js';
import { testSubnet } from '../helpers/test-subnets.js';
import { ensureFixture } from '../../fixtures/index.js';

const ITERATIONS = 12;
const MAX_KILL_DELAY_MS = 300;

/** mulberry32: a small seeded generator, so a failing run can be replayed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let x = state;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Harness {
  t: TestContext;
  sandbox: Sandbox;
  registry: Registry;
  berthd: Berthd;
  busyboxArchive: string;
  start(): Promise<Berthd>;
  run(args: string[], env?: NodeJS.ProcessEnv): Promise<ExecResult>;
}

async function ok(h: Harness, args: string[]): Promise<string> {
  const result = await h.run(args);
  assert.equal(result.code, 0, `docker ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

/**
 * One operation: `prepare` runs with berthd alive, `act` is the operation the kill interrupts.
 * Names carry the iteration so operations never collide with an earlier interrupted one.
 */
interface Operation {
  name: string;
  prepare?(h: Harness, i: number): Promise<void>;
  act(h: Harness, i: number): Promise<ExecResult>;
}

const cg = (h: Harness): string[] => ['--cgroup-parent', h.sandbox.cgroupParent];

const operations: Operation[] = [
  { name: 'load', act: (h) => h.run(['load', '-i', h.busyboxArchive]) },
  { name: 'pull', act: (h) => h.run(['pull', `${h.registry.host}/crash/busybox:v1`]) },
  {
    name: 'push',
    prepare: async (h, i) => void (await ok(h, ['tag', 'busybox', `${h.registry.host}/crash/pushed:${i}`])),
    act: (h, i) => h.run(['push', `${h.registry.host}/crash/pushed:${i}`]),
  },
  {
    name: 'build',
    prepare: async (h, i) => {
      const context = join(h.sandbox.root, `context-${i}`);
      await mkdir(context, { recursive: true });
      await writeFile(join(context, 'Dockerfile'), `FROM busybox\nRUN echo ${i} > /built\nCOPY . /ctx/\n`);
    },
    act: (h, i) =>
      h.run(['build', ...cg(h), '-t', `built:${i}`, join(h.sandbox.root, `context-${i}`)], {
        DOCKER_BUILDKIT: '0',
      }),
  },
  {
    name: 'create',
    act: (h, i) =>
      h.run([
        'create',
        ...cg(h),
        '--name',
        `created-${i}`,
        '-p',
        '127.0.0.1::80',
        '-v',
        `vol-${i}:/data`,
        'busybox',
        'sleep',
        '1000',
      ]),
  },
  {
    name: 'start',
    prepare: async (h, i) =>
      void (await ok(h, [
        'create',
        ...cg(h),
        '--name',
        `started-${i}`,
        '-p',
        '127.0.0.1::80',
        'busybox',
        'sleep',
        '1000',
      ])),
    act: (h, i) => h.run(['start', `started-${i}`]),
  },
  {
    name: 'rm -f',
    prepare: async (h, i) =>
      void (await ok(h, [
        'run',
        '-d',
        ...cg(h),
        '--name',
        `removed-${i}`,
        '-p',
        '127.0.0.1::80',
        'busybox',
        'sleep',
        '1000',
      ])),
    act: (h, i) => h.run(['rm', '-f', '-v', `removed-${i}`]),
  },
  { name: 'volume create', act: (h, i) => h.run(['volume', 'create', `made-${i}`]) },
  {
    name: 'volume rm',
    prepare: async (h, i) => void (await ok(h, ['volume', 'create', `gone-${i}`])),
    act: (h, i) => h.run(['volume', 'rm', `gone-${i}`]),
  },
  { name: 'network create', act: (h, i) => h.run(['network', 'create', `net-${i}`]) },
  {
    name: 'network rm',
    prepare: async (h, i) => void (await ok(h, ['network', 'create', `netgone-${i}`])),
    act: (h, i) => h.run(['network', 'rm', `netgone-${i}`]),
  },
];

interface Inspected {
  Id: string;
  Image: string;
  State: { Running: boolean; Status: string; Pid: number };
  NetworkSettings: { Networks: Record<string, { IPAddress: string }> | null };
}

async function containers(h: Harness): Promise<Inspected[]> {
  const ids = (await ok(h, ['ps', '-aq', '--no-trunc'])).split('\n').filter(Boolean);
  if (ids.length === 0) return [];
  return JSON.parse(await ok(h, ['inspect', ...ids])) as Inspected[];
}

/** Directories below the sandbox's cgroup parent in every v1 hierarchy (name -> hierarchies). */
async function containerCgroups(sandbox: Sandbox): Promise<Map<string, string[]>> {
  const found = new Map<string, string[]>();
  for (const hierarchy of await readdir(CGROUP_ROOT)) {
    const parent = join(CGROUP_ROOT, hierarchy, sandbox.cgroupParent);
    for (const entry of await readdir(parent, { withFileTypes: true }).catch(() => [])) {
      if (entry.isDirectory()) found.set(entry.name, [...(found.get(entry.name) ?? []), hierarchy]);
    }
  }
  return found;
}

/** Bridges of the sandbox's berthd: the default one and those of its network records. */
async function bridges(sandbox: Sandbox): Promise<string[]> {
  const names = [sandbox.name('br')];
  for (const id of await readdir(join(sandbox.dataRoot, 'networks')).catch(() => [] as string[])) {
    const record = await readFile(join(sandbox.dataRoot, 'networks', id, 'network.json'), 'utf8').catch(
      () => '',
    );
    const bridge = /"bridge":\s*"([^"]+)"/.exec(record)?.[1];
    if (bridge) names.push(bridge);
  }
  return [...new Set(names)];
}

/** Everything that a restarted berthd must have reconciled; returns the problems found. */
async function orphans(h: Harness, list: Inspected[]): Promise<string[]> {
  const problems: string[] = [];
  const running = list.filter((c) => c.State.Running);
  const runningIds = new Set(running.map((c) => c.Id));

  // Mounts: every mount under the sandbox names a running container (its rootfs, its netns,
  // its volume or bind mounts).
  for (const { mountPoint } of await listMounts()) {
    if (!mountPoint.startsWith(h.sandbox.root + '/')) continue;
    // The netns file is named with a 16-character short id.
    const owned = mountPoint
      .split('/')
      .some(
        (part) => part.length >= 12 && [...runningIds].some((id) => id.startsWith(part) || part.includes(id)),
      );
    if (!owned) problems.push(`mount ${mountPoint}`);
  }

  // cgroups: only running containers keep theirs.
  for (const [name, hierarchies] of await containerCgroups(h.sandbox)) {
    if (!runningIds.has(name)) problems.push(`cgroup ${name} in ${hierarchies.join(',')}`);
  }

  // veths: one per network endpoint of a running container, on the sandbox's bridges.
  const endpoints = running.reduce(
    (sum, c) => sum + Object.values(c.NetworkSettings.Networks ?? {}).filter((n) => n.IPAddress).length,
    0,
  );
  const veths: string[] = [];
  for (const bridge of await bridges(h.sandbox)) {
    const links = await execProgram('ip', ['-o', 'link', 'show', 'master', bridge]);
    for (const line of links.stdout.split('\n').filter(Boolean))
      veths.push(/^\d+:\s+([^:@\s]+)/.exec(line)?.[1] ?? line);
  }
  if (veths.length !== endpoints)
    problems.push(`veths ${veths.join(' ')} on the bridges for ${endpoints} running endpoints`);

  // nftables: every DNAT target is the address of a running container.
  const addresses = new Set(
    running.flatMap((c) => Object.values(c.NetworkSettings.Networks ?? {}).map((n) => n.IPAddress)),
  );
  const table = await execProgram('nft', ['list', 'table', 'inet', firewallTable(h.sandbox)]);
  for (const match of table.stdout.matchAll(/dnat (?:ip )?to (\d+\.\d+\.\d+\.\d+)/g)) {
    if (!addresses.has(match[1] ?? '')) problems.push(`nft DNAT to ${match[1]}, no running container has it`);
  }
  return problems;
}

/** The checks after every restart; `keep` are images that existed before the loop. */
async function checkConsistency(h: Harness, keep: string[], label: string): Promise<void> {
  for (const listing of [['images'], ['ps', '-a'], ['volume', 'ls'], ['network', 'ls']]) await ok(h, listing);
  const list = await containers(h);
  for (const container of list) {
    const image = await h.run(['image', 'inspect', container.Image]);
    assert.equal(image.code, 0, `${label}: the image ${container.Image} of ${container.Id} is gone`);
  }
  for (const volume of (await ok(h, ['volume', 'ls', '-q'])).split('\n').filter(Boolean)) {
    await ok(h, ['volume', 'inspect', volume]);
  }
  for (const network of (await ok(h, ['network', 'ls', '-q'])).split('\n').filter(Boolean)) {
    await ok(h, ['network', 'inspect', network]);
  }
  for (const image of (await ok(h, ['images', '-q', '--no-trunc'])).split('\n').filter(Boolean)) {
    await ok(h, ['image', 'inspect', image]);
  }
  for (const name of keep) {
    const ran = await h.run(['run', '--rm', ...cg(h), name, 'cat', '/etc/crash-marker']);
    assert.equal(ran.code, 0, `${label}: ${name} no longer runs: ${ran.stderr}`);
  }
  // A created (or interrupted) container starts; then it goes, so the loop stays small.
  for (const container of list.filter((c) => !c.State.Running)) {
    const started = await h.run(['start', container.Id]);
    assert.equal(
      started.code,
      0,
      `${label}: ${container.Id} (${container.State.Status}) does not start: ${started.stderr}`,
    );
    await ok(h, ['rm', '-f', container.Id]);
  }
  assert.deepEqual(await orphans(h, await containers(h)), [], `${label}: orphaned after the restart`);
}

test('berthd SIGKILLed during operations, in a seeded loop: consistent stores, nothing orphaned', async (t) => {
  // A fixed default keeps CI deterministic; CRASH_SEED explores (see the issue 8 note for open seeds).
  const seed = Number(process.env.CRASH_SEED ?? 1601975430);
  t.diagnostic(`CRASH_SEED=${seed}`);
  const next = random(seed);
  const sandbox = await createSandbox(t);
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const subnet = await testSubnet(t);
  const busybox = await ensureFixture('busybox');
  const config = { 'default-address-pools': [{ base: subnet, size: 24 }] };

  const start = (): Promise<Berthd> => startBerthd(t, sandbox, { config });
  const h: Harness = {
    t,
    sandbox,
    registry,
    busyboxArchive: busybox.dockerArchive,
    berthd: await start(),
    start,
    run: (args, env) => docker(sandbox, h.berthd.dockerHost, args, env),
  };

  // Before the loop: a loaded image with a marker layer built on it, pushed for the pulls.
  await ok(h, ['load', '-i', busybox.dockerArchive]);
  const context = join(sandbox.root, 'context-keep');
  await mkdir(context);
  await writeFile(join(context, 'Dockerfile'), 'FROM busybox\nRUN echo kept > /etc/crash-marker\n');
  const built = await h.run(['build', ...cg(h), '-t', 'kept:1', context], { DOCKER_BUILDKIT: '0' });
  assert.equal(built.code, 0, built.stderr);
  await ok(h, ['tag', 'kept:1', `${registry.host}/crash/busybox:v1`]);
  await ok(h, ['push', `${registry.host}/crash/busybox:v1`]);
  await ok(h, ['rmi', `${registry.host}/crash/busybox:v1`]);
  const keep = ['kept:1'];

  for (let i = 0; i < ITERATIONS; i++) {
    const operation = operations[Math.floor(next() * operations.length)];
    if (!operation) throw new Error('no operation');
    const delay = Math.floor(next() * (MAX_KILL_DELAY_MS + 1));
    const label = `iteration ${i} (${operation.name}, killed after ${delay} ms, CRASH_SEED=${seed})`;
    t.diagnostic(label);
    await operation.prepare?.(h, i);
    const pending = operation.act(h, i);
    await sleep(delay);
    await h.berthd.stop('SIGKILL');
    await pending;
    h.berthd = await h.start();
    await checkConsistency(h, keep, label);
  }
});
