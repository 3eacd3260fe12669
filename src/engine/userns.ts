/**
 * User namespace remapping (daemon.json `userns-remap`, dockerd's --userns-remap): which host
 * ids a container's ids map to, read from the subordinate id files (/etc/subuid, /etc/subgid),
 * and the per-range directory `<data-root>/<uid>.<gid>` that holds the remapped volumes.
 * docs/userns.md has the whole picture.
 */
import { execFile } from 'node:child_process';
import { chmod, chown, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { writeFileAtomic } from '../common/atomic-file.js';
import { errnoCode, invalidArgument } from '../common/errors.js';
import type { IdMapping, Mount, Spec } from '../oci/runtime-spec.js';
import { sysctlNamespace } from '../oci/validate.js';
import type { ImageService } from '../image/image-service.js';
import { toHostId } from '../snapshot/shift-ids.js';
import { RemappedLayers } from '../snapshot/shift-layers.js';
import type { Snapshotter } from '../snapshot/snapshotter.js';
import type { HostConfig } from './docker-types.js';

export { toContainerId, toHostId } from '../snapshot/shift-ids.js';

const runProgram = promisify(execFile);

/** The user (and group) `userns-remap: default` uses, created when missing (Docker's is dockremap). */
export const DEFAULT_REMAP_USER = 'berth';
/** The size and lowest start of a range allocated for the default user (Docker's values). */
export const DEFAULT_RANGE_SIZE = 65536;
export const DEFAULT_RANGE_START = 100000;

export interface SubordinateRange {
  start: number;
  size: number;
}

/** Container ids -> host ids, as the OCI spec's uidMappings/gidMappings. */
export interface IdMap {
  uids: IdMapping[];
  gids: IdMapping[];
}

export interface Remap {
  /** The names the subordinate ranges were looked up by. */
  user: string;
  group: string;
  map: IdMap;
  /** Host uid and gid of the container's root. */
  rootUid: number;
  rootGid: number;
}

export interface Account {
  name: string;
  id: number;
}

/** Where remapping reads and writes; the defaults are the host's (tests pass their own files). */
export interface UsernsHost {
  subuidPath: string;
  subgidPath: string;
  lookupUser(nameOrId: string): Promise<Account | undefined>;
  lookupGroup(nameOrId: string): Promise<Account | undefined>;
  /** Creates a system user (and its group) for `default`. */
  createUser(name: string): Promise<void>;
}

async function getent(database: 'passwd' | 'group', key: string): Promise<Account | undefined> {
  try {
    const { stdout } = await runProgram('getent', [database, key]);
    const [name = '', , id = ''] = stdout.split('\n')[0]?.split(':') ?? [];
    return name !== '' && /^\d+$/.test(id) ? { name, id: Number(id) } : undefined;
  } catch (err) {
    // getent exits 2 for a key it does not know.
    if ((err as { code?: unknown }).code === 2) return undefined;
    throw err;
  }
}

/** The host's accounts (NSS through getent) and subordinate id files; $BERTH_SUBUID_FILE and $BERTH_SUBGID_FILE replace the files. */
export function hostUserns(): UsernsHost {
  return {
    subuidPath: process.env.BERTH_SUBUID_FILE || '/etc/subuid',
    subgidPath: process.env.BERTH_SUBGID_FILE || '/etc/subgid',
    lookupUser: (key) => getent('passwd', key),
    lookupGroup: (key) => getent('group', key),
    createUser: async (name) => {
      await runProgram('useradd', [
        '--system',
        '--user-group',
        '--no-create-home',
        '--shell',
        '/bin/false',
        name,
      ]);
    },
  };
}

const idPattern = /^(?:[A-Za-z_][A-Za-z0-9_.-]*|\d+)$/;

/** `default`, `user`, `user:group`, `uid`, `uid:gid` -> its parts. */
export function parseRemapSetting(value: string): { user: string; group?: string; isDefault: boolean } {
  if (value === 'default') return { user: DEFAULT_REMAP_USER, group: DEFAULT_REMAP_USER, isDefault: true };
  const [user = '', group, ...rest] = value.split(':');
  if (!idPattern.test(user) || (group !== undefined && !idPattern.test(group)) || rest.length > 0)
    throw invalidArgument(
      `userns-remap: expected "default", a user, user:group or uid:gid, got ${JSON.stringify(value)}`,
    );
  return { user, ...(group !== undefined ? { group } : {}), isDefault: false };
}

/** The ranges of `owners` (a name and/or a numeric id) in a subuid/subgid file, in file order. */
export function parseSubordinateFile(text: string, owners: readonly string[]): SubordinateRange[] {
  const ranges: SubordinateRange[] = [];
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const [owner = '', start = '', size = ''] = trimmed.split(':');
    if (!owners.includes(owner) || !/^\d+$/.test(start) || !/^\d+$/.test(size) || Number(size) === 0)
      continue;
    ranges.push({ start: Number(start), size: Number(size) });
  }
  return ranges;
}

