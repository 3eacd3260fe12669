/**
 * One RUN step as a real container of berth's runtime: the step's active snapshot is mounted as
 * the root filesystem, the process gets Docker's default capabilities and seccomp profile (as a
 * `docker build` RUN does), on the daemon's default bridge like the classic builder's RUN
 * (`default`; an empty network namespace when no bridge is given), or `none`, or `host`; and its output is streamed to the build output. Mount points the runtime had to create in the
 * root filesystem (/proc on an image without it, cache mount targets, ...) are removed from the
 * upper directory afterwards, so they do not end up in the layer, as Docker's init layer does.
 */
import { lstat, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { errnoCode } from '../common/errors.js';
import { resolveUser } from '../engine/user.js';
import { defaultSpec } from '../oci/defaults.js';
import type { Mount as OciMount, Spec } from '../oci/runtime-spec.js';
import type { Runtime } from '../runtime/runtime.js';
import { mountAll, unmount } from '../snapshot/mount.js';
import type { Snapshotter } from '../snapshot/snapshotter.js';
import { resolveInTree } from './copy.js';
import type { StepRecords } from './step-records.js';

export type RunNetwork = 'none' | 'host' | 'default';

/** The daemon's default bridge, for RUN steps (berthd's network manager provides it). */
export interface BuildBridge {
  /** A network namespace on the bridge for container `id`, and the name files it should see. */
  attach(id: string): Promise<{ netnsPath: string; resolvConf: string; hosts: string }>;
  /** Undo attach (after the step's processes are gone). */
  detach(id: string): Promise<void>;
}

export interface RunStepOptions {
  runtime: Runtime;
  snapshotter: Snapshotter;
  /** The prepared active snapshot the step writes into. */
  snapshotKey: string;
  /** A private directory for the step's root filesystem mount point and bundle. */
  workDir: string;
  /** Container ID (the runtime's). */
  id: string;
  args: string[];
  env: string[];
  cwd: string;
  user: string;
  network: RunNetwork;
  bridge?: BuildBridge;
  /** --mount mounts, ready for the spec. */
  mounts: OciMount[];
  /**
   * The image's VOLUME paths: like the classic builder's containers, the step sees an empty
   * volume there (what it writes is discarded) and the mount point directory stays in the layer.
   */
  volumes?: string[];
  /** Parent cgroup, like `docker build --cgroup-parent`; default `berth`. */
  cgroupParent?: string;
  /** Where the step is noted before its container is created (crash recovery). */
  records: StepRecords;
  output: (chunk: Buffer) => void;
  signal?: AbortSignal;
}

async function missing(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return false;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return true;
    throw err;
  }
}

/** The topmost component of `destination` that does not exist in `rootfs` (the runtime would create it). */
async function firstMissing(rootfs: string, destination: string): Promise<string | undefined> {
  const parts = destination.split('/').filter((p) => p !== '' && p !== '.');
  for (let i = 1; i <= parts.length; i++) {
    const path = parts.slice(0, i);
    if (await missing(join(rootfs, ...path))) return path.join('/');
  }
  return undefined;
}

/** True when `path` holds nothing but directories and empty files (what mount point creation leaves). */
async function onlyStubs(path: string): Promise<boolean> {
  const stat = await lstat(path);
  if (stat.isFile()) return stat.size === 0;
  if (!stat.isDirectory()) return false;
  for (const name of await readdir(path)) if (!(await onlyStubs(join(path, name)))) return false;
  return true;
}

function buildSpec(
  options: RunStepOptions,
  rootfs: string,
  user: { uid: number; gid: number; additionalGids: number[] },
  extraMounts: OciMount[],
  netnsPath: string | undefined,
): Spec {
  const spec = defaultSpec({ terminal: false, args: options.args });
  const process = spec.process as NonNullable<Spec['process']>;
  process.env = options.env;
  process.cwd = options.cwd;
  process.user = { uid: user.uid, gid: user.gid, additionalGids: user.additionalGids };
  // Docker does not set no_new_privs for RUN: setuid programs (sudo, su) work.
  process.noNewPrivileges = false;
  spec.root = { path: rootfs, readonly: false };
  spec.hostname = options.id.slice(0, 12);
  spec.mounts = [...(spec.mounts ?? []), ...extraMounts, ...options.mounts];
  const linux = spec.linux as NonNullable<Spec['linux']>;
  if (options.network === 'host')
    linux.namespaces = (linux.namespaces ?? []).filter((ns) => ns.type !== 'network');
  else if (netnsPath !== undefined)
    linux.namespaces = (linux.namespaces ?? []).map((ns) =>
      ns.type === 'network' ? { type: 'network', path: netnsPath } : ns,
    );
  linux.cgroupsPath = posix.join('/', options.cgroupParent || 'berth', options.id);
  return spec;
}

/** Run the step's command; resolves with its exit code. The snapshot is unmounted again on return. */
export async function runStep(options: RunStepOptions): Promise<number> {
  const rootfs = join(options.workDir, 'rootfs');
  await mkdir(rootfs, { recursive: true });
  await mountAll(await options.snapshotter.mounts(options.snapshotKey), rootfs);
  const stubs: string[] = [];
  let created = false;
  let recorded = false;
  let attached = false;
  try {
    const user = await resolveUser(rootfs, options.user);
    const cwd = await resolveInTree(rootfs, options.cwd.split('/'));
    if (await missing(cwd)) await mkdir(cwd, { recursive: true, mode: 0o755 });
    const extra: OciMount[] = [];
    for (const [index, volume] of (options.volumes ?? []).entries()) {
      const target = await resolveInTree(rootfs, volume.split('/'));
      if (await missing(target)) await mkdir(target, { recursive: true, mode: 0o755 });
      const scratch = join(options.workDir, `volume-${index}`);
      await mkdir(scratch, { recursive: true });
      extra.push({ destination: volume, type: 'bind', source: scratch, options: ['rbind', 'rw'] });
    }
    if (options.network === 'host') {
      // The host's name resolution, where the image has the files to mount over.
      for (const file of ['/etc/resolv.conf', '/etc/hosts'])
        if (!(await missing(join(rootfs, file))) && !(await missing(file)))
          extra.push({ destination: file, type: 'bind', source: file, options: ['rbind', 'ro'] });
    }
    let netnsPath: string | undefined;
    if (options.network === 'default' && options.bridge) {
      const network = await options.bridge.attach(options.id);
      attached = true;
      netnsPath = network.netnsPath;
      for (const [file, text] of [
        ['resolv.conf', network.resolvConf],
        ['hosts', network.hosts],
      ] as const) {
        await writeFile(join(options.workDir, file), text);
        extra.push({
          destination: `/etc/${file}`,
          type: 'bind',
          source: join(options.workDir, file),
          options: ['rbind', 'ro'],
        });
      }
    }
    const spec = buildSpec(options, rootfs, user, extra, netnsPath);
    for (const mount of spec.mounts ?? []) {
      const stub = await firstMissing(rootfs, mount.destination);
      if (stub !== undefined && !stubs.some((s) => stub === s || stub.startsWith(`${s}/`))) stubs.push(stub);
    }
    await writeFile(join(options.workDir, 'config.json'), JSON.stringify(spec));
    await options.records.add({ id: options.id, cgroupsPath: spec.linux?.cgroupsPath ?? '' });
    recorded = true;
    const { shim } = await options.runtime.create(options.id, {
      bundle: options.workDir,
      stdio: ['ignore', 'pipe', 'pipe'],
      foreground: true,
    });
    created = true;
    const ended = [shim.child.stdout, shim.child.stderr].map(
      (stream) =>
        new Promise<void>((resolve) => {
          if (stream === null) return resolve();
          stream.on('data', (chunk: Buffer) => options.output(chunk));
          stream.once('close', () => resolve());
          stream.once('error', () => resolve());
        }),
    );
    const abort = (): void => void options.runtime.kill(options.id, 'SIGKILL', true).catch(() => undefined);
    options.signal?.addEventListener('abort', abort, { once: true });
    try {
      await options.runtime.start(options.id);
      const code = await shim.exited;
      await Promise.all(ended);
      return code;
    } finally {
      options.signal?.removeEventListener('abort', abort);
    }
  } finally {
    // The note goes once the container is gone; otherwise the next start of berthd finishes the job.
    const deleted =
      created &&
      (await options.runtime.delete(options.id, true).then(
        () => true,
        () => false,
      ));
    if (recorded && deleted) await options.records.remove(options.id);
    if (attached) await options.bridge?.detach(options.id).catch(() => undefined);
    await unmount(rootfs);
    const upper = (await options.snapshotter.layerTarget(options.snapshotKey)).root;
    for (const stub of stubs) {
      const path = join(upper, stub);
      if (!(await missing(path)) && (await onlyStubs(path))) await rm(path, { recursive: true, force: true });
    }
  }
}