/** Ranges -> id mappings with consecutive container ids from 0 (moby's createIDMap). */
export function rangesToMappings(ranges: readonly SubordinateRange[]): IdMapping[] {
  const mappings: IdMapping[] = [];
  let containerID = 0;
  for (const range of ranges) {
    mappings.push({ containerID, hostID: range.start, size: range.size });
    containerID += range.size;
  }
  return mappings;
}

/** The first start at or above DEFAULT_RANGE_START after every range in `text` (Docker's findNextRangeStart). */
export function nextRangeStart(text: string): number {
  let next = DEFAULT_RANGE_START;
  for (const line of text.split('\n')) {
    const [, start = '', size = ''] = line.trim().split(':');
    if (!/^\d+$/.test(start) || !/^\d+$/.test(size)) continue;
    next = Math.max(next, Number(start) + Number(size));
  }
  return next;
}

const readText = (path: string): Promise<string> =>
  readFile(path, 'utf8').catch((err: unknown) => {
    if (errnoCode(err) === 'ENOENT') return '';
    throw err;
  });

/** Give `name` a fresh range in a subordinate id file when it has none (for `default`). */
async function ensureRange(path: string, name: string): Promise<void> {
  const text = await readText(path);
  if (parseSubordinateFile(text, [name]).length > 0) return;
  const line = `${name}:${nextRangeStart(text)}:${DEFAULT_RANGE_SIZE}\n`;
  const mode = await stat(path).then(
    (s) => s.mode & 0o777,
    () => 0o644,
  );
  await writeFileAtomic(path, `${text}${text === '' || text.endsWith('\n') ? '' : '\n'}${line}`, { mode });
}

/** Resolve a `userns-remap` setting to the id maps of remapped containers (moby's parseRemappedRoot). */
export async function resolveRemap(setting: string, host: UsernsHost = hostUserns()): Promise<Remap> {
  const parsed = parseRemapSetting(setting);
  let user = await host.lookupUser(parsed.user);
  if (user === undefined && parsed.isDefault) {
    await host.createUser(parsed.user);
    user = await host.lookupUser(parsed.user);
  }
  if (user === undefined)
    throw invalidArgument(`userns-remap: no user ${JSON.stringify(parsed.user)} in the host's user database`);
  let groupName = user.name;
  if (parsed.group !== undefined && !parsed.isDefault) {
    const group = await host.lookupGroup(parsed.group);
    if (group === undefined)
      throw invalidArgument(
        `userns-remap: no group ${JSON.stringify(parsed.group)} in the host's group database`,
      );
    groupName = group.name;
  }
  if (parsed.isDefault) {
    await ensureRange(host.subuidPath, user.name);
    await ensureRange(host.subgidPath, groupName);
  }
  const gid = parsed.isDefault ? undefined : (await host.lookupGroup(groupName))?.id;
  const uidRanges = parseSubordinateFile(await readText(host.subuidPath), [user.name, String(user.id)]);
  const gidRanges = parseSubordinateFile(
    await readText(host.subgidPath),
    gid === undefined ? [groupName] : [groupName, String(gid)],
  );
  if (uidRanges.length === 0)
    throw invalidArgument(
      `userns-remap: no subordinate uid range for user ${JSON.stringify(user.name)} in ${host.subuidPath}`,
    );
  if (gidRanges.length === 0)
    throw invalidArgument(
      `userns-remap: no subordinate gid range for group ${JSON.stringify(groupName)} in ${host.subgidPath}`,
    );
  const map = { uids: rangesToMappings(uidRanges), gids: rangesToMappings(gidRanges) };
  return {
    user: user.name,
    group: groupName,
    map,
    rootUid: map.uids[0]?.hostID ?? 0,
    rootGid: map.gids[0]?.hostID ?? 0,
  };
}

/** Whether `mode` lets `uid`/`gid` search a directory owned by `owner`/`group`. */
function searchable(mode: number, owner: number, group: number, uid: number, gid: number): boolean {
  if (owner === uid) return (mode & 0o100) !== 0;
  if (group === gid) return (mode & 0o010) !== 0;
  return (mode & 0o001) !== 0;
}

/**
 * Make the data root reachable by the remapped root and create the per-range root
 * `<dataRoot>/<uid>.<gid>` (0710, group of the remapped root), as dockerd's setupDaemonRoot does:
 * the data root becomes 0711 and every directory above it must let others search it.
 * Returns the per-range root.
 */
export async function prepareRemappedRoot(dataRoot: string, remap: Remap): Promise<string> {
  await mkdir(dataRoot, { recursive: true, mode: 0o711 });
  await chmod(dataRoot, 0o711);
  const root = join(dataRoot, `${remap.rootUid}.${remap.rootGid}`);
  await mkdir(root, { recursive: true, mode: 0o710 });
  await chown(root, 0, remap.rootGid);
  await chmod(root, 0o710);
  for (let dir = dirname(dataRoot); ; dir = dirname(dir)) {
    const info = await stat(dir);
    if (!searchable(info.mode, info.uid, info.gid, remap.rootUid, remap.rootGid))
      throw invalidArgument(
        `userns-remap: ${dir} (above the data root) does not let the remapped root ${remap.rootUid}:${remap.rootGid} reach the data root; allow 'o+x' on it`,
      );
    if (dir === dirname(dir)) break;
  }
  return root;
}

/** The id maps of a container: the daemon's remap unless the container opts out with `--userns=host`. */
export function containerIdMap(remap: Remap | undefined, hostConfig: HostConfig): IdMap | undefined {
  return remap !== undefined && hostConfig.UsernsMode !== 'host' ? remap.map : undefined;
}

/** Docker refuses --privileged in a remapped user namespace: it needs `--userns=host`. */
export function checkRemappedContainer(remap: Remap | undefined, hostConfig: HostConfig): void {
  if (containerIdMap(remap, hostConfig) !== undefined && hostConfig.Privileged === true)
    throw invalidArgument(
      'privileged mode is incompatible with user namespaces; run the container with --userns=host to use --privileged',
    );
}

/**
 * Hand `path` to the container's root when it still belongs to the host's root: the writable
 * layer's top directory, the container's hosts/hostname/resolv.conf, a volume's _data.
 */
export async function chownToRemappedRoot(path: string, map: IdMap): Promise<void> {
  const uid = toHostId(map.uids, 0);
  const gid = toHostId(map.gids, 0);
  if (uid === undefined || gid === undefined) return;
  const info = await stat(path);
  if (info.uid === 0 && info.gid === 0) await chown(path, uid, gid);
}

/** Let the container's root search a directory of the host root's (0710, group of the remapped root). */
export async function shareDirectoryWithRemappedRoot(path: string, map: IdMap): Promise<void> {
  const gid = toHostId(map.gids, 0);
  if (gid === undefined) return;
  await chown(path, 0, gid);
  await chmod(path, 0o710);
}

/**
 * What a remapped container reaches in its directory (`containers/<id>`): the directory and its
 * parent become searchable by its root, and its hosts, hostname and resolv.conf its root's, so
 * that it can bind-mount and write them as Docker's containers can.
 */
export async function shareContainerDir(containerDir: string, map: IdMap): Promise<void> {
  await shareDirectoryWithRemappedRoot(dirname(containerDir), map);
  await shareDirectoryWithRemappedRoot(containerDir, map);
  for (const file of ['hostname', 'hosts', 'resolv.conf'])
    await chownToRemappedRoot(join(containerDir, file), map);
}

/**
 * Mounts a remapped container cannot make itself, replaced the way runc falls back: sysfs needs
 * a network namespace owned by the container's user namespace, and the engine creates the
 * network namespace (owned by the host's), so /sys is the host's, bound read-only.
 */
export function remappedMounts(mounts: readonly Mount[], ownsNetworkNamespace: boolean): Mount[] {
  if (ownsNetworkNamespace) return [...mounts];
  return mounts.map((mount) =>
    mount.type === 'sysfs'
      ? {
          destination: mount.destination,
          type: 'bind',
          source: '/sys',
          options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'],
        }
      : mount,
  );
}

/** Settings init of a remapped container cannot apply itself, for the engine to apply from outside. */
export interface OutsideSettings {
  /** Network sysctls and the network namespace they are for. */
  network?: { path: string; sysctls: Record<string, string> };
  oomScoreAdj?: number;
}

/**
 * Take out of `spec` what init cannot do in a new user namespace: network sysctls of a network
 * namespace it joins but does not own (the engine's, owned by the host's user namespace: only
 * root there may write them), and oom_score_adj (after setresuid init is not dumpable, so its
 * /proc/self files belong to the host's root; runc writes it before entering the namespace).
 */
export function takeOutsideSettings(spec: Spec): OutsideSettings {
  const linux = spec.linux;
  const namespaces = linux?.namespaces ?? [];
  if (linux === undefined || !namespaces.some((ns) => ns.type === 'user' && ns.path === undefined)) return {};
  const outside: OutsideSettings = {};
  if (spec.process?.oomScoreAdj !== undefined) {
    outside.oomScoreAdj = spec.process.oomScoreAdj;
    delete spec.process.oomScoreAdj;
  }
  const path = namespaces.find((ns) => ns.type === 'network')?.path;
  if (path === undefined) return outside;
  const sysctls: Record<string, string> = {};
  const rest: Record<string, string> = {};
  for (const [key, value] of Object.entries(linux.sysctl ?? {}))
    (sysctlNamespace(key) === 'network' ? sysctls : rest)[key] = value;
  if (Object.keys(sysctls).length > 0) {
    linux.sysctl = rest;
    outside.network = { path, sysctls };
  }
  return outside;
}

function writeFrom(args: string[], value: string, what: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const child = execFile(args[0] ?? '', args.slice(1), { timeout: 10_000 }, (error, _stdout, stderr) =>
      error === null
        ? resolve()
        : reject(invalidArgument(`${what}: ${String(stderr).trim() || error.message}`)),
    );
    child.stdin?.end(value);
  });
}

/** Write the network sysctls inside their namespace (/proc/sys/net shows the opener's namespace). */
export async function applyNetworkSysctls(outside: OutsideSettings): Promise<void> {
  for (const [key, value] of Object.entries(outside.network?.sysctls ?? {})) {
    if (!/^net(?:\.[A-Za-z0-9_-]+)+$/.test(key))
      throw invalidArgument(`invalid network sysctl ${JSON.stringify(key)}`);
    const file = `/proc/sys/${key.replaceAll('.', '/')}`;
    await writeFrom(
      ['nsenter', `--net=${outside.network?.path ?? ''}`, '--', 'tee', file],
      value,
      `sysctl ${key}=${value}`,
    );
  }
}

/** Set the container's init's oom_score_adj once it exists (before it starts). */
export async function applyOomScoreAdj(outside: OutsideSettings, pid: number): Promise<void> {
  if (outside.oomScoreAdj === undefined) return;
  await writeFile(`/proc/${pid}/oom_score_adj`, String(outside.oomScoreAdj));
}

/**
 * $BERTH_USERNS_IDMAP, an operations and testing switch: `off` makes remapped containers use
 * shifted copies of the layers even where idmapped layers work; unset or `auto` probes.
 */
export function idmapSetting(value = process.env.BERTH_USERNS_IDMAP): 'auto' | 'off' {
  if (value === undefined || value === '' || value === 'auto') return 'auto';
  if (value === 'off') return 'off';
  throw invalidArgument(`BERTH_USERNS_IDMAP: expected "off" or "auto", got ${JSON.stringify(value)}`);
}

/** How remapped containers get their layers: probed once, when berthd starts (snapshot/shift-layers.ts). */
export function openRemappedLayers(options: {
  dataRoot: string;
  execRoot: string;
  remap: Remap;
  snapshotter: Snapshotter;
}): Promise<RemappedLayers> {
  return RemappedLayers.open({
    maps: options.remap.map,
    snapshotter: options.snapshotter,
    root: join(options.dataRoot, `${options.remap.rootUid}.${options.remap.rootGid}`),
    scratch: join(options.execRoot, 'idmap'),
    idmap: idmapSetting(),
  });
}

/**
 * Chain IDs of the layers still needed: every recorded image's, and those below the snapshots
 * that are not image layers (containers' writable layers, build steps, views).
 */
export async function layersInUse(images: ImageService, snapshotter: Snapshotter): Promise<Set<string>> {
  const keep = await images.images.chainIdsInUse();
  const parents = new Map<string, string | undefined>();
  const tops: string[] = [];
  await snapshotter.walk((info) => {
    parents.set(info.name, info.parent);
    if (info.kind !== 'committed' && info.parent !== undefined) tops.push(info.parent);
  });
  for (const top of tops) {
    // Bounded by the number of snapshots, even if records were to form a cycle.
    let name: string | undefined = top;
    for (let steps = 0; name !== undefined && steps <= parents.size; steps++) {
      keep.add(name);
      name = parents.get(name);
    }
  }
  return keep;
}
